// What this page joins with: the join's fields from the client's options, the words while joining,
// and a guest's resume key, kept for the tab: the server gives it on `joined`, the next join (after
// a reconnection or a reload) sends it and comes back as the same participant. No DOM.

import { msg as say } from "./i18n.js";

/**
 * The join's fields from the options' `join`: {token}, or {room, name} (a name optional with
 * `watch: true`, a listener). A TypeError when it is neither.
 */
export function joinFrom(join) {
  if (!join || !(join.token || (join.room && (join.name || join.watch)))) {
    throw new TypeError("ConferenceClient needs join: {token} or {room, name}");
  }
  const out = join.token ? { token: String(join.token) } : { room: String(join.room) };
  if (!join.token && join.name) out.name = String(join.name);
  if (join.watch) out.watch = true;
  return out;
}

/** The join message for `join` (joinFrom's, with a resume key if any). */
export function joinRequest(join) {
  // confirms_slots: this page says when its tiles name whom the server moved them to.
  return { type: "join", ...join, confirms_slots: true };
}

/** The words while the join awaits its answer. */
export function joiningWords(join) {
  return join.room ? say("state.joiningRoom", { room: join.room }) : say("state.joining");
}

/** Where a join keeps its key: guests only (a token says who it is; a listener has no place). */
export function resumeSlot(join) {
  if (join.token || join.watch) return null;
  return `confsfu.resume:${join.room}:${join.name}`;
}

/** sessionStorage survives a reload of the tab, and nothing else; absent outside a page. */
export function readResume(slot) {
  if (!slot) return null;
  try {
    return globalThis.sessionStorage?.getItem(slot) ?? null;
  } catch {
    return null; // storage disabled
  }
}

export function keepResume(slot, key) {
  if (!slot) return;
  try {
    globalThis.sessionStorage?.setItem(slot, key);
  } catch {
    // storage disabled: a reload joins as a new guest
  }
}
