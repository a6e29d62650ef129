// The operator's bearer token: pasted in (or, on the embedded default, asked
// of the Graph emulator), kept for this browser tab only in sessionStorage.

const KEY = "profilesync.console.token";

export const ROLES = [
  { role: "Profiles.Read", use: "read syncs, subscribers, profiles and changes; start syncs" },
  { role: "Profiles.Sync", use: "start syncs, approve held deletions, replay dead letters" },
  { role: "Subscribers.Manage", use: "replay dead letters" },
];

export function storedToken() {
  try {
    return sessionStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

export function storeToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

function base64UrlDecode(part) {
  const padded = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The token's claims, read (not verified: the services verify every call). */
export function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]*$/.test(part))) {
    throw new Error("this is not a JWT: a token has three parts separated by dots");
  }
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new Error("this is not a JWT: its middle part is not base64url-encoded JSON");
  }
  if (!claims || typeof claims !== "object") throw new Error("this is not a JWT: no claims");
  return claims;
}

/** Checks pasted text; returns {token, claims} or throws an Error saying what is wrong. */
export function checkToken(text) {
  const token = text.trim().replace(/^Bearer\s+/i, "");
  if (!token) throw new Error("paste a token first");
  const claims = claimsOf(token);
  const expires = expiry(claims);
  if (expires && expires.getTime() <= Date.now()) {
    throw new Error(`this token expired at ${expires.toLocaleString()}; get a new one`);
  }
  return { token, claims };
}

export function expiry(claims) {
  return typeof claims.exp === "number" ? new Date(claims.exp * 1000) : null;
}

/** Who the token speaks for: a user's name, or the application's id. */
export function identity(claims) {
  const user = claims.upn || claims.preferred_username || claims.unique_name;
  if (claims.scp && user) return { kind: "user", name: String(user) };
  return { kind: "application", name: String(claims.app_displayname || claims.azp || claims.appid || claims.sub || "unknown application") };
}

export function rolesOf(claims) {
  return Array.isArray(claims.roles) ? claims.roles.map(String) : [];
}

/** Asks the emulator (through the gateway) for an application token with `roles`. */
export async function emulatorToken(url, roles) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ roles }),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {
    // A refusal from the gateway itself may not be JSON; the status says enough.
  }
  if (!response.ok || typeof body.access_token !== "string") {
    const reason = body?.error?.message || body?.message || `HTTP ${response.status}`;
    throw new Error(`the emulator gave no token: ${reason}`);
  }
  return body.access_token;
}
