// The Scouter API as the page uses it. The access token lives in this module's memory only (never in storage,
// never in a URL): reloading the page means logging in again. A token the server renewed (it answers with
// `Authorization: Bearer <new>`) replaces the old one; a 401 drops it and calls the `onSessionEnd` handler.

let token = null;
let sessionEnded = () => {};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function loggedIn() {
  return token !== null;
}

export function logout() {
  token = null;
}

/** `handler(message)` runs when the server refuses the token (expired beyond renewal, user removed...). */
export function onSessionEnd(handler) {
  sessionEnded = handler;
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { error: text };
  }
}

function describe(response, body) {
  const parts = [body.error, body.message].filter((p) => typeof p === "string" && p);
  return parts.length ? parts.join(": ") : `${response.status} ${response.statusText}`;
}

/** Log in with the login route's headers; the password travels in a header of a same-origin request only. */
export async function login(username, password) {
  let response;
  try {
    response = await fetch("/scouter/auth/login", {
      headers: { Username: username, Password: password },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    // fetch refuses header values outside Latin-1 before sending anything; the server wants ASCII anyway
    throw new ApiError(0, error instanceof TypeError ? "Cannot reach the server, or the name or password has "
      + "characters a header cannot carry" : String(error));
  }
  const body = await readBody(response);
  if (!response.ok || typeof body.token !== "string") {
    const reason = response.status === 404 || response.status === 401 ? "Wrong user name or password"
      : describe(response, body);
    throw new ApiError(response.status, reason);
  }
  token = body.token;
}

/** `method path?query` with the token, and `body` as JSON; the parsed answer, or an ApiError. */
export async function call(method, path, { query = {}, body } = {}) {
  if (token === null) throw new ApiError(401, "Not logged in");
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const renewed = response.headers.get("Authorization");
  if (renewed && renewed.startsWith("Bearer ")) token = renewed.slice("Bearer ".length);
  const answer = await readBody(response);
  if (response.status === 401) {
    token = null;
    sessionEnded(describe(response, answer));
  }
  if (!response.ok) throw new ApiError(response.status, describe(response, answer));
  return answer;
}

export const get = (path, query) => call("GET", path, { query });
export const put = (path, body) => call("PUT", path, { body });
