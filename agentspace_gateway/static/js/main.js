// Start-up: ask whether a token is needed, connect to /gateway on this page's own origin
// (which the gateway's Origin check admits), then wire the chat to the side panels.

import { Alerts } from "./alerts.js";
import { BudgetsPanel } from "./budgets.js";
import { ChatView } from "./chat.js";
import { byId } from "./dom.js";
import { Gateway, GatewayError } from "./gateway.js";
import { Inspector } from "./inspector.js";
import { KeyNotice } from "./keys.js";
import { UsagePanel } from "./usage.js";

const TOKEN_REFUSED = 4401;

const alerts = new Alerts(byId("alerts"));
const socketUrl = new URL("/gateway", window.location.href);
socketUrl.protocol = socketUrl.protocol === "https:" ? "wss:" : "ws:";
const gateway = new Gateway(socketUrl.href);
const chat = new ChatView(gateway, alerts);
const inspector = new Inspector(gateway);
const usage = new UsagePanel(gateway);
const budgets = new BudgetsPanel(gateway);
const keyNotice = new KeyNotice(byId("key-notice"));
const tokenForm = byId("token-form");
const tokenProblem = byId("token-problem");
const status = byId("status");
const reconnect = byId("reconnect");
const workspace = byId("workspace");
// Kept in this page's memory only: the token also unlocks the key server.
let token = null;

function setStatus(state, text) {
  status.dataset.state = state;
  byId("status-text").textContent = text;
  reconnect.hidden = state !== "disconnected";
}

function askForToken(problem) {
  workspace.hidden = true;
  tokenForm.hidden = false;
  tokenProblem.hidden = !problem;
  tokenProblem.textContent = problem || "";
  reconnect.hidden = true; // the form is how to try again, with a corrected token
  byId("token").focus();
}

async function connect() {
  setStatus("connecting", "connecting…");
  try {
    await gateway.connect(token);
  } catch (error) {
    setStatus("disconnected", "not connected");
    if (error.closeCode === TOKEN_REFUSED) askForToken(error.message);
    else alerts.show(error);
    return;
  }
  setStatus("connected", "connected");
  tokenForm.hidden = true;
  workspace.hidden = false;
  keyNotice.refresh();
  // Watching from the start: an alert is shown whichever tab is open.
  budgets.watch();
  await chat.refreshSessions();
  refreshPanel();
}

function selectedTab() {
  return document.querySelector(".tabs [aria-selected='true']").dataset.panel;
}

function refreshPanel() {
  if (!gateway.connected) return;
  const tab = selectedTab();
  if (tab === "context") inspector.show(chat.sessionId);
  else if (tab === "usage") usage.show(chat.sessionId);
  else budgets.show();
}

for (const tab of document.querySelectorAll(".tabs [role='tab']")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tabs [role='tab']")) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      byId(`${other.dataset.panel}-panel`).hidden = !chosen;
    }
    refreshPanel();
  });
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  token = byId("token").value.trim();
  connect();
});
reconnect.addEventListener("click", () => connect());
gateway.addEventListener("closed", (event) => {
  setStatus("disconnected", "disconnected");
  alerts.show(event.detail);
});
gateway.addEventListener("problem", (event) => alerts.show(event.detail));
chat.addEventListener("session", refreshPanel);
chat.addEventListener("reply-ended", refreshPanel);
// A key added meanwhile (keys add takes effect within a second) clears the notice.
chat.addEventListener("reply-ended", () => keyNotice.refresh());

async function start() {
  let config;
  try {
    const response = await fetch("/console/config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    setStatus("disconnected", "not connected");
    alerts.show(new GatewayError("CONFIG_UNAVAILABLE",
      `Could not read /console/config.json (${error.message}). Is the gateway running?`));
    return;
  }
  if (config.requireToken) {
    setStatus("disconnected", "token needed");
    askForToken(null);
  } else {
    connect();
  }
}

start();
