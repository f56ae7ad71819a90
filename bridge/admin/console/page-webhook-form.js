// Create or edit a webhook. The API's errors name their field first (`url: ...`): the
// message is shown at that field, which gets the focus.
import { ApiError, call } from "./api.js";
import { announce, failure, field, fieldError, h, loading } from "./dom.js";
import { showSecretOnce } from "./page-webhook.js";

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const TEXT_FIELDS = ["url", "description", "transform"];

export async function render({ main, match, caller, go, title }) {
  const [id] = match;
  const editing = id !== undefined;
  title(editing ? `Edit ${id}` : "New webhook");
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/webhooks" }, "Webhooks")),
    h("h1", {}, editing ? `Edit ${id}` : "New webhook"),
  );
  if (!caller.can_write)
    return main.append(h("p", { class: "empty" }, "This token may only read."));
  const slot = h("div", {}, loading());
  main.append(slot);
  let current = null;
  let etag = null;
  if (editing) {
    const answer = await call("GET", `webhooks/${encodeURIComponent(id)}`);
    [current, etag] = [answer.data, answer.headers.get("ETag")];
  }
  const controls = inputs(current);
  const problem = h("div", { role: "alert" });
  const form = h(
    "form",
    { class: "webhook-form", novalidate: true },
    editing
      ? null
      : field("Id", controls.id, "1 to 64 letters, digits, '.', '-' or '_'; empty: generated"),
    field("URL", controls.url, "Where events are POSTed"),
    field("Description", controls.description),
    field(
      "Scope",
      controls.scope,
      "global: every matching event; on demand: only events that name it",
    ),
    field("Events", controls.events, "Comma-separated names or globs such as job.*; empty: all"),
    field("Tenants", controls.tenants, "Comma-separated tenant ids; empty: all"),
    h(
      "div",
      { class: "field check" },
      controls.active,
      h("label", { for: "f-active" }, "Active (unticked: paused)"),
    ),
    field("Rate limit (per second)", controls.rate_limit, "Empty: no limit"),
    field("Timeout", controls.timeout, "e.g. 10s; empty: the bridge's default"),
    field("Retries", controls.max_retry, "Empty: the bridge's default"),
    field(
      "Transform (JMESPath)",
      controls.transform,
      "Applied to the event before signing; empty: none",
    ),
    editing
      ? null
      : field("Secret", controls.secret, "Empty: the bridge generates one and shows it once"),
    editing ? null : field("Headers", controls.headers, "One per line, Name: value"),
    problem,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create"),
      h(
        "a",
        { class: "button", href: editing ? `#/webhooks/${encodeURIComponent(id)}` : "#/webhooks" },
        "Cancel",
      ),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit({ controls, problem, editing, id, etag, current, go });
  });
  slot.replaceChildren(form);
}

function inputs(hook) {
  const text = (name, value, type = "text") =>
    h("input", { id: `f-${name}`, name, type, value: value ?? "", autocomplete: "off" });
  const scope = h(
    "select",
    { id: "f-scope", name: "scope" },
    h("option", { value: "on_demand", selected: hook?.scope !== "global" }, "on demand"),
    h("option", { value: "global", selected: hook?.scope === "global" }, "global"),
  );
  return {
    id: text("id", ""),
    url: text("url", hook?.url, "url"),
    description: text("description", hook?.description),
    scope,
    events: text("events", hook?.events.join(", ")),
    tenants: text("tenants", hook?.tenants.join(", ")),
    active: h("input", {
      id: "f-active",
      name: "active",
      type: "checkbox",
      checked: hook ? hook.active : true,
    }),
    rate_limit: text("rate_limit", hook?.rate_limit, "number"),
    timeout: text("timeout", hook?.timeout),
    max_retry: text("max_retry", hook?.max_retry, "number"),
    transform: text("transform", hook?.transform),
    secret: text("secret", "", "password"),
    headers: h("textarea", { id: "f-headers", name: "headers", rows: 3 }),
  };
}

const list = (value) =>
  value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

/** The request body, or throws {field, message} for what the browser can tell already. */
function body(controls, editing) {
  const fields = { scope: controls.scope.value, active: controls.active.checked };
  fields.events = list(controls.events.value);
  fields.tenants = list(controls.tenants.value);
  for (const name of TEXT_FIELDS) fields[name] = controls[name].value.trim() || null;
  fields.timeout = controls.timeout.value.trim() || null;
  fields.rate_limit = number(controls.rate_limit, "rate_limit");
  fields.max_retry = number(controls.max_retry, "max_retry");
  if (!fields.url) throw { field: "url", message: "url: required" };
  if (editing) return fields;
  const id = controls.id.value.trim();
  if (id && !ID_PATTERN.test(id))
    throw { field: "id", message: "id: 1 to 64 letters, digits, '.', '-' or '_'" };
  const created = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null));
  if (id) created.id = id;
  if (controls.secret.value) created.secret = controls.secret.value;
  const headers = headerLines(controls.headers.value);
  if (Object.keys(headers).length) created.headers = headers;
  return created;
}

function number(control, name) {
  const raw = control.value.trim();
  if (!raw) return null;
  const value = Number(raw);
  if (Number.isNaN(value)) throw { field: name, message: `${name}: expected a number` };
  return value;
}

function headerLines(text) {
  const headers = {};
  for (const line of text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    const at = line.indexOf(":");
    if (at < 1)
      throw {
        field: "headers",
        message: `headers: expected Name: value, got ${line.slice(0, 40)}`,
      };
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

async function submit({ controls, problem, editing, id, etag, go }) {
  Object.values(controls).forEach((control) => fieldError(control, null));
  problem.replaceChildren();
  let sent;
  try {
    sent = body(controls, editing);
    const answer = editing
      ? await call("PATCH", `webhooks/${encodeURIComponent(id)}`, {
          body: sent,
          headers: { "If-Match": etag },
        })
      : await call("POST", "webhooks", { body: sent });
    announce(editing ? "Saved" : `Webhook ${answer.data.id} created`);
    if (!editing) await showSecretOnce(answer.data.secret);
    go(`#/webhooks/${encodeURIComponent(answer.data.id)}`);
  } catch (error) {
    showError(controls, problem, error);
  }
}

/** At its field when the message names one (`url: ...`, `events[0]: ...`), else above the
 *  buttons. */
function showError(controls, problem, error) {
  const message = error.message || String(error);
  const named = message.split(":")[0].replace(/\[.*$/, "").trim();
  const control = error.field ? controls[error.field] : controls[named];
  if (control && (!(error instanceof ApiError) || error.status === 400)) {
    fieldError(control, message);
    control.focus();
    return;
  }
  problem.replaceChildren(failure(error));
}
