// The Profiles page: search with the API's query syntax, a profile's
// details, and its recent change events read from the change log.

import { readSince } from "./changelog.js";
import { h, replace, uid } from "./dom.js";
import { count, localTime, num, plural, timeElement } from "./format.js";
import { marked, queryTerms } from "./highlight.js";
import { guard } from "./permissions.js";

const PAGE_SIZE = 20;
// Pages of the change log read per period before the period is narrowed.
const MAX_PAGES = 30;
const SHOWN_CHANGES = 50;
const DAY_MS = 86400 * 1000;
const PERIODS = [
  { value: "1", label: "last 24 hours", ms: DAY_MS },
  { value: "7", label: "last 7 days", ms: 7 * DAY_MS },
  { value: "30", label: "last 30 days", ms: 30 * DAY_MS },
  { value: "all", label: "everything the log keeps", ms: 0 },
];
const LIST_FIELDS = [
  { key: "skills", label: "Skills" },
  { key: "pastProjects", label: "Past projects" },
  { key: "schools", label: "Schools" },
  { key: "interests", label: "Interests" },
];
const SYNTAX = [
  ["kubernetes retail", "profiles with both words, in any field"],
  ["skills:kubernetes", "a word in one field (skills, aboutMe, pastProjects, schools, interests, displayName, jobTitle, department …)"],
  ['"machine learning"', "a phrase"],
  ["kube*", "a prefix (at least two characters)"],
  ["-department:sales", "without a word"],
  ["skills:go OR skills:rust", "either group"],
];
// How each field the search can match is called on the page.
const FIELD_LABELS = {
  displayName: "Name",
  jobTitle: "Job title",
  department: "Department",
  aboutMe: "About me",
  skills: "Skills",
  pastProjects: "Past projects",
  schools: "Schools",
  interests: "Interests",
};
const SHOWN_ITEMS = 6;

function chips(items) {
  if (!items || !items.length) return h("p", { class: "muted" }, "none");
  return h("ul", { class: "chips" }, items.map((item) => h("li", {}, item)));
}

function profileLink(profile) {
  return `#/profiles/${encodeURIComponent(profile.id)}`;
}

