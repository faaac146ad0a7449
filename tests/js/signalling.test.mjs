// web/signalling.js: the signalling connection's lifecycle with a fake WebSocket and mocked time:
// timeouts, pings, reconnecting with backoff, goodbyes, the end.
import assert from "node:assert/strict";
import { test } from "node:test";

import { msg } from "../../web/i18n.js";
import {
  HELLO_TIMEOUT_MS,
  JOINED_TIMEOUT_MS,
  PING_INTERVAL_MS,
  PONG_TIMEOUT_MS,
  PROTOCOL_VERSION,
  RECONNECT_DELAYS_MS,
} from "../../web/lifecycle.js";
import { SignallingConnection } from "../../web/signalling.js";

class FakeSocket extends EventTarget {
  static all = [];

  constructor(url) {
    super();
    this.url = url;
    this.readyState = 1;
    this.sent = [];
    FakeSocket.all.push(this);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.readyState = 3;
  }

  deliver(data) {
    const event = new Event("message");
    event.data = typeof data === "string" ? data : JSON.stringify(data);
    this.dispatchEvent(event);
  }

  drop() {
    this.readyState = 3;
    this.dispatchEvent(new Event("close"));
  }
}

/** A connection with its client's side recorded: states, messages, teardowns. */
function connection(t, { reconnect = true } = {}) {
  if (!t.timersMocked) t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  t.timersMocked = true;
  FakeSocket.all = [];
  const io = { states: [], messages: [], teardowns: 0 };
  io.conn = new SignallingConnection({
    url: "ws://server/ws",
    reconnect,
    WebSocketImpl: FakeSocket,
    hooks: {
      message: (epoch, m) => io.messages.push([epoch, m]),
      state: (state, words) => io.states.push([state, words.key]),
      teardown: () => {
        io.teardowns += 1;
      },
    },
  });
  io.socket = () => FakeSocket.all.at(-1);
  io.tick = (ms) => t.mock.timers.tick(ms);
  return io;
}

/** Opens, says hello and lets the join in: the connection as it is once joined. */
function joined(io) {
  const started = io.conn.open();
  const epoch = io.conn.epoch;
  io.socket().deliver({ type: "hello", protocol_version: PROTOCOL_VERSION, server: "test" });
  assert.equal(io.conn.hello(epoch, io.messages.at(-1)[1]), true);
  io.conn.joining(epoch);
  io.conn.joined(epoch);
  io.conn.settled("in");
  return { started, epoch };
}

test("messages reach the client; frames that are not messages, and a stale socket's, do not", { timeout: 10_000 }, async (t) => {
  const io = connection(t);
  t.mock.method(console, "warn", () => {});
  io.conn.open();
  const first = io.socket();
  first.deliver("{oops");
  first.deliver({ kind: "hello" });
  first.deliver({ type: "pong" });
  assert.deepEqual(io.messages, [[1, { type: "pong" }]]);
  assert.equal(console.warn.mock.callCount(), 2);
  io.conn.end("closed", msg("state.left"));
  first.deliver({ type: "pong" }); // a message after the end: ignored
  assert.equal(io.messages.length, 1);
  assert.equal(io.conn.send({ type: "ping" }), false); // closed: nothing sent
});

test("no hello in time: the end, never a retry when never joined", { timeout: 10_000 }, async (t) => {
  const io = connection(t);
  const started = io.conn.open();
  io.tick(HELLO_TIMEOUT_MS);
  await assert.rejects(started, (e) => e.words.key === "state.noAnswer");
  assert.deepEqual(io.states, [["connecting", "state.connecting"], ["failed", "state.noAnswer"]]);
  assert.equal(FakeSocket.all.length, 1);
});

test("a hello of another version ends it; a join nobody answers is lost", { timeout: 10_000 }, async (t) => {
  const io = connection(t);
  const started = io.conn.open();
  assert.equal(io.conn.hello(io.conn.epoch, { type: "hello", protocol_version: 99 }), false);
  await assert.rejects(started, (e) => e.words.key === "state.protocol");
  assert.equal(io.conn.ended, true);

  const again = connection(t);
  const waiting = again.conn.open();
  const epoch = again.conn.epoch;
  again.conn.hello(epoch, { type: "hello", protocol_version: PROTOCOL_VERSION, server: "s" });
  again.conn.joining(epoch);
  again.tick(JOINED_TIMEOUT_MS);
  await assert.rejects(waiting, (e) => e.words.key === "state.notLetIn");
});

