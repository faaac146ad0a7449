// web/refusals.js: the server's refusals and goodbyes in words; web/rtc.js's simulcast layers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { setLanguage, tr } from "../../web/i18n.js";
import { byeWords, ConferenceError, refusalWords } from "../../web/refusals.js";
import { setActiveLayers } from "../../web/rtc.js";

setLanguage("en");

test("a listed bye reason has its own words in any case; another is the server's, after an opening", () => {
  assert.deepEqual(byeWords("You joined this meeting again from another window"), { key: "bye.otherWindow", params: {} });
  assert.deepEqual(byeWords(" the chair ENDED the meeting "), { key: "bye.ended", params: {} });
  assert.deepEqual(byeWords("maintenance"), { key: "bye.closed", params: {}, detail: "maintenance" });
  assert.deepEqual(byeWords(undefined), { key: "bye.closed", params: {}, detail: "" });
  assert.ok(tr(byeWords("the chair removed you from the meeting")).length > 0);
});

test("a fatal refusal: its own words, the server's reason only where they do not say it all", () => {
  assert.deepEqual(refusalWords({ code: "room_locked", message: "locked" }), {
    key: "refusal.room_locked", params: {}, detail: "",
  });
  assert.deepEqual(refusalWords({ code: "room_full", message: "12 of 12" }), {
    key: "refusal.room_full", params: {}, detail: "12 of 12",
  });
  assert.equal(refusalWords({ code: "strange", message: "why" }).key, "refusal.other");
  const error = new ConferenceError(refusalWords({ code: "removed", message: "" }), { code: "removed" });
  assert.equal(error.code, "removed");
  assert.equal(error.message, tr(error.words));
});

class FakeSender {
  constructor(rids) {
    this.params = { encodings: rids.map((rid) => ({ rid, active: true })) };
    this.set = 0;
  }

  getParameters() {
    return structuredClone(this.params);
  }

  async setParameters(params) {
    this.params = params;
    this.set += 1;
  }
}

test("publisher layers: only the listed ones on, nothing set when nothing changes, never all off", async () => {
  const simulcast = new FakeSender(["q", "h", "f"]);
  const single = new FakeSender([undefined]);
  const pc = { getSenders: () => [simulcast, single] };
  setActiveLayers(pc, ["q"]);
  await Promise.resolve();
  assert.deepEqual(simulcast.params.encodings.map((e) => e.active), [true, false, false]);
  assert.equal(single.set, 0); // not simulcast: nothing to choose
  setActiveLayers(pc, ["q"]);
  await Promise.resolve();
  assert.equal(simulcast.set, 1);
  setActiveLayers(pc, []);
  await Promise.resolve();
  assert.deepEqual(simulcast.params.encodings.map((e) => e.active), [true, false, false]);
});
