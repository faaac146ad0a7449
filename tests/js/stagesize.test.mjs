// web/stagesize.js: the stage size the server hears, at most every STAGE_SIZE_MS.
import assert from "node:assert/strict";
import { test } from "node:test";

import { STAGE_SIZE_MS, StageSize } from "../../web/stagesize.js";

function stage(t) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const heard = [];
  const io = { open: true };
  const size = new StageSize((h) => io.open && heard.push(h) > 0);
  return { size, heard, io, tick: (ms) => t.mock.timers.tick(ms) };
}

test("sizes set in a burst go out once, the latest, after STAGE_SIZE_MS", (t) => {
  const { size, heard, tick } = stage(t);
  size.set(300);
  size.set(410);
  tick(STAGE_SIZE_MS - 1);
  size.set(720);
  assert.deepEqual(heard, []);
  tick(1);
  assert.deepEqual(heard, [720]);
  size.set(720); // unchanged: no timer, nothing sent
  tick(STAGE_SIZE_MS);
  assert.deepEqual(heard, [720]);
  size.set(0);
  tick(STAGE_SIZE_MS);
  assert.deepEqual(heard, [720, 0]);
});

test("a size the server did not take is sent on the next flush; a join sends it again", (t) => {
  const { size, heard, io, tick } = stage(t);
  io.open = false;
  size.set(480);
  tick(STAGE_SIZE_MS);
  assert.deepEqual(heard, []);
  io.open = true;
  size.flush();
  size.flush(); // already heard
  assert.deepEqual(heard, [480]);
  size.joined(); // a new subscriber on the server knows no size
  assert.deepEqual(heard, [480, 480]);
  assert.equal(size.height, 480);
});
