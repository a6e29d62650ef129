// One run's own page, #/syncs/<runId>: everything its record holds, its
// stages on a timeline, and the change events it published. Polled once a
// second while the run is running.

import { readSince } from "./changelog.js";
import { h, replace, s as svg } from "./dom.js";
import { count, num, parseTime, plural, timeElement } from "./format.js";
import { guard } from "./permissions.js";
import { eventDetails } from "./profiles.js";
import { RUNNING_POLL_MS, askApproval, elapsed, stateBadge, summary, tickDurations } from "./runs.js";

const SHOWN_EVENTS = 200;
// Events of a run are published while it runs; a little slack for clocks and approval.
const EVENTS_SLACK_MS = 60_000;
const COUNTS = [
  ["users", "Users listed"],
  ["profiles", "Profiles read"],
  ["failed", "Profiles that could not be read"],
  ["withoutProfile", "Users without a SharePoint profile (not a failure)"],
  ["created", "Created"],
  ["updated", "Updated"],
  ["deleted", "Deleted"],
  ["unchanged", "Unchanged"],
  ["heldDeletes", "Deletions held for approval"],
  ["eventsPublished", "Events published"],
];

function fact(term, value, field) {
  return [h("dt", {}, term), h("dd", { dataset: { field } }, value)];
}

function shard(run) {
  const total = num(run.shardCount) || 1;
  const index = num(run.shardIndex);
  return total === 1 ? "0 of 1 (the whole tenant)" : `${index} of ${total}`;
}

function snapshot(run) {
  if (run.snapshot) return h("code", { class: "version" }, run.snapshot);
  if (run.state === "RUNNING") return h("span", { class: "muted" }, "not written yet");
  return h("span", { class: "muted" }, "none: the run stopped before writing its manifest");
}

