// web/join.js: what the page joins with, and a guest's resume key kept for the tab.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { joinFrom, joinRequest, joiningWords, keepResume, readResume, resumeSlot } from "../../web/join.js";

afterEach(() => {
  delete globalThis.sessionStorage;
});

test("a join is a token, or a room with a name (a listener's name optional); nothing else", () => {
  assert.deepEqual(joinFrom({ token: 42, room: "ignored", name: "x" }), { token: "42" });
  assert.deepEqual(joinFrom({ room: "demo", name: "Ana", extra: 1 }), { room: "demo", name: "Ana" });
  assert.deepEqual(joinFrom({ room: "demo", watch: 1 }), { room: "demo", watch: true });
  for (const bad of [null, {}, { room: "demo" }, { name: "Ana" }, { room: "", name: "Ana" }]) {
    assert.throws(() => joinFrom(bad), TypeError, JSON.stringify(bad));
  }
});

test("the join message says the page confirms slots; the words name the room when there is one", () => {
  assert.deepEqual(joinRequest({ room: "demo", name: "Ana", resume: "k" }), {
    type: "join", room: "demo", name: "Ana", resume: "k", confirms_slots: true,
  });
  assert.deepEqual(joiningWords({ room: "demo" }), { key: "state.joiningRoom", params: { room: "demo" } });
  assert.deepEqual(joiningWords({ token: "t" }), { key: "state.joining", params: {} });
});

test("only a guest keeps a resume key, under its room and name", () => {
  assert.equal(resumeSlot({ room: "demo", name: "Ana" }), "confsfu.resume:demo:Ana");
  assert.equal(resumeSlot({ token: "t" }), null);
  assert.equal(resumeSlot({ room: "demo", watch: true }), null);
});

test("the key is kept in sessionStorage; no storage, or a refusing one, keeps nothing and throws nothing", () => {
  assert.equal(readResume("confsfu.resume:demo:Ana"), null); // outside a page
  keepResume("confsfu.resume:demo:Ana", "k1");
  const kept = new Map();
  globalThis.sessionStorage = { getItem: (k) => kept.get(k) ?? null, setItem: (k, v) => kept.set(k, v) };
  keepResume("confsfu.resume:demo:Ana", "k2");
  keepResume(null, "k3"); // a token or a listener: nowhere to keep it
  assert.deepEqual([...kept], [["confsfu.resume:demo:Ana", "k2"]]);
  assert.equal(readResume("confsfu.resume:demo:Ana"), "k2");
  assert.equal(readResume(null), null);
  globalThis.sessionStorage = {
    getItem: () => { throw new Error("SecurityError"); },
    setItem: () => { throw new Error("QuotaExceededError"); },
  };
  assert.equal(readResume("confsfu.resume:demo:Ana"), null);
  keepResume("confsfu.resume:demo:Ana", "k4");
});
