// The subscriber's slots as the server describes them (subscribe_offer, slot_map): one entry per
// mid, in the order the server first listed them. No DOM; protocol.js keeps the list.

/**
 * @typedef {object} Slot
 * @property {string} mid
 * @property {string} kind  "audio" or "video"
 * @property {string} purpose  "audio", "stage" or "grid"
 * @property {string|null} source
 * @property {string|null} participant_id  whom it carries (null: nobody)
 * @property {string|null} name
 * @property {number|null} spatial  simulcast layer forwarded, for diagnostics
 * @property {number|null} temporal
 * @property {string|null} reason
 * @property {string} state  empty, waiting (theirs, no picture yet), paused, live (from since_ts on)
 * @property {number|null} since_ts
 * @property {MediaStreamTrack|null} track  set by protocol.js from the subscribe connection
 */

/** One slot from the server's description, with every field the page relies on. */
export function slotFrom(s) {
  return {
    mid: String(s.mid),
    kind: s.kind,
    purpose: s.purpose ?? (s.kind === "audio" ? "audio" : "grid"),
    source: s.source ?? null,
    participant_id: s.participant_id ?? null,
    name: s.name ?? null,
    spatial: s.spatial ?? null,
    temporal: s.temporal ?? null,
    reason: s.reason ?? null,
    state: s.state ?? (s.participant_id != null ? "live" : "empty"),
    since_ts: s.since_ts ?? null,
    track: null,
  };
}

/**
 * The slots after the server listed `list`: updated by mid, new mids at the end; `replace` (a new
 * subscribe offer) drops the slots not listed. Returns a new array; `slots` is left as it was.
 * @param {Slot[]} slots
 * @param {object[]} list
 * @param {boolean} replace
 * @returns {Slot[]}
 */
export function mergeSlots(slots, list, replace) {
  const byMid = new Map(replace ? [] : slots.map((s) => [s.mid, s]));
  const order = replace ? [] : slots.map((s) => s.mid);
  for (const s of Array.isArray(list) ? list : []) {
    if (!s || s.mid == null) continue;
    const mid = String(s.mid);
    if (!byMid.has(mid)) order.push(mid);
    byMid.set(mid, slotFrom(s));
  }
  return order.map((mid) => byMid.get(mid));
}

/** Whether a video slot now carries someone else than in `before` (mid -> participant_id). */
export function videoMoved(before, slots) {
  return slots.some((s) => s.kind === "video" && before.get(s.mid) !== s.participant_id);
}
