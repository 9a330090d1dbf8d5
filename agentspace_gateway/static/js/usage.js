// Usage: tokens, requests and cost per model (or per client, agent or session: usage.query's
// groupBy) with the grand total, and cost per day over the last two weeks, one usage.query
// per day (the protocol's since/until, in local days).

import { errorBox } from "./alerts.js";
import { byId, h, svg } from "./dom.js";
import { count, nanoText, nanoUsd, sumNanos } from "./format.js";

const DAYS = 14;
const FIRST_HEADING = {
  model: "the model each request used",
  client: "the client key the requests were made with; (websocket): this gateway's own chat",
  agent: "the client and the caller's agent (Claude Code's x-claude-code-agent-id)",
  session: "the session the requests were made in",
};
// A request over the WebSocket gateway has no client key, one without an agent header no agent.
const NO_CLIENT = "(websocket)";
const NO_AGENT = "(none)";
const HEADINGS = [
  ["req", "requests that reported usage, cancelled and failed ones included"],
  ["in", "input tokens"],
  ["out", "output tokens"],
  ["cache w/r", "input tokens written to / read from the prompt cache"],
  ["tokens", "every token billed"],
  ["cost", "USD"],
];
const CHART = { width: 420, height: 170, left: 72, right: 8, top: 12, bottom: 24 };

export class UsagePanel {
  constructor(gateway) {
    this.gateway = gateway;
    this.body = byId("usage-body");
    this.scope = byId("usage-scope");
    this.by = byId("usage-by");
    this.sessionId = null;
    this.scope.addEventListener("change", () => this.show(this.sessionId));
    this.by.addEventListener("change", () => this.show(this.sessionId));
    byId("usage-refresh").addEventListener("click", () => this.show(this.sessionId));
  }

  async show(sessionId) {
    this.sessionId = sessionId;
    const filter = {};
    if (this.scope.value === "session") {
      if (!sessionId) {
        this.body.replaceChildren(h("p", { class: "note", text: "Pick a session to see its usage." }));
        return;
      }
      filter.sessionId = sessionId;
    }
    const days = lastDays(DAYS);
    const by = this.by.value;
    // Left out for model, so the question is the one every gateway answers.
    const grouping = by === "model" ? {} : { groupBy: by };
    const asked = JSON.stringify({ ...filter, ...grouping });
    this.asked = asked;
    let report;
    let daily;
    try {
      [report, ...daily] = await Promise.all([
        this.gateway.request({ type: "usage.query", ...filter, ...grouping }),
        ...days.map((day) =>
          this.gateway.request({ type: "usage.query", ...filter, since: day.since, until: day.until })),
      ]);
    } catch (error) {
      if (this.asked === asked) this.body.replaceChildren(errorBox(error));
      return;
    }
    if (this.asked !== asked) return; // a newer question is on its way
    this.body.replaceChildren(
      usageTable(report, by),
      chart(days.map((day, index) => ({ ...day, total: daily[index].grandTotal }))),
    );
  }
}

function lastDays(n) {
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const days = [];
  for (let back = n - 1; back >= 0; back -= 1) {
    const start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - back);
    const end = new Date(start.getFullYear(), start.getMonth(), start.getDate() + 1);
    days.push({ start, since: start.toISOString(), until: end.toISOString() });
  }
  return days;
}

