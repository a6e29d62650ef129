// What the signed-in token may do, so the pages can disable an action the API
// would refuse and say why, instead of sending a request that is bound to fail.
// The rules are the API's own: each operation of the gateway's /openapi.json
// carries its access policy (`x-access`, from the protos' `option (access)`).

import { claimsOf, identity, rolesOf } from "./auth.js";
import { h, uid } from "./dom.js";

let rules = null; // "GET /v1/syncs/{runId}" -> {appRoles: [...], delegatedUsers: bool}

/** Reads the access rules once; without them (no OpenAPI document) every action stays enabled. */
export async function loadAccessRules() {
  try {
    const response = await fetch("/openapi.json", { cache: "no-store", credentials: "omit" });
    if (!response.ok) return;
    const document = await response.json();
    const found = new Map();
    for (const [path, operations] of Object.entries(document.paths || {})) {
      for (const [method, operation] of Object.entries(operations || {})) {
        const rule = operation?.["x-access"];
        if (rule) found.set(`${method.toUpperCase()} ${path}`, rule);
      }
    }
    rules = found;
  } catch {
    rules = null;
  }
}

/** "A", "A or B", "A, B or C" */
export function list(roles) {
  return roles.length > 1 ? `${roles.slice(0, -1).join(", ")} or ${roles[roles.length - 1]}` : roles[0];
}

/**
 * access(token, "POST", "/v1/syncs/{runId}:approveDeletes")
 *   -> {allowed: true, ...} or {allowed: false, reason: "Needs the app role Profiles.Sync; ...",
 *       roles: ["Profiles.Sync"], user: false}
 * `path` is the route as the OpenAPI document names it, with its {placeholders}.
 */
export function access(token, method, path) {
  const rule = rules?.get(`${method} ${path}`);
  const allowed = { allowed: true, reason: "", roles: [], user: false };
  if (!rule || rule.anonymous) return allowed;
  let claims;
  try {
    claims = claimsOf(token);
  } catch {
    return allowed;
  }
  const roles = rule.appRoles || [];
  if (identity(claims).kind === "user") {
    if (rule.delegatedUsers) return allowed;
    return {
      allowed: false,
      roles,
      user: true,
      reason: `Needs an application token with the app role ${list(roles)}; you signed in with a user's token.`,
    };
  }
  const held = rolesOf(claims);
  if (roles.some((role) => held.includes(role))) return allowed;
  const have = held.length ? `your token has ${held.join(", ")}` : "your token has no app roles";
  return { allowed: false, roles, user: false, reason: `Needs the app role ${list(roles)}; ${have}.` };
}

/**
 * The button as it is when allowed; otherwise disabled, with the reason shown
 * beside it and announced with it (aria-describedby).
 */
export function guard(button, verdict) {
  if (verdict.allowed) return button;
  const id = uid("why-disabled");
  button.disabled = true;
  button.setAttribute("aria-describedby", id);
  button.dataset.disabledReason = verdict.reason;
  return h("span", { class: "guarded" }, button, h("span", { class: "reason", id }, verdict.reason));
}
