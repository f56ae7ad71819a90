// Dead letters: filter by event, endpoint and age; inspect each one's payload and attempts;
// admins dry-run a replay, then replay and follow the replayed deliveries to their end.
import { call, get, query } from "./api.js";
import { announce, badge, empty, failure, h, loading, pretty, table, when } from "./dom.js";

const SINCE = [
  ["", "any time"],
  ["15m", "15 minutes"],
  ["1h", "hour"],
  ["24h", "24 hours"],
  ["168h", "7 days"],
];
const TRACKED = 20;
const TRACK_MS = 2000;
const TRACK_FOR_MS = 120000;

export async function render({ main, params, caller, go, every, title }) {
  title("Dead letters");
  const wanted = {
    event: params.get("event") || "",
    endpoint: params.get("endpoint") || "",
    since: params.get("since") || "",
    all: params.get("all") === "true",
  };
  const replay = h("section", { "aria-labelledby": "replay" });
  const results = h("div", {}, loading());
  const heading = h("h1", {}, "Dead letters");
  main.append(heading, filters(wanted, go), caller.can_write ? replay : null, results);
  let letters = [];
  try {
    const found = await get(
      "dlq" + query({ ...wanted, all: wanted.all ? "true" : "", limit: 200 }),
    );
    letters = found.dead_letters;
    results.replaceChildren(...list(found));
  } catch (error) {
    results.replaceChildren(failure(error));
  }
  if (caller.can_write) replayControls(replay, wanted, () => letters, every);
}

/** The filter form; submitting it opens the page again with the filter in its address. */
function filters(wanted, go) {
  const input = (id, value) => h("input", { id, type: "search", value, autocomplete: "off" });
  const controls = {
    event: input("dl-event", wanted.event),
    endpoint: input("dl-endpoint", wanted.endpoint),
    since: h(
      "select",
      { id: "dl-since" },
      SINCE.map(([value, label]) =>
        h("option", { value, selected: value === wanted.since }, label),
      ),
    ),
    all: h("input", { id: "dl-all", type: "checkbox", checked: wanted.all }),
  };
  const labelled = (control, label) =>
    h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter dead letters" },
    labelled(controls.event, "Event"),
    labelled(controls.endpoint, "Endpoint (webhook id, URL or host)"),
    labelled(controls.since, "Newer than"),
    h(
      "div",
      { class: "field check" },
      controls.all,
      h("label", { for: "dl-all" }, "Include replayed"),
    ),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {
      event: controls.event.value.trim(),
      endpoint: controls.endpoint.value.trim(),
      since: controls.since.value,
      all: controls.all.checked ? "true" : "",
    };
    go(`#/dead-letters${query(chosen)}`);
  });
  return form;
}

function list(found) {
  if (!found.count) return [empty("No dead letter matches.")];
  const shown = found.dead_letters.length;
  const count =
    shown < found.count
      ? `${found.count} dead letters match; the latest ${shown} are shown.`
      : found.count === 1
        ? "1 dead letter matches."
        : `${found.count} dead letters match.`;
  return [
    h("p", { class: "count" }, count),
    h("ul", { class: "letters" }, [...found.dead_letters].reverse().map(letter)),
  ];
}

function letter(d) {
  const endpoint = d.endpoint.id || d.endpoint.url || "—";
  return h(
    "li",
    {},
    h(
      "details",
      { class: "letter" },
      h(
        "summary",
        {},
        when(d.dead_lettered_at),
        " ",
        h("strong", {}, d.event || "invalid event"),
        " → ",
        h("span", { class: "url" }, endpoint),
        " · ",
        d.reason,
        d.replayed_at ? h("span", { class: "badge badge-pending" }, "replayed") : null,
      ),
      h(
        "dl",
        { class: "fields" },
        [
          ["Job", d.job_id],
          ["Event id", d.event_id],
          ["Delivery id", d.delivery_id],
          ["Tenant", d.tenant_id],
          ["Endpoint URL", d.endpoint.url],
          ["Reason", d.reason],
          ["Error", d.error],
          ["Replayed", d.replayed_at],
        ].map(([name, value]) => [h("dt", {}, name), h("dd", { class: "id" }, value || "—")]),
      ),
      h("h3", {}, "Attempts"),
      d.attempts.length
        ? table(
            `Attempts of ${d.delivery_id}`,
            ["#", "When", "Status code", "Duration", "Error"],
            d.attempts.map((a) => [
              String(a.attempt),
              when(a.at),
              a.status_code === null ? "—" : String(a.status_code),
              a.duration_ms === null || a.duration_ms === undefined ? "—" : `${a.duration_ms} ms`,
              h("span", { class: "message" }, a.error || ""),
            ]),
          )
        : empty("No attempt was made."),
      h("h3", {}, d.raw != null ? `Raw bytes (${d.raw_encoding || "utf-8"})` : "Payload"),
      h(
        "pre",
        { class: "payload", tabindex: "0", "aria-label": `Payload of ${d.delivery_id}` },
        pretty(d.raw != null ? d.raw : (d.payload ?? "(left out: too large to keep)")),
      ),
    ),
  );
}

