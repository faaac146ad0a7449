// web/chairrows.js: the chair panel's order (hands first), filters and name search.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CHAIR_FILTERS, chairRows, compareRows, matchesQuery, passesFilter } from "../../web/chairrows.js";

const person = (id, name, extra = {}) => ({
  id,
  name,
  role: "participant",
  audio: true,
  video: true,
  chair_muted_audio: false,
  chair_muted_video: false,
  hand_raised: false,
  quality: "good",
  connection: "connected",
  ...extra,
});

const PEOPLE = [
  person("c", "Ines Chair", { role: "chair", self: true }),
  person("a", "Amara"),
  person("b", "Bashir", { audio: false }),
  person("d", "Dakar", { hand_raised: true }),
  person("e", "Elbasan", { quality: "poor", hand_raised: true }),
  person("f", "Freetown", { chair_muted_audio: true, audio: false }),
  person("g", "Gdansk", { connection: "reconnecting" }),
  person("h", "Hanoi", { quality: "fair" }),
];

test("raised hands come first, in the order raised, then the chair, then by name", () => {
  const { order } = chairRows(PEOPLE, { hands: ["e", "d"] });
  assert.deepEqual(order, ["e", "d", "c", "a", "b", "f", "g", "h"]);
});

test("a hand the queue does not list yet still comes before the others", () => {
  const { order } = chairRows(PEOPLE, { hands: ["e"] });
  assert.deepEqual(order.slice(0, 3), ["e", "d", "c"]);
});

test("without hands the chair is first and the rest are by name", () => {
  const people = PEOPLE.map((p) => ({ ...p, hand_raised: false }));
  const { order } = chairRows(people, {});
  assert.deepEqual(order, ["c", "a", "b", "d", "e", "f", "g", "h"]);
});

test("each filter keeps only the participants it names", () => {
  const context = { hands: ["e", "d"], speaking: new Set(["a", "c"]) };
  const shown = (filter) => [...chairRows(PEOPLE, { ...context, filter }).shown].sort();
  assert.deepEqual(shown("speaking"), ["a", "c"]);
  assert.deepEqual(shown("hands"), ["d", "e"]);
  assert.deepEqual(shown("muted"), ["b", "f"]); // mic off, or muted by the chair
  assert.deepEqual(shown("weak"), ["e", "g", "h"]); // poor, reconnecting, fair
  assert.deepEqual(shown(""), ["a", "b", "c", "d", "e", "f", "g", "h"]);
  assert.deepEqual(shown("nonsense"), shown(""));
});

test("the counts say how many each filter leaves, whatever the search", () => {
  const { counts } = chairRows(PEOPLE, {
    hands: ["e", "d"],
    speaking: new Set(["a"]),
    query: "zzz",
  });
  assert.deepEqual(counts, { speaking: 1, hands: 2, muted: 2, weak: 3 });
  assert.deepEqual(Object.keys(counts), CHAIR_FILTERS);
});

test("the name search narrows within a filter, ignoring case and spaces around it", () => {
  const { shown } = chairRows(PEOPLE, { hands: ["e", "d"], filter: "hands", query: "  DAK " });
  assert.deepEqual([...shown], ["d"]);
  assert.equal(matchesQuery("São Paulo", "são"), true);
  assert.equal(matchesQuery("Lima", "rio"), false);
  assert.equal(matchesQuery("Lima", ""), true);
});

test("a chair-muted participant whose microphone is on still counts as muted", () => {
  assert.equal(passesFilter(person("x", "X", { chair_muted_audio: true }), "muted"), true);
  assert.equal(passesFilter(person("x", "X"), "muted"), false);
});

test("equal names keep a stable order by id", () => {
  const a = person("2", "Lima");
  const b = person("1", "Lima");
  assert.ok(compareRows(a, b) > 0);
  assert.deepEqual(chairRows([a, b]).order, ["1", "2"]);
});

test("the input list is not reordered in place", () => {
  const people = [person("b", "B"), person("a", "A")];
  chairRows(people);
  assert.deepEqual(people.map((p) => p.id), ["b", "a"]);
});
