// web/messages.js: the server's frames and messages checked before the client believes them.
import assert from "node:assert/strict";
import { test } from "node:test";

import { audienceFrom, errorFrom, isParticipant, parseFrame, reportFrom } from "../../web/messages.js";

test("a frame is a message only when it is JSON of an object with a string type", () => {
  assert.deepEqual(parseFrame('{"type":"pong"}'), { msg: { type: "pong" } });
  assert.deepEqual(parseFrame("{not json"), { problem: "a frame that is not JSON" });
  for (const text of ["null", "[]", "42", '"hello"', '{"type":7}', '{"kind":"hello"}']) {
    assert.deepEqual(parseFrame(text), { problem: "a frame without a type" }, text);
  }
});

test("an error's fields with defaults; fatal a boolean; a reason only when it is a string", () => {
  assert.deepEqual(errorFrom({ type: "error" }), {
    code: "unknown", message: "", field: null, in_reply_to: null, fatal: false, reason: null,
  });
  const full = errorFrom({
    type: "error", code: "bad_token", message: "expired", field: "token", in_reply_to: "join",
    fatal: 1, reason: "the token expired",
  });
  assert.deepEqual(full, {
    code: "bad_token", message: "expired", field: "token", in_reply_to: "join", fatal: true,
    reason: "the token expired",
  });
  assert.equal(errorFrom({ reason: { evil: true } }).reason, null);
});

test("audience counts are numbers, never negative", () => {
  assert.deepEqual(audienceFrom({ listeners: 3, max_listeners: 100 }), { listeners: 3, max_listeners: 100 });
  assert.deepEqual(audienceFrom({ listeners: -4, max_listeners: "lots" }), { listeners: 0, max_listeners: 0 });
  assert.deepEqual(audienceFrom({}), { listeners: 0, max_listeners: 0 });
});

test("a report's fields are strings; a missing filename is 'report'", () => {
  assert.deepEqual(reportFrom({ format: "csv", filename: "m.csv", content: "a,b" }), {
    format: "csv", filename: "m.csv", content: "a,b",
  });
  assert.deepEqual(reportFrom({ content: 5 }), { format: "", filename: "report", content: "5" });
});

test("a participant needs a string id", () => {
  assert.equal(isParticipant({ id: "p1" }), true);
  for (const p of [null, undefined, {}, { id: 1 }, "p1"]) assert.equal(isParticipant(p), false, String(p));
});
