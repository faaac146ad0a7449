// The chair's panel: everyone's state with per-person actions, room actions, hands and the schedule.

import { confirmAction, toast } from "./notify.js";
import { QUALITY_WORDS, formatClock, formatDuration } from "./words.js";

const $ = (id) => document.getElementById(id);

const view = {
  panel: $("chair-panel"),
  schedule: $("chair-schedule"),
  muteAll: $("chair-mute-all"),
  revoke: $("chair-revoke"),
  lock: $("chair-lock"),
  extend: $("chair-extend"),
  end: $("chair-end"),
  limit: $("chair-floor-limit"),
  reportJson: $("chair-report-json"),
  reportCsv: $("chair-report-csv"),
  hands: $("chair-hands"),
  noHands: $("chair-no-hands"),
  handCount: $("chair-hand-count"),
  list: $("chair-participants"),
  count: $("chair-count"),
  filter: $("chair-filter"),
  audience: $("chair-audience"),
};

const EXTEND_MINUTES = 15;
const MIN_LIMIT_MIN = 0.5;
const MAX_LIMIT_MIN = 240;

/** The page's state object (ui.js owns it); read at render and click time. */
let page = null;

function client() {
  return page?.client ?? null;
}

/** Everyone in the room, this chair first, then by name. */
function everyone() {
  const list = [];
  if (page.self) list.push({ ...page.self, ...page.media, self: true });
  const others = Object.values(page.participants).sort((a, b) => a.name.localeCompare(b.name));
  return list.concat(others);
}

function nameOf(pid) {
  if (pid && pid === page.self?.id) return page.self.name;
  return page.participants[pid]?.name ?? "someone who left";
}

// ---- rendering -----------------------------------------------------------------------------

/** Shows the panel for chairs only and brings it up to date. */
export function renderChairPanel() {
  const isChair = page?.self?.role === "chair";
  view.panel.hidden = !isChair;
  if (!isChair) return;
  renderRoomButtons();
  renderAudience();
  renderHands();
  renderRows();
  renderSchedule();
}

function renderRoomButtons() {
  const room = page.room ?? {};
  const holder = room.floor_holder ?? null;
  view.revoke.disabled = !holder;
  view.revoke.title = holder ? `Take the floor back from ${nameOf(holder)}` : "Nobody has the floor";
  view.lock.textContent = room.locked ? "Unlock meeting" : "Lock meeting";
  view.lock.setAttribute("aria-pressed", String(Boolean(room.locked)));
  view.lock.title = room.locked ? "Let new participants join again" : "Nobody new can join while locked";
  const scheduled = room.scheduled_end_ms != null;
  view.extend.disabled = !scheduled;
  view.extend.title = scheduled
    ? `Move the scheduled end ${EXTEND_MINUTES} minutes later`
    : "This meeting has no scheduled end";
}

/** How many are watching (the audience: listeners who publish nothing), in words. */
function renderAudience() {
  const audience = page.audience;
  view.audience.hidden = !audience || audience.max_listeners === 0;
  if (view.audience.hidden) return;
  const n = audience.listeners;
  const who = n === 0 ? "Nobody is watching" : `${n} ${n === 1 ? "person is" : "people are"} watching`;
  view.audience.textContent = `${who} (at most ${audience.max_listeners}).`;
}

/** The scheduled end and a countdown; called every second. */
export function renderSchedule() {
  if (!page || view.panel.hidden) return;
  const end = page.room?.scheduled_end_ms;
  if (end == null) {
    view.schedule.textContent = "No scheduled end.";
    delete view.schedule.dataset.remainingMs;
    return;
  }
  const left = end - (client()?.serverNow() ?? Date.now());
  view.schedule.dataset.remainingMs = String(left);
  view.schedule.classList.toggle("overtime", left < 0);
  view.schedule.textContent = left >= 0
    ? `Scheduled to end at ${formatClock(end)} · ${formatDuration(left)} left`
    : `The scheduled end (${formatClock(end)}) passed ${formatDuration(-left)} ago`;
}

function renderHands() {
  const hands = page.room?.hands ?? [];
  view.handCount.textContent = hands.length ? `(${hands.length})` : "";
  view.noHands.hidden = hands.length > 0;
  const key = hands.map((pid) => `${pid}:${nameOf(pid)}`).join("|");
  if (view.hands.dataset.key === key) return;
  view.hands.dataset.key = key;
  view.hands.replaceChildren(...hands.map((pid) => {
    const li = document.createElement("li");
    li.dataset.handId = pid;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = nameOf(pid);
    li.append(
      name,
      button("hand-grant", "Give floor", `Give ${nameOf(pid)} the floor`, "grant"),
      button("hand-lower", "Lower", `Lower ${nameOf(pid)}'s hand`, "lower-hand"),
    );
    return li;
  }));
}

