// web/requests.js: the requests the page sends, checked and bounded before they go out.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CHAIR_ACTIONS,
  CHAT_SEND_MAX_CHARS,
  chairRequest,
  chatRequest,
  gridPageOf,
  pinRequest,
  stageHeightOf,
  unmuteRequest,
} from "../../web/requests.js";

test("a chair action carries only its known fields, and an unknown action is refused", () => {
  assert.deepEqual(chairRequest("mute", { participant_id: "p2", kind: "audio", extra: 1, limit_s: undefined }), {
    type: "chair", action: "mute", participant_id: "p2", kind: "audio",
  });
  assert.deepEqual(chairRequest("mute_all"), { type: "chair", action: "mute_all" });
  assert.throws(() => chairRequest("explode"), TypeError);
  assert.throws(() => chairRequest("toString"), TypeError);
  assert.ok(CHAIR_ACTIONS.includes("remove_chat") && Object.isFrozen(CHAIR_ACTIONS));
});

test("an unmute request is for audio or video only", () => {
  assert.deepEqual(unmuteRequest("video"), { type: "request_unmute", kind: "video" });
  assert.throws(() => unmuteRequest("screen"), TypeError);
});

test("a chat post is trimmed and cut; nothing left sends nothing", () => {
  assert.deepEqual(chatRequest("  hi  "), { type: "chat_send", text: "hi" });
  assert.equal(chatRequest(" \n\t "), null);
  assert.equal(chatRequest(null), null);
  assert.equal(chatRequest("x".repeat(CHAT_SEND_MAX_CHARS + 50)).text.length, CHAT_SEND_MAX_CHARS);
});

test("grid pages and stage heights are whole numbers within bounds", () => {
  assert.deepEqual([gridPageOf(2.7), gridPageOf(-1), gridPageOf("x"), gridPageOf(1e9)], [2, 0, 0, 1000]);
  assert.deepEqual([stageHeightOf(720.6), stageHeightOf(-5), stageHeightOf(NaN), stageHeightOf(1e6)], [721, 0, 0, 16384]);
});

test("a pin names a participant, or null for the room's stage", () => {
  assert.deepEqual(pinRequest("p7"), { type: "pin", participant_id: "p7" });
  assert.deepEqual(pinRequest(undefined), { type: "pin", participant_id: null });
});
