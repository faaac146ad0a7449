// The meeting's layout without the DOM: speaker view or grid, what the stage shows (the room's
// stage, your pin, or the one before you while you are on it), tile captions and who speaks.

import { t } from "./i18n.js";
import { QUALITIES, qualityWords } from "./words.js";

export const LAYOUTS = Object.freeze(["speaker", "grid"]);
const LAYOUT_KEY = "confsfu.layout";

/** The layout chosen last on this browser ("speaker" unless "grid" was). */
export function loadLayout(storage = globalThis.localStorage) {
  let saved = null;
  try {
    saved = storage?.getItem(LAYOUT_KEY) ?? null;
  } catch {
    saved = null; // storage refused (private mode): the default
  }
  return LAYOUTS.includes(saved) ? saved : "speaker";
}

export function saveLayout(layout, storage = globalThis.localStorage) {
  if (!LAYOUTS.includes(layout)) return;
  try {
    storage?.setItem(LAYOUT_KEY, layout);
  } catch {
    // not remembered; the layout still changes
  }
}

/**
 * What this page's stage shows: `slot` (the stage slot when it carries someone else, else null),
 * `why` ("pinned": the one you pinned, "previous": the one before you while you are on the
 * stage, "stage": the room's stage, null: nothing) and `selfOnStage`.
 */
export function stageView({ slots = [], selfId = null, room = null, pin = null }) {
  const slot = slots.find((s) => s.kind === "video" && s.purpose === "stage") ?? null;
  const selfOnStage = Boolean(selfId && room?.stage === selfId);
  const pid = slot?.participant_id ?? null;
  if (pid == null || pid === selfId) return { slot: null, why: null, selfOnStage };
  let why = "stage";
  if (pin && pid === pin) why = "pinned";
  else if (selfOnStage) why = "previous";
  return { slot, why, selfOnStage };
}

/** Whom to pin after a click on `pid`'s pin button: them, or nobody when they are pinned. */
export function togglePin(current, pid) {
  return current === pid ? null : pid;
}

/** A pin whose participant left is no pin. */
export function keptPin(pin, participants) {
  return pin && Object.hasOwn(participants ?? {}, pin) ? pin : null;
}

const LAYER_KEYS = ["layer.low", "layer.medium", "layer.high"];
const RATE_KEYS = ["layer.quarterRate", "layer.halfRate"];

/** "high", "low: bandwidth", "paused: bandwidth": what the server sends a tile, and why. */
export function layerText(slot) {
  if (!slot || slot.reason == null) return "";
  const reason = slot.reason === "optimal" ? "" : slot.reason;
  if (slot.spatial == null) {
    const why = reason.replace(/^paused:?\s*/, "");
    return why ? t("layer.pausedWhy", { reason: why }) : t("layer.paused");
  }
  const rate = RATE_KEYS[slot.temporal] ? t(RATE_KEYS[slot.temporal]) : "";
  const layer = LAYER_KEYS[slot.spatial] ? t(LAYER_KEYS[slot.spatial]) : t("layer.number", { layer: slot.spatial });
  const what = rate ? t("layer.withRate", { layer, rate }) : layer;
  return reason ? t("layer.why", { what, reason }) : what;
}

/**
 * A tile's connection words: `quality` (good, fair, poor, unknown: the participant's link as the
 * server measures it), `qualityText` in plain words, and `details` (the layer and its technical
 * reason) only while connection details are open.
 */
export function tileConnection(slot, who, detailsOpen) {
  const quality = QUALITIES.includes(who?.quality) ? who.quality : "unknown";
  return {
    quality,
    qualityText: qualityWords(quality),
    details: detailsOpen ? layerText(slot) : "",
  };
}

// A received audio level (0..1, linear) from which a participant counts as speaking: about -30 dBov.
export const SPEAKING_LEVEL = 0.03;
// How long a participant still counts as speaking after their last loud sample (pauses between words).
export const SPEAKING_HOLD_MS = 800;

/** Who speaks now, from audio levels sampled a few times a second (with a hold over pauses). */
export class Speaking {
  constructor({ level = SPEAKING_LEVEL, holdMs = SPEAKING_HOLD_MS } = {}) {
    this.level = level;
    this.holdMs = holdMs;
    this._last = new Map(); // pid -> when last heard above the level
  }

  /** One sample of `pid`'s level at `nowMs`. */
  feed(pid, level, nowMs) {
    if (pid != null && Number(level) >= this.level) this._last.set(pid, nowMs);
  }

  /** Those heard above the level within the hold, as of `nowMs` (the rest are forgotten). */
  now(nowMs) {
    const out = new Set();
    for (const [pid, at] of this._last) {
      if (nowMs - at < this.holdMs) out.add(pid);
      else this._last.delete(pid);
    }
    return out;
  }
}

/** Two sets with the same members. */
export function sameSet(a, b) {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