function replayControls(section, wanted, letters, every) {
  const filter = {
    event: wanted.event || null,
    endpoint: wanted.endpoint || null,
    since: wanted.since || null,
    all: wanted.all,
  };
  const status = h("div", { role: "status" });
  const replayButton = h("button", { type: "button", class: "primary", disabled: true }, "Replay");
  const dry = h("button", { type: "button" }, "Dry run");
  let planned = 0;
  dry.addEventListener("click", async () => {
    try {
      const { data } = await call("POST", "dlq/replay", { body: { ...filter, dry_run: true } });
      planned = data.replayed;
      status.replaceChildren(
        h(
          "p",
          {},
          `Dry run: ${data.replayed} would be replayed, ${data.skipped} skipped (nothing to deliver them to). Nothing was changed.`,
        ),
      );
      replayButton.disabled = planned === 0;
      replayButton.textContent = `Replay ${planned}`;
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  });
  replayButton.addEventListener("click", async () => {
    replayButton.disabled = true;
    status.replaceChildren(h("p", { "aria-busy": "true" }, `Replaying ${planned}…`));
    try {
      const started = Date.now();
      const { data } = await call("POST", "dlq/replay", { body: filter });
      announce(`${data.replayed} dead letters replayed`);
      follow(status, data, letters(), started, every);
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  });
  section.append(
    h("h2", { id: "replay" }, "Replay"),
    h(
      "p",
      { class: "hint" },
      "Replays the dead letters this filter matches with a fresh retry budget. Run a dry run first.",
    ),
    h("div", { class: "actions" }, dry, replayButton),
    status,
  );
}

/** Follows replayed deliveries in the delivery log until each ends (delivered or dead
 *  letter again); only those listed on this page (at most TRACKED) can be followed. */
function follow(status, result, letters, started, every) {
  const events = new Map();
  for (const d of letters)
    if (result.delivery_ids.includes(d.delivery_id)) events.set(d.delivery_id, d.event_id);
  const tracked = [...events.entries()].slice(0, TRACKED);
  const ended = new Map();
  const bar = h("progress", {
    max: String(Math.max(1, tracked.length)),
    value: "0",
    "aria-label": "Replayed deliveries that ended",
  });
  const text = h("p", {});
  status.replaceChildren(
    h("p", {}, `Replayed ${result.replayed}, skipped ${result.skipped}.`),
    bar,
    text,
  );
  const draw = () => {
    const delivered = [...ended.values()].filter((r) => r === "delivered").length;
    bar.value = ended.size;
    text.replaceChildren(
      badge(ended.size === tracked.length ? "success" : "pending"),
      ` ${delivered} delivered, ${ended.size - delivered} dead-lettered again, ${tracked.length - ended.size} under way` +
        (result.replayed > tracked.length
          ? ` (following ${tracked.length} of ${result.replayed})`
          : ""),
    );
  };
  draw();
  const check = async () => {
    if (ended.size === tracked.length || Date.now() - started > TRACK_FOR_MS) return;
    await Promise.all(
      tracked
        .filter(([id]) => !ended.has(id))
        .map(([id, eventId]) =>
          ending(id, eventId, started).then((end) => end && ended.set(id, end)),
        ),
    );
    draw();
  };
  every(check, TRACK_MS);
}

async function ending(deliveryId, eventId, started) {
  const { deliveries } = await get(`deliveries${query({ event_id: eventId, limit: 50 })}`);
  const mine = deliveries.filter(
    (e) => e.delivery_id.startsWith(deliveryId) && new Date(e.at).getTime() >= started - 1000,
  );
  const last = mine[mine.length - 1];
  return last && (last.result === "delivered" || last.result === "dead_letter")
    ? last.result
    : null;
}