function renderRows() {
  const people = everyone();
  view.count.textContent = `(${people.length})`;
  const rows = new Map([...view.list.children].map((li) => [li.dataset.participantId, li]));
  const wanted = people.map((p) => {
    let li = rows.get(p.id);
    if (!li) {
      li = document.createElement("li");
      li.className = "chair-row";
      li.dataset.participantId = p.id;
    }
    rows.delete(p.id);
    fillRow(li, p);
    return li;
  });
  for (const stale of rows.values()) stale.remove();
  applyFilter();
  // Reorder only when needed: moving a node loses its focus.
  wanted.forEach((li, i) => {
    if (view.list.children[i] !== li) view.list.insertBefore(li, view.list.children[i] ?? null);
  });
}

/** Shows only the rows whose name contains the filter text (case-insensitive). */
function applyFilter() {
  const needle = view.filter.value.trim().toLocaleLowerCase();
  for (const li of view.list.children) {
    const name = li.querySelector(".name")?.textContent ?? "";
    li.hidden = Boolean(needle) && !name.toLocaleLowerCase().includes(needle);
  }
}

/**
 * Fills a row in three parts (name and badges, state, buttons), each rebuilt only when what it
 * shows changed: a quality change never replaces the buttons under the chair's pointer.
 */
function fillRow(li, p) {
  const room = page.room ?? {};
  const hand = (room.hands ?? []).indexOf(p.id);
  const holder = room.floor_holder === p.id;
  const presenter = room.presenter === p.id;
  li.classList.toggle("self", Boolean(p.self));
  li.classList.toggle("holder", holder);
  li.classList.toggle("asks", Boolean(p.unmute_requested));
  if (!li.firstChild) {
    const parts = ["row-head", "row-state", "row-actions"].map((cls) => {
      const div = document.createElement("div");
      div.className = cls;
      return div;
    });
    li.replaceChildren(...parts);
  }
  const [head, state, actions] = li.children;
  const heads = [p.name, p.role, p.self, presenter, holder, hand, p.unmute_requested, p.connection];
  if (changed(head, heads)) fillHead(head, p, { hand, holder, presenter });
  const states = [p.audio, p.video, p.chair_muted_audio, p.chair_muted_video, p.quality];
  if (changed(state, states)) fillState(state, p);
  const acts = [p.name, p.self, p.chair_muted_audio, p.chair_muted_video, holder, presenter];
  if (changed(actions, acts)) fillActions(actions, p, { holder, presenter });
}

/** Whether `el` last showed other `values` (and remembers these). */
function changed(el, values) {
  const key = JSON.stringify(values);
  if (el.dataset.key === key) return false;
  el.dataset.key = key;
  return true;
}

function fillHead(head, p, { hand, holder, presenter }) {
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = p.name;
  const badges = [];
  if (p.self) badges.push(["you", "you"]);
  if (p.role === "chair") badges.push(["chair", "chair"]);
  if (presenter) badges.push(["presenter", "presenter"]);
  if (holder) badges.push(["floor", "has the floor"]);
  if (hand >= 0) badges.push(["hand", `hand raised #${hand + 1}`]);
  if (p.unmute_requested) badges.push(["asks", "asks to unmute"]);
  if (p.connection === "reconnecting") badges.push(["reconnecting", "reconnecting…"]);
  head.replaceChildren(name, ...badges.map(([cls, text]) => badge(cls, text)));
}

function fillState(state, p) {
  const mic = p.chair_muted_audio ? ["mic chair-muted", "muted by chair"]
    : p.audio ? ["mic on", "mic on"] : ["mic off", "mic off"];
  const cam = p.chair_muted_video ? ["cam chair-muted", "camera stopped by chair"]
    : p.video ? ["cam on", "camera on"] : ["cam off", "camera off"];
  const quality = p.quality ?? "unknown";
  state.replaceChildren(...[mic, cam, [`quality q-${quality}`, QUALITY_WORDS[quality] ?? quality]]
    .map(([cls, text]) => {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      return span;
    }));
}

function fillActions(actions, p, { holder, presenter }) {
  const who = p.self ? "yourself" : p.name;
  const buttons = [];
  if (!p.self) {
    buttons.push(p.chair_muted_audio
      ? button("chair-unmute", "Allow mic", `Let ${who} turn their microphone on again`, "unmute")
      : button("chair-mute", "Mute", `Mute ${who}'s microphone`, "mute"));
    buttons.push(p.chair_muted_video
      ? button("chair-allow-video", "Allow camera", `Let ${who} turn their camera on again`, "allow-video")
      : button("chair-stop-video", "Stop camera", `Stop ${who}'s camera`, "stop-video"));
  }
  buttons.push(button(
    "chair-grant",
    holder ? "Give floor again" : "Give floor",
    holder ? "Restart the floor with the time limit set above" : `Give ${who} the floor`,
    "grant",
  ));
  buttons.push(presenter
    ? button("chair-presenter", "Stop presenting", `${who} is no longer the presenter`, "presenter")
    : button("chair-presenter", "Make presenter", `Let ${who} present and share a screen`, "presenter"));
  if (!p.self) buttons.push(button("chair-remove danger", "Remove", `Remove ${who} from the meeting`, "remove"));
  actions.replaceChildren(...buttons);
}

