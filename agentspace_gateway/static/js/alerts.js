// Problems shown to the person: every gateway error and lost connection ends up here or
// beside the reply it belongs to, with the gateway's own words and what to try.

import { h } from "./dom.js";

/** "Anthropic is overloaded. Retrying may work (in 2 s)." style detail for an error frame. */
export function explain(error) {
  const frame = error.frame || {};
  const parts = [/[.!?:)]$/.test(error.message) ? error.message : `${error.message}.`];
  if (frame.retryable === true) {
    const wait = frame.retryAfterMs ? ` in ${Math.ceil(frame.retryAfterMs / 1000)} s` : "";
    parts.push(`Trying again${wait} may work.`);
  } else if (frame.retryable === false) {
    parts.push("Trying again as it is will fail the same way.");
  }
  if (Array.isArray(frame.details)) {
    for (const problem of frame.details) {
      const line = `${problem.field}: ${problem.message}`;
      if (!error.message.includes(line)) parts.push(line);
    }
  }
  return parts.join(" ");
}

export function errorBox(error, extraClass = "") {
  return h(
    "div",
    { class: `error-box ${extraClass}`.trim(), dataset: { code: error.code } },
    h("strong", { class: "code", text: error.code }),
    " ",
    h("span", { class: "error-text", text: explain(error) }),
  );
}

export class Alerts {
  constructor(container) {
    this.container = container;
  }

  show(error, { kind = "error" } = {}) {
    const item = h(
      "div",
      { class: `alert ${kind}`, dataset: { code: error.code } },
      h("strong", { class: "code", text: error.code }),
      h("span", { class: "error-text", text: explain(error) }),
      h("button", { type: "button", class: "dismiss", title: "Dismiss", text: "×",
        onclick: () => item.remove() }),
    );
    this.container.append(item);
    // Keep the list short: the newest problems matter, old ones are in the gateway's log.
    while (this.container.children.length > 5) this.container.firstElementChild.remove();
    return item;
  }

  clear() {
    this.container.replaceChildren();
  }
}
