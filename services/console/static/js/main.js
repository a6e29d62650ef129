// The console's shell: sign-in, navigation between pages (#/syncs,
// #/syncs/<runId>, #/subscribers, #/profiles), the error notice,
// confirmations, announcements and the token's permissions that every page shares.

import { createApi, explain } from "./api.js";
import { checkToken, claimsOf, expiry, forgetToken, identity, rolesOf, storeToken, storedToken } from "./auth.js";
import { h, replace } from "./dom.js";
import { localTime } from "./format.js";
import { access, loadAccessRules } from "./permissions.js";
import * as profiles from "./profiles.js";
import { renderSignIn } from "./signin.js";
import * as subscribers from "./subscribers.js";
import * as syncs from "./syncs.js";

const PAGES = { syncs, subscribers, profiles };
const DEFAULT_PAGE = "syncs";

const main = document.getElementById("main");
const notice = document.getElementById("notice");
const announcer = document.getElementById("announcer");
const session = document.getElementById("session");
const dialog = document.getElementById("confirm");

let unmount = null;
let expiryTimer = null;
let config = {};

// -- shared services --------------------------------------------------------

function showNotice(title, detail, { kind = "error", action = null } = {}) {
  notice.className = `notice notice-${kind}`;
  replace(notice, h("p", { class: "notice-title" }, h("strong", {}, title)), detail ? h("p", {}, detail) : null, action);
  notice.hidden = false;
}

function clearNotice() {
  notice.hidden = true;
  notice.replaceChildren();
}

/** Shows an error from the API (or anything thrown) in the notice area. */
function reportError(error) {
  if (error?.name === "AbortError") return;
  const { title, detail } = explain(error);
  const action =
    error?.status === 401
      ? h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign in again")
      : null;
  showNotice(title, detail, { action });
}

function announce(text) {
  // Cleared first so the same words twice are still read out.
  announcer.textContent = "";
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

/** Asks before doing something that changes state; resolves true on the OK button. */
function confirmAction({ title, body, ok }) {
  replace(document.getElementById("confirm-title"), title);
  replace(document.getElementById("confirm-body"), body);
  replace(document.getElementById("confirm-ok"), ok);
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

const api = createApi(storedToken, () => {
  // Every 401 also shows in the notice; the token stays until the operator signs out,
  // so a passing refusal (a restarted authority) does not throw the session away.
});

// -- session ----------------------------------------------------------------

function signOut() {
  forgetToken();
  clearNotice();
  route();
}

function renderSession() {
  window.clearTimeout(expiryTimer);
  const token = storedToken();
  if (!token) {
    replace(session, h("span", { class: "muted" }, "Not signed in"));
    return;
  }
  let claims;
  try {
    claims = claimsOf(token);
  } catch {
    forgetToken();
    replace(session, h("span", { class: "muted" }, "Not signed in"));
    return;
  }
  const who = identity(claims);
  const roles = rolesOf(claims);
  const expires = expiry(claims);
  replace(
    session,
    h(
      "p",
      { class: "session-who" },
      h("span", {}, who.kind === "user" ? "User " : "Application "),
      h("strong", { id: "session-name" }, who.name),
      h("span", { class: "session-roles", id: "session-roles" }, roles.length ? ` · roles ${roles.join(", ")}` : " · no app roles"),
      expires ? h("span", { class: "session-expiry" }, ` · token expires ${localTime(expires)}`) : null,
    ),
    h("button", { type: "button", class: "secondary small", onclick: signOut }, "Sign out"),
  );
  if (expires) {
    const left = expires.getTime() - Date.now();
    // setTimeout holds at most ~24 days; a token never lives that long.
    expiryTimer = window.setTimeout(() => {
      forgetToken();
      showNotice("Your token expired", `It was valid until ${localTime(expires)}. Sign in again to go on.`);
      route();
    }, Math.max(0, Math.min(left, 2 ** 31 - 1)));
  }
}

// -- routing ----------------------------------------------------------------

/** "#/profiles/abc?q=x" -> {page: "profiles", rest: ["abc"], query: URLSearchParams} */
function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  const [page, ...rest] = path.split("/").map((part) => decodeURIComponent(part));
  return { page: PAGES[page] ? page : DEFAULT_PAGE, rest: rest.filter(Boolean), query: new URLSearchParams(search) };
}

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function markNavigation(page) {
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (unmount) {
    unmount();
    unmount = null;
  }
  renderSession();
  const { page, rest, query } = parseHash();
  markNavigation(storedToken() ? page : null);
  const can = (method, path) => access(storedToken(), method, path);
  const context = { api, main, config, reportError, clearNotice, showNotice, announce, confirm: confirmAction, navigate, can };
  if (!storedToken()) {
    document.title = "Sign in · profile-sync console";
    unmount = renderSignIn(context, {
      onToken(text) {
        const { token } = checkToken(text);
        storeToken(token);
        clearNotice();
        route();
      },
    });
    return;
  }
  unmount = PAGES[page].mount(context, { rest, query }) || null;
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : page} · profile-sync console`;
}

let lastPage = null;
window.addEventListener("hashchange", () => {
  const { page } = parseHash();
  // A new page starts with a clean notice and takes the focus, as a page load would.
  if (page !== lastPage) clearNotice();
  lastPage = page;
  route();
  main.focus({ preventScroll: false });
});

async function start() {
  await loadAccessRules();
  try {
    const response = await fetch("config.json", { cache: "no-store", credentials: "omit" });
    if (response.ok) config = await response.json();
  } catch {
    config = {};
  }
  lastPage = parseHash().page;
  route();
}

start();
