// Audit: who created, changed, deleted, rotated, tested or replayed what, and when.
import { get, query } from "./api.js";
import { empty, failure, h, loading, pretty, table, when } from "./dom.js";

export async function render({ main, params, go, title }) {
  title("Audit");
  const webhook = params.get("webhook") || "";
  const input = h("input", {
    id: "audit-webhook",
    type: "search",
    value: webhook,
    autocomplete: "off",
  });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the audit trail" },
    h("div", { class: "field grow" }, h("label", { for: "audit-webhook" }, "Webhook id"), input),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(`#/audit${query({ webhook: input.value.trim() })}`);
  });
  const results = h("div", {}, loading());
  main.append(h("h1", {}, "Audit"), form, results);
  try {
    const { audit } = await get(`audit${query({ webhook, limit: 200 })}`);
    results.replaceChildren(records(audit));
  } catch (error) {
    results.replaceChildren(failure(error));
  }
}

function records(audit) {
  if (!audit.length) return empty("No change, test or replay recorded.");
  return table(
    "Audit trail",
    ["When", "Who", "Action", "Webhook", "Change"],
    [...audit]
      .reverse()
      .map((r) => [
        when(r.at),
        r.actor,
        r.action,
        r.webhook_id
          ? h("a", { href: `#/webhooks/${encodeURIComponent(r.webhook_id)}` }, r.webhook_id)
          : "—",
        h("pre", { class: "change" }, pretty(r.change)),
      ]),
  );
}