function shortValue(value) {
  if (value === null || value === undefined || value === "") return "(empty)";
  const text = Array.isArray(value) ? value.join(", ") : String(value);
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

function fieldChange(change) {
  const added = change.added || [];
  const removed = change.removed || [];
  if (added.length || removed.length) {
    return h(
      "li",
      {},
      h("strong", {}, change.field),
      added.length ? h("span", { class: "added" }, ` + ${added.join(", ")}`) : null,
      removed.length ? h("span", { class: "removed" }, ` − ${removed.join(", ")}`) : null,
    );
  }
  return h("li", {}, h("strong", {}, change.field), `: ${shortValue(change.before)} → ${shortValue(change.after)}`);
}

export function eventDetails(event) {
  if (event.kind === "CREATED") return h("span", {}, "profile first seen");
  if (event.kind === "DELETED") return h("span", {}, "user removed from the tenant");
  const changes = event.fieldChanges || [];
  if (!changes.length) return h("span", {}, (event.changedFields || []).join(", ") || "—");
  return h("ul", { class: "field-changes" }, changes.map(fieldChange));
}

export function mount(context, { rest, query }) {
  if (rest.length) return mountDetails(context, rest[0]);
  return mountSearch(context, query);
}

// -- search -------------------------------------------------------------------

function mountSearch(context, query) {
  const { api, main, reportError, showNotice, clearNotice, announce, navigate, can } = context;
  const abort = new AbortController();
  const initial = query.get("q") || "";
  const searching = can("GET", "/v1/profiles:search");
  const opening = can("GET", "/v1/profiles/{id}");
  const input = h("input", {
    type: "search",
    id: "search-input",
    name: "q",
    value: initial,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "search-help",
    required: true,
    maxlength: 512,
  });
  // Named by its heading once there is one (an unnamed section may not reference one).
  const results = h("section", { id: "search-results" });
  const idInput = h("input", { type: "text", id: "open-id", name: "id", autocomplete: "off", spellcheck: "false", required: true, maxlength: 256 });
  let nextPageToken = "";
  let shown = [];

  replace(
    main,
    h("h1", {}, "Profiles"),
    h(
      "form",
      {
        role: "search",
        class: "card",
        "aria-label": "Search profiles",
        onsubmit(event) {
          event.preventDefault();
          const text = input.value.trim();
          if (text) navigate(`#/profiles?q=${encodeURIComponent(text)}`);
        },
      },
      h("label", { for: "search-input" }, "Search profiles"),
      h("div", { class: "inline-form" }, input, guard(h("button", { type: "submit", class: "primary" }, "Search"), searching)),
      h(
        "details",
        { id: "search-help" },
        h("summary", {}, "Query syntax"),
        h(
          "dl",
          { class: "syntax" },
          SYNTAX.map(([example, meaning]) => [h("dt", {}, h("code", {}, example)), h("dd", {}, meaning)]),
        ),
      ),
    ),
    h(
      "form",
      {
        class: "card",
        "aria-labelledby": "open-heading",
        onsubmit(event) {
          event.preventDefault();
          const id = idInput.value.trim();
          if (id) navigate(`#/profiles/${encodeURIComponent(id)}`);
        },
      },
      h("h2", { id: "open-heading" }, "Open one profile"),
      h("label", { for: "open-id" }, "Object id or user principal name"),
      h("div", { class: "inline-form" }, idInput, guard(h("button", { type: "submit", class: "secondary" }, "Open"), opening)),
    ),
    results,
  );

  const terms = queryTerms(initial);

  /** The values of one matched field, with the query's terms marked. */
  function matchedValues(profile, field) {
    const value = profile[field];
    if (Array.isArray(value)) {
      const hits = value.map((item) => marked(item, field, terms)).filter(Boolean);
      // The field matched, though the console could not point at where (a tokenizer detail).
      const items = hits.length ? hits : value.map((item) => [item]);
      const more = items.length - SHOWN_ITEMS;
      return [
        h("ul", { class: "chips" }, items.slice(0, SHOWN_ITEMS).map((nodes) => h("li", {}, nodes))),
        more > 0 ? h("span", { class: "muted" }, ` and ${more} more`) : null,
      ];
    }
    const text = String(value ?? "");
    return marked(text, field, terms, { snippet: true }) || text;
  }

  function renderResults(total) {
    results.setAttribute("aria-labelledby", "results-heading");
    const best = Math.max(...shown.map(({ score }) => num(score)), 0);
    replace(
      results,
      h("h2", { id: "results-heading" }, `${plural(total, "profile")} match`),
      shown.length
        ? h(
            "p",
            { class: "hint", id: "rank-help" },
            "Best match first. A whole skill, project, school or interest counts more than a word in About me, " +
              "and an exact word more than a prefix; relevance is shown against the best result of this query.",
          )
        : null,
      shown.length
        ? h(
            "ol",
            { class: "results" },
            shown.map(({ profile, matchedFields, score }, index) => {
              const relevance = best > 0 ? Math.round((100 * num(score)) / best) : 100;
              const meterId = uid("relevance");
              return h(
                "li",
                { class: "result", dataset: { profileId: profile.id } },
                h(
                  "div",
                  { class: "result-head" },
                  h("h3", {}, h("a", { href: profileLink(profile) }, profile.displayName || profile.userPrincipalName || profile.id)),
                  h(
                    "p",
                    { class: "rank", title: `score ${num(score)}` },
                    h("span", { class: "rank-number" }, `#${index + 1} of ${count(total)}`),
                    h("label", { for: meterId, class: "visually-hidden" }, "Relevance"),
                    h("meter", { id: meterId, min: 0, max: 100, value: relevance, "aria-describedby": "rank-help" }),
                    ` relevance ${relevance}%`,
                  ),
                ),
                h("p", { class: "muted" }, [profile.jobTitle, profile.department, profile.userPrincipalName].filter(Boolean).join(" · ")),
                h(
                  "dl",
                  { class: "matches" },
                  (matchedFields || []).map((field) => [
                    h("dt", {}, `Matched in ${FIELD_LABELS[field] || field}`),
                    h("dd", { class: "match", dataset: { field } }, matchedValues(profile, field)),
                  ]),
                ),
              );
            }),
          )
        : h("p", { class: "muted" }, "No profile matches this query."),
      nextPageToken ? h("button", { type: "button", class: "secondary", onclick: () => search(true) }, "More results") : null,
    );
  }

  async function search(more = false) {
    const text = initial.trim();
    results.setAttribute("aria-busy", "true");
    try {
      const page = await api.get("/v1/profiles:search", {
        query: { query: text, pageSize: PAGE_SIZE, pageToken: more ? nextPageToken : "" },
        signal: abort.signal,
      });
      clearNotice();
      shown = more ? [...shown, ...(page.results || [])] : page.results || [];
      nextPageToken = page.nextPageToken || "";
      const total = num(page.totalSize) || shown.length;
      renderResults(total);
      announce(`${plural(total, "profile")} match ${text}.`);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 501) {
        showNotice("Search is not available on this gateway yet", `${error.message}. Open a profile by its id or user principal name instead.`, { kind: "warning" });
        replace(results);
        results.removeAttribute("aria-labelledby");
      } else if (error.status === 400) {
        showNotice("The query could not be read", error.message, { kind: "warning" });
        replace(results);
        results.removeAttribute("aria-labelledby");
        input.focus();
      } else {
        reportError(error);
      }
    } finally {
      results.removeAttribute("aria-busy");
    }
  }

  if (initial && searching.allowed) search();
  else input.focus();
  return () => abort.abort();
}

