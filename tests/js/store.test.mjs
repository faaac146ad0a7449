// web/store.js: the page's one store (actions, subscribers, frozen snapshots), and source scans
// that keep the rules: only the store changes the page's state, no module writes another
// module's object or exports a mutable one, and protocol.js (with what it imports) has no DOM.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { anyChanged, createStore } from "../../web/store.js";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "../../web");

// ---- the store -----------------------------------------------------------------------------

function meetingStore() {
  return createStore(
    { self: null, participants: {}, gridPage: 0, pin: null },
    {
      joined: (_, self) => ({ self, gridPage: 0 }),
      turnPage: (s, delta) => ({ gridPage: Math.max(0, s.gridPage + delta) }),
    },
  );
}

test("named actions and update() change the state; get() reads it", () => {
  const store = meetingStore();
  assert.deepEqual(store.get(), { self: null, participants: {}, gridPage: 0, pin: null });
  assert.equal(store.actions.turnPage(2), true);
  assert.equal(store.get().gridPage, 2);
  store.actions.joined({ id: "p1", name: "Ana" });
  assert.deepEqual(store.get().self, { id: "p1", name: "Ana" });
  assert.equal(store.get().gridPage, 0);
  assert.equal(store.update({ pin: "p2" }), true);
  assert.equal(store.update((s) => ({ gridPage: s.gridPage + 1 })), true);
  assert.deepEqual([store.get().pin, store.get().gridPage], ["p2", 1]);
});

test("a key the state does not have is refused, and changes nothing", () => {
  const store = meetingStore();
  const before = store.get();
  assert.throws(() => store.update({ gridpage: 3 }), TypeError);
  assert.equal(store.get(), before);
});

test("subscribers are told once per change, with the new and the previous state", () => {
  const store = meetingStore();
  const heard = [];
  store.subscribe((next, prev) => heard.push([prev.gridPage, next.gridPage, next.pin]));
  store.update({ gridPage: 1, pin: "p1" }); // two keys: one change
  assert.deepEqual(heard, [[0, 1, "p1"]]);
  assert.equal(store.update({ gridPage: 1, pin: "p1" }), false); // the same values: no change
  assert.equal(store.update({}), false);
  assert.equal(store.update(() => null), false);
  assert.equal(heard.length, 1);
  store.actions.turnPage(-5);
  assert.deepEqual(heard, [[0, 1, "p1"], [1, 0, "p1"]]);
});

test("unsubscribe stops a subscriber, also one stopped while the others are being told", () => {
  const store = meetingStore();
  const a = [];
  const b = [];
  const stopA = store.subscribe((s) => a.push(s.gridPage));
  let stopB = () => {};
  store.subscribe(() => stopB()); // told first: stops b before b hears this change
  stopB = store.subscribe((s) => b.push(s.gridPage));
  store.update({ gridPage: 1 });
  stopA();
  store.update({ gridPage: 2 });
  assert.deepEqual(a, [1]);
  assert.deepEqual(b, []);
  stopA(); // twice is harmless
});

test("a change made by a subscriber is told after the one it heard, to everyone, in order", () => {
  const store = meetingStore();
  const seen = [];
  store.subscribe((next, prev) => {
    if (anyChanged(next, prev, "self")) store.update({ gridPage: 7 }); // e.g. a page out of range
  });
  store.subscribe((next, prev) => seen.push([prev.gridPage, next.gridPage, next.self?.id ?? null]));
  store.update({ self: { id: "p1" }, gridPage: 3 });
  assert.deepEqual(seen, [[0, 3, "p1"], [3, 7, "p1"]]);
  assert.equal(store.get().gridPage, 7);
});

test("a failing subscriber does not keep the others from hearing the change", (t) => {
  const store = meetingStore();
  t.mock.method(console, "error", () => {});
  const heard = [];
  store.subscribe(() => {
    throw new Error("boom");
  });
  store.subscribe((s) => heard.push(s.gridPage));
  store.update({ gridPage: 4 });
  assert.deepEqual(heard, [4]);
  assert.equal(console.error.mock.callCount(), 1);
});

