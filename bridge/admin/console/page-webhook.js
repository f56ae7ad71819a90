// One webhook: its fields, status, recent attempts and success ratio over time; admins pause,
// test, rotate the secret, edit and delete it here.
import { call, get } from "./api.js";
import {
  announce,
  badge,
  empty,
  failure,
  h,
  modal,
  percent,
  plural,
  refresh,
  svg,
  table,
  when,
} from "./dom.js";

const POLL_MS = 3000;
const SPANS = [
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
];

export async function render({ main, match, caller, every, go, title }) {
  const [id] = match;
  title(`Webhook ${id}`);
  const path = `webhooks/${encodeURIComponent(id)}`;
  const summary = h("div", {});
  const actions = h("div", { class: "actions" });
  const outcome = h("div", { role: "status", class: "outcome" });
  const ratio = h("div", {});
  const within = h(
    "select",
    { id: "span" },
    SPANS.map(([value, label]) => h("option", { value }, label)),
  );
  const attempts = h("div", {});
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/webhooks" }, "Webhooks")),
    h("h1", {}, id),
    summary,
    caller.can_write ? actions : null,
    outcome,
    h(
      "section",
      { "aria-labelledby": "ratio" },
      h("h2", { id: "ratio" }, "Success ratio over time"),
      h("div", { class: "field" }, h("label", { for: "span" }, "Period"), within),
      ratio,
    ),
    h(
      "section",
      { "aria-labelledby": "attempts" },
      h("h2", { id: "attempts" }, "Recent attempts"),
      attempts,
    ),
  );
  let hook = null;
  const load = async () => {
    const answer = await call("GET", path);
    hook = answer.data;
    hook.etag = answer.headers.get("ETag");
    const { etag, ...shown } = hook;
    refresh(summary, shown, () => fields(hook));
    refresh(attempts, hook.attempts, () => attemptTable(hook.attempts));
    const history = await get(`${path}/history?within=${within.value}`);
    refresh(ratio, history.buckets, () => ratioChart(history));
    if (caller.can_write) refresh(actions, [hook.active, hook.source], () => buttons(hook, act));
  };
  const act = async (name) => {
    try {
      await ACTIONS[name]({ path, hook, outcome, go, reload: load });
    } catch (error) {
      outcome.replaceChildren(failure(error));
    }
  };
  within.addEventListener("change", () =>
    load().catch((error) => ratio.replaceChildren(failure(error))),
  );
  await load();
  every(load, POLL_MS);
}

function fields(hook) {
  const row = (name, value) => [
    h("dt", {}, name),
    h("dd", {}, value === null || value === "" ? "—" : value),
  ];
  const list = (values) => (values.length ? values.join(", ") : "all");
  return h(
    "dl",
    { class: "fields" },
    row(
      "Status",
      h("span", {}, badge(hook.status), " ", h("span", { class: "message" }, hook.message)),
    ),
    row("Active", hook.active ? "yes" : "no (paused)"),
    row("URL", h("span", { class: "url" }, hook.url)),
    row("Description", hook.description),
    row("Source", hook.source === "config" ? "config (YAML, read-only here)" : "api"),
    row("Scope", hook.scope),
    row("Events", list(hook.events)),
    row("Tenants", list(hook.tenants)),
    row("Rate limit", hook.rate_limit === null ? "none" : `${hook.rate_limit} / s`),
    row("Timeout", hook.timeout || "default"),
    row("Retries", hook.max_retry === null ? "default" : String(hook.max_retry)),
    row("Transform", hook.transform ? h("code", {}, hook.transform) : "none"),
    row("Headers", Object.keys(hook.headers).join(", ") || "none"),
    row("Revision", hook.revision === null ? "—" : String(hook.revision)),
    row("Updated", when(hook.updated_at)),
    hook.previous_secret_until
      ? row("Previous secret signs until", when(hook.previous_secret_until))
      : null,
  );
}

function buttons(hook, act) {
  const button = (label, name, kind) =>
    h("button", { type: "button", class: kind || "", onclick: () => act(name) }, label);
  const test = button("Send test", "test");
  if (hook.source !== "api")
    return [
      test,
      h("p", { class: "hint" }, "Configured in YAML: change it in the configuration file."),
    ];
  return [
    h("a", { class: "button", href: `#/webhooks/${encodeURIComponent(hook.id)}/edit` }, "Edit"),
    button(hook.active ? "Pause" : "Resume", "toggle"),
    test,
    button("Rotate secret", "rotate"),
    button("Delete", "remove", "danger"),
  ];
}

