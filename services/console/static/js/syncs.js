// The Syncs page: every run with its counts and stage timings, charts of
// duration and changes per run, starting a run, approving held deletions,
// and the live progress of a running run (polled once a second). Each run
// links to its own page, #/syncs/<runId> (run.js).

import { stackedBars } from "./charts.js";
import { h, replace } from "./dom.js";
import { clockTime, count, localTime, num, parseTime, plural, runSeconds, seconds, timeElement } from "./format.js";
import { guard, list } from "./permissions.js";
import { mountRun } from "./run.js";
import {
  CHANGES,
  RUNNING_POLL_MS,
  STAGES,
  STATE_LABELS,
  askApproval,
  elapsed,
  runLabel,
  runLink,
  stageSeconds,
  stageStrip,
  stagesText,
  stateBadge,
  summary,
  tickDurations,
} from "./runs.js";

const LIST_SIZE = 50;
const CHART_RUNS = 30;
const IDLE_POLL_MS = 10000;

export function mount(context, { rest } = { rest: [] }) {
  if (rest && rest.length) return mountRun(context, rest[0]);
  const { api, main, reportError, clearNotice, showNotice, announce, confirm, can } = context;
  const abort = new AbortController();
  const reading = can("GET", "/v1/syncs");
  const starting = can("POST", "/v1/syncs");
  const approving = can("POST", "/v1/syncs/{runId}:approveDeletes");
  let runs = [];
  const watching = new Set();
  let lastResult = null;
  let timer = null;
  let pollFailed = false;
  let renderedTable = "";
  let renderedCharts = "";

  const startButton = h("button", { type: "button", class: "primary", id: "start-sync", onclick: startSync }, "Start a sync");
  const refreshButton = h("button", { type: "button", class: "secondary", onclick: () => refresh() }, "Refresh");
  const updated = h("span", { class: "muted", id: "syncs-updated", "aria-live": "off" });
  const held = h("div", { id: "held" });
  const live = h("div", { id: "live" });
  const result = h("div", { id: "last-result" });
  const charts = h("div", { class: "charts", id: "sync-charts" });
  const table = h("div", { id: "runs-table" }, h("p", { class: "muted" }, "Loading runs…"));

  replace(
    main,
    h("h1", {}, "Syncs"),
    h(
      "p",
      { class: "lead" },
      "A run reads every profile from Graph, stores the snapshot, compares it with the last " +
        "committed one and publishes the differences to the LOB app. A run that would delete " +
        "more users than allowed is held until someone approves it.",
    ),
    h("div", { class: "toolbar" }, guard(startButton, starting), refreshButton, updated),
    held,
    live,
    result,
    charts,
    table,
  );

  function upsert(run) {
    const index = runs.findIndex((known) => known.runId === run.runId);
    if (index >= 0) runs[index] = run;
    else runs = [run, ...runs];
  }

  async function loadList() {
    const page = await api.get("/v1/syncs", { query: { pageSize: LIST_SIZE }, signal: abort.signal });
    runs = page.runs || [];
    for (const run of runs) if (run.state === "RUNNING") watching.add(run.runId);
  }

  function finished(run) {
    lastResult = run;
    announce(`Sync ${run.runId} ${(STATE_LABELS[run.state] || run.state).toLowerCase()}: ${summary(run)}.`);
  }

  async function poll() {
    if (watching.size) {
      for (const id of [...watching]) {
        const run = await api.get(`/v1/syncs/${encodeURIComponent(id)}`, { signal: abort.signal });
        upsert(run);
        if (run.state !== "RUNNING") {
          watching.delete(id);
          finished(run);
        }
      }
      if (!watching.size) await loadList();
    } else {
      await loadList();
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    if (abort.signal.aborted) return;
    timer = window.setTimeout(refresh, watching.size ? RUNNING_POLL_MS : IDLE_POLL_MS);
  }

  async function refresh() {
    window.clearTimeout(timer);
    if (!reading.allowed) return;
    try {
      await poll();
      if (pollFailed) clearNotice();
      pollFailed = false;
      render();
    } catch (error) {
      if (error.name === "AbortError") return;
      pollFailed = true;
      reportError(error);
      if (!runs.length) replace(table, h("p", { class: "muted" }, "The runs could not be read; see the notice above."));
    } finally {
      schedule();
    }
  }

  async function startSync() {
    const dryRun = h("input", { type: "checkbox", id: "dry-run", name: "dryRun" });
    const last = runs.find((run) => run.state !== "RUNNING" && num(run.counts?.users));
    const body = h(
      "div",
      {},
      h(
        "p",
        {},
        `The run reads every profile from Graph (${last ? `${count(last.counts.users)} users last time` : "the whole tenant"}), ` +
          "compares them with the last committed snapshot and publishes the differences to the LOB app.",
      ),
      h("p", { class: "checkbox" }, dryRun, h("label", { for: "dry-run" }, "Dry run: compare and report only; publish and commit nothing")),
    );
    if (!(await confirm({ title: "Start a sync now?", body, ok: "Start sync" }))) return;
    startButton.disabled = true;
    try {
      const run = await api.post("/v1/syncs", dryRun.checked ? { dryRun: true } : {});
      clearNotice();
      upsert(run);
      if (run.state === "RUNNING") watching.add(run.runId);
      announce(`Sync ${run.runId} started.`);
      render();
    } catch (error) {
      if (error.status === 409) {
        showNotice("A sync is already running", error.message, { kind: "warning" });
      } else {
        reportError(error);
      }
    } finally {
      startButton.disabled = !starting.allowed;
      refresh();
    }
  }

  async function approve(run) {
    if (!(await askApproval(confirm, run))) return;
    try {
      const approved = await api.post(`/v1/syncs/${encodeURIComponent(run.runId)}:approveDeletes`, {});
      clearNotice();
      upsert(approved);
      if (approved.state === "RUNNING") watching.add(approved.runId);
      else finished(approved);
      announce(`Deletions of run ${run.runId} approved.`);
      render();
    } catch (error) {
      reportError(error);
    } finally {
      refresh();
    }
  }

  // -- rendering ------------------------------------------------------------

  function renderHeld() {
    const waiting = runs.find((run) => run.state === "HELD_FOR_DELETES");
    if (!waiting) {
      held.replaceChildren();
      return;
    }
    const n = num(waiting.counts?.heldDeletes);
    replace(
      held,
      h(
        "section",
        { class: "card attention", "aria-labelledby": "held-heading", id: "held-run", dataset: { runId: waiting.runId } },
        h("h2", { id: "held-heading" }, `Deletions waiting for approval: ${plural(n, "user")}`),
        h(
          "p",
          {},
          "Run ",
          runLink(waiting, waiting.runId),
          ` (started `,
          timeElement(waiting.startTime),
          `) would delete ${plural(n, "user")}. Its creates and updates are published; its deletions and its commit wait.`,
        ),
        waiting.error ? h("p", { class: "muted" }, waiting.error) : null,
        guard(
          h("button", { type: "button", class: "danger", id: "approve-held", onclick: () => approve(waiting) }, `Approve ${plural(n, "deletion")}…`),
          approving,
        ),
      ),
    );
  }

  function renderLive() {
    const running = runs.filter((run) => run.state === "RUNNING");
    if (!running.length) {
      live.replaceChildren();
      return;
    }
    replace(
      live,
      running.map((run) => {
        const c = run.counts || {};
        const read = num(c.profiles) + num(c.failed);
        const users = num(c.users);
        const stages = stagesText(run);
        return h(
          "section",
          { class: "card live", "aria-labelledby": `live-${run.runId}`, dataset: { runId: run.runId } },
          h("h2", { id: `live-${run.runId}` }, "Running: ", runLink(run)),
          h("p", {}, "Started ", timeElement(run.startTime), ", running for ", elapsed(run), "."),
          users
            ? h(
                "p",
                { class: "progress-line" },
                h("progress", { max: users, value: Math.min(read, users), "aria-label": "Profiles read" }),
                ` ${count(read)} of ${count(users)} profiles read (${Math.round((100 * Math.min(read, users)) / users)}%)`,
              )
            : h("p", {}, `${count(read)} profiles read so far; the tenant's users are still being listed.`),
          h("p", {}, summary(run)),
          h("p", { class: "muted" }, stages ? `Stages done: ${stages}` : "No stage finished yet."),
        );
      }),
    );
  }

  function renderResult() {
    if (!lastResult) {
      result.replaceChildren();
      return;
    }
    const run = runs.find((known) => known.runId === lastResult.runId) || lastResult;
    replace(
      result,
      h(
        "section",
        { class: `card result result-${run.state}`, "aria-labelledby": "result-heading", dataset: { runId: run.runId, state: run.state } },
        h("h2", { id: "result-heading" }, "Last finished: ", runLink(run), " ", stateBadge(run.state)),
        h("p", { id: "result-summary" }, `${summary(run)}; ${plural(run.counts?.eventsPublished, "event")} published; took ${seconds(runSeconds(run))}.`),
        run.error ? h("p", { class: "muted" }, run.error) : null,
      ),
    );
  }

  function renderCharts() {
    const done = runs.filter((run) => run.state !== "RUNNING" && parseTime(run.startTime)).slice(0, CHART_RUNS).reverse();
    const signature = JSON.stringify(done);
    if (signature === renderedCharts) return;
    renderedCharts = signature;
    // Seconds in every label: runs a few seconds apart must not share one.
    const label = (run) => clockTime(parseTime(run.startTime));
    const name = (run) => `Run ${runLabel(run)} at ${localTime(parseTime(run.startTime))}`;
    const durationBars = done.map((run) => {
      const values = stageSeconds(run);
      // A run without stage timings still shows how long it took.
      if (!Object.keys(values).length) values.other = runSeconds(run);
      return { label: label(run), name: name(run), values };
    });
    const stageSeries = [...STAGES, "other"]
      .filter((stage) => durationBars.some((bar) => bar.values[stage] > 0))
      .map((stage) => ({ key: stage, label: stage }));
    const changeBars = done.map((run) => ({
      label: label(run),
      name: name(run),
      values: Object.fromEntries(CHANGES.map(({ key }) => [key, num(run.counts?.[key])])),
    }));
    const span = (totals) =>
      done.length
        ? `${plural(done.length, "run")} from ${localTime(parseTime(done[0].startTime))} to ` +
          `${localTime(parseTime(done[done.length - 1].startTime))}`
        : "";
    replace(
      charts,
      stackedBars({
        title: "Run duration by stage",
        series: stageSeries,
        bars: durationBars,
        format: seconds,
        yTitle: "duration",
        xTitle: "run, by start time",
        emptyText: "No finished runs yet.",
        description: (totals) =>
          `${span(totals)}. Longest ${seconds(Math.max(...totals))}, latest ${seconds(totals[totals.length - 1])}.`,
      }),
      stackedBars({
        title: "Changes per run",
        series: CHANGES,
        bars: changeBars,
        format: (value) => count(value),
        yTitle: "profiles changed",
        xTitle: "run, by start time",
        zeroText: "no changes",
        emptyText: "No finished runs yet.",
        description: (totals) =>
          `${span(totals)}. Most changes in one run: ${count(Math.max(...totals))}; latest run: ${count(totals[totals.length - 1])}.`,
      }),
    );
  }

  function renderTable() {
    const signature = JSON.stringify(runs);
    if (signature === renderedTable) return;
    renderedTable = signature;
    if (!runs.length) {
      replace(table, h("p", { class: "muted", id: "no-runs" }, "No runs yet. Start one with the button above."));
      return;
    }
    const headers = [
      "Started",
      "Run",
      "State",
      "Duration",
      "Users",
      "Read",
      "Failed",
      "Created",
      "Updated",
      "Deleted",
      "Unchanged",
      "Held deletes",
      "Events",
      "Stages",
      h("span", { class: "visually-hidden" }, "Actions"),
    ];
    const rows = runs.map((run) => {
      const c = run.counts || {};
      const cells = ["users", "profiles", "failed", "created", "updated", "deleted", "unchanged", "heldDeletes", "eventsPublished"].map(
        (key) => h("td", { class: "number", dataset: { count: key } }, count(c[key])),
      );
      return h(
        "tr",
        { dataset: { runId: run.runId, state: run.state } },
        h("td", { class: "started" }, timeElement(run.startTime)),
        h("th", { scope: "row" }, runLink(run, run.runId), run.dryRun ? h("span", { class: "tag" }, "dry run") : null),
        h("td", {}, stateBadge(run.state), run.error ? h("p", { class: "cell-note", title: run.error }, run.error) : null),
        h("td", { class: "number" }, elapsed(run)),
        cells,
        h("td", { class: "stages" }, stageStrip(run), h("span", { class: "visually-hidden" }, stagesText(run) || "no stage timings")),
        h(
          "td",
          {},
          run.state === "HELD_FOR_DELETES"
            ? guard(
                h(
                  "button",
                  { type: "button", class: "danger small", "aria-label": `Approve deletions of run ${run.runId}`, onclick: () => approve(run) },
                  "Approve…",
                ),
                approving,
              )
            : null,
        ),
      );
    });
    replace(
      table,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-labelledby": "runs-caption", tabindex: "0" },
        h(
          "table",
          { class: "runs" },
          h("caption", { id: "runs-caption" }, `Runs, newest first (${plural(runs.length, "run")})`),
          h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  function render() {
    renderHeld();
    renderLive();
    renderResult();
    renderCharts();
    renderTable();
    replace(updated, `Updated ${localTime(new Date())}`);
  }

  if (!reading.allowed) {
    const title = reading.user
      ? `This needs an application token with the role ${list(reading.roles)}`
      : `Your token lacks the role ${list(reading.roles)}`;
    showNotice(title, `Reading sync runs: ${reading.reason} Sign in with a token that has it to see the runs.`, { kind: "warning" });
    replace(table, h("p", { class: "reason", id: "no-runs" }, `Sync runs are not shown. ${reading.reason}`));
    refreshButton.disabled = true;
  }
  const stopTicking = tickDurations(main);
  refresh();
  return () => {
    abort.abort();
    window.clearTimeout(timer);
    stopTicking();
  };
}
