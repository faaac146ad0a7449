// web/rowfreeze.js: the chair panel's rows stay put under the pointer and an open row menu.
import assert from "node:assert/strict";
import { test } from "node:test";

import { frozenRows, RowFreeze, SETTLE_MS } from "../../web/rowfreeze.js";

const rows = (order, shown = order) => ({ order, shown: new Set(shown), counts: {} });

test("rows are held while busy and for the settle time after, then free", () => {
  const freeze = new RowFreeze();
  assert.equal(freeze.held(0), false);
  freeze.note(100, true); // the pointer enters the list
  assert.equal(freeze.held(5_000), true);
  assert.equal(freeze.releaseAt(5_000), null); // busy: no timer, the next note() says
  freeze.note(5_000, false); // it leaves
  assert.equal(freeze.held(5_000 + SETTLE_MS - 1), true);
  assert.equal(freeze.releaseAt(5_001), 5_000 + SETTLE_MS);
  assert.equal(freeze.held(5_000 + SETTLE_MS), false);
  assert.equal(freeze.releaseAt(5_000 + SETTLE_MS), null);
});

test("a menu opened as the pointer leaves keeps the hold; repeated notes change nothing", () => {
  const freeze = new RowFreeze(500);
  freeze.note(0, true);
  freeze.note(10, true);
  freeze.note(20, false);
  freeze.note(30, false); // not busy again: the settle time still counts from 20
  assert.equal(freeze.held(519), true);
  assert.equal(freeze.held(520), false);
  freeze.note(600, true);
  freeze.note(900, true);
  assert.equal(freeze.held(10_000), true);
});

test("the chair's own filter or search releases the hold at once", () => {
  const freeze = new RowFreeze();
  freeze.note(0, true);
  freeze.note(10, false);
  freeze.release();
  assert.equal(freeze.held(11), false);
});

test("held: everyone keeps their place even when the wanted order changed", () => {
  const before = rows(["c", "a", "b", "d"]);
  const now = rows(["d", "c", "b", "a"]); // d raised a hand, a and b swapped
  assert.deepEqual(frozenRows(before, now, true).order, ["c", "a", "b", "d"]);
  assert.deepEqual(frozenRows(before, now, false).order, ["d", "c", "b", "a"]);
});

test("held: a newcomer comes in at the end, a leaver goes", () => {
  const before = rows(["c", "a", "b", "d"]);
  const now = rows(["c", "e", "a", "d", "f"]); // b left, e and f came
  const { order, shown } = frozenRows(before, now, true);
  assert.deepEqual(order, ["c", "a", "d", "e", "f"]);
  assert.deepEqual([...shown].sort(), ["a", "c", "d", "e", "f"]);
});

test("held: rows keep whether they show; a newcomer shows as the filter says", () => {
  const before = rows(["a", "b", "c"], ["a", "b"]); // the speaking filter: a and b speak
  const now = rows(["a", "b", "c", "d", "e"], ["c", "d"]); // now c and d speak
  const held = frozenRows(before, now, true);
  assert.deepEqual(held.order, ["a", "b", "c", "d", "e"]);
  assert.deepEqual([...held.shown].sort(), ["a", "b", "d"]);
  assert.equal(held.counts, now.counts); // the counts are today's
});

test("nothing drawn yet: the wanted rows", () => {
  const now = rows(["a"]);
  assert.equal(frozenRows(null, now, true), now);
});
