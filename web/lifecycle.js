// The signalling connection's lifecycle as decisions: what to say while connecting, whether to
// reconnect after a loss and after how long, what a goodbye means, when the server stopped
// answering, what the media connections' states mean. No IO, no timers, no DOM: time comes in as
// an argument; signalling.js (the connection) and protocol.js perform what these return.

import { msg as say } from "./i18n.js";
import { byeWords } from "./refusals.js";

export const PROTOCOL_VERSION = 1;

export const PING_INTERVAL_MS = 10_000;
export const PONG_TIMEOUT_MS = 30_000; // no pong for this long: the connection is dead
export const HELLO_TIMEOUT_MS = 10_000;
export const JOINED_TIMEOUT_MS = 15_000;
/** The wait before each reconnection attempt after a loss; then the client gives up. */
export const RECONNECT_DELAYS_MS = Object.freeze([1_000, 2_000, 4_000, 8_000, 15_000]);

/** The state and its words when connection attempt `attempt` opens (0: the first, not a retry). */
export function connecting(attempt) {
  if (attempt > 0) {
    return {
      state: "reconnecting",
      words: say("state.reconnecting", { attempt, count: RECONNECT_DELAYS_MS.length }),
    };
  }
  return { state: "connecting", words: say("state.connecting") };
}

/**
 * What follows the loss of the connection (`why`, a message): a retry after `delayMs`, counted as
 * attempt `attempt`, while reconnecting is on, the participant had joined once and attempts are
 * left; else the end ({retry: false}), in words that say whether retries were made.
 * @returns {{retry: true, delayMs: number, attempt: number, words: object} | {retry: false, words: object}}
 */
export function afterLoss({ reconnect, everJoined, attempt }, why) {
  if (reconnect && everJoined && attempt < RECONNECT_DELAYS_MS.length) {
    const delayMs = RECONNECT_DELAYS_MS[attempt];
    return {
      retry: true,
      delayMs,
      attempt: attempt + 1,
      words: say("state.reconnectingIn", { why, seconds: Math.round(delayMs / 1000) }),
    };
  }
  return { retry: false, words: everJoined && reconnect ? say("state.reconnectFailed", { why }) : why };
}

/** Why the socket closed: lost after the server's hello, else not reached (again, if joined once). */
export function closedWords({ helloed, everJoined }) {
  if (helloed) return say("state.connectionLost");
  return everJoined ? say("state.cannotReach") : say("state.unreachable");
}

/** The words refusing a `hello` of another protocol version, or null when it is ours. */
export function versionRefusal(hello) {
  if (hello.protocol_version === PROTOCOL_VERSION) return null;
  return say("state.protocol", { page: PROTOCOL_VERSION, server: String(hello.protocol_version) });
}

/** At a ping's time `nowMs`: "lost" when the last pong is older than PONG_TIMEOUT_MS, else "ping". */
export function pingDue(nowMs, lastPongMs) {
  return nowMs - lastPongMs > PONG_TIMEOUT_MS ? "lost" : "ping";
}

/**
 * What a `bye` with `reason` does: nothing after the client already ended (leave(), a fatal
 * refusal), a rejoin after a server_stopping notice (the meeting resumes on the restarted
 * server), else the end, in the reason's words.
 * @returns {{action: "none"} | {action: "rejoin" | "close", words: object}}
 */
export function afterBye(reason, { ended, serverStopping }) {
  if (ended) return { action: "none" };
  if (serverStopping) return { action: "rejoin", words: say("state.restarting") };
  return { action: "close", words: byeWords(reason) };
}

/**
 * What a media connection's state change to `changed` means, given the states of all of them
 * (`states`; a listener has no publish connection) and the client's state `current`: lost
 * (reconnect), connected (all are; `self` names room and participant), interrupted (one
 * dropped while connected), or null (nothing to say).
 * @returns {{kind: "lost" | "connected" | "interrupted", words: object} | null}
 */
export function afterMediaState(changed, states, current, self) {
  if (changed === "failed") return { kind: "lost", words: say("state.mediaFailed") };
  if (states.every((s) => s === "connected")) {
    const room = self?.room ?? "";
    const words = self?.role === "listener"
      ? say("state.watching", { room })
      : say("state.connected", { room, name: self?.name ?? "" });
    return { kind: "connected", words };
  }
  if (changed === "disconnected" && current === "connected") {
    return { kind: "interrupted", words: say("state.mediaInterrupted") };
  }
  return null;
}
