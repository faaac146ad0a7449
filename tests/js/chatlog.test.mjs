// web/chatlog.js: the room's chat as the page keeps it.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CHAT_KEEP, chatAfter, chatEntry, chatHistory, chatPosted, chatRemoved } from "../../web/chatlog.js";

const raw = (id, text = `m${id}`) => ({ id, sender: "p2", name: "Lima", role: "participant", sent_ms: id, text });

test("an entry keeps the fields the page relies on, as plain values; one without an id is none", () => {
  assert.deepEqual(chatEntry({ id: 4, sender: 7, name: null, role: "admin", text: 5, extra: "<b>" }), {
    id: 4, sender: "7", name: "", role: "participant", sent_ms: 0, text: "5",
  });
  assert.equal(chatEntry({ id: 4, role: "chair" }).role, "chair");
  for (const m of [null, {}, { id: "4" }, { id: 1.5 }, { id: Number.MAX_SAFE_INTEGER + 2 }]) {
    assert.equal(chatEntry(m), null, JSON.stringify(m));
  }
});

test("history, posts and removals: in order, no repeats, at most CHAT_KEEP", () => {
  assert.deepEqual(chatHistory("nonsense"), []);
  let log = chatHistory([raw(1), null, raw(2)]);
  assert.deepEqual(log.map((m) => m.id), [1, 2]);
  const posted = chatPosted(log, raw(3));
  assert.deepEqual(posted.message, chatEntry(raw(3)));
  assert.deepEqual(log.map((m) => m.id), [1, 2]); // the old log is left as it was
  log = posted.log;
  assert.equal(chatPosted(log, raw(3)), null); // already there
  assert.equal(chatPosted(log, { text: "no id" }), null);
  assert.deepEqual(chatRemoved(log, 2).map((m) => m.id), [1, 3]);
  for (let id = 4; id < CHAT_KEEP + 10; id++) log = chatPosted(log, raw(id)).log;
  assert.equal(log.length, CHAT_KEEP);
  assert.equal(log.at(-1).id, CHAT_KEEP + 9);
  const many = Array.from({ length: CHAT_KEEP + 50 }, (_, i) => raw(i + 1));
  assert.equal(chatHistory(many).length, CHAT_KEEP);
  assert.equal(chatHistory(many)[0].id, 51);
});

test("a chat message's change as the client tells it; a repeat or another message changes nothing", () => {
  const history = chatAfter([], { type: "chat_history", messages: [raw(1), raw(2)] });
  assert.deepEqual(history.change, { kind: "history" });
  assert.deepEqual(history.log.map((m) => m.id), [1, 2]);
  const posted = chatAfter(history.log, { type: "chat", message: raw(3, "hi") });
  assert.equal(posted.change.kind, "posted");
  assert.equal(posted.change.message.text, "hi");
  assert.notEqual(posted.change.message, posted.log[2]); // a copy: the event cannot change the log
  assert.equal(chatAfter(posted.log, { type: "chat", message: raw(3) }), null);
  const removed = chatAfter(posted.log, { type: "chat_removed", message_id: "2" });
  assert.deepEqual(removed.change, { kind: "removed", message_id: 2 });
  assert.deepEqual(removed.log.map((m) => m.id), [1, 3]);
  assert.equal(chatAfter(removed.log, { type: "room_state" }), null);
});
