// The admin API, called with the tab's token. The token lives in sessionStorage only: never
// in a URL, a cookie or local storage, and it goes only to the bridge that served the page.

const TOKEN_KEY = "webhook-bridge.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  keep: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Calls `path` (e.g. "webhooks?x=1") of the bridge beside /ui/; resolves with
 *  {data, headers} or throws ApiError with the API's one-line error. */
export async function call(method, path, { body, headers = {}, token } = {}) {
  const bearer = token === undefined ? session.token() : token;
  const sent = { Accept: "application/json", ...headers };
  if (bearer) sent.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const answer = await fetch(new URL(`../${path}`, document.baseURI), {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
    redirect: "error",
  });
  const data = await readJson(answer);
  if (answer.status === 401 && token === undefined) {
    window.dispatchEvent(new CustomEvent("console:signed-out"));
  }
  if (!answer.ok) {
    const message = data && typeof data.error === "string" ? data.error : answer.statusText;
    throw new ApiError(answer.status, message || `HTTP ${answer.status}`);
  }
  return { data, headers: answer.headers };
}

async function readJson(answer) {
  const type = answer.headers.get("Content-Type") || "";
  if (!type.startsWith("application/json")) return null;
  try {
    return await answer.json();
  } catch {
    return null;
  }
}

export const get = (path, options) => call("GET", path, options).then((answer) => answer.data);

export function query(params) {
  const kept = Object.entries(params).filter(([, value]) => value !== "" && value != null);
  return kept.length ? `?${new URLSearchParams(kept)}` : "";
}
