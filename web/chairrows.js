// The chair panel's rows as data: their order (raised hands first, in the order raised; then the
// chair; then everyone else by name), which ones a filter and a name search leave, and how many
// each filter would leave. No DOM: chair.js draws the rows, tests/js/chairrows.test.mjs checks this.

/** The filters, in the order the panel shows them. */
export const CHAIR_FILTERS = Object.freeze(["speaking", "hands", "muted", "weak"]);

const WEAK_QUALITY = new Set(["fair", "poor"]);

/**
 * Whether `p` (a ParticipantInfo, or the chair's own state with `self: true`) passes `filter`
 * ("" or null: everyone). `hands` is room_state.hands, `speaking` a Set of participant ids.
 */
export function passesFilter(p, filter, { hands = [], speaking = new Set() } = {}) {
  switch (filter) {
    case "speaking":
      return speaking.has(p.id);
    case "hands":
      return hands.includes(p.id) || Boolean(p.hand_raised);
    case "muted":
      return !p.audio || Boolean(p.chair_muted_audio);
    case "weak":
      return WEAK_QUALITY.has(p.quality) || p.connection === "reconnecting";
    default:
      return true;
  }
}

/** Whether `name` contains `query` (trimmed, case-insensitive); an empty query matches all. */
export function matchesQuery(name, query) {
  const needle = String(query ?? "").trim().toLocaleLowerCase();
  return !needle || String(name ?? "").toLocaleLowerCase().includes(needle);
}

/** Raised hands first (queue order), then the chair itself, then by name (then id). */
export function compareRows(a, b, hands = []) {
  const rank = (p) => {
    const at = hands.indexOf(p.id);
    if (at >= 0) return at;
    if (p.hand_raised) return hands.length; // raised, not yet in the queue the page has
    return p.self ? hands.length + 1 : hands.length + 2;
  };
  return rank(a) - rank(b) || String(a.name).localeCompare(String(b.name)) ||
    String(a.id).localeCompare(String(b.id));
}

/**
 * The rows to draw: `order` (every participant's id, in display order), `shown` (the Set of ids
 * that pass `filter` and `query`) and `counts` ({filter: how many pass it}, ignoring the query).
 * An unknown filter counts as none.
 */
export function chairRows(people, { hands = [], speaking = new Set(), filter = "", query = "" } = {}) {
  const context = { hands, speaking };
  const active = CHAIR_FILTERS.includes(filter) ? filter : "";
  const sorted = [...people].sort((a, b) => compareRows(a, b, hands));
  const counts = Object.fromEntries(CHAIR_FILTERS.map((f) => [f, 0]));
  const shown = new Set();
  for (const p of sorted) {
    for (const f of CHAIR_FILTERS) if (passesFilter(p, f, context)) counts[f] += 1;
    if (passesFilter(p, active, context) && matchesQuery(p.name, query)) shown.add(p.id);
  }
  return { order: sorted.map((p) => p.id), shown, counts };
}
