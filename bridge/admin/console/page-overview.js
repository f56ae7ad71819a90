// Overview: this replica's delivery rate, success ratio, backlog and dead letters, live, and
// what is in trouble (endpoints the bridge holds back, webhooks whose last attempt failed).
import { ApiError, get } from "./api.js";
import { age, empty, failure, h, loading, percent, refresh, svg, table } from "./dom.js";

const POLL_MS = 2000;
const HISTORY = 60;

export async function render({ main, every, title }) {
  title("Overview");
  const tiles = h("div", { class: "tiles-slot" }, loading());
  const chart = h("div", { class: "chart-slot" });
  const endpoints = h("div", {}, loading());
  const failing = h("div", {}, loading());
  main.append(
    h("h1", {}, "Overview"),
    h("p", { class: "lead" }, "Updated every 2 seconds from the replica that serves this page."),
    tiles,
    chart,
    h(
      "section",
      { "aria-labelledby": "trouble" },
      h("h2", { id: "trouble" }, "Endpoints in trouble"),
      endpoints,
    ),
    h(
      "section",
      { "aria-labelledby": "failing" },
      h("h2", { id: "failing" }, "Webhooks failing"),
      failing,
    ),
  );
  const history = [];
  const update = async () => {
    await Promise.all([
      showStats(tiles, chart, history),
      showEndpoints(endpoints),
      showFailing(failing),
    ]);
  };
  await update();
  every(update, POLL_MS);
}

async function showStats(tiles, chart, history) {
  let stats;
  try {
    stats = await get("stats");
  } catch (error) {
    const text =
      error instanceof ApiError && error.status === 403 ? `Not available: ${error.message}.` : null;
    return refresh(tiles, { error: error.message }, () =>
      text ? h("p", { class: "empty" }, text) : failure(error),
    );
  }
  history.push(stats.deliveries_per_s);
  if (history.length > HISTORY) history.shift();
  refresh(tiles, { ...stats, at: null }, () => statTiles(stats));
  refresh(chart, history, () =>
    history.length > 1
      ? sparkline(history)
      : h(
          "p",
          { class: "hint" },
          "The chart of deliveries per second fills in as the page updates.",
        ),
  );
}

function statTiles(stats) {
  const tile = (label, value, note, href) =>
    h(
      "div",
      { class: "tile" },
      h("dt", {}, label),
      h("dd", {}, href ? h("a", { href }, value) : value),
      note ? h("dd", { class: "note" }, note) : null,
    );
  const window = `last ${Math.round(stats.window_s)} s`;
  return h(
    "dl",
    { class: "tiles" },
    tile("Deliveries / s", stats.deliveries_per_s.toFixed(2), window),
    tile(
      "Success ratio",
      percent(stats.success_ratio),
      stats.success_ratio === null ? "no attempt in the window" : `of attempts, ${window}`,
    ),
    tile("Lag", String(stats.lag), "events waiting in the consumers"),
    tile("Oldest pending event", age(stats.oldest_pending_s), "not yet acknowledged"),
    tile("Retries waiting", String(stats.retries_pending)),
    tile("In flight", String(stats.inflight), "HTTP attempts now"),
    tile(
      "Dead letters",
      String(stats.dead_letters),
      "stored, replayed ones included",
      "#/dead-letters",
    ),
  );
}

function sparkline(history) {
  const width = 300;
  const height = 60;
  const peak = Math.max(0, ...history);
  const top = Math.max(1, peak);
  const step = width / Math.max(1, history.length - 1);
  const points = history.map(
    (value, i) =>
      `${(i * step).toFixed(1)},${(height - (value / top) * (height - 4) - 2).toFixed(1)}`,
  );
  const latest = history.length ? history[history.length - 1].toFixed(2) : "0";
  const label = `Deliveries per second over the last ${history.length * 2} seconds: now ${latest}, peak ${peak.toFixed(2)}`;
  return h(
    "figure",
    { class: "sparkline" },
    svg(
      "svg",
      {
        viewBox: `0 0 ${width} ${height}`,
        role: "img",
        "aria-label": label,
        preserveAspectRatio: "none",
      },
      svg("polyline", { points: points.join(" "), fill: "none", class: "line" }),
    ),
    h("figcaption", {}, label),
  );
}

async function showEndpoints(slot) {
  let answer;
  try {
    answer = await get("endpoints");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return refresh(slot, "absent", () =>
        empty("Not available: this bridge does not report endpoint health (GET /endpoints)."),
      );
    }
    return refresh(slot, { error: error.message }, () => failure(error));
  }
  const trouble = (answer.endpoints || []).filter((endpoint) => endpoint.state !== "healthy");
  refresh(slot, trouble, () =>
    trouble.length
      ? table(
          "Endpoints in trouble",
          ["Endpoint", "State", "Since", "Deliveries held", "Concurrency limit"],
          trouble.map((e) => [
            e.endpoint,
            h("span", { class: "badge badge-error" }, e.state),
            since(e.since),
            String(e.held),
            String(e.concurrency_limit),
          ]),
        )
      : empty("Every endpoint is healthy."),
  );
}

function since(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h(
    "time",
    { datetime: iso },
    date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }),
  );
}

async function showFailing(slot) {
  let answer;
  try {
    answer = await get("webhooks");
  } catch (error) {
    return refresh(slot, { error: error.message }, () => failure(error));
  }
  const failing = answer.webhooks.filter((hook) => hook.status === "error");
  refresh(
    slot,
    failing.map((hook) => [hook.id, hook.message]),
    () =>
      failing.length
        ? h(
            "ul",
            { class: "plain" },
            failing.map((hook) =>
              h(
                "li",
                {},
                hook.source === "env"
                  ? hook.id
                  : h("a", { href: `#/webhooks/${encodeURIComponent(hook.id)}` }, hook.id),
                " — ",
                hook.message,
              ),
            ),
          )
        : empty("No webhook's last attempt failed."),
  );
}
