// The Subscribers page: each subscriber's lag, last delivery and last error,
// and the webhook batches parked as dead letters, which can be replayed.

import { h, replace } from "./dom.js";
import { ago, count, localTime, num, parseTime, plural, seconds, timeElement } from "./format.js";
import { guard, list } from "./permissions.js";

const POLL_MS = 10000;
const DEAD_LETTER_PAGE = 20;
const STATES = {
  CAUGHT_UP: "Caught up",
  BEHIND: "Behind",
  RETRYING: "Retrying",
  EXPIRED: "Position expired",
};

function stateBadge(state) {
  return h("span", { class: `state state-${state || "UNKNOWN"}` }, STATES[state] || state || "Unknown");
}

function delivery(subscriber) {
  const source = subscriber.source === "SOURCE_FILE" ? " · set in the chart's values" : "";
  if (!subscriber.url) {
    return h("span", {}, "pull (ListChanges / StreamChanges, then Ack)", h("span", { class: "muted" }, source));
  }
  return h(
    "span",
    {},
    "webhook to ",
    h("code", { class: "url" }, subscriber.url),
    subscriber.hasSecret ? " · signed" : "",
    h("span", { class: "muted" }, source),
  );
}

function lag(status) {
  const events = num(status.lagEvents);
  if (!events) return "none";
  return `${plural(events, "event")}, oldest waiting ${seconds(status.lagSeconds)}`;
}

function lastError(status) {
  if (!status.lastError) return h("span", { class: "muted" }, "none");
  const retry = parseTime(status.nextAttemptTime);
  return h(
    "div",
    {},
    h("p", { class: "error-text" }, status.lastError),
    h("p", { class: "cell-note" }, timeElement(status.lastErrorTime, "")),
    num(status.consecutiveFailures)
      ? h(
          "p",
          { class: "cell-note" },
          `${plural(status.consecutiveFailures, "failed attempt")} in a row`,
          retry ? `; next attempt ${ago(retry)}` : "",
        )
      : null,
  );
}