function badge(cls, text) {
  const span = document.createElement("span");
  span.className = `badge ${cls}`;
  span.textContent = text;
  return span;
}

function button(cls, text, title, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.title = title;
  b.dataset.action = action;
  return b;
}

// ---- actions -------------------------------------------------------------------------------

/** The floor time limit in seconds (undefined: none), or null after telling the chair it is wrong. */
function floorLimitS() {
  const raw = view.limit.value.trim();
  if (!raw && !view.limit.validity.badInput) return undefined;
  const minutes = Number(raw);
  if (!Number.isFinite(minutes) || minutes < MIN_LIMIT_MIN || minutes > MAX_LIMIT_MIN) {
    toast(
      `The time limit must be between ${MIN_LIMIT_MIN} and ${MAX_LIMIT_MIN} minutes; ` +
        "leave it empty for no limit.",
      { kind: "error", code: "bad_limit" },
    );
    view.limit.focus();
    return null;
  }
  return Math.round(minutes * 60);
}

async function personAction(action, pid) {
  const c = client();
  if (!c || !pid) return;
  const target = { participant_id: pid };
  switch (action) {
    case "mute":
      return c.chair("mute", { ...target, kind: "audio" });
    case "unmute":
      return c.chair("unmute", { ...target, kind: "audio" });
    case "stop-video":
      return c.chair("mute", { ...target, kind: "video" });
    case "allow-video":
      return c.chair("unmute", { ...target, kind: "video" });
    case "grant": {
      const limitS = floorLimitS();
      if (limitS === null) return;
      return c.chair("grant_floor", { ...target, limit_s: limitS });
    }
    case "lower-hand":
      return c.chair("lower_hand", target);
    case "presenter":
      return c.chair("make_presenter", { participant_id: page.room?.presenter === pid ? null : pid });
    case "remove": {
      const name = nameOf(pid);
      const ok = await confirmAction(
        `Remove ${name} from the meeting? They cannot come back with the same invitation.`,
        `Remove ${name}`,
      );
      if (ok) c.chair("remove", target);
      return;
    }
    default:
      console.warn("confsfu: unknown chair button", action);
  }
}

function onPersonClick(event, idAttribute) {
  const b = event.target.closest("button[data-action]");
  if (!b) return;
  const pid = b.closest(`[${idAttribute}]`)?.getAttribute(idAttribute);
  personAction(b.dataset.action, pid);
}

/** Saves text as a file through a temporary Blob link. */
function saveFile({ filename, content, format }) {
  const type = format === "csv" ? "text/csv" : "application/json";
  const url = URL.createObjectURL(new Blob([content], { type: `${type};charset=utf-8` }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

async function downloadReport(format, b) {
  const c = client();
  if (!c) return;
  b.disabled = true;
  try {
    const report = await c.getReport(format);
    saveFile(report);
    toast(`The report was saved as ${report.filename}.`, { code: "report_saved" });
  } catch (error) {
    // A server refusal was already shown from its `error` message.
    if (!error?.code) toast(error?.message ?? String(error), { kind: "error", code: "report_failed" });
  } finally {
    b.disabled = false;
  }
}

/** Connects the panel's buttons to `pageState` (ui.js's page object); call once. */
export function initChairPanel(pageState) {
  page = pageState;
  view.list.addEventListener("click", (e) => onPersonClick(e, "data-participant-id"));
  view.hands.addEventListener("click", (e) => onPersonClick(e, "data-hand-id"));
  view.filter.addEventListener("input", applyFilter);
  view.muteAll.addEventListener("click", () => client()?.chair("mute_all"));
  view.revoke.addEventListener("click", () => client()?.chair("revoke_floor"));
  view.lock.addEventListener("click", () => client()?.chair(page.room?.locked ? "unlock" : "lock"));
  view.extend.addEventListener("click", () => client()?.chair("extend", { minutes: EXTEND_MINUTES }));
  view.end.addEventListener("click", async () => {
    const ok = await confirmAction(
      "End the meeting for everyone? All participants will be disconnected.",
      "End meeting",
    );
    if (ok) client()?.chair("end");
  });
  view.reportJson.addEventListener("click", () => downloadReport("json", view.reportJson));
  view.reportCsv.addEventListener("click", () => downloadReport("csv", view.reportCsv));
}
