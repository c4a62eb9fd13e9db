// The job API as the page uses it: where it is, the API token (and the session cookie), requests,
// and the error envelope ({"error": {"code", "message", "details"}}) turned into ApiFailure.
// Every request goes below this page's own path, so the page works at /myspinbot/, /api/myspinbot/
// and behind a reverse-proxy prefix.

const TOKEN_KEY = "myspinbot.token.v1";

/** ".../myspinbot" for a page at ".../myspinbot/" (or ".../myspinbot/page/index.html"). */
export function apiBase(pathname) {
  const marker = "/myspinbot/";
  const at = pathname.lastIndexOf(marker);
  if (at >= 0) return pathname.slice(0, at + marker.length - 1);
  return pathname.endsWith("/myspinbot") ? pathname : "/myspinbot";
}

export const BASE = apiBase(location.pathname);

/** A failed request: `code` from the error envelope (or `http_<status>`, `network_error`). */
export class ApiFailure extends Error {
  constructor(code, message, details, status) {
    super(message);
    this.code = code;
    this.details = details || {};
    this.status = status;
  }
  get text() {
    return `${this.code}: ${this.message}`;
  }
}

// --- the API token (needed when ComfyUI listens beyond loopback) -----------------------------------

let memoryToken = ""; // the token when localStorage is unavailable
let refused = false; // the server answered 401 since the last resetRefused()
let onRefused = () => {};

function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

/** The token kept in this browser ("" when none). */
export function token() {
  return storedToken() || memoryToken;
}

/** Keep `value` as the token (or forget it with ""). */
export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts until the page is reloaded
  }
  memoryToken = value;
}

export function usingToken() {
  return Boolean(token());
}

/** `headers` plus the Authorization header when a token is kept. */
export function authHeaders(headers = {}) {
  const value = token();
  return value ? { ...headers, Authorization: `Bearer ${value}` } : headers;
}

/** Call `listener(failure)` whenever the server refuses the token (401). */
export function onTokenRefused(listener) {
  onRefused = listener;
}

export function tokenRefused() {
  return refused;
}

export function resetRefused() {
  refused = false;
}

// The session cookie carries the token where no header can be sent: <video>, EventSource and, when
// MYSPINBOT_PROTECT_COMFYUI is on, ComfyUI's own frontend.
/** POST /session with the token; true when the server took it. */
export async function signIn(value) {
  try {
    const response = await fetch(`${BASE}/session`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: value }),
    });
    return response.status === 204;
  } catch {
    return false;
  }
}

/** DELETE /session (best effort). */
export async function signOut() {
  await fetch(`${BASE}/session`, { method: "DELETE" }).catch(() => null);
}

// --- requests ---------------------------------------------------------------------------------------

/** `path` below the API base with the token; resolves to the JSON body (null when empty), rejects with ApiFailure. */
export async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(BASE + path, { cache: "no-store", ...options, headers: authHeaders(options.headers) });
  } catch (err) {
    throw new ApiFailure("network_error", `cannot reach the server (${err.message})`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const envelope = body && typeof body === "object" ? body.error : null;
    if (envelope && typeof envelope === "object") {
      const failure = new ApiFailure(envelope.code || `http_${response.status}`, envelope.message || response.statusText,
                                     envelope.details, response.status);
      if (response.status === 401) {
        refused = true;
        onRefused(failure);
      }
      throw failure;
    }
    throw new ApiFailure(`http_${response.status}`, `${response.status} ${response.statusText}`.trim(), {},
                         response.status);
  }
  return body;
}

/** The absolute URL of a job (or of `tail` below it, e.g. "/events"). */
export function jobUrl(id, tail = "") {
  return `${BASE}/jobs/${encodeURIComponent(id)}${tail}`;
}

/** A fresh Idempotency-Key. */
export function randomKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
