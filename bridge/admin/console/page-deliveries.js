// Deliveries: the delivery log of one job or one event, each delivery (an event to one
// endpoint) as a timeline of its attempts; without a search, the latest attempts.
import { get, query } from "./api.js";
import { badge, empty, failure, h, loading, plural, when } from "./dom.js";

export async function render({ main, params, go, title }) {
  title("Deliveries");
  const kind = params.has("event_id") ? "event_id" : "job_id";
  const value = params.get(kind) || "";
  const by = h(
    "select",
    { id: "search-by" },
    h("option", { value: "job_id", selected: kind === "job_id" }, "Job id"),
    h("option", { value: "event_id", selected: kind === "event_id" }, "Event id"),
  );
  const input = h("input", { id: "search", type: "search", value, autocomplete: "off" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Find deliveries" },
    h("div", { class: "field" }, h("label", { for: "search-by" }, "Search by"), by),
    h("div", { class: "field grow" }, h("label", { for: "search" }, "Id"), input),
    h("button", { type: "submit", class: "primary" }, "Find"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(`#/deliveries${query({ [by.value]: input.value.trim() })}`);
  });
  const results = h("div", {}, loading());
  main.append(h("h1", {}, "Deliveries"), form, results);
  try {
    const found = await get(`deliveries${query({ [kind]: value, limit: 500 })}`);
    results.replaceChildren(
      ...timeline(
        found.deliveries,
        value ? `${kind === "job_id" ? "job" : "event"} ${value}` : null,
      ),
    );
  } catch (error) {
    results.replaceChildren(failure(error));
  }
}

function timeline(entries, subject) {
  const heading = h("h2", {}, subject ? `Attempts of ${subject}` : "Latest attempts");
  if (!entries.length) {
    const text = subject
      ? `No attempt recorded for ${subject} (the delivery log keeps a week).`
      : "No attempt recorded yet.";
    return [heading, empty(text)];
  }
  const groups = new Map();
  for (const entry of entries) {
    if (!groups.has(entry.delivery_id)) groups.set(entry.delivery_id, []);
    groups.get(entry.delivery_id).push(entry);
  }
  const count = `${plural(entries.length, "attempt")} in ${plural(groups.size, "delivery", "deliveries")}`;
  return [
    heading,
    h("p", { class: "count" }, count),
    h("ul", { class: "deliveries" }, [...groups.values()].map(delivery)),
  ];
}

function delivery(attempts) {
  const first = attempts[0];
  const last = attempts[attempts.length - 1];
  const endpoint = first.endpoint.id || first.endpoint.url || "—";
  return h(
    "li",
    { class: "delivery" },
    h(
      "h3",
      {},
      h("span", {}, first.event),
      " → ",
      h("span", { class: "url" }, endpoint),
      " ",
      badge(
        last.result === "delivered" || last.result === "tested"
          ? "success"
          : last.result === "retry"
            ? "pending"
            : "error",
      ),
    ),
    h(
      "p",
      { class: "meta" },
      "job ",
      h("span", { class: "id" }, first.job_id || "—"),
      " · event ",
      h("span", { class: "id" }, first.event_id),
      " · delivery ",
      h("span", { class: "id" }, first.delivery_id),
    ),
    h("ol", { class: "timeline" }, attempts.map(step)),
  );
}

function step(entry) {
  const code =
    entry.status_code === null || entry.status_code === undefined
      ? "no status"
      : `HTTP ${entry.status_code}`;
  const next = {
    delivered: "delivered",
    tested: "test send",
    retry: entry.retry_at ? "retry at " : "retry",
    dead_letter: `dead letter (${entry.reason || "reason unknown"})`,
  }[entry.result];
  return h(
    "li",
    { class: `step step-${entry.outcome === "success" ? "ok" : "failed"}` },
    h("span", { class: "step-when" }, when(entry.at)),
    h(
      "span",
      {},
      ` attempt ${entry.attempt}: `,
      h("strong", {}, code),
      `, ${entry.duration_ms} ms`,
    ),
    entry.outcome === "success" ? null : h("span", { class: "message" }, ` ${entry.message}`),
    h(
      "span",
      { class: "next" },
      ` → ${next || entry.result}`,
      entry.result === "retry" && entry.retry_at ? when(entry.retry_at) : null,
    ),
  );
}
