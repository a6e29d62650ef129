// What the Syncs page and a run's own page share: how a run's state, counts,
// stages and duration are shown, and asking before approving held deletions.

import { h, s as svg } from "./dom.js";
import { count, num, parseTime, plural, runSeconds, seconds } from "./format.js";

export const STAGES = ["rebuild", "fetch", "snapshot", "compare", "publish", "commit", "approve"];
export const CHANGES = [
  { key: "created", label: "created" },
  { key: "updated", label: "updated" },
  { key: "deleted", label: "deleted" },
  { key: "heldDeletes", label: "deletions held" },
];
/** The poll interval while a run is running: its progress and duration move. */
export const RUNNING_POLL_MS = 1000;

export const STATE_LABELS = {
  RUNNING: "Running",
  SUCCEEDED: "Succeeded",
  PARTIAL: "Partial",
  FAILED: "Failed",
  HELD_FOR_DELETES: "Held for deletes",
};

export function stateBadge(state) {
  return h("span", { class: `state state-${state || "UNKNOWN"}` }, STATE_LABELS[state] || state || "Unknown");
}

export function stageSeconds(run) {
  const totals = {};
  for (const { stage, seconds: spent } of run.timings || []) {
    totals[stage] = (totals[stage] || 0) + num(spent);
  }
  return totals;
}

export function stagesText(run) {
  const totals = stageSeconds(run);
  const names = Object.keys(totals).sort((a, b) => STAGES.indexOf(a) - STAGES.indexOf(b));
  return names.map((name) => `${name} ${seconds(totals[name])}`).join(" · ");
}

export function summary(run) {
  const c = run.counts || {};
  const parts = [
    `${count(c.created)} created`,
    `${count(c.updated)} updated`,
    `${count(c.deleted)} deleted`,
    `${count(c.unchanged)} unchanged`,
  ];
  if (num(c.heldDeletes)) parts.push(`${count(c.heldDeletes)} deletions held`);
  if (num(c.failed)) parts.push(`${count(c.failed)} profiles failed`);
  if (num(c.withoutProfile)) parts.push(`${count(c.withoutProfile)} without a SharePoint profile`);
  return parts.join(", ");
}

export function runLabel(run) {
  return `${run.runId}${run.dryRun ? " (dry run)" : ""}`;
}

/** The run's id, linking to its page. */
export function runLink(run, text = runLabel(run)) {
  return h("a", { href: `#/syncs/${encodeURIComponent(run.runId)}`, class: "run-link" }, h("code", {}, text));
}

/** How long the run has taken; while it runs, the console's ticker keeps it current. */
export function elapsed(run) {
  const attributes = { class: "elapsed" };
  if (run.state === "RUNNING" && parseTime(run.startTime)) attributes.dataset = { runningSince: run.startTime };
  return h("span", attributes, seconds(runSeconds(run)));
}

/** Updates every running duration on the page once a second; returns the stop function. */
export function tickDurations(root) {
  const timer = window.setInterval(() => {
    for (const element of root.querySelectorAll("[data-running-since]")) {
      element.textContent = seconds(runSeconds({ startTime: element.dataset.runningSince }));
    }
  }, 1000);
  return () => window.clearInterval(timer);
}

/** The stages as a thin stacked bar, each segment as wide as its share of the run
 * (SVG attributes, since the console's policy allows no inline styles). */
export function stageStrip(run) {
  const totals = stageSeconds(run);
  const names = Object.keys(totals).sort((a, b) => STAGES.indexOf(a) - STAGES.indexOf(b));
  const sum = names.reduce((acc, name) => acc + totals[name], 0);
  if (!sum) return null;
  const strip = svg("svg", { class: "stage-strip", viewBox: "0 0 100 6", preserveAspectRatio: "none", "aria-hidden": "true" });
  let x = 0;
  for (const name of names) {
    const width = (100 * totals[name]) / sum;
    strip.append(svg("rect", { x, y: 0, width, height: 6, class: `series-${name}` }, svg("title", {}, `${name} ${seconds(totals[name])}`)));
    x += width;
  }
  return strip;
}


/** Asks before approving a held run's deletions; resolves true on "Approve deletions". */
export function askApproval(confirm, run) {
  const n = num(run.counts?.heldDeletes);
  const body = h(
    "div",
    {},
    h(
      "p",
      {},
      `Run ${run.runId} found ${plural(n, "user")} missing from a complete read of the tenant — ` +
        "more than the threshold allows, so it held them.",
    ),
    h(
      "p",
      {},
      `Approving publishes ${plural(n, "DELETED event")} to the LOB app and commits the run. ` +
        "The console cannot undo this.",
    ),
    run.error ? h("p", { class: "muted" }, run.error) : null,
  );
  return confirm({ title: `Approve ${plural(n, "deletion")}?`, body, ok: "Approve deletions" });
}
