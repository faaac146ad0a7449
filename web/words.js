// Plain words for the page: server errors, participants' states, durations and clock times
// (the words themselves are in the catalogues, web/lang/*.js).

import { formatClock, hasWords, lang, msg, t } from "./i18n.js";

/** A participant's connection quality (good, fair, poor, unknown) in plain words. */
export function qualityWords(quality) {
  return t(`quality.${QUALITIES.includes(quality) ? quality : "unknown"}`);
}

export const QUALITIES = Object.freeze(["good", "fair", "poor", "unknown"]);

/** Why a tile shows a participant's name card instead of their video, in plain words. */
export function pictureWords(slot, who) {
  if (!slot || slot.participant_id == null) return "";
  if (who?.video === false) return t("card.cameraOff");
  if (slot.state === "paused") {
    if (String(slot.reason ?? "").includes("not sending")) return t("card.notArriving");
    return t("card.weak");
  }
  return t("card.connecting");
}

/** "AS" for "Ana Souza"; "?" for an empty name. */
export function initials(name) {
  const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
  return words.slice(0, 2).map((w) => [...w][0].toUpperCase()).join("") || "?";
}

/** 65_000 -> "1:05", 3_723_000 -> "1:02:03"; negative durations count as zero. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** A unix time in ms as the local wall clock in the page's language, e.g. "14:30". */
export { formatClock };

/** Replaces participant ids in a server message by their names. */
export function withNames(text, namesById) {
  let out = String(text ?? "");
  for (const [id, name] of Object.entries(namesById ?? {})) {
    if (id && name) out = out.split(id).join(name);
  }
  return out;
}

// Server errors in words: the code (and the request it answers) chooses the sentence; the error's
// `reason` says why (in any language); without one, the server's own explanation (English) follows
// on English pages.
const FORBIDDEN_KEYS = { chair: "error.forbidden.chair", get_report: "error.forbidden.report", publish_offer: "error.forbidden.screen" };
const REFUSED_KEYS = {
  raise_hand: "error.refused.raiseHand",
  lower_hand: "error.refused.lowerHand",
  request_unmute: "error.refused.unmute",
  chair: "error.refused.chair",
  chat_send: "error.refused.chat",
};
const OTHER_KEYS = {
  no_such_participant: "error.noSuchParticipant",
  bad_sdp: "error.badSdp",
  too_large: "error.tooLarge",
  out_of_order: "error.outOfOrder",
  busy: "error.busy",
  internal: "error.internal",
};
const COMPLETE = new Set(["no_such_participant", "busy", "internal"]);

/** Why, from the error's reason, else the server's English explanation on an English page. */
function serverDetail(message, namesById, reason) {
  if (reason && hasWords(`reason.${reason}`)) return t(`reason.${reason}`);
  if (lang() !== "en") return "";
  return withNames(message, namesById);
}

/** A non-fatal `error` from the server as a sentence. */
export function describeServerError({ code, message, in_reply_to: inReplyTo, reason }, namesById = {}) {
  const detail = serverDetail(message, namesById, reason);
  const said = (key) => (detail ? t("error.withDetail", { lead: msg(key), detail }) : t("error.plain", { lead: msg(key) }));
  if (code === "forbidden") return t(FORBIDDEN_KEYS[inReplyTo] ?? "error.forbidden");
  if (inReplyTo === "chat_send" && (code === "rate_limited" || code === "bad_message")) {
    return said(code === "rate_limited" ? "error.chatTooQuick" : "error.refused.chat");
  }
  if (code === "refused") {
    const key = REFUSED_KEYS[inReplyTo] ?? "error.refused";
    return inReplyTo === "request_unmute" ? t("error.plain", { lead: msg(key) }) : said(key);
  }
  if (COMPLETE.has(code)) return t(OTHER_KEYS[code]);
  const what = msg(OTHER_KEYS[code] ?? "error.refusedRequest");
  const lead = inReplyTo ? msg("error.about", { what, request: inReplyTo.replaceAll("_", " ") }) : what;
  return detail ? t("error.withDetail", { lead, detail }) : t("error.plain", { lead });
}

const NOTICE_KEYS = new Set([
  "chair_muted", "chair_unmuted", "unmute_requested", "floor_granted", "floor_ended", "ending_soon",
  "overtime", "chat_off", "chat_on", "server_stopping",
]);

