// Webhooks: every webhook with its status (pending / success / error) and the message of its
// last attempt, filtered as you type; admins create new ones here.
import { get } from "./api.js";
import { badge, empty, failure, h, loading, refresh, table } from "./dom.js";

const POLL_MS = 3000;

export async function render({ main, every, caller, params, title }) {
  title("Webhooks");
  const text = h("input", {
    id: "filter",
    type: "search",
    value: params.get("q") || "",
    autocomplete: "off",
  });
  const status = h(
    "select",
    { id: "status-filter" },
    ["any", "pending", "success", "error"].map((value) => h("option", { value }, value)),
  );
  const list = h("div", {}, loading());
  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter webhooks" },
    h("div", { class: "field" }, h("label", { for: "filter" }, "Filter"), text),
    h("div", { class: "field" }, h("label", { for: "status-filter" }, "Status"), status),
  );
  filters.addEventListener("submit", (event) => event.preventDefault());
  main.append(
    h(
      "div",
      { class: "heading" },
      h("h1", {}, "Webhooks"),
      caller.can_write
        ? h("a", { class: "button primary", href: "#/webhooks/new" }, "New webhook")
        : null,
    ),
    filters,
    list,
  );
  let hooks = null;
  const draw = () =>
    hooks &&
    refresh(list, [hooks, text.value, status.value], () => rows(hooks, text.value, status.value));
  text.addEventListener("input", draw);
  status.addEventListener("change", draw);
  const load = async () => {
    try {
      hooks = (await get("webhooks")).webhooks;
      draw();
    } catch (error) {
      refresh(list, { error: error.message }, () => failure(error));
    }
  };
  await load();
  every(load, POLL_MS);
}

function matches(hook, text, status) {
  if (status !== "any" && hook.status !== status) return false;
  const needle = text.trim().toLowerCase();
  const haystack = [
    hook.id,
    hook.url,
    hook.description,
    hook.message,
    hook.source,
    ...hook.events,
    ...hook.tenants,
  ];
  return !needle || haystack.some((value) => String(value).toLowerCase().includes(needle));
}

function rows(hooks, text, status) {
  if (!hooks.length)
    return empty("No webhook yet: none is configured, and none was created through the API.");
  const shown = hooks.filter((hook) => matches(hook, text, status));
  if (!shown.length) return empty("No webhook matches the filter.");
  return [
    h("p", { class: "count" }, `${shown.length} of ${hooks.length} webhooks`),
    table(
      "Webhooks",
      ["Webhook", "Status", "Last attempt", "URL", "Source", "Active"],
      shown.map((hook) => [
        hook.source === "env"
          ? hook.id
          : h("a", { href: `#/webhooks/${encodeURIComponent(hook.id)}` }, hook.id),
        badge(hook.status),
        h("span", { class: "message" }, hook.message),
        h("span", { class: "url" }, hook.url),
        hook.source,
        hook.active ? "yes" : h("span", { class: "paused" }, "paused"),
      ]),
    ),
  ];
}