test("snapshots cannot be changed from outside: frozen, plain data all the way down", () => {
  const participants = { p1: { id: "p1", hands: ["p1"] } };
  const store = createStore({ participants: {}, room: null, client: null });
  class Client {
    constructor() {
      this.state = "idle";
    }
  }
  const client = new Client();
  store.update({ participants, client, room: { hands: [] } });
  const snap = store.get();
  assert.ok(Object.isFrozen(snap));
  assert.throws(() => {
    snap.room = null;
  }, TypeError);
  assert.throws(() => {
    snap.participants.p2 = {};
  }, TypeError);
  assert.throws(() => {
    snap.participants.p1.hands.push("p2");
  }, TypeError);
  assert.throws(() => {
    participants.p1.id = "someone else"; // what was handed in is frozen too
  }, TypeError);
  assert.deepEqual(store.get().participants, { p1: { id: "p1", hands: ["p1"] } });
  // A live object (a client, a stream, an element) is held as it is, not frozen.
  assert.equal(snap.client, client);
  client.state = "joined";
  assert.equal(store.get().client.state, "joined");
  // The old snapshot stays as it was after a change.
  store.update({ room: { hands: ["p1"] } });
  assert.deepEqual(snap.room, { hands: [] });
});

test("the initial state is frozen too", () => {
  const store = createStore({ media: { audio: false }, slots: [] });
  assert.throws(() => {
    store.get().media.audio = true;
  }, TypeError);
  assert.throws(() => store.get().slots.push({}), TypeError);
});

// ---- source scans: the rules the page's modules keep --------------------------------------

/** Every module of the page: web/*.js and web/lang/*.js, as {name, code} (comments removed). */
function pageModules() {
  const files = [];
  for (const dir of [WEB, join(WEB, "lang")]) {
    for (const f of readdirSync(dir)) if (f.endsWith(".js")) files.push(join(dir, f));
  }
  return files.map((path) => ({ name: relative(WEB, path), code: withoutComments(readFileSync(path, "utf8")) }));
}

/** The source without comments and string contents (quotes kept), so words in them do not count. */
function withoutComments(source) {
  return source.replace(
    /\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g,
    (m) => (m.startsWith("/") ? "" : m[0] + m[0]),
  );
}

/** The local names a module's imports bind. */
function importedNames(code) {
  const names = [];
  for (const m of code.matchAll(/import\s+([^;]*?)\s+from\s*["']/g)) {
    const clause = m[1];
    const star = clause.match(/\*\s+as\s+([\w$]+)/);
    if (star) names.push(star[1]);
    const braces = clause.match(/\{([^}]*)\}/);
    for (const part of braces ? braces[1].split(",") : []) {
      const name = part.trim().split(/\s+as\s+/).pop();
      if (name) names.push(name);
    }
    const plain = clause.replace(/\{[^}]*\}|\*\s+as\s+[\w$]+/g, "").replace(/,/g, " ").trim();
    if (plain) names.push(plain);
  }
  return names;
}

const ASSIGN = String.raw`\s*(?:=(?!=)|\+=|-=|\*=|/=|\|\|=|&&=|\?\?=|\+\+|--)`;
const PATH = String.raw`(?:\??\.[\w$]+|\[[^\]\n]*\])+`;

