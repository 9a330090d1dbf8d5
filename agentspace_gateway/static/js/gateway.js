// The WebSocket to /gateway: requests matched to replies by requestId (frames interleave, see
// docs/protocol.md), chat streams, the first-frame token, and close codes put into words.

/** An `error` frame from the gateway, or a connection that failed: always a readable message. */
export class GatewayError extends Error {
  constructor(code, message, frame = {}) {
    super(message);
    this.code = code;
    this.frame = frame;
  }
}

const CLOSE_REASONS = {
  1001: "The gateway is shutting down.",
  1008: "The gateway closed the connection because this page fell behind reading its replies.",
  1009: "A message was larger than the gateway accepts (gateway.max_frame_bytes).",
  4401:
    "The gateway refused the token (close code 4401). Print the right one with: " +
    "agentspace-gateway token show",
};

export function closeMessage(code, opened) {
  if (CLOSE_REASONS[code]) return CLOSE_REASONS[code];
  if (!opened) {
    return (
      "Could not connect to the gateway's WebSocket. Is agentspace-gateway serve still " +
      "running? (A refused upgrade, such as an origin not allowed, also ends here: the " +
      "gateway's log says why.)"
    );
  }
  return `The connection to the gateway was lost (close code ${code}).`;
}

export class Gateway extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.socket = null;
    this.ready = false; // open, and past the token when one is needed
    this.pending = new Map(); // request id -> {onFrame, onError}
    this.counter = 0;
  }

  nextId(prefix = "c") {
    this.counter += 1;
    return `${prefix}${this.counter}`;
  }

  /** Open the socket; with a token, send it as the first frame and wait for auth.ok. */
  connect(token) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      let opened = false;
      this.socket = socket;
      this.ready = false;
      const becomeReady = () => {
        this.ready = true;
        resolve();
      };
      socket.addEventListener("open", () => {
        opened = true;
        // Any other first frame would close the connection (4401), so nothing else goes first.
        if (token) socket.send(JSON.stringify({ type: "auth", id: "auth", token }));
        else becomeReady();
      });
      socket.addEventListener("message", (event) => {
        const frame = parse(event.data);
        if (!this.ready && frame && frame.type === "auth.ok") becomeReady();
        else this.route(frame);
      });
      socket.addEventListener("close", (event) => {
        if (this.socket !== socket) return; // an older socket, already replaced
        const error = new GatewayError("DISCONNECTED", closeMessage(event.code, opened));
        error.closeCode = event.code;
        const wasReady = this.ready;
        this.ready = false;
        this.failPending(error);
        if (!wasReady) reject(error);
        else this.dispatchEvent(new CustomEvent("closed", { detail: error }));
      });
    });
  }

  get connected() {
    return this.ready && this.socket.readyState === WebSocket.OPEN;
  }

  close() {
    if (this.socket) this.socket.close(1000, "page closed the connection");
  }

  route(frame) {
    if (!frame) {
      this.dispatchEvent(new CustomEvent("problem", { detail: new GatewayError(
        "BAD_FRAME", "The gateway sent a frame that is not a JSON object.") }));
      return;
    }
    const handler = frame.requestId !== undefined ? this.pending.get(frame.requestId) : null;
    if (handler) {
      if (frame.type === "error") handler.onError(toError(frame));
      else handler.onFrame(frame);
    } else if (frame.type === "error") {
      this.dispatchEvent(new CustomEvent("problem", { detail: toError(frame) }));
    } else {
      // Notifications (session.created) and anything a plugin may add.
      this.dispatchEvent(new CustomEvent(frame.type, { detail: frame }));
    }
  }

  failPending(error) {
    const handlers = [...this.pending.values()];
    this.pending.clear();
    for (const handler of handlers) handler.onError(error);
  }

  transmit(message) {
    if (!this.connected) {
      throw new GatewayError("NOT_CONNECTED", "Not connected to the gateway: reconnect first.");
    }
    this.socket.send(JSON.stringify(message));
  }

  /** A request answered by one reply frame, e.g. session.list or usage.query. */
  request(message) {
    const id = message.id || this.nextId();
    return new Promise((resolve, reject) => {
      const done = (settle) => (value) => {
        this.pending.delete(id);
        settle(value);
      };
      this.pending.set(id, { onFrame: done(resolve), onError: done(reject) });
      try {
        this.transmit({ ...message, id });
      } catch (error) {
        done(reject)(error);
      }
    });
  }

  /** Send without waiting for a reply (chat.cancel answers only when it fails); forget the
   * id once an error can no longer come, or a later disconnect reports it as failed. */
  fire(message, onError) {
    const id = message.id || this.nextId();
    this.pending.set(id, {
      onFrame: () => this.pending.delete(id),
      onError: (error) => {
        this.pending.delete(id);
        onError(error);
      },
    });
    try {
      this.transmit({ ...message, id });
    } catch (error) {
      this.pending.get(id).onError(error);
    }
    return id;
  }

  forget(id) {
    this.pending.delete(id);
  }

  /** chat.send: calls onStart and onDelta as frames arrive; resolves with chat.stream.end. */
  stream(message, { onStart, onDelta }) {
    const id = message.id || this.nextId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        onFrame: (frame) => {
          if (frame.type === "chat.stream.start") onStart(frame);
          else if (frame.type === "chat.stream.delta") onDelta(frame.delta);
          else if (frame.type === "chat.stream.end") {
            this.pending.delete(id);
            resolve(frame);
          }
        },
        onError: (error) => {
          this.pending.delete(id);
          reject(error);
        },
      });
      try {
        this.transmit({ ...message, id });
      } catch (error) {
        this.pending.get(id).onError(error);
      }
    });
  }
}

function parse(data) {
  try {
    const frame = JSON.parse(data);
    return frame && typeof frame === "object" && !Array.isArray(frame) ? frame : null;
  } catch {
    return null;
  }
}

function toError(frame) {
  return new GatewayError(frame.code || "ERROR", frame.message || "The gateway reported an error.", frame);
}
