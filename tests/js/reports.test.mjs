// web/reports.js: a chair's report requests, answered, refused, late or lost.
import assert from "node:assert/strict";
import { test } from "node:test";

import { REPORT_TIMEOUT_MS, ReportRequests } from "../../web/reports.js";

const report = (format, content = "") => ({ format, filename: `r.${format}`, content });

test("each report goes to the oldest request of its format", { timeout: 10_000 }, async () => {
  const requests = new ReportRequests();
  const sent = [];
  const send = (m) => sent.push(m) > 0;
  const json1 = requests.ask("json", send);
  const csv = requests.ask("csv", send);
  const json2 = requests.ask("json", send);
  assert.deepEqual(sent.map((m) => m.format), ["json", "csv", "json"]);
  assert.deepEqual(sent[0], { type: "get_report", format: "json" });
  requests.answered(report("csv", "c"));
  requests.answered(report("json", "first"));
  requests.answered(report("json", "second"));
  assert.deepEqual(await Promise.all([json1, csv, json2]).then((r) => r.map((x) => x.content)), ["first", "c", "second"]);
  assert.equal(requests.size, 0);
  requests.answered(report("json")); // nobody waits: nothing happens
});

test("a format other than json or csv is refused without asking", { timeout: 10_000 }, async () => {
  const requests = new ReportRequests();
  const sent = [];
  await assert.rejects(requests.ask("pdf", (m) => sent.push(m) > 0), TypeError);
  assert.deepEqual(sent, []);
});

test("not connected, refused, lost: each fails its requests in plain words", { timeout: 10_000 }, async () => {
  const requests = new ReportRequests();
  await assert.rejects(requests.ask("json", () => false), (e) => e.words.key === "client.notConnected");
  assert.equal(requests.size, 0);
  const first = requests.ask("json", () => true);
  const second = requests.ask("csv", () => true);
  const refusal = new Error("forbidden");
  requests.refused(refusal);
  await assert.rejects(first, (e) => e === refusal);
  requests.lost();
  await assert.rejects(second, (e) => e.words.key === "report.lost");
  assert.equal(requests.size, 0);
});

test("a request nobody answers fails after REPORT_TIMEOUT_MS", { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const requests = new ReportRequests();
  const late = requests.ask("json", () => true);
  t.mock.timers.tick(REPORT_TIMEOUT_MS - 1);
  assert.equal(requests.size, 1);
  t.mock.timers.tick(1);
  await assert.rejects(late, (e) => e.words.key === "report.late");
  assert.equal(requests.size, 0);
});
