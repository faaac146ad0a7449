// web/slotmap.js: the subscriber's slots from subscribe_offer and slot_map.
import assert from "node:assert/strict";
import { test } from "node:test";

import { mergeSlots, slotFrom, videoMoved } from "../../web/slotmap.js";

test("a slot gets every field the page relies on, with the defaults the protocol gives", () => {
  assert.deepEqual(slotFrom({ mid: 3, kind: "video" }), {
    mid: "3", kind: "video", purpose: "grid", source: null, participant_id: null, name: null,
    spatial: null, temporal: null, reason: null, state: "empty", since_ts: null, track: null,
  });
  assert.equal(slotFrom({ mid: "0", kind: "audio" }).purpose, "audio");
  assert.equal(slotFrom({ mid: "1", kind: "video", participant_id: "p2" }).state, "live");
  assert.equal(slotFrom({ mid: "1", kind: "video", participant_id: "p2", state: "waiting" }).state, "waiting");
});

test("a slot map updates by mid and keeps the order; a new offer replaces the list", () => {
  const offer = mergeSlots([], [
    { mid: "0", kind: "audio" },
    { mid: "1", kind: "video", purpose: "stage" },
    { mid: "2", kind: "video" },
  ], true);
  assert.deepEqual(offer.map((s) => s.mid), ["0", "1", "2"]);
  const before = offer.slice();
  const mapped = mergeSlots(offer, [{ mid: "2", kind: "video", participant_id: "p3", name: "Lima" }], false);
  assert.deepEqual(mapped.map((s) => [s.mid, s.participant_id]), [["0", null], ["1", null], ["2", "p3"]]);
  assert.deepEqual(offer, before); // the old list is left as it was
  const added = mergeSlots(mapped, [{ mid: "9", kind: "video" }], false);
  assert.deepEqual(added.map((s) => s.mid), ["0", "1", "2", "9"]);
  const again = mergeSlots(added, [{ mid: "5", kind: "audio" }], true);
  assert.deepEqual(again.map((s) => s.mid), ["5"]);
});

test("whatever else the server sends leaves the slots as they were", () => {
  const slots = mergeSlots([], [{ mid: "0", kind: "audio" }], true);
  for (const list of [undefined, null, "slots", { mid: "1" }, [null, 7, { kind: "video" }]]) {
    assert.deepEqual(mergeSlots(slots, list, false), slots, JSON.stringify(list));
  }
});

test("a video slot moved to someone else is seen; audio moves and unchanged slots are not", () => {
  const slots = mergeSlots([], [
    { mid: "0", kind: "audio", participant_id: "p1" },
    { mid: "1", kind: "video", participant_id: "p2" },
  ], true);
  const before = new Map(slots.map((s) => [s.mid, s.participant_id]));
  assert.equal(videoMoved(before, slots), false);
  assert.equal(videoMoved(before, mergeSlots(slots, [{ mid: "0", kind: "audio", participant_id: "p3" }], false)), false);
  assert.equal(videoMoved(before, mergeSlots(slots, [{ mid: "1", kind: "video", participant_id: "p3" }], false)), true);
});
