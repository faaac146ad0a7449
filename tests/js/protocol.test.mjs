// web/protocol.js's ConferenceClient with an injected WebSocket and RTCPeerConnection: what it
// sends and what it makes of what the server says (no browser, no server).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ConferenceClient, PROTOCOL_VERSION } from "../../web/protocol.js";

class FakeSocket extends EventTarget {
  static last = null;

  constructor(url) {
    super();
    this.url = url;
    this.readyState = 1;
    this.sent = [];
    FakeSocket.last = this;
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.readyState = 3;
  }

  /** The server says `msg`. */
  deliver(msg) {
    const event = new Event("message");
    event.data = JSON.stringify(msg);
    this.dispatchEvent(event);
  }

  sentOf(type) {
    return this.sent.filter((m) => m.type === type);
  }
}

class FakePc extends EventTarget {
  constructor(config) {
    super();
    this.config = config;
    this.connectionState = "new";
    this.iceGatheringState = "complete";
  }

  addTransceiver() {
    return {};
  }

  async createOffer() {
    return { type: "offer", sdp: "v=0" };
  }

  async setLocalDescription(d) {
    this.localDescription = d;
  }

  close() {}
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A listener's client, joined (a listener has no publish connection to set up). */
async function joinedListener() {
  const client = new ConferenceClient({
    url: "ws://server/ws",
    join: { room: "demo", watch: true },
    reconnect: false,
    WebSocketImpl: FakeSocket,
    RTCPeerConnectionImpl: FakePc,
  });
  const started = client.start();
  const ws = FakeSocket.last;
  ws.deliver({ type: "hello", protocol_version: PROTOCOL_VERSION, server: "confsfu test" });
  assert.deepEqual(ws.sentOf("join").map((m) => m.room), ["demo"]);
  ws.deliver({
    type: "joined",
    participant_id: "p1",
    room: "demo",
    name: "",
    role: "listener",
    grid_page_size: 9,
    participants: [],
  });
  await started;
  return { client, ws };
}

test("a stage resized many times is told once, at its latest size, and again after a join", async () => {
  const { client, ws } = await joinedListener();
  client.setStageSize(300.4);
  client.setStageSize(410);
  client.setStageSize(720.6);
  assert.equal(ws.sentOf("stage_size").length, 0); // not yet: sizes go out at most every 250 ms
  await sleep(300);
  assert.deepEqual(ws.sentOf("stage_size"), [{ type: "stage_size", height: 721 }]);
  client.setStageSize(721); // the same size: nothing new to say
  client.setStageSize(-5); // hidden or nonsense: 0, "not known"
  await sleep(300);
  assert.deepEqual(ws.sentOf("stage_size").map((m) => m.height), [721, 0]);
  client.setStageSize(1080);
  await sleep(300);
  // The server forgets a subscriber's size with its connection: the next join says it again.
  ws.deliver({ type: "joined", participant_id: "p1", room: "demo", role: "listener", participants: [] });
  await sleep(0);
  assert.deepEqual(ws.sentOf("stage_size").map((m) => m.height), [721, 0, 1080, 1080]);
  client.leave();
});

test("chat: what is sent is trimmed, nothing empty goes out, posts and removals are kept in order", async () => {
  const { client, ws } = await joinedListener();
  const changes = [];
  client.addEventListener("chat", (e) => changes.push(e.detail));
  assert.equal(client.sendChat("   "), false);
  assert.equal(client.sendChat("  Hello <b>Seoul</b>  "), true);
  assert.deepEqual(ws.sentOf("chat_send"), [{ type: "chat_send", text: "Hello <b>Seoul</b>" }]);
  const post = (id, text) => ({ type: "chat", message: { id, sender: "p2", name: "Lima", text } });
  ws.deliver(post(1, "first"));
  ws.deliver(post(2, "second"));
  ws.deliver(post(2, "second")); // a repeat is ignored
  ws.deliver({ type: "chat_removed", message_id: 1 });
  assert.deepEqual(changes.map((c) => c.change.kind), ["posted", "posted", "removed"]);
  assert.deepEqual(client.chat.map((m) => [m.id, m.text]), [[2, "second"]]);
  client.leave();
});

test("pin sends the participant, or null for the room's stage again", async () => {
  const { client, ws } = await joinedListener();
  client.pin("p7");
  client.pin(null);
  assert.deepEqual(ws.sentOf("pin").map((m) => m.participant_id), ["p7", null]);
  client.leave();
});

test("a bye with a listed reason ends the meeting in its own words (it threw 'msg is not a function')", async () => {
  const { client, ws } = await joinedListener();
  const states = [];
  client.addEventListener("state", (e) => states.push(e.detail));
  ws.deliver({ type: "bye", reason: "You joined this meeting again from another window" });
  assert.deepEqual(states.map((s) => [s.state, s.words.key]), [["closed", "bye.otherWindow"]]);
  assert.equal(client.state, "closed");
});

test("a bye after a server_stopping notice is a loss to come back from, not the meeting's end", async () => {
  const { client, ws } = await joinedListener();
  const states = [];
  client.addEventListener("state", (e) => states.push([e.detail.state, e.detail.words.key]));
  ws.deliver({ type: "notice", code: "server_stopping", text: "restarting" });
  ws.deliver({ type: "bye", reason: "the server is restarting" });
  // Made with reconnect off, this client cannot come back: it fails, in the restart's words.
  assert.deepEqual(states, [["failed", "state.restarting"]]);
  assert.equal(ws.readyState, 3);

  const other = await joinedListener();
  const closed = [];
  other.client.addEventListener("state", (e) => closed.push([e.detail.state, e.detail.words.key]));
  other.ws.deliver({ type: "bye", reason: "the chair ended the meeting" });
  assert.deepEqual(closed, [["closed", "bye.ended"]]);
});

test("a chair's mute about this participant turns its microphone off and tells the others once", async () => {
  const client = new ConferenceClient({
    url: "ws://server/ws",
    join: { room: "demo", name: "Ana" },
    reconnect: false,
    WebSocketImpl: FakeSocket,
    RTCPeerConnectionImpl: FakePc,
  });
  const mic = { enabled: true };
  const local = { getAudioTracks: () => [mic], getVideoTracks: () => [] };
  client.start(local).catch(() => {});
  const ws = FakeSocket.last;
  ws.deliver({ type: "hello", protocol_version: PROTOCOL_VERSION, server: "confsfu test" });
  ws.deliver({ type: "joined", participant_id: "p1", room: "demo", name: "Ana", role: "participant", participants: [] });
  await sleep(0);
  assert.deepEqual(client.mediaState, { audio: true, video: false });
  ws.deliver({ type: "participant_updated", participant: { id: "p1", chair_muted_audio: true } });
  assert.equal(mic.enabled, false);
  assert.deepEqual(client.mediaState, { audio: false, video: false });
  assert.deepEqual(ws.sentOf("media_state").map((m) => m.audio), [false]);
  assert.equal(client.setMicrophone(true), false); // the chair's mute holds
  assert.equal(mic.enabled, false);
  client.leave();
});
