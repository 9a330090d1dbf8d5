// Sessions and the conversation: the list to switch between, the messages of the open one,
// replies streaming in delta by delta, the stop button, and usage and cost under each reply.

import { errorBox } from "./alerts.js";
import { byId, h } from "./dom.js";
import { count, dateTime, nanoText, nanoUsd, shortId } from "./format.js";
import { GatewayError } from "./gateway.js";

const HISTORY_LIMIT = 200;
// Sessions are listed a page at a time: the whole list of 10,000 is 1.7 MB and holds the
// gateway's event loop 90-200 ms. A refresh asks for as many as are shown, up to the
// gateway's largest page (SESSION_PAGE_MAX in protocol/messages.py).
const SESSION_PAGE = 100;
const SESSION_PAGE_MAX = 1000;
// How long after its stream ends a cancel's NO_ACTIVE_STREAM (it crossed the end) may arrive.
const LATE_CANCEL_MS = 5000;
// chat.send refused these before storing anything, so the text goes back into the box.
const NOT_STORED = new Set(["INVALID_MESSAGE", "SESSION_NOT_FOUND", "STREAM_IN_PROGRESS"]);

export class ChatView extends EventTarget {
  constructor(gateway, alerts) {
    super();
    this.gateway = gateway;
    this.alerts = alerts;
    this.sessionId = null;
    this.sessions = [];
    // Where the next page of sessions starts (session.list's nextAfter); null: none follow.
    this.nextAfter = null;
    // Bumped by each refresh, so an answer that a later refresh overtook is not shown.
    this.listing = 0;
    this.stream = null;
    this.list = byId("session-list");
    // Made once: each render puts it at the end of the list while more sessions follow, and
    // it stays disabled through every render until its page has come.
    this.moreButton = h("button", {
      type: "button",
      id: "more-sessions",
      class: "more-sessions",
      onclick: () => this.moreSessions(),
    });
    this.moreItem = h("li", { class: "more" }, this.moreButton);
    this.messages = byId("messages");
    this.title = byId("chat-title");
    this.prompt = byId("prompt");
    this.model = byId("model");
    this.sendButton = byId("send");
    this.stopButton = byId("stop");
    byId("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.stopButton.addEventListener("click", () => this.stop());
    byId("new-session").addEventListener("click", () => this.startNew());
    gateway.addEventListener("session.created", (event) => this.adopt(event.detail.sessionId));
    this.startNew();
  }

  async refreshSessions() {
    if (!this.gateway.connected) return; // the lost connection is reported once, elsewhere
    // As many as are shown, so a refresh after a reply keeps the pages loaded with "More".
    const limit = Math.min(Math.max(SESSION_PAGE, this.sessions.length), SESSION_PAGE_MAX);
    const listing = ++this.listing;
    try {
      const reply = await this.gateway.request({ type: "session.list", limit });
      if (listing !== this.listing) return;
      this.sessions = reply.sessions;
      this.nextAfter = reply.nextAfter ?? null;
      this.renderSessions();
    } catch (error) {
      this.alerts.show(error);
    }
  }

  /** The next page, appended. Activity moves sessions to the front between pages, so one
   * already shown can come again: it is kept once, in its first place. */
  async moreSessions() {
    if (this.nextAfter === null || this.moreButton.disabled) return;
    const listing = this.listing;
    const hadFocus = document.activeElement === this.moreButton;
    this.moreButton.disabled = true;
    this.moreButton.textContent = "Loading…";
    let added = [];
    try {
      const reply = await this.gateway.request({
        type: "session.list",
        limit: SESSION_PAGE,
        after: this.nextAfter,
      });
      // A refresh meanwhile replaced the list; this page may not follow on from it.
      if (listing !== this.listing) return;
      const shown = new Set(this.sessions.map((session) => session.sessionId));
      added = reply.sessions.filter((session) => !shown.has(session.sessionId));
      this.sessions = this.sessions.concat(added);
      this.nextAfter = reply.nextAfter ?? null;
    } catch (error) {
      this.alerts.show(error);
    } finally {
      this.moreButton.disabled = false;
      this.renderSessions();
    }
    if (hadFocus) {
      // Rendering took the focus away: the keyboard goes on where the new sessions start.
      const next = added.length > 0
        ? this.list.querySelector(`.session[data-session-id="${CSS.escape(added[0].sessionId)}"]`)
        : this.moreButton;
      next?.focus();
    }
  }

  renderSessions() {
    this.moreButton.textContent = this.moreButton.disabled ? "Loading…" : "More sessions";
    const more = this.nextAfter === null ? [] : [this.moreItem];
    if (this.sessions.length === 0) {
      this.list.replaceChildren(h("li", { class: "note", text: "No sessions yet." }), ...more);
      return;
    }
    this.list.replaceChildren(
      ...this.sessions.map((session) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: session.sessionId === this.sessionId ? "session active" : "session",
              title: session.sessionKey,
              dataset: { sessionId: session.sessionId },
              onclick: () => this.open(session.sessionId),
            },
            h("span", { class: "id", text: shortId(session.sessionId) }),
            h("span", { class: "count", text: `${count(session.messageCount)} msgs` }),
            h("span", { class: "model", text: session.model }),
            h("span", { class: "when", text: dateTime(session.createdAt) }),
            ...(session.origin
              ? [h("span", { class: "origin", text: originText(session.origin) })]
              : []),
          ),
        ),
      ),
      ...more,
    );
  }

  startNew() {
    this.sessionId = null;
    this.title.textContent = "New session";
    this.messages.replaceChildren(
      h("li", { class: "note", text: "A new session starts with your first message." }),
    );
    this.renderSessions();
    this.changed();
  }

  async open(sessionId) {
    this.sessionId = sessionId;
    const listed = this.sessions.find((session) => session.sessionId === sessionId);
    // A session opened through the Anthropic API door says which client (and agent) it is.
    this.title.textContent = listed?.origin
      ? `Session ${sessionId} (${originText(listed.origin)})`
      : `Session ${sessionId}`;
    this.renderSessions();
    this.messages.replaceChildren(h("li", { class: "note", text: "Loading the conversation…" }));
    this.changed();
    let reply;
    try {
      reply = await this.gateway.request({ type: "session.history", sessionId, limit: HISTORY_LIMIT });
    } catch (error) {
      if (this.sessionId === sessionId) this.messages.replaceChildren(h("li", {}, errorBox(error)));
      return;
    }
    if (this.sessionId !== sessionId) return; // the person moved on meanwhile
    const items = reply.messages.map((message) => this.storedItem(message));
    const known = this.sessions.find((session) => session.sessionId === sessionId);
    if (known && known.messageCount > reply.messages.length) {
      const note = `Showing the last ${reply.messages.length} of ${known.messageCount} messages.`;
      items.unshift(h("li", { class: "note", text: note }));
    }
    if (items.length === 0) items.push(h("li", { class: "note", text: "No messages yet." }));
    this.messages.replaceChildren(...items);
    this.scrollToEnd(true);
  }

  /** session.created: the chat.send under way started this session. */
  adopt(sessionId) {
    if (this.stream && !this.stream.sessionId) this.stream.sessionId = sessionId;
    if (this.sessionId === null) {
      this.sessionId = sessionId;
      this.title.textContent = `Session ${sessionId}`;
      this.changed();
    }
    this.refreshSessions();
  }

  changed() {
    this.dispatchEvent(new CustomEvent("session", { detail: this.sessionId }));
  }

  async send() {
    const content = this.prompt.value;
    if (!content.trim() || this.stream) return;
    const id = this.gateway.nextId("chat");
    const message = { type: "chat.send", id, content };
    if (this.sessionId) message.sessionId = this.sessionId;
    if (this.model.value.trim()) message.model = this.model.value.trim();

    this.messages.querySelectorAll(":scope > li.note").forEach((note) => note.remove());
    const question = messageItem("user", content);
    const reply = new ReplyItem();
    this.messages.append(question, reply.item);
    this.scrollToEnd(true);
    const stream = { id, sessionId: this.sessionId, started: false, cancelWanted: false };
    this.stream = stream;
    this.prompt.value = "";
    this.setBusy(true);
    try {
      const end = await this.gateway.stream(message, {
        onStart: (frame) => {
          stream.started = true;
          stream.sessionId = frame.sessionId;
          reply.start(frame.model);
          if (stream.cancelWanted) this.sendCancel(stream);
        },
        onDelta: (delta) => {
          reply.append(delta);
          this.scrollToEnd(false);
        },
      });
      reply.finish(end);
    } catch (error) {
      reply.fail(error, stream.started);
      if (!stream.started && NOT_STORED.has(error.code)) {
        question.classList.add("unsent");
        if (!this.prompt.value) this.prompt.value = content;
      }
    } finally {
      if (stream.cancelId) setTimeout(() => this.gateway.forget(stream.cancelId), LATE_CANCEL_MS);
      this.stream = null;
      this.setBusy(false);
      this.dispatchEvent(new CustomEvent("reply-ended", { detail: stream.sessionId }));
      this.refreshSessions();
    }
  }

  stop() {
    const stream = this.stream;
    if (!stream || stream.cancelWanted) return;
    stream.cancelWanted = true;
    this.stopButton.disabled = true;
    this.stopButton.textContent = "Stopping…";
    // Before chat.stream.start there is nothing to cancel yet; onStart sends it.
    if (stream.started) this.sendCancel(stream);
  }

  sendCancel(stream) {
    // A cancel that works has no reply of its own: the stream ends with stopReason cancelled.
    stream.cancelId = this.gateway.fire({ type: "chat.cancel", requestId: stream.id }, (error) => {
      if (error.code === "DISCONNECTED") return; // said once by the page, not per request
      if (error.code === "NO_ACTIVE_STREAM") {
        const late = "Nothing was left to stop: the reply had already finished.";
        this.alerts.show(new GatewayError(error.code, late, error.frame), { kind: "info" });
      } else {
        this.alerts.show(error);
      }
    });
  }

  setBusy(busy) {
    this.sendButton.disabled = busy;
    this.stopButton.disabled = !busy;
    this.stopButton.textContent = "Stop";
  }

  scrollToEnd(always) {
    const box = this.messages;
    const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    if (always || nearEnd) box.scrollTop = box.scrollHeight;
  }

  storedItem(message) {
    const item = messageItem(message.role, message.content);
    const meta = [dateTime(message.createdAt)];
    if (message.tokenCount !== undefined) meta.push(`${count(message.tokenCount)} output tokens`);
    item.append(h("div", { class: "meta" }, meta.join(" · ")));
    if (!message.complete) markIncomplete(item, "incomplete: cut short, the partial reply is kept");
    return item;
  }
}

