// web/negotiation.js: the camera's publish connection and the subscribe connection, with fake
// PeerConnections: what goes out in which order, stale answers dropped, failures in words.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Negotiation, pcConfigFrom } from "../../web/negotiation.js";

class FakePc extends EventTarget {
  constructor(config) {
    super();
    this.config = config;
    this.iceGatheringState = "complete";
    this.connectionState = "new";
    this.transceivers = [];
    this.closed = false;
    this.remote = null;
    this.failRemote = false;
  }

  addTransceiver(trackOrKind, init) {
    const t = { trackOrKind, init, mid: null, receiver: { track: null } };
    this.transceivers.push(t);
    return t;
  }

  getTransceivers() {
    return this.transceivers;
  }

  async createOffer() {
    return { type: "offer", sdp: `offer with ${this.transceivers.length} m-lines` };
  }

  async createAnswer() {
    return { type: "answer", sdp: `answer to ${this.remote.sdp}` };
  }

  async setLocalDescription(d) {
    this.localDescription = d;
  }

  async setRemoteDescription(d) {
    if (this.failRemote) throw new Error("bad sdp");
    this.remote = d;
  }

  close() {
    this.closed = true;
  }

  /** The browser found a track for `mid`. */
  track(mid, track) {
    const event = new Event("track");
    event.transceiver = { mid };
    event.track = track;
    this.dispatchEvent(event);
  }

