// web/screenshare.js: the screen share's own publish connection, with fakes for the browser's.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ConferenceError } from "../../web/refusals.js";
import { ScreenShare } from "../../web/screenshare.js";

class FakeTrack extends EventTarget {
  constructor() {
    super();
    this.stopped = false;
  }

  stop() {
    this.stopped = true;
  }
}

class FakeStream {
  constructor() {
    this.track = new FakeTrack();
  }

  getVideoTracks() {
    return [this.track];
  }

  getTracks() {
    return [this.track];
  }
}

class FakePc extends EventTarget {
  constructor() {
    super();
    this.iceGatheringState = "complete";
    this.connectionState = "new";
    this.closed = false;
    this.remote = null;
  }

  addTransceiver(track, init) {
    this.sending = { track, init };
    return {};
  }

  async createOffer() {
    return { type: "offer", sdp: "v=0 screen" };
  }

  async setLocalDescription(d) {
    this.localDescription = d;
  }

  async setRemoteDescription(d) {
    if (d.sdp === "bad") throw new Error("bad sdp");
    this.remote = d;
  }

  close() {
    this.closed = true;
  }

  fail() {
    this.connectionState = "failed";
    this.dispatchEvent(new Event("connectionstatechange"));
  }
}

/** A share with its client's side recorded: what was sent, the `screen` events, the timers. */
function share() {
  const io = { sent: [], events: [], timers: [], pcs: [] };
  io.share = new ScreenShare({
    makePc: () => {
      const pc = new FakePc();
      io.pcs.push(pc);
      return pc;
    },
    send: (m) => io.sent.push(m) > 0,
    later: (epoch, ms, fn) => io.timers.push({ epoch, ms, fn }),
    emit: (detail) => io.events.push(detail),
  });
  return io;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("offered on its own connection; live once the server answers; stopped with an unpublish", async () => {
  const io = share();
  const stream = new FakeStream();
  const started = io.share.start(stream, 3);
  await tick();
  const [pc] = io.pcs;
  assert.equal(pc.sending.track, stream.track);
  assert.deepEqual(pc.sending.init.direction, "sendonly");
  assert.deepEqual(io.sent, [{ type: "publish_offer", sdp: "v=0 screen", purpose: "screen" }]);
  assert.deepEqual(io.timers.map((t) => [t.epoch, t.ms]), [[3, 15_000]]);
  assert.deepEqual(io.events.map((e) => [e.active, e.starting]), [[false, true]]);
  await io.share.answered("v=0 answer");
  await started;
  assert.equal(pc.remote.sdp, "v=0 answer");
  assert.deepEqual(io.events.map((e) => [e.active, e.starting]), [[false, true], [true, false]]);
  assert.equal(io.share.pc, pc);
  io.share.stop();
  assert.deepEqual(io.sent.at(-1), { type: "unpublish", purpose: "screen" });
  assert.ok(pc.closed && stream.track.stopped);
  assert.equal(io.share.pc, null);
  assert.deepEqual(io.events.at(-1), { active: false, starting: false, text: null, words: null });
  io.share.stop(); // nothing to stop: nothing sent
  assert.equal(io.sent.length, 2);
});

test("a refusal, no answer in time, or a bad answer: start rejects in words, the share stops", async () => {
  for (const ending of ["refused", "late", "bad"]) {
    const io = share();
    const stream = new FakeStream();
    const started = io.share.start(stream, 1);
    await tick();
    if (ending === "refused") io.share.refused(new ConferenceError({ key: "refusal.other", params: {} }, { code: "forbidden" }));
    if (ending === "late") io.timers[0].fn();
    if (ending === "bad") await io.share.answered("bad");
    const error = await started.then(() => null, (e) => e);
    assert.ok(error instanceof ConferenceError, ending);
    if (ending === "refused") assert.equal(error.code, "forbidden");
    if (ending === "late") assert.equal(error.words.key, "screen.noAnswer");
    if (ending === "bad") assert.equal(error.words.key, "screen.answerFailed");
    assert.equal(io.share.pc, null, ending);
    assert.ok(io.pcs[0].closed && stream.track.stopped, ending);
    assert.deepEqual(io.sent.at(-1), { type: "unpublish", purpose: "screen" }, ending);
  }
});

test("the browser's sharing ends, or the connection fails: the share stops by itself", async () => {
  const io = share();
  const stream = new FakeStream();
  const started = io.share.start(stream, 1);
  await tick();
  await io.share.answered("v=0 answer");
  await started;
  stream.track.dispatchEvent(new Event("ended"));
  assert.equal(io.share.pc, null);
  assert.deepEqual(io.sent.at(-1), { type: "unpublish", purpose: "screen" });

  const again = io.share.start(new FakeStream(), 1);
  await tick();
  await io.share.answered("v=0 answer");
  await again;
  io.pcs[1].fail();
  assert.equal(io.share.pc, null);
  assert.equal(io.events.at(-1).words.key, "screen.lost");
});

test("closed while the offer is out (the connection went): start rejects, nothing more is sent", async () => {
  const io = share();
  const started = io.share.start(new FakeStream(), 1);
  await tick();
  io.share.close({ key: "screen.connectionLost", params: {} });
  const error = await started.then(() => null, (e) => e);
  assert.equal(error.words.key, "screen.connectionLost");
  assert.deepEqual(io.sent.map((m) => m.type), ["publish_offer"]);
  io.timers[0].fn(); // the answer's time-out of a share that is gone: nothing happens
  assert.equal(io.events.at(-1).words.key, "screen.connectionLost");
});

test("open asks the browser for a screen; a connection changed meanwhile stops it and rejects", async () => {
  const io = share();
  const stream = new FakeStream();
  const devices = { getDisplayMedia: async () => stream };
  let current = true;
  const opened = io.share.open(2, () => current, devices);
  await tick();
  assert.equal(io.pcs.length, 1);
  assert.deepEqual(io.sent.map((m) => m.purpose), ["screen"]);
  await io.share.answered("v=0 answer");
  await opened;
  await io.share.open(2, () => current, devices); // already sharing: nothing more
  assert.equal(io.pcs.length, 1);
  io.share.stop();

  const later = new FakeStream();
  current = false; // the connection changed while the browser asked
  const refused = io.share.open(2, () => current, { getDisplayMedia: async () => later });
  await assert.rejects(refused, (e) => e.words.key === "screen.connectionChanged");
  assert.ok(later.track.stopped);
  assert.equal(io.pcs.length, 1); // no connection made for it
});
