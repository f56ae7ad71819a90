// Building the page without ever parsing markup: every text from the API (payloads, job ids,
// receivers' messages) becomes a text node, never HTML.

/** An element: `attrs` are attributes (`on<event>` ones are listeners), children are nodes
 *  or texts (null and false are skipped). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return append(element, children);
}

/** Replace `element`'s content only when `data` changed, so polling keeps focus and
 *  scroll where they are. */
const shown = new WeakMap();

export function refresh(element, data, build) {
  const key = JSON.stringify(data);
  if (shown.get(element) === key) return;
  shown.set(element, key);
  element.replaceChildren(...[build(data)].flat().filter(Boolean));
}

/** A time in the browser's zone, machine-readable in `datetime`. */
export function when(iso) {
  if (!iso) return h("span", {}, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, String(iso));
  const shown = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  return h("time", { datetime: iso }, shown);
}

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)} %`;
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, status);
}

/** A table that scrolls sideways on its own when it must; rows are arrays of cells, and
 *  each cell is labelled with its column for the card layout of narrow screens. */
export function table(caption, columns, rows) {
  const head = h(
    "tr",
    {},
    columns.map((name) => h("th", { scope: "col" }, name)),
  );
  const body = rows.map((cells) =>
    h(
      "tr",
      {},
      cells.map((cell, i) => h("td", { "data-label": columns[i] }, cell)),
    ),
  );
  const label = h("caption", { class: "visually-hidden" }, caption);
  return h(
    "div",
    { class: "table", role: "region", "aria-label": caption, tabindex: "0" },
    h("table", {}, label, h("thead", {}, head), h("tbody", {}, body)),
  );
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", "aria-busy": "true" }, text);
}

export function failure(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

export function field(label, control, hint) {
  const id = control.id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  );
}

/** Show `message` at the field of `control` (null clears it). */
export function fieldError(control, message) {
  const slot = document.getElementById(`${control.id}-error`);
  if (!slot) return;
  slot.textContent = message || "";
  slot.hidden = !message;
  const hint = document.getElementById(`${control.id}-hint`);
  const described = [hint ? hint.id : null, message ? slot.id : null].filter(Boolean).join(" ");
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
  if (described) control.setAttribute("aria-describedby", described);
  else control.removeAttribute("aria-describedby");
}

export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A modal dialog; resolves with the value of the button that closed it. The focus starts
 *  on `cancel` when there is one, so Enter never confirms a deletion by accident. */
export function modal(title, body, buttons) {
  return new Promise((resolve) => {
    const heading = h("h2", { id: "dialog-title" }, title);
    const actions = buttons.map(([label, value, kind]) =>
      h(
        "button",
        { type: "submit", value, class: kind || "", autofocus: value === "cancel" },
        label,
      ),
    );
    const form = h(
      "form",
      { method: "dialog" },
      heading,
      body,
      h("div", { class: "actions" }, actions),
    );
    const dialog = h("dialog", { "aria-labelledby": "dialog-title" }, form);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function pretty(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}