const ACTIONS = {
  async toggle({ path, hook, outcome, reload }) {
    const active = !hook.active;
    await call("PATCH", path, { body: { active }, headers: { "If-Match": hook.etag } });
    outcome.replaceChildren(
      h(
        "p",
        {},
        active
          ? "Resumed: deliveries start again."
          : "Paused: no delivery is attempted until it is resumed.",
      ),
    );
    await reload();
  },
  async test({ path, outcome, reload }) {
    outcome.replaceChildren(h("p", { "aria-busy": "true" }, "Sending a webhook.test event…"));
    const { data } = await call("POST", `${path}/test`);
    const code = data.status_code === null ? "no answer" : `HTTP ${data.status_code}`;
    outcome.replaceChildren(
      h(
        "p",
        { class: `test-result test-${data.status}` },
        badge(data.status),
        ` Test: ${data.message} (${code}, ${data.duration_ms} ms)`,
      ),
    );
    await reload();
  },
  async rotate({ path, hook, outcome, reload }) {
    const sure = await modal(
      "Rotate the secret?",
      h(
        "p",
        {},
        "A new secret signs from now on; the current one keeps signing beside it for the grace period.",
      ),
      [
        ["Rotate", "rotate", "primary"],
        ["Cancel", "cancel"],
      ],
    );
    if (sure !== "rotate") return;
    const { data } = await call("POST", `${path}/secret/rotate`, {
      headers: { "If-Match": hook.etag },
    });
    outcome.replaceChildren(h("p", {}, "Secret rotated."));
    await showSecretOnce(data.secret);
    await reload();
  },
  async remove({ path, hook, go }) {
    const sure = await modal(
      `Delete ${hook.id}?`,
      h("p", {}, "Deliveries to it stop at once. This cannot be undone."),
      [
        ["Delete", "delete", "danger"],
        ["Cancel", "cancel"],
      ],
    );
    if (sure !== "delete") return;
    await call("DELETE", path, { headers: { "If-Match": hook.etag } });
    announce(`Webhook ${hook.id} deleted`);
    go("#/webhooks");
  },
};

/** The new secret in a dialog, once: it is not kept anywhere once the dialog closes. */
export async function showSecretOnce(secret) {
  if (!secret) return;
  const value = h("input", { id: "new-secret", type: "text", readonly: true, class: "secret" });
  value.value = secret; // a property, not an attribute: never in the page's markup
  const copy = h(
    "button",
    { type: "button", onclick: () => navigator.clipboard?.writeText(value.value) },
    "Copy",
  );
  await modal(
    "Copy the secret now",
    h(
      "div",
      {},
      h("p", {}, "It is shown only this once."),
      h("label", { for: "new-secret" }, "New secret"),
      h("div", { class: "inline" }, value, copy),
    ),
    [["Done", "done", "primary"]],
  );
  value.value = "";
}

function attemptTable(attempts) {
  if (!attempts.length) return empty("No attempt in the last 24 hours.");
  return table(
    "Recent attempts",
    ["When", "Event", "Job", "Attempt", "Status code", "Duration", "Outcome", "Message"],
    [...attempts]
      .reverse()
      .map((a) => [
        when(a.at),
        a.event,
        a.job_id
          ? h("a", { href: `#/deliveries?job_id=${encodeURIComponent(a.job_id)}` }, a.job_id)
          : "—",
        String(a.attempt),
        a.status_code === null || a.status_code === undefined ? "—" : String(a.status_code),
        `${a.duration_ms} ms`,
        badge(a.outcome === "success" ? "success" : "error"),
        h("span", { class: "message" }, a.message),
      ]),
  );
}

/** One bar per bucket, its height the share of attempts that succeeded (grey: none). */
function ratioChart(history) {
  const buckets = history.buckets;
  const tried = buckets.reduce((sum, b) => sum + b.attempts, 0);
  if (!tried) return empty(`No attempt in the last ${span(history.within_s)}.`);
  const ok = buckets.reduce((sum, b) => sum + b.succeeded, 0);
  const label = `${percent(ok / tried)} of ${plural(tried, "attempt")} in the last ${span(history.within_s)} succeeded, in bars of ${span(history.bucket_s)}`;
  const bar = 4;
  return h(
    "figure",
    { class: "ratio" },
    svg(
      "svg",
      {
        viewBox: `0 0 ${buckets.length * bar} 60`,
        role: "img",
        "aria-label": label,
        preserveAspectRatio: "none",
      },
      buckets.map((b, i) => {
        const share = b.attempts ? b.succeeded / b.attempts : 0;
        const height = b.attempts ? Math.max(2, share * 58) : 2;
        const kind = !b.attempts ? "none" : share === 1 ? "good" : "mixed";
        return svg("rect", {
          x: i * bar + 0.5,
          width: bar - 1,
          y: 60 - height,
          height,
          class: kind,
        });
      }),
    ),
    h("figcaption", {}, label, ", from ", when(buckets[0].start), " to now."),
  );
}

function span(seconds) {
  if (seconds >= 3600) return `${seconds / 3600} h`;
  if (seconds >= 60) return `${seconds / 60} min`;
  return `${seconds} s`;
}