/** A proxied session's origin: its client key's name, and the caller's agent if named. */
function originText(origin) {
  return origin.agentId ? `via ${origin.client}, agent ${origin.agentId}` : `via ${origin.client}`;
}

function messageItem(role, content) {
  return h(
    "li",
    { class: `message ${role}`, dataset: { role } },
    h("div", { class: "role", text: role }),
    h("div", { class: "text", text: content }),
  );
}

function markIncomplete(item, text) {
  item.classList.add("incomplete");
  item.querySelector(".meta").prepend(h("span", { class: "badge", text }), " ");
}

/** The assistant's reply as it streams: text grows with each delta, usage lands at the end. */
class ReplyItem {
  constructor() {
    this.text = h("div", { class: "text" });
    this.meta = h("div", { class: "meta", text: "Waiting for the gateway…" });
    this.item = h(
      "li",
      { class: "message assistant streaming", dataset: { role: "assistant" } },
      h("div", { class: "role", text: "assistant" }),
      this.text,
      this.meta,
    );
  }

  start(model) {
    this.meta.textContent = `Streaming from ${model}…`;
    this.item.dataset.model = model;
  }

  append(delta) {
    this.text.append(delta);
  }

  finish(end) {
    this.text.normalize();
    this.item.classList.remove("streaming");
    this.item.dataset.stopReason = end.stopReason;
    this.meta.replaceChildren(...usageLine(end));
    if (end.stopReason === "cancelled") {
      this.item.classList.add("cancelled");
      const kept = this.text.textContent ? "cancelled: the partial reply is kept" : "cancelled";
      this.meta.prepend(h("span", { class: "badge", text: kept }), " ");
    }
  }

