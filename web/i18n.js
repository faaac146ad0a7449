// The page's words in the participant's language: one catalogue per language (web/lang/*.js, the
// same keys in each), t(key, params) with {placeholders} and plurals, and the language chosen from
// the browser (navigator.languages) unless the participant picked one. No DOM: langui.js applies
// the words to the page, protocol.js uses t() for the state it reports.

import en from "./lang/en.js";
import es from "./lang/es.js";
import fr from "./lang/fr.js";
import ko from "./lang/ko.js";

/** Every catalogue by language code; English is the reference (and the fallback). */
export const CATALOGUES = Object.freeze({ en, es, fr, ko });
export const DEFAULT_LANGUAGE = "en";
const STORAGE_KEY = "confsfu.lang";

let current = DEFAULT_LANGUAGE;
const listeners = new Set();

/** The language the page speaks now ("en", "es", ...). */
export function lang() {
  return current;
}

/** The languages offered, as [code, name in that language]. */
export function languages() {
  return Object.entries(CATALOGUES).map(([code, words]) => [code, words["language.name"]]);
}

/**
 * The first of `preferred` (BCP 47 tags such as "es-MX", best first) that has a catalogue, by its
 * whole tag or its language; the default when none has.
 */
export function matchLanguage(preferred) {
  for (const tag of preferred ?? []) {
    const code = String(tag ?? "").toLowerCase();
    if (Object.hasOwn(CATALOGUES, code)) return code;
    const base = code.split(/[-_]/)[0];
    if (Object.hasOwn(CATALOGUES, base)) return base;
  }
  return DEFAULT_LANGUAGE;
}

/** The language saved by the picker (or null), else the browser's. */
export function initialLanguage(storage = globalThis.localStorage, nav = globalThis.navigator) {
  let saved = null;
  try {
    saved = storage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    saved = null; // storage refused (private mode)
  }
  if (saved && Object.hasOwn(CATALOGUES, saved)) return saved;
  return matchLanguage(nav?.languages?.length ? nav.languages : [nav?.language]);
}

/**
 * Speaks `code` from now on; `save` keeps the choice for the next visit. Tells every listener
 * (onLanguageChange) so the page words itself anew; false for a language without a catalogue.
 */
export function setLanguage(code, { save = false, storage = globalThis.localStorage } = {}) {
  if (!Object.hasOwn(CATALOGUES, code)) return false;
  if (save) {
    try {
      storage?.setItem(STORAGE_KEY, code);
    } catch {
      // not remembered; the page still changes
    }
  }
  if (code === current) return true;
  current = code;
  for (const fn of listeners) {
    try {
      fn(code);
    } catch (error) {
      console.warn("confsfu: could not reword after a language change", error);
    }
  }
  return true;
}

/** Whether the catalogues have `key`. */
export function hasWords(key) {
  return Object.hasOwn(CATALOGUES[DEFAULT_LANGUAGE], key);
}

/** Calls `fn(code)` after every language change. */
export function onLanguageChange(fn) {
  listeners.add(fn);
}

/** A message to word later (in whatever language the page speaks then): {key, params}. */
export function msg(key, params = {}) {
  return { key, params };
}

/**
 * A sentence opening (`key`, without its full stop) and the server's own explanation, which the
 * server writes in English: shown after the opening on an English page, left out on others.
 */
export function detailed(key, params = {}, detail = "") {
  return { key, params, detail: String(detail ?? "") };
}

/** A message ({key, params} or detailed()) in words now; a string stays as it is. */
export function tr(message) {
  if (message == null) return "";
  if (typeof message === "string") return message;
  if (message.detail === undefined) return t(message.key, message.params);
  const lead = t(message.key, message.params);
  if (message.detail && current === "en") return t("sentence.withDetail", { lead, detail: message.detail });
  return t("sentence.plain", { lead });
}

/**
 * The words for `key` in the current language, {placeholders} filled from `params` (numbers
 * written the language's way; a {key, params} value is worded first). An entry with plural
 * forms ({one, other, ...}) is chosen by `params.count` through Intl.PluralRules. A key missing
 * in the language falls back to English, then to the key itself.
 */
export function t(key, params = {}, code = current) {
  let entry = CATALOGUES[code]?.[key];
  if (entry === undefined || entry === "") entry = CATALOGUES[DEFAULT_LANGUAGE][key];
  if (entry === undefined) {
    console.warn("confsfu: no words for", key);
    return key;
  }
  if (typeof entry === "object") entry = entry[pluralRules(code).select(Number(params.count ?? 0))] ?? entry.other;
  return String(entry).replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const value = params[name];
    if (typeof value === "number") return numberFormat(code).format(value);
    if (value && typeof value === "object") return t(value.key, value.params, code);
    return String(value ?? "");
  });
}

const plurals = new Map();
const numbers = new Map();

function pluralRules(code) {
  if (!plurals.has(code)) plurals.set(code, new Intl.PluralRules(code));
  return plurals.get(code);
}

function numberFormat(code) {
  if (!numbers.has(code)) numbers.set(code, new Intl.NumberFormat(code, { maximumFractionDigits: 1 }));
  return numbers.get(code);
}

/** A unix time in ms as the local wall clock in the page's language, e.g. "14:30" or "오후 2:30". */
export function formatClock(unixMs, code = current) {
  return new Date(unixMs).toLocaleTimeString(code, { hour: "2-digit", minute: "2-digit" });
}

current = initialLanguage();