/** A `notice` from the server in the page's language (its English text for a code not known here). */
export function describeNotice({ code, text, params = {} }, namesById = {}) {
  if (!NOTICE_KEYS.has(code)) return withNames(text, namesById);
  const kind = params.kind === "video" ? "video" : "audio";
  const name = namesById[params.participant_id] ?? params.name ?? "";
  if (code === "ending_soon") return t("notice.ending_soon", { count: Number(params.minutes) || 1 });
  if (["chair_muted", "chair_unmuted", "unmute_requested"].includes(code)) {
    return t(`notice.${code}.${kind}`, { name });
  }
  return t(`notice.${code}`);
}

/**
 * The markers shown on a participant's tile and list entry: [[css classes, text], ...].
 * `who` is a ParticipantInfo (or the page's own state), `room` the latest room_state.
 */
export function markersFor(who, room) {
  const out = [];
  if (who.connection === "reconnecting") out.push(["reconnecting", t("marker.reconnecting")]);
  if (who.chair_muted_audio) out.push(["muted chair-muted", t("marker.chairMuted")]);
  else if (!who.audio) out.push(["muted", t("marker.muted")]);
  if (who.chair_muted_video) out.push(["camera-off chair-stopped", t("marker.chairStopped")]);
  else if (!who.video) out.push(["camera-off", t("marker.cameraOff")]);
  if (room?.floor_holder && room.floor_holder === who.id) out.push(["floor", t("marker.floor")]);
  if (room?.presenter && room.presenter === who.id) out.push(["presenter", t("marker.presenter")]);
  const hand = (room?.hands ?? []).indexOf(who.id);
  if (hand >= 0 || who.hand_raised) out.push(["hand", hand >= 0 ? t("marker.handAt", { place: hand + 1 }) : t("marker.hand")]);
  return out;
}

/** What the stage shows, after the name: "(screen)", "has the floor", "speaking" or "". */
export function stageKindWords(slot, room) {
  if (slot.source === "screen") return t("stage.screen");
  if (room?.floor_holder && room.floor_holder === slot.participant_id) return t("stage.floor");
  if (room?.presenter && room.presenter === slot.participant_id) return t("stage.presenting");
  if (room?.stage === slot.participant_id && room?.stage_kind === "speaker") return t("stage.speaking");
  return "";
}

// An http(s) address in chat text: not inside a word, up to whitespace or a character that
// cannot be in an address written in a sentence.
const LINK = /(?<![\p{L}\p{N}_@/.:-])https?:\/\/[^\s<>"'`{}|\\^]+/giu;
const TRAILING = /[.,;:!?…'"»)\]]+$/u;

/**
 * Chat text as parts to show in order: [{text}] for plain text and [{text, href}] for an http or
 * https address (the page makes those links). `href` is the address as `URL` parses it; anything
 * else (javascript:, data:, a malformed address) stays plain text. Sentence punctuation after an
 * address is not part of it, nor a closing bracket without its opening one.
 */
export function splitLinks(text) {
  const source = String(text ?? "");
  const parts = [];
  let at = 0;
  for (const match of source.matchAll(LINK)) {
    let address = match[0];
    let trail = address.match(TRAILING)?.[0] ?? "";
    // Keep a ")" the address opened, as in https://en.wikipedia.org/wiki/Lima_(Peru)
    while (trail.startsWith(")") && count(address.slice(0, address.length - trail.length), "(") >
      count(address.slice(0, address.length - trail.length), ")")) {
      trail = trail.slice(1);
    }
    address = address.slice(0, address.length - trail.length);
    const href = safeHref(address);
    if (!href) continue;
    if (match.index > at) parts.push({ text: source.slice(at, match.index) });
    parts.push({ text: address, href });
    at = match.index + address.length;
  }
  if (at < source.length) parts.push({ text: source.slice(at) });
  return parts;
}

function count(text, ch) {
  return text.split(ch).length - 1;
}

function safeHref(address) {
  try {
    const url = new URL(address);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

const DEVICE_PROBLEMS = {
  NotAllowedError: "device.blocked",
  SecurityError: "device.blocked",
  NotFoundError: "device.notFound",
  OverconstrainedError: "device.notFound",
  NotReadableError: "device.inUse",
  AbortError: "device.inUse",
  NoMediaDevices: "device.insecure",
};

/** A camera or microphone that could not be opened, in plain words (what happened, what still works). */
export function describeDeviceProblem(kind, error) {
  const device = kind === "camera" || kind === "microphone" ? kind : "device";
  const name = error?.name;
  const key = `${DEVICE_PROBLEMS[name] ?? "device.failed"}.${device}`;
  const what = t(key, { detail: error?.message || name || t("device.unknownProblem") });
  const without = device === "device" ? "" : t(`device.without.${device}`);
  return `${what} ${without}`.trim();
}
