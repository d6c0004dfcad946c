// The JSON API as the console calls it: the key (kept in sessionStorage only) goes out as
// X-API-Key, and every failure becomes an ApiFailure carrying the service's error code.

const KEY_STORAGE = "reid.apiKey";

export class ApiFailure extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

function headers() {
  const key = storedKey();
  return key ? { "X-API-Key": key } : {};
}

async function failureOf(response) {
  let error = null;
  try {
    error = (await response.json()).error;
  } catch {
    // not the service's JSON error (a proxy's page, say): report the status alone
  }
  return new ApiFailure(
    response.status,
    error?.code ?? `http_${response.status}`,
    error?.message ?? `${response.status} ${response.statusText}`,
    error?.details ?? null,
  );
}

// Listeners told when the service refuses the key (401), so the page can ask for another.
const unauthenticatedListeners = [];
export function onUnauthenticated(listener) {
  unauthenticatedListeners.push(listener);
}

/** fetch() with the key; resolves to the Response, rejects with ApiFailure on any non-2xx. */
export async function request(path, { method = "GET", body } = {}) {
  const response = await fetch(path, { method, body, headers: headers() });
  if (!response.ok) {
    const failure = await failureOf(response);
    if (response.status === 401) unauthenticatedListeners.forEach((listener) => listener(failure));
    throw failure;
  }
  return response;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function sendForm(path, form, method = "POST") {
  return (await request(path, { method, body: form })).json();
}

export async function remove(path) {
  return (await request(path, { method: "DELETE" })).json();
}

/** An image route's bytes as a Blob (an <img src> could not send the key). */
export async function getBlob(path) {
  return (await request(path)).blob();
}