/** What in `code` breaks the state rules: [rule, the text] for each. */
function stateViolations(code) {
  const found = [];
  const look = (rule, re) => {
    for (const m of code.matchAll(re)) found.push([rule, m[0].trim()]);
  };
  // The old shared object, or any object called `page`, written to.
  look("writes page", new RegExp(String.raw`\bpage${PATH}${ASSIGN}`, "g"));
  look("writes page", /Object\.assign\(\s*page\b/g);
  // A snapshot written to: `store.get().x = ...`, `meeting().x = ...`.
  look("writes a snapshot", new RegExp(String.raw`\b[\w$]+\(\)${PATH}${ASSIGN}`, "g"));
  look("writes a snapshot", /Object\.assign\(\s*[\w$.]+\(\)/g);
  // Another module's object written to (its exports are read, or changed through its functions).
  for (const name of importedNames(code)) {
    const n = name.replace(/\$/g, "\\$");
    look(`writes ${name}`, new RegExp(String.raw`(?<![\w$.])${n}${PATH}${ASSIGN}`, "g"));
    look(`writes ${name}`, new RegExp(String.raw`(?:Object\.assign\(|delete\s+)\s*${n}\b`, "g"));
  }
  // A mutable object shared by exporting it: a live binding, or an object or array not frozen.
  look("exports a live binding", /\bexport\s+(?:let|var)\b[^\n]*/g);
  look("exports a mutable object", /\bexport\s+const\s+[\w$]+\s*=\s*[[{][^\n]*/g);
  look("exports a mutable object", /\bexport\s+default\s+[[{][^\n]*/g);
  return found;
}

test("the scan finds each kind of write into shared state (so it cannot pass by finding nothing)", () => {
  const bad = [
    "page.self = self;",
    "page.screen.active = true;",
    "page[key] = 1;",
    "Object.assign(page, { pin: null });",
    "meeting().gridPage = 2;",
    "store.get().pin = null;",
    "store.get().participants[id] = p;",
    'import { devices } from "./deviceui.js";\ndevices.onLost = () => {};',
    'import { devices as d } from "./deviceui.js";\nd.stream ??= null;',
    'import * as tiles from "./tiles.js";\ntiles.x = 1;',
    'import { state } from "./x.js";\nObject.assign(state, {});',
    "export let page = {};",
    "export const page = { client: null };",
    "export const LIST = [1, 2];",
  ];
  for (const code of bad) assert.notDeepEqual(stateViolations(code), [], code);
  const fine = [
    "store.update({ pin: null });",
    "store.actions.joined(self);",
    "const { self } = meeting();",
    "if (meeting().gridPage === 2) turn();",
    "const same = page.pin !== pid;",
    'import { devices } from "./deviceui.js";\nif (devices.stream == null) open();',
    "export const LIST = Object.freeze([1, 2]);",
    "export const devices = new LocalDevices();",
    'view.status.textContent = "page.x = 1";',
  ];
  for (const code of fine) assert.deepEqual(stateViolations(withoutComments(code)), [], code);
});

test("no module of the page but store.js writes shared state, another module's object or exports a mutable one", () => {
  const found = [];
  for (const { name, code } of pageModules()) {
    if (name === "store.js") continue;
    for (const [rule, text] of stateViolations(code)) found.push(`${name}: ${rule}: ${text}`);
  }
  assert.deepEqual(found, []);
});

test("every module of the page parses as an ES module (a name imported and declared twice does not)", () => {
  const broken = [];
  for (const { name } of pageModules()) {
    const source = readFileSync(join(WEB, name), "utf8");
    const run = spawnSync(process.execPath, ["--input-type=module", "--check"], { input: source, encoding: "utf8" });
    if (run.status !== 0) broken.push(`${name}: ${run.stderr.split("\n").find((l) => l.includes("Error")) ?? run.stderr}`);
  }
  assert.deepEqual(broken, []);
});

test("the meeting and the watch page each keep their own store; nothing else makes one", () => {
  const makers = pageModules().filter(({ code }) => /\bcreateStore\(/.test(code)).map((m) => m.name);
  assert.deepEqual(makers.sort(), ["store.js", "ui.js", "watch.js"]);
});

// ---- protocol.js has no DOM ------------------------------------------------------------------

const DOM = [
  /\bdocument\b/,
  /\bwindow\b/,
  /\bHTML[A-Za-z]*Element\b/,
  /\b(?:querySelector|querySelectorAll|getElementById|getElementsBy[A-Za-z]+|createElement|createElementNS)\b/,
  /\.(?:innerHTML|outerHTML|textContent|classList|dataset|style)\b/,
  /\b(?:MutationObserver|ResizeObserver|IntersectionObserver|requestAnimationFrame)\b/,
];

/** protocol.js and every module it imports, transitively (relative imports only). */
function protocolGraph() {
  const seen = new Set();
  const visit = (path) => {
    if (seen.has(path)) return;
    seen.add(path);
    const code = readFileSync(path, "utf8");
    for (const m of code.matchAll(/(?:import|export)\s[^;]*?from\s*["'](\.[^"']+)["']/g)) {
      visit(resolve(dirname(path), m[1]));
    }
  };
  visit(join(WEB, "protocol.js"));
  return [...seen].map((path) => ({ name: relative(WEB, path), code: withoutComments(readFileSync(path, "utf8")) }));
}

test("the DOM scan finds DOM code (so it cannot pass by finding nothing)", () => {
  for (const code of ["document.title", "window.addEventListener", "el.classList.add", "x.querySelector"]) {
    assert.ok(DOM.some((re) => re.test(code)), code);
  }
  assert.ok(!DOM.some((re) => re.test(withoutComments('const s = "another window"; // document'))));
});

test("protocol.js, and everything it imports, has no DOM code", () => {
  const graph = protocolGraph();
  assert.ok(graph.some((m) => m.name === "protocol.js"));
  assert.ok(graph.some((m) => m.name === "rtc.js") && graph.some((m) => m.name === "i18n.js"));
  const found = [];
  for (const { name, code } of graph) {
    for (const re of DOM) if (re.test(code)) found.push(`${name}: ${code.match(re)[0]}`);
  }
  assert.deepEqual(found, []);
});

test("store.js has no DOM code and imports nothing", () => {
  const code = withoutComments(readFileSync(join(WEB, "store.js"), "utf8"));
  assert.ok(!/\bimport\b/.test(code));
  for (const re of DOM) assert.ok(!re.test(code), String(re));
});
