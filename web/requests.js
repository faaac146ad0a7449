// The requests this page sends the server, checked and bounded before they go out (the server
// checks them again): chair actions, unmute requests, chat posts, grid pages, pins, stage sizes.
// Pure functions returning messages; no IO, no DOM.

export const CHAIR_ACTIONS = Object.freeze([
  "mute", "unmute", "mute_all", "grant_floor", "revoke_floor", "make_presenter",
  "lower_hand", "remove", "lock", "unlock", "extend", "end",
  "remove_chat", "chat_off", "chat_on",
]);
/** The fields a chair action may carry; others are left out. */
export const CHAIR_FIELDS = Object.freeze(["participant_id", "kind", "limit_s", "minutes", "message_id"]);
export const CHAT_SEND_MAX_CHARS = 4000; // cut here; the server refuses what is longer than its limit
export const MAX_GRID_PAGE = 1000;
export const MAX_STAGE_HEIGHT = 16384;

/** A chair action with its fields (undefined ones left out); a TypeError for an unknown action. */
export function chairRequest(action, fields = {}) {
  if (!CHAIR_ACTIONS.includes(action)) throw new TypeError(`chair: unknown action ${action}`);
  const msg = { type: "chair", action };
  for (const key of CHAIR_FIELDS) {
    if (fields[key] !== undefined) msg[key] = fields[key];
  }
  return msg;
}

/** Asks the chair to lift its mute of `kind`; a TypeError unless "audio" or "video". */
export function unmuteRequest(kind) {
  if (kind !== "audio" && kind !== "video") throw new TypeError(`requestUnmute: bad kind ${kind}`);
  return { type: "request_unmute", kind };
}

/** A chat post of `text`, trimmed and cut to CHAT_SEND_MAX_CHARS; null when nothing is left. */
export function chatRequest(text) {
  const body = String(text ?? "").trim();
  return body ? { type: "chat_send", text: body.slice(0, CHAT_SEND_MAX_CHARS) } : null;
}

/** The grid page asked for: a whole number from 0 to MAX_GRID_PAGE (anything else: 0). */
export function gridPageOf(page) {
  return Math.max(0, Math.min(MAX_GRID_PAGE, Math.floor(Number(page) || 0)));
}

/** A stage's height in whole device pixels from 0 (hidden or not known) to MAX_STAGE_HEIGHT. */
export function stageHeightOf(height) {
  return Math.max(0, Math.min(MAX_STAGE_HEIGHT, Math.round(Number(height) || 0)));
}

/** Pins `participantId` on this page's stage (null or undefined: the room's stage again). */
export function pinRequest(participantId) {
  return { type: "pin", participant_id: participantId ?? null };
}