  changeState(state) {
    this.connectionState = state;
    this.dispatchEvent(new Event("connectionstatechange"));
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A negotiation with its client's side recorded; `epoch` is what the client calls current. */
function negotiation() {
  const io = { sent: [], pcs: [], failures: [], slots: [], tracks: 0, published: 0, states: [], epoch: 1 };
  io.media = new Negotiation({
    makePc: (config) => {
      const pc = new FakePc(config);
      io.pcs.push(pc);
      return pc;
    },
    send: (m) => io.sent.push(m) > 0,
    current: (epoch) => epoch === io.epoch,
    pcState: (epoch, state) => io.states.push([epoch, state]),
    fail: (error) => io.failures.push(error),
    offeredSlots: (list) => io.slots.push(list),
    tracks: () => {
      io.tracks += 1;
    },
    published: () => {
      io.published += 1;
    },
  });
  return io;
}

const stream = {
  getAudioTracks: () => ["mic"],
  getVideoTracks: () => ["camera"],
};
const joined = { type: "joined", role: "participant", ice_servers: [{ urls: "stun:stun.example" }] };

test("the camera's offer waits for the server's subscribe offer; then its answer is taken", { timeout: 10_000 }, async () => {
  const io = negotiation();
  const opened = io.media.open(1, joined, { stream, simulcast: true, listener: false });
  await settle();
  assert.deepEqual(io.sent, []); // the server takes our offer once it has made its own
  const [subscribe, publish] = io.pcs;
  assert.deepEqual(publish.transceivers.map((t) => t.trackOrKind), ["mic", "camera"]);
  assert.equal(publish.transceivers[1].init.sendEncodings.length, 3); // simulcast
  io.media.offer(1, { type: "subscribe_offer", sdp: "sub-1", slots: [{ mid: "0" }] });
  await opened;
  await settle();
  assert.deepEqual(io.sent.map((m) => m.type).sort(), ["publish_offer", "subscribe_answer"]);
  const offer = io.sent.find((m) => m.type === "publish_offer");
  assert.deepEqual(offer, { type: "publish_offer", sdp: "offer with 2 m-lines", purpose: "camera" });
  assert.equal(io.published, 1);
  assert.deepEqual(io.slots, [[{ mid: "0" }]]);
  assert.equal(subscribe.remote.sdp, "sub-1");
  await io.media.answered(1, "pub-answer");
  assert.deepEqual(publish.remote, { type: "answer", sdp: "pub-answer" });
  assert.deepEqual(io.failures, []);
});

test("a listener has only the subscribe connection; without simulcast one encoding", { timeout: 10_000 }, async () => {
  const io = negotiation();
  await io.media.open(1, { ...joined, role: "listener" }, { stream: null, simulcast: true, listener: true });
  assert.equal(io.pcs.length, 1);
  assert.equal(io.media.publishPc, null);
  assert.deepEqual(io.media.states(), ["new"]);

  const plain = negotiation();
  plain.media.open(1, joined, { stream: null, simulcast: false, listener: false });
  await settle();
  assert.deepEqual(plain.pcs[1].transceivers.map((t) => t.trackOrKind), ["audio", "video"]);
  assert.equal(plain.pcs[1].transceivers[1].init.sendEncodings, undefined);
});

test("subscribe offers are answered one at a time, in order; tracks are kept by mid", { timeout: 10_000 }, async () => {
  const io = negotiation();
  await io.media.open(1, joined, { stream: null, simulcast: false, listener: true });
  const pc = io.pcs[0];
  pc.track("0", "audio-track");
  assert.equal(io.media.track("0"), "audio-track");
  assert.equal(io.tracks, 1);
  io.media.offer(1, { sdp: "sub-1", slots: [] });
  pc.transceivers.push({ mid: "1", receiver: { track: "video-track" } }); // learned by the answer
  io.media.offer(1, { sdp: "sub-2", slots: [] });
  await settle();
  await settle();
  assert.deepEqual(io.sent.map((m) => m.sdp), ["answer to sub-1", "answer to sub-2"]);
  assert.equal(io.media.track("1"), "video-track");
  assert.equal(io.media.track("9"), null);
});

test("what belongs to an old connection is dropped: its offers, tracks and states", { timeout: 10_000 }, async () => {
  const io = negotiation();
  await io.media.open(1, joined, { stream: null, simulcast: false, listener: true });
  const pc = io.pcs[0];
  pc.changeState("connected");
  io.epoch = 2; // the client moved on
  pc.changeState("failed");
  pc.track("0", "late-track");
  io.media.offer(1, { sdp: "stale", slots: [{ mid: "0" }] });
  await settle();
  assert.deepEqual(io.states, [[1, "connected"]]);
  assert.equal(io.media.track("0"), null);
  assert.deepEqual(io.sent, []);
  assert.deepEqual(io.slots, []);
});

test("a failed answer ends the meeting in words naming the step; close resets everything", { timeout: 10_000 }, async (t) => {
  const io = negotiation();
  await io.media.open(1, joined, { stream: null, simulcast: false, listener: true });
  io.pcs[0].failRemote = true;
  io.media.offer(1, { sdp: "broken", slots: [] });
  await settle();
  assert.equal(io.failures.length, 1);
  assert.deepEqual(io.failures[0].words, { key: "state.subscribeFailed", params: { detail: "bad sdp" } });
  io.media.close();
  assert.equal(io.pcs[0].closed, true);
  assert.equal(io.media.subscribePc, null);
  assert.equal(io.media.config, null);
  assert.deepEqual(io.media.states(), []);
  t.mock.method(console, "warn", () => {});
  io.media.offer(1, { sdp: "before joined", slots: [] }); // no connection: ignored with a warning
  await settle();
  assert.equal(console.warn.mock.callCount(), 1);
  assert.equal(io.failures.length, 1);
});

test("the PeerConnections' configuration: the server's ICE servers, relay only when it says so", () => {
  assert.deepEqual(pcConfigFrom(joined), {
    bundlePolicy: "max-bundle",
    iceServers: [{ urls: "stun:stun.example" }],
    iceTransportPolicy: "all",
  });
  assert.equal(pcConfigFrom({ ice_transport_policy: "relay" }).iceTransportPolicy, "relay");
  assert.equal(pcConfigFrom({ ice_transport_policy: "anything" }).iceTransportPolicy, "all");
});
