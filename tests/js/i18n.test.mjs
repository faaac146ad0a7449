// web/i18n.js and the catalogues: every language has exactly English's keys, no empty words,
// the same {placeholders}, the plural forms its language needs; t() fills and pluralises.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CATALOGUES,
  detailed,
  initialLanguage,
  lang,
  matchLanguage,
  msg,
  onLanguageChange,
  setLanguage,
  t,
  tr,
} from "../../web/i18n.js";

const en = CATALOGUES.en;
const others = Object.entries(CATALOGUES).filter(([code]) => code !== "en");

function forms(entry) {
  return typeof entry === "string" ? [entry] : Object.values(entry);
}

function placeholders(entry) {
  const names = new Set();
  for (const text of forms(entry)) for (const m of text.matchAll(/\{(\w+)\}/g)) names.add(m[1]);
  return [...names].sort();
}

function memoryStorage(initial = {}) {
  const data = new Map(Object.entries(initial));
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, String(v)) };
}

test("at least English, Spanish, French and Korean", () => {
  for (const code of ["en", "es", "fr", "ko"]) assert.ok(CATALOGUES[code], code);
});

for (const [code, words] of others) {
  test(`${code} has exactly the English keys`, () => {
    assert.deepEqual(Object.keys(words).sort(), Object.keys(en).sort());
  });

  test(`${code} has the same placeholders as English, and no empty words`, () => {
    for (const [key, entry] of Object.entries(en)) {
      assert.deepEqual(placeholders(words[key]), placeholders(entry), `${code} ${key}`);
      for (const text of forms(words[key])) assert.ok(text.trim(), `${code} ${key} is empty`);
    }
  });
}

test("a plural entry is plural in every language, with the forms that language uses", () => {
  for (const [code, words] of Object.entries(CATALOGUES)) {
    const needed = new Intl.PluralRules(code).resolvedOptions().pluralCategories;
    for (const [key, entry] of Object.entries(en)) {
      const mine = words[key];
      assert.equal(typeof mine, typeof entry, `${code} ${key}: plural in one, not the other`);
      if (typeof mine !== "object") continue;
      assert.ok(placeholders(entry).includes("count"), `${key}: plural without {count}`);
      for (const form of Object.keys(mine)) assert.ok(needed.includes(form), `${code} ${key}: no form ${form}`);
      for (const form of ["one", "other"]) {
        if (needed.includes(form)) assert.ok(mine[form], `${code} ${key} lacks ${form}`);
      }
    }
  }
});

test("every language names itself", () => {
  assert.deepEqual(
    Object.fromEntries(Object.entries(CATALOGUES).map(([c, w]) => [c, w["language.name"]])),
    { en: "English", es: "Español", fr: "Français", ko: "한국어" },
  );
});

test("t() fills placeholders, writes numbers the language's way and leaves unknown ones", () => {
  setLanguage("en");
  assert.equal(t("room.label", { room: "council" }), "Room: council");
  assert.equal(t("floor.theirs", { name: "Seoul" }), "Seoul has the floor");
  assert.equal(t("floor.theirs"), "{name} has the floor");
  assert.equal(t("chair.badLimit", { min: 0.5, max: 240 }, "fr"),
    "La limite de temps doit être comprise entre 0,5 et 240 minutes ; laissez vide pour aucune limite.");
  assert.equal(t("grid.page", { page: 2, count: 3 }, "ko"), "3쪽 중 2쪽");
});

test("t() chooses the plural form by count", () => {
  assert.equal(t("chair.audience", { count: 1, max: 200 }, "en"), "1 person is watching (at most 200).");
  assert.equal(t("chair.audience", { count: 12, max: 200 }, "en"), "12 people are watching (at most 200).");
  assert.equal(t("chair.audience", { count: 1, max: 200 }, "es"), "1 persona está mirando (como máximo 200).");
  assert.equal(t("chair.audience", { count: 1000000, max: 5 }, "fr"),
    `${new Intl.NumberFormat("fr").format(1000000)} personnes regardent (au plus 5).`);
  assert.equal(t("notice.ending_soon", { count: 5 }, "ko"), "회의가 5분 후에 끝날 예정입니다.");
  assert.equal(t("notice.ending_soon", { count: 1 }, "en"), "The meeting is scheduled to end in 1 minute.");
});

