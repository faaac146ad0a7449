// One small store for a page's state (no DOM, no dependencies): the state is held here, read as a
// frozen snapshot (get), changed only through update(patch) or the store's named actions, and
// every change is told once to each subscriber. ui.js keeps the meeting's, watch.js its own.

/**
 * @template {object} S
 * @typedef {Partial<S> | ((state: Readonly<S>) => Partial<S> | null | undefined)} Patch
 */

/**
 * @template {object} S
 * @typedef {(state: Readonly<S>, prev: Readonly<S>) => void} Subscriber
 */

/**
 * @template {object} S
 * @typedef {object} Store
 * @property {() => Readonly<S>} get  the state now (frozen: change it through the store)
 * @property {(patch: Patch<S>) => boolean} update  merges a patch; false if nothing changed
 * @property {(fn: Subscriber<S>) => () => void} subscribe  `fn` hears every change; returns the
 *   function that stops it
 * @property {Record<string, (...args: any[]) => boolean>} actions  the named actions, bound
 */

/**
 * A store holding `initial` (its keys are the only ones a patch may set). `actions` are named
 * changes: `(state, ...args) => patch`, called as `store.actions.name(...args)`.
 * @template {object} S
 * @param {S} initial
 * @param {Record<string, (state: Readonly<S>, ...args: any[]) => Partial<S> | null | undefined>} [actions]
 * @returns {Store<S>}
 */
export function createStore(initial, actions = {}) {
  /** @type {Readonly<S>} */
  let state = Object.freeze({ ...initial });
  for (const value of Object.values(state)) freezeData(value);
  /** @type {Set<Subscriber<S>>} */
  const subscribers = new Set();
  /** @type {[Readonly<S>, Readonly<S>][]} changes not told yet (one made while telling waits) */
  const untold = [];
  let telling = false;

  /** @param {Patch<S>} patch */
  function update(patch) {
    const changes = typeof patch === "function" ? patch(state) : patch;
    const keys = Object.keys(changes ?? {}).filter((k) => {
      if (!Object.hasOwn(state, k)) throw new TypeError(`store: no state named ${k}`);
      return !Object.is(changes[k], state[k]);
    });
    if (keys.length === 0) return false;
    const prev = state;
    const next = { ...state };
    for (const k of keys) next[k] = freezeData(changes[k]);
    state = Object.freeze(next);
    untold.push([state, prev]);
    if (!telling) tell();
    return true;
  }

  function tell() {
    telling = true;
    try {
      while (untold.length > 0) {
        const [next, prev] = untold.shift();
        for (const fn of [...subscribers]) {
          if (!subscribers.has(fn)) continue; // stopped by an earlier one
          try {
            fn(next, prev);
          } catch (error) {
            console.error("store: a subscriber failed", error); // the others still hear it
          }
        }
      }
    } finally {
      telling = false;
    }
  }

  return {
    get: () => state,
    update,
    subscribe(fn) {
      subscribers.add(fn);
      return () => {
        subscribers.delete(fn);
      };
    },
    actions: Object.fromEntries(
      Object.entries(actions).map(([name, action]) => [name, (...args) => update((s) => action(s, ...args))]),
    ),
  };
}

/** True if any of `keys` differs between two snapshots (for subscribers that render a part). */
export function anyChanged(next, prev, ...keys) {
  return keys.some((k) => !Object.is(next[k], prev[k]));
}

/**
 * Freezes plain data (objects and arrays, all the way down) and returns it; anything else (a
 * client, a stream, a track, an element, a function) is held as it is.
 */
function freezeData(value, seen = new Set()) {
  if (value === null || typeof value !== "object" || seen.has(value)) return value;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  seen.add(value);
  Object.freeze(value);
  for (const inner of Object.values(value)) freezeData(inner, seen);
  return value;
}