// -- one profile ----------------------------------------------------------------

function mountDetails(context, id) {
  const { api, main, reportError, can } = context;
  const abort = new AbortController();
  const body = h("div", { id: "profile" }, h("p", { class: "muted" }, "Loading the profile…"));
  replace(main, h("p", {}, h("a", { href: "#/profiles" }, "← Profiles")), h("h1", { id: "profile-heading" }, id), body);
  const reading = can("GET", "/v1/profiles/{id}");
  if (!reading.allowed) {
    replace(body, h("p", { class: "reason" }, `Reading a profile: ${reading.reason}`));
    return () => abort.abort();
  }

  async function load() {
    try {
      const profile = await api.get(`/v1/profiles/${encodeURIComponent(id)}`, { signal: abort.signal });
      renderProfile(profile);
    } catch (error) {
      if (error.name === "AbortError") return;
      replace(body, h("p", { class: "muted" }, "The profile could not be read."));
      reportError(error);
    }
  }

  function renderProfile(profile) {
    replace(document.getElementById("profile-heading"), profile.displayName || profile.userPrincipalName || profile.id);
    const identity = [
      ["User principal name", profile.userPrincipalName],
      ["Object id", h("code", {}, profile.id)],
      ["Mail", profile.mail || "—"],
      ["Job title", profile.jobTitle || "—"],
      ["Department", profile.department || "—"],
      ["Version", h("code", { class: "version" }, profile.version || "—")],
      ["Content read from Graph", timeElement(profile.fetchTime)],
      ["Synced (Graph last confirmed it)", timeElement(profile.syncedAt)],
    ];
    const changes = h("section", { class: "card", "aria-labelledby": "changes-heading", id: "profile-changes" });
    replace(
      body,
      h(
        "div",
        { class: "profile-grid" },
        h(
          "section",
          { class: "card", "aria-labelledby": "identity-heading" },
          h("h2", { id: "identity-heading" }, "Identity"),
          h("dl", { class: "facts" }, identity.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "about-heading" },
          h("h2", { id: "about-heading" }, "About me"),
          profile.aboutMe ? h("p", { class: "about" }, profile.aboutMe) : h("p", { class: "muted" }, "not filled in"),
          LIST_FIELDS.map(({ key, label }) => [h("h3", {}, label), h("div", { dataset: { field: key } }, chips(profile[key]))]),
        ),
      ),
      changes,
    );
    mountChanges(context, profile, changes, abort.signal);
  }

  load();
  return () => abort.abort();
}

