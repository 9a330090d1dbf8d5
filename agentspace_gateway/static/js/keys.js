// Before the first message: whether chat has a provider key, read from /health, and if not
// the step that gives it one. The gateway words that step (first_run.py), so the page says
// exactly what the error, the terminal client and serve's log say.

import { h } from "./dom.js";

export class KeyNotice {
  constructor(node) {
    this.node = node;
  }

  async refresh() {
    let health;
    try {
      const response = await fetch("/health", { cache: "no-store" });
      if (!response.ok) return;
      health = await response.json();
    } catch {
      return; // an unreachable gateway is already shown by the connection status
    }
    const hint = health.keyHint || null;
    this.node.dataset.state = hint ? "missing" : "ready";
    this.node.dataset.providers = Object.keys(health.providerKeys || {}).join(" ");
    this.node.hidden = !hint;
    this.node.replaceChildren(
      ...(hint ? [h("strong", { text: "Before you chat: " }), h("span", { text: hint })] : []),
    );
  }
}