test("pings every PING_INTERVAL_MS; no pong for PONG_TIMEOUT_MS loses the connection", (t) => {
  const io = connection(t);
  joined(io);
  const ws = io.socket();
  const pings = () => ws.sent.filter((m) => m.type === "ping").length;
  io.tick(PING_INTERVAL_MS);
  io.conn.pong();
  io.tick(PING_INTERVAL_MS);
  io.tick(PING_INTERVAL_MS);
  assert.equal(pings(), 3);
  // Silence since the pong at 10 s: pings at 40 s (30 s since it), lost at 50 s.
  io.tick(PING_INTERVAL_MS);
  assert.equal(pings(), 4);
  assert.equal(io.states.at(-1)[0], "connecting"); // not lost yet
  io.tick(PING_INTERVAL_MS);
  assert.equal(pings(), 4);
  assert.deepEqual(io.states.at(-1), ["reconnecting", "state.reconnectingIn"]);
  assert.equal(ws.readyState, 3);
});

test("a lost connection reconnects after 1, 2, 4, 8, 15 s, then fails; connecting media starts over", { timeout: 10_000 }, async (t) => {
  const io = connection(t);
  const { started } = joined(io);
  assert.equal(await started, "in");
  const waits = [];
  for (let i = 0; i < RECONNECT_DELAYS_MS.length; i++) {
    const sockets = FakeSocket.all.length;
    io.socket().drop();
    assert.equal(io.conn.attempt, i + 1);
    let waited = 0;
    while (FakeSocket.all.length === sockets) {
      io.tick(250);
      waited += 250;
    }
    waits.push(waited);
    assert.equal(io.states.at(-1)[1], "state.reconnecting"); // attempt i + 1 of 5
  }
  assert.deepEqual(waits, [...RECONNECT_DELAYS_MS]);
  io.socket().drop(); // never helloed: cannot reach it again, and no attempts are left
  assert.deepEqual(io.states.at(-1), ["failed", "state.reconnectFailed"]);
  assert.equal(io.conn.ended, true);

  const fresh = connection(t);
  joined(fresh);
  fresh.socket().drop();
  fresh.tick(RECONNECT_DELAYS_MS[0]);
  fresh.conn.mediaConnected(); // connected again: the next loss waits the first delay again
  fresh.socket().drop();
  assert.equal(fresh.conn.attempt, 1);
});

test("a connection never joined does not reconnect, nor one with reconnecting off", { timeout: 10_000 }, async (t) => {
  const io = connection(t);
  const started = io.conn.open();
  io.socket().drop();
  await assert.rejects(started, (e) => e.words.key === "state.unreachable");

  const off = connection(t, { reconnect: false });
  joined(off);
  off.socket().drop();
  assert.deepEqual(off.states.at(-1), ["failed", "state.connectionLost"]);
  assert.equal(FakeSocket.all.length, 1);
});

test("a bye: after server_stopping a rejoin; else the end in its words, the start rejected", { timeout: 10_000 }, async (t) => {
  const io = connection(t);
  joined(io);
  io.conn.stopping();
  io.conn.bye(io.conn.epoch, "the server is restarting");
  assert.equal(io.states.at(-1)[0], "reconnecting");
  io.tick(RECONNECT_DELAYS_MS[0]);
  assert.equal(FakeSocket.all.length, 2);

  // The notice does not outlive its connection: the next bye closes.
  const waiting = io.conn.open();
  io.conn.bye(io.conn.epoch, "the chair ended the meeting");
  await assert.rejects(waiting, (e) => e.words.key === "bye.ended");
  assert.deepEqual(io.states.at(-1), ["closed", "bye.ended"]);
  const teardowns = io.teardowns;
  io.conn.bye(io.conn.epoch, "the chair ended the meeting"); // after the end: nothing more
  assert.equal(io.teardowns, teardowns);
});

test("the end closes the socket and tears down once; later timers of the old connection do nothing", (t) => {
  const io = connection(t);
  joined(io);
  const ws = io.socket();
  const before = io.teardowns;
  io.conn.end("closed", msg("state.left"));
  assert.equal(ws.readyState, 3);
  assert.equal(io.teardowns, before + 1);
  io.tick(PONG_TIMEOUT_MS * 2);
  assert.deepEqual(io.states.at(-1), ["closed", "state.left"]);
  assert.equal(ws.sent.filter((m) => m.type === "ping").length, 0);
});

test("a socket that cannot even be made (a bad address) fails at once", { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const states = [];
  const conn = new SignallingConnection({
    url: "nonsense",
    reconnect: true,
    WebSocketImpl: class {
      constructor() {
        throw new SyntaxError("bad url");
      }
    },
    hooks: { message() {}, state: (s, w) => states.push([s, w.key]), teardown() {} },
  });
  await assert.rejects(conn.open(), (e) => e.words.key === "state.badAddress" && e.cause instanceof SyntaxError);
  assert.deepEqual(states.at(-1), ["failed", "state.badAddress"]);
});
