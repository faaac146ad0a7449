// web/selfstate.js and web/localmedia.js: this participant as the server sees it, and its own
// microphone and camera.
import assert from "node:assert/strict";
import { test } from "node:test";

import { LocalMedia } from "../../web/localmedia.js";
import { applySelfInfo, handRaised, mayChat, mayShareScreen, selfFrom } from "../../web/selfstate.js";

const joined = {
  type: "joined", participant_id: "p1", room: "demo", name: "Ana", role: "participant",
  you: { chair_muted_audio: 1, hand_raised: true }, resumed: true,
};

test("self from joined: the moderation state as booleans, quality unknown until told", () => {
  assert.deepEqual(selfFrom(joined), {
    id: "p1", participant_id: "p1", room: "demo", name: "Ana", role: "participant",
    chair_muted_audio: true, chair_muted_video: false, hand_raised: true, unmute_requested: false,
    quality: "unknown", resumed: true,
  });
  assert.equal(selfFrom({ participant_id: "p2" }).chair_muted_video, false); // no `you`
});

test("an update says which kinds a chair has just muted, and whether any mute changed", () => {
  const self = selfFrom({ ...joined, you: {} });
  assert.deepEqual(applySelfInfo(self, { chair_muted_video: true, name: "Someone else" }), {
    newlyMuted: { audio: false, video: true }, mutesChanged: true,
  });
  assert.equal(self.name, "Ana"); // only the moderation fields are taken
  assert.deepEqual(applySelfInfo(self, { chair_muted_video: true, quality: "poor" }), {
    newlyMuted: { audio: false, video: false }, mutesChanged: false,
  });
  assert.equal(self.quality, "poor");
  assert.deepEqual(applySelfInfo(self, { chair_muted_video: false }), {
    newlyMuted: { audio: false, video: false }, mutesChanged: true, // lifted: the others are told
  });
});

test("who may share a screen and chat, and whose hand is up", () => {
  const me = { id: "p1", role: "participant" };
  assert.equal(mayShareScreen(null, {}), false);
  assert.equal(mayShareScreen(me, { presenter: "p2", floor_holder: "p3" }), false);
  assert.equal(mayShareScreen(me, { floor_holder: "p1" }), true);
  assert.equal(mayShareScreen({ ...me, role: "chair" }, {}), true);
  assert.equal(mayChat(me, { chat_enabled: false }), false);
  assert.equal(mayChat({ ...me, role: "chair" }, { chat_enabled: false }), true);
  assert.equal(mayChat(me, null), true);
  assert.equal(handRaised(me, { hands: ["p2", "p1"] }), true);
  assert.equal(handRaised(me, null), false);
});

class Track {
  enabled = true;
}

function stream(audio, video) {
  const a = Array.from({ length: audio }, () => new Track());
  const v = Array.from({ length: video }, () => new Track());
  return { getAudioTracks: () => a, getVideoTracks: () => v };
}

test("local media: switching turns tracks off and on; a chair's mute refuses switching on", () => {
  const local = new LocalMedia();
  assert.deepEqual(local.state(), { audio: false, video: false }); // nothing to send
  local.stream = stream(1, 1);
  assert.deepEqual(local.state(), { audio: true, video: true });
  assert.equal(local.set("audio", false), true);
  assert.equal(local.stream.getAudioTracks()[0].enabled, false);
  assert.deepEqual(local.state(), { audio: false, video: true });
  const muted = { chair_muted_audio: true, chair_muted_video: false };
  assert.equal(local.set("audio", true, muted), false);
  assert.equal(local.stream.getAudioTracks()[0].enabled, false);
  assert.equal(local.set("audio", true), true);
  assert.deepEqual(local.state(muted), { audio: false, video: true }); // on, but the chair's mute holds
  local.stream = stream(1, 0);
  assert.deepEqual(local.state(), { audio: true, video: false });
});
