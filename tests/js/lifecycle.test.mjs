// web/lifecycle.js: the connection lifecycle's decisions (backoff, goodbyes, pings, media states).
import assert from "node:assert/strict";
import { test } from "node:test";

import { msg } from "../../web/i18n.js";
import {
  PONG_TIMEOUT_MS,
  PROTOCOL_VERSION,
  RECONNECT_DELAYS_MS,
  afterBye,
  afterLoss,
  afterMediaState,
  closedWords,
  connecting,
  pingDue,
  versionRefusal,
} from "../../web/lifecycle.js";

const why = msg("state.connectionLost");

test("after a loss the waits grow 1, 2, 4, 8, 15 s, each attempt counted, then the client gives up", () => {
  const delays = [];
  let attempt = 0;
  for (;;) {
    const next = afterLoss({ reconnect: true, everJoined: true, attempt }, why);
    if (!next.retry) {
      assert.deepEqual(next.words, { key: "state.reconnectFailed", params: { why } });
      break;
    }
    assert.equal(next.attempt, attempt + 1);
    assert.deepEqual(next.words, {
      key: "state.reconnectingIn", params: { why, seconds: Math.round(next.delayMs / 1000) },
    });
    delays.push(next.delayMs);
    attempt = next.attempt;
  }
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 15_000]);
  assert.equal(attempt, RECONNECT_DELAYS_MS.length);
  assert.ok(Object.isFrozen(RECONNECT_DELAYS_MS));
});

test("never joined, or reconnecting off: no retry, and the loss said as it is", () => {
  assert.deepEqual(afterLoss({ reconnect: true, everJoined: false, attempt: 0 }, why), { retry: false, words: why });
  assert.deepEqual(afterLoss({ reconnect: false, everJoined: true, attempt: 0 }, why), { retry: false, words: why });
});

test("connecting says whether it is a first connection or which reconnection attempt", () => {
  assert.deepEqual(connecting(0), { state: "connecting", words: msg("state.connecting") });
  assert.deepEqual(connecting(2), {
    state: "reconnecting",
    words: msg("state.reconnecting", { attempt: 2, count: RECONNECT_DELAYS_MS.length }),
  });
});

test("a closed socket: lost after the hello, else not reached (again once joined)", () => {
  assert.equal(closedWords({ helloed: true, everJoined: false }).key, "state.connectionLost");
  assert.equal(closedWords({ helloed: true, everJoined: true }).key, "state.connectionLost");
  assert.equal(closedWords({ helloed: false, everJoined: true }).key, "state.cannotReach");
  assert.equal(closedWords({ helloed: false, everJoined: false }).key, "state.unreachable");
});

test("a hello of another protocol version is refused, naming both versions", () => {
  assert.equal(versionRefusal({ type: "hello", protocol_version: PROTOCOL_VERSION }), null);
  assert.deepEqual(versionRefusal({ type: "hello", protocol_version: 2 }), {
    key: "state.protocol", params: { page: PROTOCOL_VERSION, server: "2" },
  });
  assert.equal(versionRefusal({ type: "hello" }).params.server, "undefined");
  assert.notEqual(versionRefusal({ type: "hello", protocol_version: "1" }), null); // a string is not 1
});

test("pings go on until no pong came for longer than PONG_TIMEOUT_MS", () => {
  assert.equal(pingDue(50_000, 50_000), "ping");
  assert.equal(pingDue(50_000 + PONG_TIMEOUT_MS, 50_000), "ping");
  assert.equal(pingDue(50_001 + PONG_TIMEOUT_MS, 50_000), "lost");
});

test("a bye: nothing after the end, a rejoin after server_stopping, else the end in its reason's words", () => {
  const reason = "the chair removed you from the meeting";
  assert.deepEqual(afterBye(reason, { ended: true, serverStopping: true }), { action: "none" });
  assert.deepEqual(afterBye(reason, { ended: false, serverStopping: true }), {
    action: "rejoin", words: msg("state.restarting"),
  });
  assert.deepEqual(afterBye(reason, { ended: false, serverStopping: false }), {
    action: "close", words: msg("bye.removed"),
  });
  const other = afterBye("maintenance window", { ended: false, serverStopping: false });
  assert.equal(other.action, "close");
  assert.equal(other.words.key, "bye.closed");
  assert.equal(other.words.detail, "maintenance window");
});

test("media states: failed is lost, all connected is connected, a drop while connected is interrupted", () => {
  const self = { room: "demo", name: "Ana", role: "participant" };
  assert.deepEqual(afterMediaState("failed", ["failed", "connected"], "connected", self), {
    kind: "lost", words: msg("state.mediaFailed"),
  });
  assert.deepEqual(afterMediaState("connected", ["connected", "connected"], "joining", self), {
    kind: "connected", words: msg("state.connected", { room: "demo", name: "Ana" }),
  });
  // A listener has only the subscribe connection, and is watching.
  assert.deepEqual(afterMediaState("connected", ["connected"], "joining", { ...self, role: "listener" }), {
    kind: "connected", words: msg("state.watching", { room: "demo" }),
  });
  assert.equal(afterMediaState("connected", ["connecting", "connected"], "joining", self), null);
  assert.deepEqual(afterMediaState("disconnected", ["disconnected", "connected"], "connected", self), {
    kind: "interrupted", words: msg("state.mediaInterrupted"),
  });
  assert.equal(afterMediaState("disconnected", ["disconnected", "connected"], "joining", self), null);
});
