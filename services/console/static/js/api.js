// The REST API on this gateway, called with the signed-in operator's token.
// Errors come back as {"code", "message"}; `explain` turns them into words.

export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.name = "ApiError";
    this.status = status; // HTTP status; 0 when the gateway did not answer
    this.code = code; // gRPC code from the body, when there was one
    this.path = path;
  }
}

async function errorFrom(response, path) {
  let code = null;
  let message = response.statusText || `HTTP ${response.status}`;
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === "string" && body.message) message = body.message;
    if (body && typeof body.code === "number") code = body.code;
  } catch {
    if (text.trim()) message = text.trim().slice(0, 500);
  }
  return new ApiError(response.status, code, message, path);
}

/**
 * api.get("/v1/syncs", {query: {pageSize: 50}}) -> parsed JSON
 * `getToken` gives the bearer token; `onRefused(error)` hears about every 401.
 */
export function createApi(getToken, onRefused) {
  async function request(method, path, { query, body, signal } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const headers = { Accept: "application/json" };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, null, error.message || "network error", path);
    }
    if (!response.ok) {
      const error = await errorFrom(response, path);
      if (error.status === 401 && onRefused) onRefused(error);
      throw error;
    }
    const text = await response.text();
    return text ? JSON.parse(text) : {};
  }
  return {
    get: (path, options) => request("GET", path, options),
    post: (path, body, options) => request("POST", path, { ...options, body: body ?? {} }),
    request,
  };
}

/** The roles a 403 message names ("... needs one of the app roles A, B; ..."). */
export function missingRoles(message) {
  const match = /(?:app roles|with one of the roles) ([^;]+)/.exec(message || "");
  return match ? match[1].split(",").map((role) => role.trim()).filter(Boolean) : [];
}

/** {title, detail} in words for an error from `request`. */
export function explain(error) {
  if (!(error instanceof ApiError)) {
    return { title: "Something went wrong in the console", detail: String(error?.message || error) };
  }
  const detail = error.message;
  switch (error.status) {
    case 0:
      return {
        title: "The gateway did not answer",
        detail: `Is it running and reachable? (${detail})`,
      };
    case 401:
      return {
        title: "Your token was refused",
        detail: `${detail}. Sign in again with a new token.`,
      };
    case 403: {
      const roles = missingRoles(detail);
      if (/a user token was sent/.test(detail)) {
        return {
          title: `This needs an application token with the role ${roles.join(" or ")}`,
          detail: `You signed in with a user's token. ${detail}`,
        };
      }
      if (roles.length) {
        return { title: `Your token lacks the role ${roles.join(" or ")}`, detail };
      }
      return { title: "Your token is not allowed to do this", detail };
    }
    case 501:
      return { title: "This gateway does not offer that yet", detail };
    case 503:
      return { title: "A service behind the gateway is unavailable", detail };
    case 429:
      return { title: "Too many requests: try again in a moment", detail };
    default:
      return { title: `The request was refused (HTTP ${error.status})`, detail };
  }
}