function usageTable(report, by) {
  const models = Object.entries(report.perModel);
  if (models.length === 0) {
    return h("p", { class: "note", text: "No usage recorded yet." });
  }
  const unpriced = models.some(([, usage]) => !usage.priced);
  const lines = report.groups
    ? report.groups.map((group) => ({
        name: groupName(by, group),
        dataset: { group: group.key ?? "", client: group.client ?? "" },
        usage: group,
      }))
    : models.map(([model, usage]) => ({ name: model, dataset: { model }, usage }));
  const rows = lines.map(({ name, dataset, usage }) =>
    h(
      "tr",
      { dataset },
      h("th", { scope: "row", class: "model", text: name }),
      ...[
        ["requests", count(usage.requestCount)],
        ["input", count(usage.inputTokens)],
        ["output", count(usage.outputTokens)],
        ["cache", `${count(usage.cacheCreationInputTokens)} / ${count(usage.cacheReadInputTokens)}`],
        ["tokens", count(usage.totalTokens)],
        ["cost", usage.priced ? nanoUsd(usage.totalCostNanos) : `${nanoUsd(usage.totalCostNanos)} *`],
      ].map(([name, text]) => h("td", { class: name, text })),
    ),
  );
  const headings = [[report.groups ? by : "model", FIRST_HEADING[by] ?? FIRST_HEADING.model], ...HEADINGS];
  const total = report.grandTotal;
  return h(
    "div",
    { class: "usage-table" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...headings.map(([text, title]) =>
        h("th", { scope: "col", text, title })))),
      h("tbody", {}, ...rows),
      h(
        "tfoot",
        {},
        h(
          "tr",
          { class: "grand-total" },
          h("th", { scope: "row", text: "total" }),
          h("td", { class: "requests", text: count(total.requestCount) }),
          h("td", { colspan: 3 }),
          h("td", { class: "tokens", text: count(total.totalTokens) }),
          h("td", { class: "cost", dataset: { nanos: total.totalCostNanos },
            text: unpriced ? `≥ ${nanoUsd(total.totalCostNanos)}` : nanoUsd(total.totalCostNanos) }),
        ),
      ),
    ),
    unpriced
      ? h("p", { class: "note", text:
          "* Some requests had no known price and count as $0: add the model under [pricing] in config.toml." })
      : null,
  );
}

function groupName(by, group) {
  if (by === "agent") return `${group.client ?? NO_CLIENT}/${group.key ?? NO_AGENT}`;
  if (by === "client") return group.key ?? NO_CLIENT;
  return group.label ?? group.key ?? NO_AGENT;
}

function chart(days) {
  const { width, height, left, right, top, bottom } = CHART;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  // Bar heights only are floats; every figure shown is summed and written from the integers.
  const highest = Math.max(...days.map((day) => day.total.totalCostNanos));
  const slot = plotWidth / days.length;
  const label = (day) => day.start.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
  const bars = days.map((day, index) => {
    const nanos = day.total.totalCostNanos;
    const barHeight = highest > 0 ? (nanos / highest) * plotHeight : 0;
    const x = left + index * slot + slot * 0.15;
    return svg(
      "g",
      { class: "day", dataset: { day: day.since, cost: nanoText(nanos), nanos, requests: day.total.requestCount } },
      svg("rect", { x, y: top + plotHeight - barHeight, width: slot * 0.7, height: barHeight },
        svg("title", { text: `${label(day)}: ${nanoUsd(nanos)}, ${count(day.total.requestCount)} requests` })),
      index % 2 === (days.length - 1) % 2
        ? svg("text", { x: x + slot * 0.35, y: height - 8, "text-anchor": "middle", text: String(day.start.getDate()) })
        : null,
    );
  });
  const total = sumNanos(days.map((day) => day.total.totalCostNanos));
  return h(
    "figure",
    { class: "chart" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Cost per day over the last ${days.length} days` },
      svg("line", { class: "axis", x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight }),
      highest > 0 ? svg("line", { class: "grid", x1: left, x2: width - right, y1: top, y2: top }) : null,
      highest > 0
        ? svg("text", { class: "scale", x: left - 6, y: top + 4, "text-anchor": "end", text: nanoUsd(highest) })
        : null,
      svg("text", { class: "scale", x: left - 6, y: top + plotHeight, "text-anchor": "end", text: "$0" }),
      ...bars,
    ),
    h("figcaption", { dataset: { nanos: total.toString() },
      text: `Cost per day, last ${days.length} days (local time): ${nanoUsd(total)} in all.` }),
  );
}