test("a message worded later follows the language; a nested one is worded too", () => {
  const words = msg("state.reconnectingIn", { why: msg("state.connectionLost"), seconds: 2 });
  setLanguage("en");
  assert.equal(tr(words), "The connection to the server was lost. Reconnecting in 2 s…");
  setLanguage("es");
  assert.equal(tr(words), "Se perdió la conexión con el servidor. Reconectando en 2 s…");
  setLanguage("en");
  assert.equal(tr("as it is"), "as it is");
});

test("the server's English explanation shows on English pages only", () => {
  const words = detailed("refusal.bad_token", {}, "the token expired");
  setLanguage("en");
  assert.equal(tr(words), "Your invitation link is not valid or has expired: the token expired.");
  setLanguage("ko");
  assert.equal(tr(words), "초대 링크가 유효하지 않거나 만료되었습니다.");
  setLanguage("en");
});

test("the language: the saved choice, else the browser's first with a catalogue, else English", () => {
  assert.equal(matchLanguage(["es-MX", "en"]), "es");
  assert.equal(matchLanguage(["de-DE", "fr-CA"]), "fr");
  assert.equal(matchLanguage(["ko-KR"]), "ko");
  assert.equal(matchLanguage(["de", "ja"]), "en");
  assert.equal(matchLanguage([]), "en");
  const nav = { languages: ["fr-FR", "en-US"] };
  assert.equal(initialLanguage(memoryStorage(), nav), "fr");
  assert.equal(initialLanguage(memoryStorage({ "confsfu.lang": "ko" }), nav), "ko");
  assert.equal(initialLanguage(memoryStorage({ "confsfu.lang": "<b>" }), nav), "fr");
  const refusing = { getItem() { throw new Error("denied"); } };
  assert.equal(initialLanguage(refusing, { language: "es" }), "es");
});

test("setLanguage saves the choice, tells the listeners and refuses a language it lacks", () => {
  const storage = memoryStorage();
  const heard = [];
  onLanguageChange((code) => heard.push(code));
  setLanguage("en");
  assert.equal(setLanguage("fr", { save: true, storage }), true);
  assert.equal(lang(), "fr");
  assert.equal(storage.getItem("confsfu.lang"), "fr");
  assert.equal(setLanguage("xx", { save: true, storage }), false);
  assert.equal(lang(), "fr");
  setLanguage("en");
  assert.deepEqual(heard.slice(-2), ["fr", "en"]);
});

test("a server error in words: its reason in any language, its English message on English pages", async () => {
  const { describeNotice, describeServerError } = await import("../../web/words.js");
  const chatOff = { code: "refused", message: "the chair has turned chat off", in_reply_to: "chat_send", reason: "chat_off" };
  const floor = { code: "refused", message: "cannot revoke the floor: the floor is idle", in_reply_to: "chair" };
  setLanguage("es");
  assert.equal(describeServerError(chatOff), "Tu mensaje no se envió: el moderador desactivó el chat.");
  assert.equal(describeServerError(floor), "No se pudo hacer."); // no reason: no English in Spanish
  assert.equal(
    describeNotice({ code: "unmute_requested", text: "Seoul asks ...", params: { kind: "video", name: "Seoul" } }),
    "Seoul pide volver a encender su cámara.",
  );
  assert.equal(describeNotice({ code: "new_code", text: "Something new." }), "Something new.");
  setLanguage("en");
  assert.equal(describeServerError(chatOff), "Your message was not sent: the chair has turned chat off.");
  assert.equal(describeServerError(floor), "That could not be done: cannot revoke the floor: the floor is idle.");
  assert.equal(
    describeServerError({ code: "forbidden", message: "", in_reply_to: "get_report" }),
    "Only the chair can download the meeting report.",
  );
});
