// The context inspector: what the session's next request carries, one bar per section sized
// by its share of the estimated tokens, with bytes and cost; open a section to read it.

import { errorBox } from "./alerts.js";
import { byId, h } from "./dom.js";
import { bytes, count, nanoUsd, ratio } from "./format.js";

export class Inspector {
  constructor(gateway) {
    this.gateway = gateway;
    this.body = byId("context-body");
    this.sessionId = null;
    byId("context-refresh").addEventListener("click", () => this.show(this.sessionId));
    byId("context-exact").addEventListener("click", () => this.show(this.sessionId, true));
  }

  async show(sessionId, exact = false) {
    this.sessionId = sessionId;
    if (!sessionId) {
      const text = "Pick a session, or send a first message, to see what its next request carries.";
      this.body.replaceChildren(h("p", { class: "note", text }));
      return;
    }
    this.body.setAttribute("aria-busy", "true");
    let inspection;
    try {
      const message = { type: "context.inspect", sessionId };
      if (exact) message.exact = true;
      inspection = await this.gateway.request(message);
    } catch (error) {
      if (this.sessionId === sessionId) this.body.replaceChildren(errorBox(error));
      return;
    } finally {
      this.body.removeAttribute("aria-busy");
    }
    if (this.sessionId === sessionId) this.render(inspection);
  }

  render(inspection) {
    const { totals } = inspection;
    const rows = inspection.sections.map((section) => sectionRow(section, totals.tokenEstimate));
    this.body.replaceChildren(
      h("p", { class: "facts" }, "Next request to ", h("strong", { text: inspection.model }),
        ", estimated with tiktoken's cl100k_base."),
      h(
        "div",
        { class: "sections" },
        h("div", { class: "section-row head" },
          ...["section", "share", "tokens", "bytes", "cost"].map((text) =>
            h("span", { text }))),
        ...rows,
        h(
          "div",
          { class: "section-row totals", dataset: { section: "totals" } },
          h("span", { class: "name", text: "total" }),
          h("span"),
          h("span", { class: "tokens", text: count(totals.tokenEstimate) }),
          h("span", { class: "bytes", text: bytes(totals.byteCount) }),
          h("span", { class: "cost", text: nanoUsd(totals.costEstimateNanos) }),
        ),
      ),
      accuracy(inspection),
    );
  }
}

function sectionRow(section, totalTokens) {
  const fill = h("span", { class: "fill" });
  fill.style.width = `${totalTokens ? (100 * section.tokenEstimate) / totalTokens : 0}%`;
  const share = totalTokens ? Math.round((100 * section.tokenEstimate) / totalTokens) : 0;
  return h(
    "details",
    { class: "section", dataset: { section: section.name } },
    h(
      "summary",
      { class: "section-row" },
      h("span", { class: "name", text: section.name }),
      h("span", { class: "bar", title: `${share}% of the estimated tokens` }, fill),
      h("span", { class: "tokens", text: count(section.tokenEstimate) }),
      h("span", { class: "bytes", text: bytes(section.byteCount) }),
      h("span", { class: "cost", text: nanoUsd(section.costEstimateNanos) }),
    ),
    section.content
      ? h("pre", { class: "content", text: section.content })
      : h("p", { class: "note content", text: "(empty)" }),
  );
}

function accuracy(inspection) {
  const lines = [];
  if (inspection.estimateRatio !== undefined) {
    lines.push(h("li", { class: "ratio", dataset: { value: inspection.estimateRatio } },
      `Anthropic's counts ÷ these estimates, over this session's requests: ${ratio(inspection.estimateRatio)}`));
  } else {
    lines.push(h("li", { class: "ratio",
      text: "Estimate accuracy: known once this session has a reply from Anthropic." }));
  }
  const spread = inspection.estimateSpread;
  if (spread !== undefined) {
    lines.push(h("li", { class: "spread", dataset: { min: spread.minRatio, median: spread.medianRatio, max: spread.maxRatio } },
      `Per request (${count(spread.requestCount)}): ×${spread.minRatio.toFixed(2)} to ×${spread.maxRatio.toFixed(2)}, `
      + `median ×${spread.medianRatio.toFixed(2)}, 80% within ×${spread.p10Ratio.toFixed(2)} to ×${spread.p90Ratio.toFixed(2)}`));
  }
  const calibrated = inspection.calibrated;
  if (calibrated !== undefined) {
    const basis = calibrated.basis === "session"
      ? "this session's ratio" : "the model's ratio over every session";
    lines.push(h("li", { class: "calibrated", dataset: { basis: calibrated.basis, tokens: calibrated.tokenEstimate } },
      `Calibrated estimate (${basis}, ×${calibrated.ratio.toFixed(2)} over ${count(calibrated.requestCount)} requests): `
      + `${count(calibrated.tokenEstimate)} input tokens, ${nanoUsd(calibrated.costEstimateNanos)}. An estimate, not a count.`));
  }
  if (inspection.exactInputTokens !== undefined) {
    lines.push(h("li", { class: "exact", dataset: { value: inspection.exactInputTokens } },
      `Anthropic's exact count of this request: ${count(inspection.exactInputTokens)} input tokens`));
  }
  return h("ul", { class: "accuracy" }, ...lines);
}
