// Plain words for the page: server errors, participants' states, durations and clock times.

export const QUALITY_WORDS = {
  good: "good connection",
  fair: "fair connection",
  poor: "poor connection",
  unknown: "connection not measured yet",
};

/** Why a tile shows a participant's name card instead of their video, in plain words. */
export function pictureWords(slot, who) {
  if (!slot || slot.participant_id == null) return "";
  if (who?.video === false) return "camera off";
  if (slot.state === "paused") {
    if (String(slot.reason ?? "").includes("not sending")) return "video not arriving";
    return "video paused: weak connection";
  }
  return "connecting…";
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

/** A unix time in ms as the local wall clock, e.g. "14:30". */
export function formatClock(unixMs) {
  return new Date(unixMs).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Replaces participant ids in a server message by their names. */
export function withNames(text, namesById) {
  let out = String(text ?? "");
  for (const [id, name] of Object.entries(namesById ?? {})) {
    if (id && name) out = out.split(id).join(name);
  }
  return out;
}

const FORBIDDEN_TEXT = {
  chair: "Only the chair can do that.",
  get_report: "Only the chair can download the meeting report.",
  publish_offer: "Only the presenter, the person who has the floor or the chair can share a screen.",
};

const REFUSED_TEXT = {
  raise_hand: "Your hand could not be raised",
  lower_hand: "Your hand could not be lowered",
  request_unmute: "There is nothing to ask for: the chair has not muted you",
  chair: "That could not be done",
  chat_send: "Your message was not sent",
};

const OTHER_TEXT = {
  no_such_participant: "That participant is no longer in the meeting.",
  bad_sdp: "The server could not use your browser's media description",
  too_large: "A message was too large for the server",
  out_of_order: "The server did not expect that request now",
  busy: "The server is still handling your previous request; try again in a moment.",
  internal: "The server could not handle that request; please try again.",
};

/** A non-fatal `error` from the server as a sentence. */
export function describeServerError({ code, message, in_reply_to: inReplyTo }, namesById = {}) {
  const detail = withNames(message, namesById);
  if (code === "forbidden") return FORBIDDEN_TEXT[inReplyTo] ?? "You are not allowed to do that.";
  if (inReplyTo === "chat_send" && (code === "rate_limited" || code === "bad_message")) {
    const lead = code === "rate_limited" ? "You are writing too quickly" : "Your message was not sent";
    return detail ? `${lead}: ${detail}.` : `${lead}.`;
  }
  if (code === "refused") {
    const lead = REFUSED_TEXT[inReplyTo] ?? "That is not possible right now";
    if (inReplyTo === "request_unmute") return `${lead}.`;
    return detail ? `${lead}: ${detail}.` : `${lead}.`;
  }
  const known = OTHER_TEXT[code];
  if (known && known.endsWith(".")) return known;
  const what = known ?? "The server refused a request";
  const about = inReplyTo ? ` (${inReplyTo.replaceAll("_", " ")})` : "";
  return detail ? `${what}${about}: ${detail}` : `${what}${about}.`;
}

/**
 * The markers shown on a participant's tile and list entry: [[css classes, text], ...].
 * `who` is a ParticipantInfo (or the page's own state), `room` the latest room_state.
 */
export function markersFor(who, room) {
  const out = [];
  if (who.connection === "reconnecting") out.push(["reconnecting", "reconnecting…"]);
  if (who.chair_muted_audio) out.push(["muted chair-muted", "muted by chair"]);
  else if (!who.audio) out.push(["muted", "muted"]);
  if (who.chair_muted_video) out.push(["camera-off chair-stopped", "camera stopped by chair"]);
  else if (!who.video) out.push(["camera-off", "camera off"]);
  if (room?.floor_holder && room.floor_holder === who.id) out.push(["floor", "has the floor"]);
  if (room?.presenter && room.presenter === who.id) out.push(["presenter", "presenter"]);
  const hand = (room?.hands ?? []).indexOf(who.id);
  if (hand >= 0 || who.hand_raised) out.push(["hand", hand >= 0 ? `hand raised #${hand + 1}` : "hand raised"]);
  return out;
}

/** What the stage shows, after the name: "(screen)", "has the floor", "speaking" or "". */
export function stageKindWords(slot, room) {
  if (slot.source === "screen") return "(screen)";
  if (room?.floor_holder && room.floor_holder === slot.participant_id) return "has the floor";
  if (room?.presenter && room.presenter === slot.participant_id) return "presenting";
  if (room?.stage === slot.participant_id && room?.stage_kind === "speaker") return "speaking";
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

/** The pre-join screen, the device pickers and "you are muted" (labels are in index.html). */
export const DEVICE_WORDS = {
  camera: "Camera",
  microphone: "Microphone",
  speaker: "Speaker",
  noCamera: "No camera found",
  noMicrophone: "No microphone found",
  previewOff: "Camera off",
  previewNone: "Camera not available",
  checking: "Starting your camera and microphone…",
  ready: "Check your camera and microphone, then join.",
  mutedSpeaking: "You are muted. Others cannot hear you.",
  chairMutedSpeaking: "You are muted by the chair. Others cannot hear you.",
  switchFailed: "Could not switch",
  levelWaits: "Your browser shows the microphone level once you click or type on the page.",
  lost: {
    camera: "Your camera stopped working (unplugged, or taken by another application). Choose one under Devices.",
    microphone: "Your microphone stopped working (unplugged, or taken by another application). Choose one under Devices.",
  },
};

const DEVICE_NOUN = { camera: "camera", microphone: "microphone" };
const WITHOUT = {
  camera: "You can still join: others will hear you but not see you.",
  microphone: "You can still join: others will see you but not hear you.",
};

/** A camera or microphone that could not be opened, in plain words (what happened, what still works). */
export function describeDeviceProblem(kind, error) {
  const noun = DEVICE_NOUN[kind] ?? "device";
  const name = error?.name;
  let what;
  if (name === "NotAllowedError" || name === "SecurityError") {
    what = `Your browser blocked the ${noun}. To use it, allow it in the browser's site settings (the icon next to the address), then reload.`;
  } else if (name === "NotFoundError" || name === "OverconstrainedError") {
    what = `No ${noun} was found. Check that it is plugged in.`;
  } else if (name === "NotReadableError" || name === "AbortError") {
    what = `The ${noun} is in use by another application or not working. Close the other application and try again.`;
  } else if (name === "NoMediaDevices") {
    what = `This page cannot use a ${noun} here (it needs https or localhost).`;
  } else {
    what = `The ${noun} could not be used (${error?.message || name || "unknown problem"}).`;
  }
  return `${what} ${WITHOUT[kind] ?? ""}`.trim();
}

/** Both devices missing: what the participant can still do. */
export const LISTEN_ONLY = "You can still join to watch and listen.";

/** The chair panel: filters, row menus and why "extend" is unavailable. */
export const CHAIR_WORDS = {
  filters: {
    speaking: "Speaking",
    hands: "Hands",
    muted: "Muted",
    weak: "Weak connection",
  },
  filtersLabel: "Show only",
  showing: (shown, total) => `Showing ${shown} of ${total}`,
  noMatch: "Nobody matches. Clear the filter or the search to see everyone.",
  actionsFor: (name) => `Actions for ${name}`,
  giveFloor: "Give floor",
  giveFloorTo: (name) => `Give ${name} the floor`,
  lowerHand: "Lower hand",
  lowerHandOf: (who) => `Lower ${who}'s hand`,
  extendWhy: "Extend is not available: this meeting has no scheduled end, so there is nothing to extend.",
  speaking: "speaking",
  handBadge: (place) => (place > 0 ? `hand raised #${place}` : "hand raised"),
  you: "yourself",
};

/** The bottom control bar's drawers (participants and chair panel on small screens). */
export const BAR_WORDS = {
  people: "People",
  peopleLabel: "Participants",
  chair: "Chair",
  chairLabel: "Chair panel",
  close: "Close",
  closePeople: "Close the participant list",
  closeChair: "Close the chair panel",
};

/** Layouts, pins, full screen, connection details and speaking (stageui.js, tiles.js). */
export const LAYOUT_WORDS = {
  gridView: "Grid view",
  gridViewTitle: "Show everyone the same size (again: the speaker large)",
  pin: "Pin",
  unpin: "Unpin",
  pinLabel: (name) => `Pin ${name} on your stage (only you see this)`,
  unpinLabel: (name) => `Unpin ${name}`,
  pinned: "pinned by you",
  previous: "on the stage before you",
  youOnStage: {
    screen: "You are on the stage: everyone sees your shared screen.",
    floor: "You have the floor: everyone sees and hears you.",
    speaker: "You are on the stage: everyone sees you while you speak.",
  },
  nobodyOnStage: "Nobody is on the stage yet. Whoever has the floor, shares a screen or speaks appears here.",
  fullScreen: "Full screen",
  exitFullScreen: "Exit full screen",
  fullScreenLabel: "Show the stage full screen (Escape leaves)",
  details: "Connection details",
  detailsTitle: "Show on each tile which video layer the server sends and why",
  speaking: "speaking",
  micOn: "microphone on",
  micOff: "microphone off",
  camOn: "camera on",
  camOff: "camera off",
};