  fail(error, started) {
    this.text.normalize();
    this.item.classList.remove("streaming");
    this.item.classList.add("failed");
    this.meta.replaceChildren(errorBox(error));
    // A failed request that was billed says what it cost.
    const billed = error.frame || {};
    if (billed.usage && billed.cost) this.meta.append(h("div", { class: "usage" }, ...usageLine(billed)));
    if (started && this.text.textContent) {
      markIncomplete(this.item, "incomplete: the partial reply is kept");
    }
  }
}

function usageLine(end) {
  const { usage, cost } = end;
  // estimated: a cut-off reply billed on the cl100k count of the text streamed.
  const out = usage.estimated ? " out (estimated)" : " out";
  const parts = [`${count(usage.inputTokens)} in · ${count(usage.outputTokens)}${out}`];
  if (usage.cacheCreationInputTokens) {
    const oneHour = usage.cacheCreation1hInputTokens
      ? ` (${count(usage.cacheCreation1hInputTokens)} for 1 h)` : "";
    parts.push(`${count(usage.cacheCreationInputTokens)} cache write${oneHour}`);
  }
  if (usage.cacheReadInputTokens) parts.push(`${count(usage.cacheReadInputTokens)} cache read`);
  const line = [
    h("span", { class: "tokens", dataset: { value: usage.totalTokens } },
      `${parts.join(" · ")} · ${count(usage.totalTokens)} tokens`),
    " · ",
    cost.priced
      ? h("span", { class: "cost", dataset: { value: nanoText(cost.totalCostNanos), nanos: cost.totalCostNanos },
          title: cost.priceSource === "unknown_model"
            ? "priced at the configured price for unknown models ([pricing.unknown_model])"
            : cost.priceSource === "local"
              ? "a local model, at its provider's configured price (default free)" : null },
          cost.priceSource === "unknown_model"
            ? `${nanoUsd(cost.totalCostNanos)} (unknown-model price)`
            : cost.priceSource === "local"
              ? `${nanoUsd(cost.totalCostNanos)} (local)` : nanoUsd(cost.totalCostNanos))
      : h("span", { class: "cost unpriced", dataset: { value: 0 } },
          "cost unknown: no price for this model (add one under [pricing] in config.toml)"),
  ];
  if (end.stopReason && !["end_turn", "cancelled"].includes(end.stopReason)) {
    const why = end.stopReason === "max_tokens" ? "max_tokens (the reply hit anthropic.max_tokens)"
      : end.stopReason;
    line.push(" · ", h("span", { class: "stop-reason", text: `stopped: ${why}` }));
  }
  return line;
}
