// No words for participants outside the catalogues: web/*.js puts no English literal in the page
// (text, titles, labels, placeholders, toasts, notices, errors it shows), and every piece of text
// in web/index.html is worded through a data-i18n attribute or by the page's scripts.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const WEB = new URL("../../web/", import.meta.url);
const SCRIPTS = readdirSync(WEB).filter((f) => f.endsWith(".js") && f !== "i18n.js");

// Where a script hands text to the page: what follows each of these, up to the end of the
// argument or the statement, is text for participants.
const SINKS = [
  /\.(?:textContent|innerText|innerHTML|title|placeholder|alt)\s*=/g,
  /setAttribute\(\s*"(?:aria-label|aria-valuetext|aria-description|title|placeholder|alt)"\s*,/g,
  /\b(?:toast|setStatus|setNotice|showError|confirmAction|announce)\(/g,
  /\bshowProblem\([^,]+,/g,
  /new (?:Error|ConferenceError|Option)\(/g,
  /\b(?:_setState|_lost|_end)\([^,]+,/g,
  /\b(?:badges|items|out|parts)\.(?:push|unshift)\(\[[^,\]]*,/g,
];

/**
 * The string literals at the top level of `code` up to the end of the expression (a `,`, `;`,
 * `)` or `]` outside brackets): [{text, before}], `text` without a template's ${...} parts (code),
 * `before` the code just before the literal.
 */
function literalsIn(code) {
  const found = [];
  let depth = 0;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === '"' || c === "'" || c === "\x60") {
      let text = "";
      let j = i + 1;
      while (j < code.length && code[j] !== c) {
        if (code[j] === "\\") {
          text += code[j + 1];
          j += 2;
        } else if (c === "\x60" && code[j] === "$" && code[j + 1] === "{") {
          let braces = 1;
          j += 2;
          while (j < code.length && braces > 0) {
            if (code[j] === "{") braces += 1;
            else if (code[j] === "}") braces -= 1;
            j += 1;
          }
        } else {
          text += code[j];
          j += 1;
        }
      }
      if (depth === 0) found.push({ text, before: code.slice(0, i) });
      i = j;
    } else if ("([{".includes(c)) {
      depth += 1;
    } else if (")]}".includes(c)) {
      if (depth === 0) break;
      depth -= 1;
    } else if ((c === "," || c === ";") && depth === 0) {
      break;
    }
  }
  return found;
}

/** The literals a line hands the page as text (keys of t() and comparisons are code). */
function wordsIn(line) {
  const out = [];
  for (const sink of SINKS) {
    for (const m of line.matchAll(sink)) {
      for (const { text, before } of literalsIn(line.slice(m.index + m[0].length))) {
        if (!/\p{L}/u.test(text) || /(?:[!=]==?|\b(?:t|say|msg|detailed))\s*\(?\s*$/.test(before)) continue;
        out.push(text);
      }
    }
  }
  return out;
}

// A sentence or a capitalised label: "Mute", "Take back floor", "You are muted."
const PROSE = /(["'`])(?:[A-Z][a-z]+(?:[ ,:;'’-]+[A-Za-z]+)+[.…!?]?|[A-Z][a-z]{2,}[.…!?]?)\1/u;
// Literals that are not for participants: code, CSS, selectors, keys, developer messages.
const NOT_WORDS = /console\.(?:warn|log|error)|new TypeError|event\.key|\.key ===|\.name ===|name: "|=== "(?:Not|Security|Abort|Overconstrained)|Error"/;

function lines(file) {
  return readFileSync(new URL(file, WEB), "utf8").split("\n")
    .map((text, i) => ({ file, line: i + 1, text: text.replace(/\s\/\/\s.*$/, "") })) // trailing comments
    .filter(({ text }) => !/^\s*(\/\/|\*|\/\*\*)/.test(text)); // comments
}

test("no script hands the page a literal (text, title, label, toast, error)", () => {
  const found = [];
  for (const file of SCRIPTS) {
    for (const { line, text } of lines(file)) {
      const words = wordsIn(text);
      if (words.length) found.push(`${file}:${line}: ${words.join(" | ")}`);
    }
  }
  assert.deepEqual(found, []);
});

test("no capitalised English word or sentence in a script's literals", () => {
  const found = [];
  for (const file of SCRIPTS) {
    for (const { line, text } of lines(file)) {
      if (NOT_WORDS.test(text)) continue;
      const match = text.match(PROSE);
      if (match) found.push(`${file}:${line}: ${match[0]}`);
    }
  }
  assert.deepEqual(found, []);
});

test("the checks catch what they are for", () => {
  const caught = (text) => wordsIn(text).length > 0 || PROSE.test(text);
  for (const bad of [
    'el.textContent = "Mute";',
    "el.textContent = on ? t(\"a\") : \"Stop camera\";",
    'b.setAttribute("aria-label", `Remove ${name}`);',
    'toast("saved", { code: "x" });',
    'this._lost(epoch, "the server stopped");',
    'badges.push(["you", "you"]);',
    'const words = "You are muted.";',
    'el.textContent = `${n} people`;',
  ]) assert.ok(caught(bad), bad);
  for (const fine of [
    'el.textContent = t("controls.mute");',
    'el.className = "marker muted";',
    'document.querySelectorAll("#grid .tile")',
    'el.textContent = "";',
    'el.textContent = `(${n})`;',
    'el.textContent = state === "failed" ? t("a") : t(`b.${kind}`);',
    'toast(t("x"), { kind: "error", code: "bad_limit" });',
  ]) assert.ok(!caught(fine), fine);
});

// Elements whose text the scripts write (their text in index.html is a placeholder until then).
const WORDED_BY_SCRIPTS = new Set([
  "stage-fullscreen", "stage-empty", "empty-grid", "details-toggle", "chat-enabled", "chair-close",
  "chair-lock", "participants-close", "mic-toggle", "cam-toggle", "hand-toggle", "screen-toggle",
  "layout-toggle", "participants-toggle", "chair-toggle",
]);
// The product's name.
const NAMES = new Set(["confsfu"]);

test("every piece of text in index.html is worded from the catalogue", () => {
  const html = readFileSync(new URL("index.html", WEB), "utf8");
  const found = [];
  for (const m of html.matchAll(/(<[^>]+>)([^<]*)/g)) {
    const [, tag, raw] = m;
    const text = raw.trim();
    if (!/\p{L}/u.test(text) || NAMES.has(text)) continue;
    const opening = !tag.startsWith("</") && !tag.startsWith("<!");
    const id = tag.match(/\bid="([^"]+)"/)?.[1];
    if (opening && (/\bdata-i18n="/.test(tag) || WORDED_BY_SCRIPTS.has(id))) continue;
    found.push(`${tag} ${text}`);
  }
  assert.deepEqual(found, []);
  for (const m of html.matchAll(/\s(aria-label|title|placeholder)="([^"]*)"/g)) {
    const tag = html.slice(html.lastIndexOf("<", m.index), html.indexOf(">", m.index));
    const id = tag.match(/\bid="([^"]+)"/)?.[1];
    if (!new RegExp(`data-i18n-${m[1]}="`).test(tag) && !WORDED_BY_SCRIPTS.has(id)) {
      found.push(`${m[1]}="${m[2]}" in ${tag}`);
    }
  }
  assert.deepEqual(found, []);
});

test("every key the page names exists in the catalogue", async () => {
  const { CATALOGUES } = await import("../../web/i18n.js");
  const keys = new Set(Object.keys(CATALOGUES.en));
  const missing = [];
  const html = readFileSync(new URL("index.html", WEB), "utf8");
  for (const m of html.matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g)) if (!keys.has(m[1])) missing.push(m[1]);
  for (const file of [...SCRIPTS, "i18n.js"]) {
    const source = readFileSync(new URL(file, WEB), "utf8");
    for (const m of source.matchAll(/\b(?:t|say|msg|detailed)\("([a-zA-Z_.]+)"/g)) {
      if (!keys.has(m[1])) missing.push(`${file}: ${m[1]}`);
    }
  }
  assert.deepEqual(missing, []);
});
