// Failures in words a participant understands: the server's fatal refusals and its goodbyes
// (docs/protocol.md) as i18n.js messages, and the error the client rejects with. No DOM.

import { detailed, msg, tr } from "./i18n.js";

/** Fatal refusals with words of their own (the others are "refusal.other"). */
const REFUSALS = new Set([
  "bad_token", "room_full", "audience_full", "no_watch_link", "no_such_room", "wrong_room",
  "room_locked", "removed", "meeting_ended", "rate_limited", "too_large",
]);
/** ... whose opening says it all (the others are followed by the server's reason). */
const COMPLETE_REFUSALS = new Set([
  "room_locked", "removed", "meeting_ended", "audience_full", "no_watch_link",
]);

/** The `bye` reasons docs/protocol.md lists, and their words. */
const BYE_KEYS = {
  "the chair removed you from the meeting": "bye.removed",
  "the chair ended the meeting": "bye.ended",
  "you joined this meeting again from another window": "bye.otherWindow",
  "you left the meeting": "state.left",
};

/**
 * A failure with a sentence a participant understands; `code` is the server's, if it refused.
 * `words` is the sentence as a message (i18n.js msg()) to word again in another language.
 */
export class ConferenceError extends Error {
  constructor(words, { retry = false, cause = undefined, code = null } = {}) {
    super(tr(words), cause === undefined ? undefined : { cause });
    this.words = words;
    this.name = "ConferenceError";
    this.retry = retry; // whether reconnecting could help
    this.code = code;
  }
}

/** The words for a fatal `error` the server sent ({code, message}). */
export function refusalWords({ code, message }) {
  const key = REFUSALS.has(code) ? `refusal.${code}` : "refusal.other";
  return detailed(key, {}, COMPLETE_REFUSALS.has(code) ? "" : message);
}

/** The words for a `bye` with `reason` (a listed reason in the page's language, else the server's). */
export function byeWords(reason) {
  const key = BYE_KEYS[String(reason ?? "").trim().toLowerCase()];
  return key ? msg(key) : detailed("bye.closed", {}, String(reason ?? "").trim());
}
