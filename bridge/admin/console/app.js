// The console's shell: sign-in, navigation between pages (#/page?query), and the polling of
// the page shown, which stops when the page changes or the tab is hidden.
import { ApiError, get, session } from "./api.js";
import { announce, failure, h } from "./dom.js";
import * as audit from "./page-audit.js";
import * as deadLetters from "./page-dead-letters.js";
import * as deliveries from "./page-deliveries.js";
import * as overview from "./page-overview.js";
import * as webhook from "./page-webhook.js";
import * as webhookForm from "./page-webhook-form.js";
import * as webhooks from "./page-webhooks.js";

const PAGES = [
  [/^overview$/, overview],
  [/^webhooks$/, webhooks],
  [/^webhooks\/new$/, webhookForm],
  [/^webhooks\/([^/]+)\/edit$/, webhookForm],
  [/^webhooks\/([^/]+)$/, webhook],
  [/^deliveries$/, deliveries],
  [/^dead-letters$/, deadLetters],
  [/^audit$/, audit],
];

const main = document.getElementById("main");
let caller = null;
let current = null;

function parse(hash) {
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?");
  return { path: path || "overview", params: new URLSearchParams(search) };
}

/** Polls `task` every `interval_ms` while this page is shown and the tab visible. */
function poller(state) {
  return (task, intervalMs) => {
    const tick = async () => {
      if (state.left) return;
      if (!document.hidden) await task().catch(() => {});
      if (!state.left) state.timers.push(setTimeout(tick, intervalMs));
    };
    state.timers.push(setTimeout(tick, intervalMs));
  };
}

function leave() {
  if (!current) return;
  current.left = true;
  current.timers.forEach(clearTimeout);
  current = null;
}

async function show() {
  leave();
  if (!caller) return signIn();
  const { path, params } = parse(location.hash);
  const found = PAGES.find(([pattern]) => pattern.test(path));
  if (!found) return go("#/overview");
  const [pattern, page] = found;
  const match = path.match(pattern).slice(1).map(decodeURIComponent);
  const state = { left: false, timers: [] };
  current = state;
  markNav(path);
  main.replaceChildren();
  const context = { main, params, match, caller, every: poller(state), go, title };
  try {
    await page.render(context);
  } catch (error) {
    if (!state.left)
      main.replaceChildren(h("h1", { tabindex: "-1" }, "Something went wrong"), failure(error));
  }
  if (!state.left) focusHeading();
}

function title(text) {
  document.title = `${text} · webhook-bridge console`;
}

function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

function markNav(path) {
  const section = path.split("/")[0];
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href").slice(2);
    if (target === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function go(hash) {
  if (location.hash === hash) show();
  else location.hash = hash;
}

function signedIn(who) {
  caller = who;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("sign-out").hidden = who.name === "anonymous";
  const role = who.can_write ? "admin" : "read only";
  const tenants = who.tenants ? `, tenants ${who.tenants.join(", ")}` : "";
  document.getElementById("who-name").textContent = `${who.name} (${role}${tenants})`;
}

function signOut() {
  session.forget();
  caller = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  show();
}

function signIn(message) {
  title("Sign in");
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
  });
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" }, message || "");
  const form = h(
    "form",
    { class: "sign-in", novalidate: true },
    h("h1", { tabindex: "-1" }, "Sign in"),
    h(
      "p",
      {},
      "Use an admin or viewer token of this bridge (ADMIN_TOKEN, VIEWER_TOKEN or a token of its configuration). It is kept for this tab only.",
    ),
    h("div", { class: "field" }, h("label", { for: "token" }, "Access token"), input),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return (error.textContent = "Enter a token.");
    try {
      const who = await get("whoami", { token });
      session.keep(token);
      signedIn(who);
      announce(`Signed in as ${who.name}`);
      show();
    } catch (failed) {
      error.textContent =
        failed instanceof ApiError && failed.status === 401
          ? "This token is not accepted."
          : failed.message;
      input.focus();
    }
  });
  main.replaceChildren(form);
  input.focus();
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  window.addEventListener("hashchange", show);
  window.addEventListener("console:signed-out", () => {
    if (!caller) return;
    session.forget();
    caller = null;
    signIn("Your session ended: sign in again.");
  });
  try {
    // with no token configured at all, the bridge's reads are open: no sign-in then
    signedIn(await get("whoami"));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      main.replaceChildren(h("h1", {}, "The bridge does not answer"), failure(error));
      return;
    }
    session.forget();
  }
  show();
}

start();