export function mount(context) {
  const { api, main, reportError, clearNotice, showNotice, announce, confirm, can } = context;
  const abort = new AbortController();
  const reading = can("GET", "/v1/subscribers");
  const replaying = can("POST", "/v1/subscribers/{name}/deadLetters:replay");
  const letters = new Map(); // subscriber name -> dead-letter panel state
  let subscribers = [];
  let timer = null;
  let pollFailed = false;

  const table = h("div", { id: "subscribers-table" }, h("p", { class: "muted" }, "Loading subscribers…"));
  const deadLetters = h("div", { id: "dead-letters" });
  const updated = h("span", { class: "muted", "aria-live": "off" });
  replace(
    main,
    h("h1", {}, "Subscribers"),
    h(
      "p",
      { class: "lead" },
      "Each subscriber reads the change log at its own position: webhook subscribers get " +
        "batches pushed to them, pull subscribers read and acknowledge. A webhook batch that " +
        "failed every attempt is parked as a dead letter until it is replayed.",
    ),
    h("div", { class: "toolbar" }, h("button", { type: "button", class: "secondary", onclick: () => refresh() }, "Refresh"), updated),
    table,
    deadLetters,
  );

  async function loadLetters(name, { more = false } = {}) {
    const panel = letters.get(name);
    const query = { pageSize: DEAD_LETTER_PAGE };
    if (more && panel.nextPageToken) query.pageToken = panel.nextPageToken;
    const page = await api.get(`/v1/subscribers/${encodeURIComponent(name)}/deadLetters`, { query, signal: abort.signal });
    const found = page.deadLetters || [];
    panel.items = more ? [...panel.items, ...found] : found;
    panel.nextPageToken = page.nextPageToken || "";
    const ids = new Set(panel.items.map((letter) => letter.id));
    for (const id of [...panel.selected]) if (!ids.has(id)) panel.selected.delete(id);
    renderLetters(name);
  }

  async function replay(name, ids) {
    const panel = letters.get(name);
    const all = !ids;
    const n = all ? panel.total : ids.length;
    const body = h(
      "div",
      {},
      h(
        "p",
        {},
        `${plural(n, "dead letter")} of ${name} will be queued for delivery again. ` +
          "They are sent before any new batch, and leave the dead-letter list.",
      ),
      h("p", { class: "muted" }, "Make sure the receiver can take them now; a batch that fails every attempt again is parked again."),
    );
    const title = all ? `Replay all dead letters of ${name}?` : `Replay ${plural(n, "dead letter")}?`;
    if (!(await confirm({ title, body, ok: all ? "Replay all" : "Replay selected" }))) return;
    try {
      const answer = await api.post(
        `/v1/subscribers/${encodeURIComponent(name)}/deadLetters:replay`,
        all ? { all: true } : { ids },
      );
      clearNotice();
      const missing = answer.notFound || [];
      const text =
        `Queued ${plural(answer.queued, "dead letter")} of ${name} for delivery.` +
        (missing.length ? ` ${plural(missing.length, "was", "were")} no longer there: ${missing.join(", ")}.` : "");
      panel.message = text;
      panel.selected.clear();
      announce(text);
      await refresh();
    } catch (error) {
      reportError(error);
    }
  }

  function renderLetters(name) {
    const panel = letters.get(name);
    const rows = panel.items.map((letter) => {
      const id = `letter-${name}-${letter.id}`.replace(/[^\w-]/g, "-");
      const box = h("input", {
        type: "checkbox",
        id,
        checked: panel.selected.has(letter.id),
        disabled: letter.expired || !replaying.allowed,
        onchange(event) {
          if (event.target.checked) panel.selected.add(letter.id);
          else panel.selected.delete(letter.id);
          renderLetters(name);
        },
      });
      const events = letter.events || [];
      return h(
        "tr",
        { dataset: { letterId: letter.id } },
        h("td", {}, box, h("label", { for: id, class: "visually-hidden" }, `Select dead letter ${letter.id}`)),
        h("th", { scope: "row" }, h("code", {}, letter.id)),
        h("td", {}, timeElement(letter.parkTime)),
        h(
          "td",
          {},
          plural(letter.eventCount, "event"),
          h("p", { class: "cell-note" }, `cursors ${letter.firstCursor} … ${letter.lastCursor}`),
          events.length
            ? h(
                "p",
                { class: "cell-note" },
                events
                  .slice(0, 3)
                  .map((event) => `${event.kind} ${event.userId}`)
                  .join(", ") + (events.length > 3 ? ", …" : ""),
              )
            : null,
        ),
        h("td", { class: "number" }, count(letter.attempts)),
        h("td", {}, h("span", { class: "error-text" }, letter.lastError || "—")),
        h("td", {}, letter.expired ? h("span", { class: "state state-EXPIRED" }, "Expired: cannot be replayed") : "Can be replayed"),
      );
    });
    const replayable = panel.items.filter((letter) => !letter.expired).length;
    replace(
      panel.section,
      h("h2", { id: `dead-${name}` }, `Dead letters of ${name}`),
      panel.message ? h("p", { class: "success", role: "status" }, panel.message) : null,
      panel.items.length
        ? h(
            "div",
            {},
            h(
              "div",
              { class: "toolbar" },
              guard(
                h(
                  "button",
                  {
                    type: "button",
                    class: "primary",
                    disabled: !panel.selected.size,
                    onclick: () => replay(name, [...panel.selected]),
                  },
                  `Replay selected (${panel.selected.size})`,
                ),
                replaying,
              ),
              guard(
                h(
                  "button",
                  { type: "button", class: "secondary", disabled: !replayable, onclick: () => replay(name, null) },
                  `Replay all ${count(panel.total)}`,
                ),
                replaying,
              ),
            ),
            h(
              "div",
              { class: "table-wrap", role: "region", "aria-labelledby": `dead-${name}`, tabindex: "0" },
              h(
                "table",
                {},
                h("caption", {}, `Parked webhook batches of ${name}, oldest first`),
                h(
                  "thead",
                  {},
                  h("tr", {}, ["Select", "Dead letter", "Parked", "Batch", "Attempts", "Last error", "Replay"].map((text) => h("th", { scope: "col" }, text))),
                ),
                h("tbody", {}, rows),
              ),
            ),
            panel.nextPageToken
              ? h("button", { type: "button", class: "secondary", onclick: () => loadLetters(name, { more: true }).catch(reportError) }, "Load more")
              : null,
          )
        : h("p", { class: "muted" }, "No dead letters."),
    );
  }

  async function syncPanels() {
    const wanted = subscribers.filter((subscriber) => num(subscriber.status?.deadLetters) > 0 || letters.has(subscriber.name));
    for (const subscriber of wanted) {
      const total = num(subscriber.status?.deadLetters);
      let panel = letters.get(subscriber.name);
      if (!panel) {
        panel = {
          section: h("section", { class: "card", "aria-labelledby": `dead-${subscriber.name}`, dataset: { subscriber: subscriber.name } }),
          items: [],
          selected: new Set(),
          nextPageToken: "",
          total: -1,
          message: "",
        };
        letters.set(subscriber.name, panel);
        deadLetters.append(panel.section);
      }
      if (panel.total !== total) {
        panel.total = total;
        await loadLetters(subscriber.name);
      }
    }
    for (const [name, panel] of letters) {
      if (!subscribers.some((subscriber) => subscriber.name === name)) {
        panel.section.remove();
        letters.delete(name);
      }
    }
  }

  function renderTable() {
    if (!subscribers.length) {
      replace(
        table,
        h(
          "p",
          { class: "muted", id: "no-subscribers" },
          "No subscribers yet. Create one with PUT /v1/subscribers/{name} (an application token with the role " +
            "Subscribers.Manage; the README's \"Subscribers and webhooks\" shows how) or in the chart's values.",
        ),
      );
      return;
    }
    const rows = subscribers.map((subscriber) => {
      const status = subscriber.status || {};
      return h(
        "tr",
        { dataset: { subscriber: subscriber.name, state: status.state || "" } },
        h("th", { scope: "row" }, subscriber.name),
        h("td", {}, delivery(subscriber)),
        h("td", {}, stateBadge(status.state)),
        h("td", { dataset: { field: "lag" } }, lag(status)),
        h(
          "td",
          {},
          timeElement(status.lastSuccessTime),
          subscriber.url ? h("p", { class: "cell-note" }, "last attempt ", timeElement(status.lastAttemptTime)) : null,
        ),
        h("td", { dataset: { field: "lastError" } }, lastError(status)),
        h("td", { class: "number", dataset: { field: "delivered" } }, subscriber.url ? count(status.deliveredEvents) : "—"),
        h(
          "td",
          { class: "number", dataset: { field: "deadLetters" } },
          count(status.deadLetters),
          num(status.replaysPending) ? h("p", { class: "cell-note" }, `${count(status.replaysPending)} replays pending`) : null,
        ),
      );
    });
    replace(
      table,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-labelledby": "subscribers-caption", tabindex: "0" },
        h(
          "table",
          { class: "subscribers" },
          h("caption", { id: "subscribers-caption" }, `Subscribers (${subscribers.length})`),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Name", "Delivery", "State", "Lag", "Last delivery", "Last error", "Delivered", "Dead letters"].map((text) =>
                h("th", { scope: "col" }, text),
              ),
            ),
          ),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  async function refresh() {
    window.clearTimeout(timer);
    if (!reading.allowed) return;
    try {
      const page = await api.get("/v1/subscribers", { signal: abort.signal });
      subscribers = page.subscribers || [];
      renderTable();
      await syncPanels();
      if (pollFailed) clearNotice();
      pollFailed = false;
      replace(updated, `Updated ${localTime(new Date())}`);
    } catch (error) {
      if (error.name === "AbortError") return;
      pollFailed = true;
      if (error.status === 404 || error.status === 501) {
        showNotice("This gateway has no subscriber API", error.message, { kind: "warning" });
      } else {
        reportError(error);
      }
      if (!subscribers.length) replace(table, h("p", { class: "muted" }, "No subscribers to show."));
    } finally {
      if (!abort.signal.aborted) timer = window.setTimeout(refresh, POLL_MS);
    }
  }

  if (!reading.allowed) {
    const title = reading.user
      ? `This needs an application token with the role ${list(reading.roles)}`
      : `Your token lacks the role ${list(reading.roles)}`;
    showNotice(title, `Reading subscribers: ${reading.reason}`, { kind: "warning" });
    replace(table, h("p", { class: "reason", id: "no-subscribers" }, `Subscribers are not shown. ${reading.reason}`));
  }
  refresh();
  return () => {
    abort.abort();
    window.clearTimeout(timer);
  };
}
