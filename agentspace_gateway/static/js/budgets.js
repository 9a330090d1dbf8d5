// Budgets: each budget's limit, the spend of its period, what running requests hold reserved,
// what remains and when it resets (budget.status), and budget.alert events as they come: the
// page watches from the moment it connects, so an alert is seen whichever tab is open.

import { errorBox } from "./alerts.js";
import { byId, h } from "./dom.js";
import { dateTime, nanoUsd } from "./format.js";

const HEADINGS = [
  ["budget", "global, a client key, a session or an agent id; under it the period (day or " +
    "month, calendar, in the gateway's [budgets] time_zone, or total) and when it resets, in " +
    "your local time"],
  ["limit", "the most the period may spend"],
  ["spent", "the priced cost of the period's usage so far"],
  ["reserved", "the worst-case cost held for requests still running"],
  ["remaining", "limit − spent − reserved"],
];
// The newest alerts only: the audit log and the gateway's log keep all of them.
const ALERTS_KEPT = 20;

export class BudgetsPanel {
  constructor(gateway) {
    this.gateway = gateway;
    this.body = byId("budgets-body");
    this.alertList = byId("budget-alerts");
    this.tab = byId("tab-budgets");
    byId("budgets-refresh").addEventListener("click", () => this.show());
    gateway.addEventListener("budget.alert", (event) => this.alert(event.detail));
  }

  /** After each (re)connect: a new connection watches anew. */
  async watch() {
    await this.show({ watch: true });
  }

  async show(options = {}) {
    const asked = {};
    this.asked = asked;
    let result;
    try {
      result = await this.gateway.request({ type: "budget.status", ...options });
    } catch (error) {
      if (this.asked === asked) this.body.replaceChildren(errorBox(error));
      return;
    }
    if (this.asked !== asked) return; // a newer answer is on its way
    this.body.replaceChildren(budgetTable(result.budgets));
    this.body.dataset.watching = String(result.watching);
    // Seen: the tab's mark for unread alerts goes once the panel is open.
    if (!byId("budgets-panel").hidden) delete this.tab.dataset.alerts;
  }

  alert(frame) {
    const item = h(
      "li",
      {
        class: `budget-alert${frame.thresholdPercent >= 100 ? " exhausted" : ""}`,
        dataset: {
          scope: frame.scope,
          scopeId: frame.scopeId,
          period: frame.period,
          threshold: frame.thresholdPercent,
        },
      },
      h("strong", { text: `${frame.thresholdPercent}%` }),
      ` of ${label(frame)} (${frame.period}): `,
      h("span", {
        class: "figures",
        text:
          `${nanoUsd(frame.spentNanos)} spent + ${nanoUsd(frame.reservedNanos)} reserved ` +
          `of ${nanoUsd(frame.limitNanos)}`,
      }),
      frame.resetsAt ? `, resets ${dateTime(frame.resetsAt)}` : "",
    );
    this.alertList.prepend(item);
    this.alertList.hidden = false;
    while (this.alertList.children.length > ALERTS_KEPT) this.alertList.lastElementChild.remove();
    this.tab.dataset.alerts = String(this.alertList.children.length);
    if (this.gateway.connected) this.show();
  }
}

function label(budget) {
  if (budget.scope === "global") return "global";
  if (budget.scope === "client") return `client:${budget.client ?? `#${budget.scopeId}`}`;
  return `${budget.scope}:${budget.scopeId}`;
}

// The panel is narrow: the day and time, with the full moment in the cell's title.
function shortTime(iso) {
  return new Date(iso).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function budgetTable(budgets) {
  if (budgets.length === 0) {
    return h("p", { class: "note", text:
      "No budgets. Set one with: agentspace-gateway budgets set global 5 --period day" });
  }
  const rows = budgets.map((budget) =>
    h(
      "tr",
      { dataset: { scope: budget.scope, scopeId: budget.scopeId, period: budget.period } },
      h("th", { scope: "row", class: "budget",
        title: budget.clipMaxTokens ? "max_tokens is lowered to fit" : "what does not fit is refused" },
        h("span", { class: "name", text: label(budget) }),
        h("span", { class: "when" },
          h("span", { class: "period", text: budget.period }),
          ", ",
          h("span", { class: "resets", title: budget.resetsAt ? dateTime(budget.resetsAt) : "",
            text: budget.resetsAt ? `resets ${shortTime(budget.resetsAt)}` : "never resets" }))),
      ...["limit", "spent", "reserved", "remaining"].map((name) => {
        const nanos = budget[`${name}Nanos`];
        return h("td", { class: name, dataset: { nanos }, text: nanoUsd(nanos) });
      }),
    ),
  );
  return h(
    "div",
    { class: "usage-table budgets-table" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...HEADINGS.map(([text, title]) =>
        h("th", { scope: "col", text, title })))),
      h("tbody", {}, ...rows),
    ),
  );
}