/** The stages in the order they ran, each placed where it started within the run. */
function timeline(run) {
  const timings = (run.timings || []).map(({ stage, seconds: spent }) => ({ stage, spent: num(spent) }));
  if (!timings.length) {
    return h("p", { class: "muted" }, run.state === "RUNNING" ? "No stage has finished yet." : "This run recorded no stage timings.");
  }
  const total = timings.reduce((sum, { spent }) => sum + spent, 0) || 1;
  let offset = 0;
  const rows = timings.map(({ stage, spent }) => {
    const start = offset;
    offset += spent;
    const bar = svg(
      "svg",
      { class: "timeline-bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true" },
      svg("rect", { x: (100 * start) / total, y: 0, width: Math.max(0.3, (100 * spent) / total), height: 10, class: `series-${stage}` }),
    );
    return h(
      "tr",
      { dataset: { stage } },
      h("th", { scope: "row" }, stage),
      h("td", { class: "number" }, `+${start.toFixed(2)} s`),
      h("td", { class: "number" }, `${spent.toFixed(2)} s`),
      h("td", { class: "number" }, `${Math.round((100 * spent) / total)}%`),
      h("td", { class: "timeline-cell" }, bar),
    );
  });
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-labelledby": "timeline-caption", tabindex: "0" },
    h(
      "table",
      { class: "timeline", id: "stage-timeline" },
      h("caption", { id: "timeline-caption" }, `Stages in the order they ran (${total.toFixed(2)} s in all)`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Stage"),
          ["Started after", "Took", "Share"].map((text) => h("th", { scope: "col", class: "number" }, text)),
          h("th", { scope: "col" }, "On the run's timeline"),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function eventsTable(events) {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-labelledby": "run-events-caption", tabindex: "0" },
    h(
      "table",
      { class: "changes" },
      h("caption", { id: "run-events-caption" }, "Change events of this run, in the order published"),
      h("thead", {}, h("tr", {}, ["Detected", "Kind", "User", "Origin", "What changed"].map((text) => h("th", { scope: "col" }, text)))),
      h(
        "tbody",
        {},
        events.map((event) => {
          const profile = event.after || event.before || {};
          return h(
            "tr",
            { dataset: { eventId: event.eventId, kind: event.kind } },
            h("td", {}, timeElement(event.detectTime)),
            h("th", { scope: "row" }, h("span", { class: `kind kind-${event.kind}` }, event.kind)),
            h("td", {}, h("a", { href: `#/profiles/${encodeURIComponent(event.userId)}` }, profile.displayName || event.userId)),
            h("td", {}, event.origin === "LOB" ? "LOB app" : "SharePoint"),
            h("td", {}, eventDetails(event)),
          );
        }),
      ),
    ),
  );
}

export function mountRun(context, runId) {
  const { api, main, reportError, clearNotice, announce, confirm, can } = context;
  const abort = new AbortController();
  const reading = can("GET", "/v1/syncs/{runId}");
  const readingEvents = can("GET", "/v1/changes");
  const approving = can("POST", "/v1/syncs/{runId}:approveDeletes");
  let timer = null;
  let eventsFor = "";

  const heading = h("h1", { id: "run-heading" }, "Run ", h("code", {}, runId));
  const actions = h("div", { class: "toolbar", id: "run-actions" });
  const record = h("section", { class: "card", "aria-labelledby": "record-heading", id: "run-record" });
  const stages = h("section", { class: "card", "aria-labelledby": "stages-heading", id: "run-stages" });
  const changes = h("section", { class: "card", "aria-labelledby": "run-events-heading", id: "run-events" });
  replace(main, h("p", {}, h("a", { href: "#/syncs" }, "← Syncs")), heading, actions, record, stages, changes);

  async function approve(run) {
    if (!(await askApproval(confirm, run))) return;
    try {
      const approved = await api.post(`/v1/syncs/${encodeURIComponent(run.runId)}:approveDeletes`, {});
      clearNotice();
      announce(`Deletions of run ${run.runId} approved.`);
      render(approved);
    } catch (error) {
      reportError(error);
    } finally {
      load();
    }
  }

  function render(run) {
    replace(heading, "Run ", h("code", {}, run.runId), " ", stateBadge(run.state), run.dryRun ? h("span", { class: "tag" }, "dry run") : null);
    replace(
      actions,
      run.state === "HELD_FOR_DELETES"
        ? guard(
            h(
              "button",
              { type: "button", class: "danger", onclick: () => approve(run) },
              `Approve ${plural(run.counts?.heldDeletes, "deletion")}…`,
            ),
            approving,
          )
        : null,
    );
    const c = run.counts || {};
    replace(
      record,
      h("h2", { id: "record-heading" }, "What the run recorded"),
      h("p", { id: "run-summary" }, `${summary(run)}.`),
      h(
        "div",
        { class: "profile-grid" },
        h(
          "dl",
          { class: "facts", id: "run-facts" },
          fact("Run id", h("code", {}, run.runId), "runId"),
          fact("State", stateBadge(run.state), "state"),
          fact("Why", run.error || h("span", { class: "muted" }, "nothing to report"), "error"),
          fact(
            "Dry run",
            run.dryRun ? "yes: compared and reported only; nothing was published or committed" : "no",
            "dryRun",
          ),
          fact("Shard", shard(run), "shard"),
          fact("Started", timeElement(run.startTime, "unknown"), "startTime"),
          fact("Ended", run.state === "RUNNING" ? h("span", { class: "muted" }, "still running") : timeElement(run.endTime, "not recorded"), "endTime"),
          fact("Duration", elapsed(run), "duration"),
          fact("Snapshot manifest", snapshot(run), "snapshot"),
        ),
        h(
          "dl",
          { class: "facts", id: "run-counts" },
          COUNTS.map(([key, label]) => fact(label, count(c[key]), key)),
        ),
      ),
    );
    replace(stages, h("h2", { id: "stages-heading" }, "Stage timeline"), timeline(run));
    document.title = `Run ${run.runId} · profile-sync console`;
    if (run.state !== "RUNNING" && eventsFor !== `${run.state}/${run.endTime}`) {
      eventsFor = `${run.state}/${run.endTime}`;
      loadEvents(run);
    } else if (run.state === "RUNNING") {
      replace(changes, h("h2", { id: "run-events-heading" }, "Change events"), h("p", { class: "muted" }, "Shown once the run has finished."));
    }
  }

  async function loadEvents(run) {
    const status = h("p", { class: "muted", role: "status", id: "run-events-status" });
    replace(changes, h("h2", { id: "run-events-heading" }, "Change events"), status);
    if (run.dryRun) {
      status.textContent = "A dry run publishes no events.";
      return;
    }
    if (!readingEvents.allowed) {
      status.textContent = `Reading the change log: ${readingEvents.reason}`;
      return;
    }
    const start = parseTime(run.startTime);
    const end = parseTime(run.endTime);
    status.textContent = "Reading the change log…";
    try {
      const outcome = await readSince(api, start ? start.getTime() - 1000 : 0, {
        keep: (event) => event.runId === run.runId,
        untilMs: end ? end.getTime() + EVENTS_SLACK_MS : 0,
        signal: abort.signal,
      });
      const found = outcome.found;
      const kinds = ["CREATED", "UPDATED", "DELETED"]
        .map((kind) => [kind, found.filter((event) => event.kind === kind).length])
        .filter(([, n]) => n)
        .map(([kind, n]) => `${count(n)} ${kind.toLowerCase()}`);
      status.textContent =
        `${plural(found.length, "event")} of this run in the change log${kinds.length ? `: ${kinds.join(", ")}` : ""}.` +
        (found.length > SHOWN_EVENTS ? ` Showing the first ${SHOWN_EVENTS}.` : "") +
        (outcome.complete ? "" : " The log holds more events than the console reads; some may be missing here.") +
        (num(run.counts?.eventsPublished) > found.length && outcome.complete
          ? " Retention may have removed older ones, or another run published the same changes first."
          : "");
      if (found.length) changes.append(eventsTable(found.slice(0, SHOWN_EVENTS)));
    } catch (error) {
      if (error.name === "AbortError") return;
      status.textContent = "The change log could not be read.";
      reportError(error);
    }
  }

  async function load() {
    window.clearTimeout(timer);
    try {
      const run = await api.get(`/v1/syncs/${encodeURIComponent(runId)}`, { signal: abort.signal });
      render(run);
      if (run.state === "RUNNING" && !abort.signal.aborted) timer = window.setTimeout(load, RUNNING_POLL_MS);
    } catch (error) {
      if (error.name === "AbortError") return;
      replace(record, h("p", { class: "muted" }, error.status === 404 ? `There is no run ${runId}.` : "The run could not be read."));
      reportError(error);
    }
  }

  if (reading.allowed) {
    load();
  } else {
    replace(record, h("p", { class: "reason" }, `Reading this run: ${reading.reason}`));
  }
  const stopTicking = tickDurations(main);
  return () => {
    abort.abort();
    window.clearTimeout(timer);
    stopTicking();
  };
}
