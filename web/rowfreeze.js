// The row freeze: while the chair's pointer is over the panel's list or a row menu is open (and for
// SETTLE_MS after), rows keep their places; a newcomer comes in at the end, a leaver goes. No DOM
// and no clock: chair.js passes the time and draws; tests/js/rowfreeze.test.mjs checks this.

/** How long rows stay put after the pointer left the list or the menu closed. */
export const SETTLE_MS = 700;

/** Whether the panel's rows are held, from what chair.js tells it (times in ms). */
export class RowFreeze {
  constructor(settleMs = SETTLE_MS) {
    this.settleMs = settleMs;
    this.busy = false; // the pointer is over the list, or a row menu is open
    this.freeAt = -Infinity; // when the freeze ends once not busy
  }

  /** The chair's pointer or menu changed: `busy` is whether either holds the rows now. */
  note(now, busy) {
    if (this.busy && !busy) this.freeAt = now + this.settleMs;
    this.busy = busy;
  }

  /** Whether rows keep their places at `now`. */
  held(now) {
    return this.busy || now < this.freeAt;
  }

  /** When a held panel should draw again (null: busy, it waits for the next note()). */
  releaseAt(now) {
    if (this.busy || now >= this.freeAt) return null;
    return this.freeAt;
  }

  /** The chair changed the filter or the search: that order is wanted now. */
  release() {
    this.freeAt = -Infinity;
  }
}

/**
 * The rows to draw while held: `before` ({order, shown} as drawn) with whoever left dropped and
 * whoever came appended in `now`'s order (shown as `now` says); everyone else keeps their place
 * and whether they show. Not held: `now` itself.
 */
export function frozenRows(before, now, held) {
  if (!held || !before) return now;
  const present = new Set(now.order);
  const kept = before.order.filter((id) => present.has(id));
  const known = new Set(kept);
  const added = now.order.filter((id) => !known.has(id));
  const shown = new Set([
    ...kept.filter((id) => before.shown.has(id)),
    ...added.filter((id) => now.shown.has(id)),
  ]);
  return { ...now, order: [...kept, ...added], shown };
}