function mountChanges(context, profile, section, signal) {
  const { api, reportError, can } = context;
  const select = h(
    "select",
    { id: "changes-period" },
    PERIODS.map(({ value, label }) => h("option", { value, selected: value === "30" }, label)),
  );
  const status = h("p", { class: "muted", role: "status", id: "changes-status" });
  const list = h("div", { id: "changes-list" });
  replace(
    section,
    h("h2", { id: "changes-heading" }, "Recent changes"),
    h(
      "form",
      {
        class: "inline-form",
        onsubmit(event) {
          event.preventDefault();
          load();
        },
      },
      h("label", { for: "changes-period" }, "Period"),
      select,
      h("button", { type: "submit", class: "secondary" }, "Show"),
    ),
    status,
    list,
  );

  // Reads the log forward from the start of a period, keeping this user's events.
  function scan(periodMs) {
    const since = periodMs ? Date.now() - periodMs : 0;
    return readSince(api, since, { keep: (event) => event.userId === profile.id, signal, maxPages: MAX_PAGES });
  }

  async function load() {
    const reading = can("GET", "/v1/changes");
    if (!reading.allowed) {
      status.textContent = `Reading the change log: ${reading.reason}`;
      return;
    }
    const period = PERIODS.find(({ value }) => value === select.value) || PERIODS[2];
    status.textContent = `Reading the change log (${period.label})…`;
    list.setAttribute("aria-busy", "true");
    try {
      let periodMs = period.ms || 0;
      let outcome = await scan(periodMs);
      // Too many events to read: look at a shorter, more recent period instead.
      for (let tries = 0; !outcome.complete && tries < 3; tries += 1) {
        periodMs = periodMs ? periodMs / 4 : 7 * DAY_MS;
        outcome = await scan(periodMs);
      }
      const newest = outcome.found.slice(-SHOWN_CHANGES).reverse();
      const since = periodMs ? `since ${localTime(new Date(Date.now() - periodMs))}` : "in the whole log";
      status.textContent =
        `${plural(outcome.found.length, "change")} of this profile among ${count(outcome.scanned)} events ${since}` +
        (outcome.complete ? "." : " (the period holds more events than the console reads; showing what it read).") +
        (outcome.found.length > SHOWN_CHANGES ? ` Showing the newest ${SHOWN_CHANGES}.` : "");
      renderChanges(newest);
    } catch (error) {
      if (error.name === "AbortError") return;
      status.textContent = "The change log could not be read.";
      reportError(error);
    } finally {
      list.removeAttribute("aria-busy");
    }
  }

  function renderChanges(events) {
    if (!events.length) {
      replace(list);
      return;
    }
    replace(
      list,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-label": "Change events of this profile", tabindex: "0" },
        h(
          "table",
          { class: "changes" },
          h("caption", {}, "Change events, newest first"),
          h("thead", {}, h("tr", {}, ["Detected", "Kind", "Origin", "What changed", "Run"].map((text) => h("th", { scope: "col" }, text)))),
          h(
            "tbody",
            {},
            events.map((event) =>
              h(
                "tr",
                { dataset: { eventId: event.eventId, kind: event.kind } },
                h("td", {}, timeElement(event.detectTime)),
                h("th", { scope: "row" }, h("span", { class: `kind kind-${event.kind}` }, event.kind)),
                h("td", {}, event.origin === "LOB" ? "LOB app" : "SharePoint"),
                h("td", {}, eventDetails(event)),
                h("td", {}, h("code", {}, event.runId || "—")),
              ),
            ),
          ),
        ),
      ),
    );
  }

  load();
}
