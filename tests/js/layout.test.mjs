// web/layout.js: the stored layout, what the stage shows, pins, tile connection words, speaking.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  keptPin,
  layerText,
  loadLayout,
  saveLayout,
  Speaking,
  stageView,
  tileConnection,
  togglePin,
} from "../../web/layout.js";

function memoryStorage() {
  const data = new Map();
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, String(v)) };
}

test("the layout is remembered; anything else stored reads as speaker view", () => {
  const storage = memoryStorage();
  assert.equal(loadLayout(storage), "speaker");
  saveLayout("grid", storage);
  assert.equal(loadLayout(storage), "grid");
  saveLayout("mosaic", storage); // not a layout: not stored
  assert.equal(loadLayout(storage), "grid");
  storage.setItem("confsfu.layout", "<b>");
  assert.equal(loadLayout(storage), "speaker");
  const refusing = { getItem() { throw new Error("denied"); }, setItem() { throw new Error("denied"); } };
  assert.equal(loadLayout(refusing), "speaker");
  saveLayout("grid", refusing); // does not throw
  assert.equal(loadLayout(null), "speaker");
});

const stage = (pid) => ({ kind: "video", purpose: "stage", mid: "1", participant_id: pid });
const grid = (pid) => ({ kind: "video", purpose: "grid", mid: "2", participant_id: pid });

test("the stage: the room's, the pinned one, or the one before you while you are on it", () => {
  const slots = [grid("b"), stage("a")];
  assert.deepEqual(stageView({ slots, selfId: "me", room: { stage: "a" } }),
    { slot: slots[1], why: "stage", selfOnStage: false });
  assert.equal(stageView({ slots, selfId: "me", room: { stage: "c" }, pin: "a" }).why, "pinned");
  // You speak: the server's stage slot carries whoever was on the stage before you.
  assert.deepEqual(stageView({ slots, selfId: "me", room: { stage: "me" } }),
    { slot: slots[1], why: "previous", selfOnStage: true });
  // Nobody before you: no stage at all (the page shows the grid), never an empty box of you.
  assert.deepEqual(stageView({ slots: [stage(null)], selfId: "me", room: { stage: "me" } }),
    { slot: null, why: null, selfOnStage: true });
  assert.equal(stageView({ slots: [stage("me")], selfId: "me", room: {} }).slot, null);
  assert.equal(stageView({ slots: [], selfId: null, room: null }).slot, null);
});

test("pins toggle, and end when the pinned participant leaves", () => {
  assert.equal(togglePin(null, "a"), "a");
  assert.equal(togglePin("a", "a"), null);
  assert.equal(togglePin("a", "b"), "b");
  assert.equal(keptPin("a", { a: {} }), "a");
  assert.equal(keptPin("a", { b: {} }), null);
  assert.equal(keptPin("constructor", {}), null);
  assert.equal(keptPin(null, { a: {} }), null);
});

test("a tile says its connection in plain words; the layer only with details open", () => {
  const slot = { spatial: 0, temporal: 1, reason: "tile size" };
  assert.equal(layerText(slot), "low, ½ frame rate: tile size");
  assert.equal(layerText({ spatial: 2, temporal: 2, reason: "optimal" }), "high");
  assert.equal(layerText({ spatial: null, temporal: null, reason: "bandwidth" }), "paused: bandwidth");
  assert.equal(layerText(null), "");
  assert.deepEqual(tileConnection(slot, { quality: "fair" }, false),
    { quality: "fair", qualityText: "fair connection", details: "" });
  assert.equal(tileConnection(slot, { quality: "poor" }, true).details, "low, ½ frame rate: tile size");
  assert.equal(tileConnection(slot, { quality: "__proto__" }, false).quality, "unknown");
  assert.equal(tileConnection(slot, null, false).qualityText, "connection not measured yet");
});

test("speaking follows the level, holds over short pauses and ends after the hold", () => {
  const s = new Speaking({ level: 0.03, holdMs: 800 });
  s.feed("a", 0.2, 1000);
  s.feed("b", 0.01, 1000); // too quiet
  s.feed(null, 0.5, 1000); // an empty slot
  assert.deepEqual([...s.now(1000)], ["a"]);
  assert.deepEqual([...s.now(1700)], ["a"]); // a pause between words
  s.feed("b", 0.05, 1750);
  assert.deepEqual([...s.now(1800)].sort(), ["b"]); // a stopped 800 ms ago
  assert.deepEqual([...s.now(2600)], []);
});
