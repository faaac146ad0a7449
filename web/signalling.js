// The signalling connection: one WebSocket at a time, its epoch, timers and pings, reconnecting
// after a loss, the end. No DOM; lifecycle.js decides, this performs; protocol.js's
// ConferenceClient keeps one and handles the messages.

import { msg as say } from "./i18n.js";
import {
  HELLO_TIMEOUT_MS,
  JOINED_TIMEOUT_MS,
  PING_INTERVAL_MS,
  afterBye,
  afterLoss,
  closedWords,
  connecting,
  pingDue,
  versionRefusal,
} from "./lifecycle.js";
import { parseFrame } from "./messages.js";
import { ConferenceError } from "./refusals.js";

/**
 * The client's side of the connection, given once.
 * @typedef {object} SignallingHooks
 * @property {(epoch: number, msg: object) => void} message  a message from the server
 * @property {(state: string, words: object) => void} state  the client's `state` event
 * @property {() => void} teardown  close what belongs to the connection going away (the
 *   PeerConnections, the screen share, the report requests); the socket closes after it
 */

export class SignallingConnection {
  /**
   * @param {object} options
   * @param {string} options.url
   * @param {boolean} options.reconnect  reconnect by itself after a loss
   * @param {typeof WebSocket} options.WebSocketImpl
   * @param {SignallingHooks} options.hooks
   */
  constructor({ url, reconnect, WebSocketImpl, hooks }) {
    this.url = url;
    this.reconnect = reconnect;
    this._WebSocket = WebSocketImpl;
    this._hooks = hooks;
    this.epoch = 0; // bumped per connection attempt; stale callbacks compare and bail out
    this.attempt = 0; // reconnection attempts since the media last connected
    this.everJoined = false;
    this.ended = false; // leave(), bye or a fatal refusal: never reconnect
    this.serverName = null; // from the hello of this connection (null before it)
    this._joinedEpoch = 0;
    this._ws = null;
    this._timers = new Set();
    this._pingTimer = null;
    this._lastPongAt = 0;
    this._serverStopping = false; // a server_stopping notice came: its bye means "come back"
    this._pending = null; // {resolve, reject} of the open() that has not joined yet
  }

  /** Opens a socket (closing what was open). Resolves with joined()'s value, rejects on the end. */
  async open() {
    const epoch = ++this.epoch;
    this._teardown();
    const { state, words } = connecting(this.attempt);
    this._hooks.state(state, words);
    return new Promise((resolve, reject) => {
      this._pending = { resolve, reject };
      let ws;
      try {
        ws = new this._WebSocket(this.url);
      } catch (error) {
        this.fail(new ConferenceError(say("state.badAddress", { url: this.url }), { cause: error }));
        return;
      }
      this._ws = ws;
      this.later(epoch, HELLO_TIMEOUT_MS, () => {
        if (!this.serverName) this.lost(epoch, say("state.noAnswer"));
      });
      ws.addEventListener("message", (event) => {
        if (epoch !== this.epoch) return;
        const { msg, problem } = parseFrame(event.data);
        if (problem) {
          console.warn(`confsfu: server sent ${problem}`, event.data);
          return;
        }
        this._hooks.message(epoch, msg);
      });
      ws.addEventListener("close", () => {
        if (epoch !== this.epoch) return;
        this.lost(epoch, closedWords({ helloed: this.serverName !== null, everJoined: this.everJoined }));
      });
      ws.addEventListener("error", () => {
        // A `close` event always follows; it decides what to do.
      });
    });
  }

  /** The server's hello: false (and the end) when it speaks another protocol version. */
  hello(epoch, msg) {
    const refusal = versionRefusal(msg);
    if (refusal) {
      this.fail(new ConferenceError(refusal));
      return false;
    }
    this.serverName = String(msg.server ?? "");
    return true;
  }

  /** The join went out: it must be answered in time, and the server must keep answering pings. */
  joining(epoch) {
    this.later(epoch, JOINED_TIMEOUT_MS, () => {
      if (this._joinedEpoch !== epoch) this.lost(epoch, say("state.notLetIn"));
    });
    this._lastPongAt = Date.now();
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (epoch !== this.epoch) return;
      if (pingDue(Date.now(), this._lastPongAt) === "lost") {
        this.lost(epoch, say("state.stoppedAnswering"));
        return;
      }
      this.send({ type: "ping" });
    }, PING_INTERVAL_MS);
  }

  /** The server let this connection in: losing it from now on reconnects. */
  joined(epoch) {
    this._joinedEpoch = epoch;
    this.everJoined = true;
  }

  /** Resolves the open() still waiting (once joined, with `value`). */
  settled(value) {
    const pending = this._pending;
    this._pending = null;
    pending?.resolve(value);
  }

  pong() {
    this._lastPongAt = Date.now();
  }

  /** A server_stopping notice: the bye that follows asks to come back. */
  stopping() {
    this._serverStopping = true;
  }

  /** The media connected: the next loss starts its attempts from the first again. */
  mediaConnected() {
    this.attempt = 0;
  }

  /** The server said goodbye with `reason`. */
  bye(epoch, reason) {
    const next = afterBye(reason, { ended: this.ended, serverStopping: this._serverStopping });
    if (next.action === "rejoin") {
      this._serverStopping = false;
      this.lost(epoch, next.words);
    } else if (next.action === "close") {
      this.end("closed", next.words);
      this._reject(new ConferenceError(next.words));
    }
  }

  /** The socket or the media died (`why`, a message): reconnect if joined before, else fail. */
  lost(epoch, why) {
    if (epoch !== this.epoch || this.ended) return;
    const next = afterLoss(this, why);
    if (!next.retry) {
      this.fail(new ConferenceError(next.words));
      return;
    }
    this.attempt = next.attempt;
    this._teardown();
    this._hooks.state("reconnecting", next.words);
    const again = ++this.epoch;
    this.later(again, next.delayMs, () => {
      this.open().catch(() => {
        // reported through the `state` event
      });
    });
  }

  /** The end, failed: `error` says why (a ConferenceError's words, else "went wrong"). */
  fail(error) {
    const words = error instanceof ConferenceError
      ? error.words
      : say("state.wentWrong", { detail: error?.message ?? String(error) });
    this.end("failed", words);
    this._reject(error instanceof ConferenceError ? error : new ConferenceError(words, { cause: error }));
  }

  /** Final stop: no reconnection after this. */
  end(state, words) {
    this.ended = true;
    this.epoch += 1;
    this._teardown();
    this._hooks.state(state, words);
  }

  /** Sends `msg` if the socket is open; false when it is not. */
  send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Runs `fn` after `delayMs` unless the connection changed meanwhile (or ended). */
  later(epoch, delayMs, fn) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      if (epoch === this.epoch) fn();
    }, delayMs);
    this._timers.add(timer);
  }

  _reject(error) {
    const pending = this._pending;
    this._pending = null;
    pending?.reject(error);
  }

  _teardown() {
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    this._hooks.teardown();
    const ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState <= 1) {
      try {
        ws.close(1000, "bye");
      } catch {
        // already closing
      }
    }
    this._serverStopping = false;
    this.serverName = null;
  }
}
