// The chair's panel: compact rows (state at a glance, actions in a menu per row), raised hands
// first, filters and a name search, the room's actions, the schedule and the report.

import { chairRows, CHAIR_FILTERS } from "./chairrows.js";
import { confirmAction, toast } from "./notify.js";
import { frozenRows, RowFreeze } from "./rowfreeze.js";
import { closeMenu, makeMenuButton, relabelMenu, setMenuItems } from "./rowmenu.js";
import { lang, onLanguageChange, t } from "./i18n.js";
import { anyChanged } from "./store.js";
import { formatClock, formatDuration, qualityWords } from "./words.js";

const $ = (id) => document.getElementById(id);

const view = {
  panel: $("chair-panel"),
  schedule: $("chair-schedule"),
  muteAll: $("chair-mute-all"),
  revoke: $("chair-revoke"),
  lock: $("chair-lock"),
  extend: $("chair-extend"),
  extendWhy: $("chair-extend-why"),
  end: $("chair-end"),
  limit: $("chair-floor-limit"),
  reportJson: $("chair-report-json"),
  reportCsv: $("chair-report-csv"),
  handCount: $("chair-hand-count"),
  list: $("chair-participants"),
  count: $("chair-count"),
  filter: $("chair-filter"),
  filters: $("chair-filters"),
  showing: $("chair-showing"),
  noMatch: $("chair-no-match"),
  audience: $("chair-audience"),
};

const EXTEND_MINUTES = 15;
const MIN_LIMIT_MIN = 0.5;
const MAX_LIMIT_MIN = 240;

/** ui.js's store (store.js): the meeting's state, read at render and click time. */
let store = null;
/** The meeting's state now, or null before initChairPanel. */
const meeting = () => store?.get() ?? null;

/**
 * The panel's own state: the filter chosen ("" for everyone), who speaks now, whether the pointer
 * is over the list, and the rows as last drawn ({order, shown}, for the freeze).
 */
const panel = { filter: "", speaking: new Set(), pointer: false, drawn: null };

/** Rows stay put under the chair's pointer and an open row menu (web/rowfreeze.js). */
const freeze = new RowFreeze();
let releaseTimer = null;

function client() {
  return meeting()?.client ?? null;
}

/** Everyone in the room, the chair's own state included. */
function everyone() {
  const { self, media, participants } = meeting();
  const list = [];
  if (self) list.push({ ...self, ...media, self: true });
  return list.concat(Object.values(participants));
}

function nameOf(pid) {
  const { self, participants } = meeting();
  if (pid && pid === self?.id) return self.name;
  return participants[pid]?.name ?? t("chair.someoneWhoLeft");
}

/** Who speaks now: the room's dominant speaker, and whoever the audio levels say (stageui.js). */
function speakingIds() {
  const ids = new Set(meeting().speaking);
  const dominant = meeting().room?.dominant_speaker;
  if (dominant) ids.add(dominant);
  return ids;
}

// ---- rendering -----------------------------------------------------------------------------

/** Shows the panel for chairs only and brings it up to date. */
export function renderChairPanel() {
  const isChair = meeting()?.self?.role === "chair";
  view.panel.hidden = !isChair;
  if (!isChair) return;
  panel.speaking = speakingIds();
  const restore = keepInPlace();
  renderRoomButtons();
  renderAudience();
  renderRows();
  renderSchedule();
  restore();
}

/** The row the chair aims at: the one whose menu is open, else the one under the pointer. */
function aimedRow() {
  const open = view.list.querySelector('.row-menu-button[aria-expanded="true"]');
  return open?.closest("li") ?? (panel.pointer ? view.list.querySelector(":scope > li:hover") : null);
}

/**
 * While the rows are held, what changes above the aimed row (a wrapped state line, a badge, a
 * count) must not move it either: the returned function scrolls the panel back by what the row
 * moved (as the browsers' scroll anchoring does, which does not pick this row).
 */
function keepInPlace() {
  const row = freeze.held(performance.now()) ? aimedRow() : null;
  if (!row) return () => {};
  const top = row.getBoundingClientRect().top;
  return () => {
    if (!row.isConnected || row.hidden) return;
    const moved = row.getBoundingClientRect().top - top;
    let scroller = view.list.parentElement;
    while (scroller && scroller.scrollHeight <= scroller.clientHeight) scroller = scroller.parentElement;
    if (moved && scroller) scroller.scrollTop += moved;
  };
}

function renderRoomButtons() {
  const room = meeting().room ?? {};
  const holder = room.floor_holder ?? null;
  view.revoke.disabled = !holder;
  view.revoke.title = holder ? t("chair.revokeFrom", { name: nameOf(holder) }) : t("chair.nobodyHasFloor");
  view.lock.textContent = room.locked ? t("chair.unlock") : t("chair.lock");
  view.lock.setAttribute("aria-pressed", String(Boolean(room.locked)));
  view.lock.title = room.locked ? t("chair.unlockTitle") : t("chair.lockTitle");
  const scheduled = room.scheduled_end_ms != null;
  view.extend.disabled = !scheduled;
  view.extend.title = scheduled ? t("chair.extendTitle", { count: EXTEND_MINUTES }) : "";
  // Said on the page, not only in a tooltip a keyboard or touch user never sees.
  view.extendWhy.hidden = scheduled || !meeting().room;
  view.extendWhy.textContent = t("chair.extendWhy");
}

/** How many are watching (the audience: listeners who publish nothing), in words. */
function renderAudience() {
  const audience = meeting().audience;
  view.audience.hidden = !audience || audience.max_listeners === 0;
  if (view.audience.hidden) return;
  const n = audience.listeners;
  const max = audience.max_listeners;
  view.audience.textContent = n === 0 ? t("chair.audienceNone", { max }) : t("chair.audience", { count: n, max });
}

/** The scheduled end and a countdown; called every second. */
export function renderSchedule() {
  if (!store || view.panel.hidden) return;
  const end = meeting().room?.scheduled_end_ms;
  if (end == null) {
    view.schedule.textContent = t("chair.noSchedule");
    delete view.schedule.dataset.remainingMs;
    return;
  }
  const left = end - (client()?.serverNow() ?? Date.now());
  view.schedule.dataset.remainingMs = String(left);
  view.schedule.classList.toggle("overtime", left < 0);
  view.schedule.textContent = left >= 0
    ? t("chair.scheduledEnd", { time: formatClock(end), left: formatDuration(left) })
    : t("chair.overtime", { time: formatClock(end), ago: formatDuration(-left) });
}

/** The filter buttons (made once): each says how many it would show; one is pressed at most. */
function makeFilters() {
  view.filters.setAttribute("aria-label", t("chair.filtersLabel"));
  view.filters.replaceChildren(...CHAIR_FILTERS.map((f) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "filter";
    b.dataset.filter = f;
    b.setAttribute("aria-pressed", "false");
    const label = document.createElement("span");
    label.className = "filter-name";
    label.textContent = t(`chair.filter.${f}`);
    const count = document.createElement("span");
    count.className = "count";
    b.append(label, " ", count);
    return b;
  }));
  view.filters.addEventListener("click", (event) => {
    const b = event.target.closest("button[data-filter]");
    if (!b) return;
    panel.filter = panel.filter === b.dataset.filter ? "" : b.dataset.filter;
    renderChosen();
  });
}

/** Whether the chair's pointer is over the list or a row menu is open. */
function busy() {
  return panel.pointer || Boolean(view.list.querySelector('.row-menu-button[aria-expanded="true"]'));
}

/** Tells the freeze what holds the rows now, and draws them again when it ends. */
function noteHold() {
  const now = performance.now();
  freeze.note(now, busy());
  const at = freeze.releaseAt(now);
  clearTimeout(releaseTimer);
  if (at !== null) releaseTimer = setTimeout(renderRows, at - now + 1);
}

/** The chair chose a filter or typed a search: the rows it asks for, at once. */
function renderChosen() {
  freeze.release();
  renderRows();
}

function renderRows() {
  const people = everyone();
  const hands = meeting().room?.hands ?? [];
  const wanted = chairRows(people, {
    hands,
    speaking: panel.speaking,
    filter: panel.filter,
    query: view.filter.value,
  });
  noteHold();
  const restore = keepInPlace();
  const { order, shown, counts } = frozenRows(panel.drawn, wanted, freeze.held(performance.now()));
  panel.drawn = { order, shown };
  view.count.textContent = `(${people.length})`;
  view.handCount.textContent = hands.length ? t("chair.handCount", { count: hands.length }) : "";
  for (const b of view.filters.children) {
    b.setAttribute("aria-pressed", String(b.dataset.filter === panel.filter));
    b.querySelector(".count").textContent = `(${counts[b.dataset.filter]})`;
  }
  const narrowed = shown.size < people.length;
  // A live region: written only when it changes, so a screen reader says it once.
  const showing = narrowed ? t("chair.showing", { shown: shown.size, count: people.length }) : "";
  if (view.showing.textContent !== showing) view.showing.textContent = showing;
  view.noMatch.textContent = t("chair.noMatch");
  view.noMatch.hidden = shown.size > 0;

  const byId = new Map(people.map((p) => [p.id, p]));
  const rows = new Map([...view.list.children].map((li) => [li.dataset.participantId, li]));
  const lis = order.map((id) => {
    let li = rows.get(id);
    if (!li) li = makeRow(id);
    rows.delete(id);
    fillRow(li, byId.get(id));
    li.hidden = !shown.has(id);
    return li;
  });
  for (const stale of rows.values()) {
    if (stale.contains(document.activeElement)) closeMenu();
    stale.remove();
  }
  // Reorder only when needed: moving a node loses its focus.
  lis.forEach((li, i) => {
    if (view.list.children[i] !== li) view.list.insertBefore(li, view.list.children[i] ?? null);
  });
  restore();
}

/** A row's parts (made once): name and badges, state, a quick "Give floor" and the menu. */
function makeRow(id) {
  const li = document.createElement("li");
  li.className = "chair-row";
  li.dataset.participantId = id;
  const [head, state, actions] = ["row-head", "row-state", "row-actions"].map((cls) => {
    const div = document.createElement("div");
    div.className = cls;
    return div;
  });
  const quick = button("hand-grant", t("chair.giveFloor"), "", "grant");
  const { button: more, menu } = makeMenuButton("");
  more.classList.add("row-menu-button");
  menu.classList.add("row-menu");
  actions.append(quick, more, menu);
  li.append(head, state, actions);
  return li;
}

/**
 * Fills a row's parts, each rebuilt only when what it shows changed: a quality change never
 * replaces the menu under the chair's pointer.
 */
function fillRow(li, p) {
  const room = meeting().room ?? {};
  const hand = (room.hands ?? []).indexOf(p.id);
  const raised = hand >= 0 || Boolean(p.hand_raised);
  const holder = room.floor_holder === p.id;
  const presenter = room.presenter === p.id;
  const speaking = panel.speaking.has(p.id);
  li.classList.toggle("self", Boolean(p.self));
  li.classList.toggle("holder", holder);
  li.classList.toggle("asks", Boolean(p.unmute_requested));
  li.classList.toggle("hand", raised);
  li.classList.toggle("speaking", speaking);
  if (raised) li.dataset.hand = String(hand + 1);
  else delete li.dataset.hand;
  const [head, state, actions] = li.children;
  const heads = [lang(), p.name, p.role, p.self, presenter, holder, hand, raised, p.unmute_requested, p.connection];
  if (changed(head, heads)) fillHead(head, p, { hand, raised, holder, presenter });
  const states = [lang(), p.audio, p.video, p.chair_muted_audio, p.chair_muted_video, p.quality];
  if (changed(state, states)) fillState(state, p);
  const acts = [lang(), p.name, p.self, p.chair_muted_audio, p.chair_muted_video, holder, presenter, raised];
  if (changed(actions, acts)) fillActions(actions, p, { holder, presenter, raised });
}

/** Whether `el` last showed other `values` (and remembers these). */
function changed(el, values) {
  const key = JSON.stringify(values);
  if (el.dataset.key === key) return false;
  el.dataset.key = key;
  return true;
}

function fillHead(head, p, { hand, raised, holder, presenter }) {
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = p.name;
  const badges = [];
  if (raised) badges.push(["hand", hand >= 0 ? t("marker.handAt", { place: hand + 1 }) : t("marker.hand")]);
  if (p.self) badges.push(["you", t("chair.badge.you")]);
  if (p.role === "chair") badges.push(["chair", t("role.chair")]);
  if (presenter) badges.push(["presenter", t("marker.presenter")]);
  if (holder) badges.push(["floor", t("marker.floor")]);
  if (p.unmute_requested) badges.push(["asks", t("chair.badge.asks")]);
  if (p.connection === "reconnecting") badges.push(["reconnecting", t("marker.reconnecting")]);
  head.replaceChildren(name, ...badges.map(([cls, text]) => badge(cls, text)));
}

/** The row's state line; its "speaking" part is always there, shown by the row's `speaking` class
 * (style.css), so a row does not change height, and rows below it do not move, as talk goes on. */
function fillState(state, p) {
  const mic = p.chair_muted_audio ? ["mic chair-muted", t("marker.chairMuted")]
    : p.audio ? ["mic on", t("chair.state.micOn")] : ["mic off", t("chair.state.micOff")];
  const cam = p.chair_muted_video ? ["cam chair-muted", t("marker.chairStopped")]
    : p.video ? ["cam on", t("media.camOn")] : ["cam off", t("media.camOff")];
  const quality = p.quality ?? "unknown";
  const parts = [["speaking", t("media.speaking")], mic, cam, [`quality q-${quality}`, qualityWords(quality)]];
  state.replaceChildren(...parts.map(([cls, text]) => {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    return span;
  }));
}

function fillActions(actions, p, { holder, presenter, raised }) {
  const who = p.self ? t("chair.yourself") : p.name;
  const [quick, more, menu] = actions.children;
  // A raised hand is what the chair answers most: "Give floor" stays one click away.
  quick.hidden = !raised || holder;
  quick.textContent = t("chair.giveFloor");
  quick.setAttribute("aria-label", t("chair.giveFloorTo", { name: p.name }));
  relabelMenu(more, menu, t("chair.actionsFor", { name: p.name }));
  const items = [];
  if (raised) {
    items.push(button("hand-lower", t("chair.lowerHand"), t("chair.lowerHandOf", { name: who }), "lower-hand"));
  }
  if (!p.self) {
    items.push(p.chair_muted_audio
      ? button("chair-unmute", t("chair.allowMic"), t("chair.allowMicTitle", { name: who }), "unmute")
      : button("chair-mute", t("chair.mute"), t("chair.muteTitle", { name: who }), "mute"));
    items.push(p.chair_muted_video
      ? button("chair-allow-video", t("chair.allowCamera"), t("chair.allowCameraTitle", { name: who }), "allow-video")
      : button("chair-stop-video", t("chair.stopCamera"), t("chair.stopCameraTitle", { name: who }), "stop-video"));
  }
  items.push(button(
    "chair-grant",
    holder ? t("chair.giveFloorAgain") : t("chair.giveFloor"),
    holder ? t("chair.giveFloorAgainTitle") : t("chair.giveFloorTo", { name: who }),
    "grant",
  ));
  items.push(presenter
    ? button("chair-presenter", t("chair.stopPresenting"), t("chair.stopPresentingTitle", { name: who }), "presenter")
    : button("chair-presenter", t("chair.makePresenter"), t("chair.makePresenterTitle", { name: who }), "presenter"));
  if (!p.self) items.push(button("chair-remove danger", t("chair.remove"), t("chair.removeTitle", { name: who }), "remove"));
  setMenuItems(menu, items);
  // The asking participant's row shows it on the menu button too.
  more.classList.toggle("asks", Boolean(p.chair_muted_audio && p.unmute_requested));
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
  if (title) b.title = title;
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
      t("chair.badLimit", { min: MIN_LIMIT_MIN, max: MAX_LIMIT_MIN }),
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
      return c.chair("make_presenter", { participant_id: meeting().room?.presenter === pid ? null : pid });
    case "remove": {
      const name = nameOf(pid);
      const ok = await confirmAction(
        t("chair.removeConfirm", { name }),
        t("chair.removeName", { name }),
      );
      if (ok) c.chair("remove", target);
      return;
    }
    default:
      console.warn("confsfu: unknown chair button", action);
  }
}

function onRowClick(event) {
  const b = event.target.closest("button[data-action]");
  if (!b) return;
  const pid = b.closest("[data-participant-id]")?.dataset.participantId;
  if (b.getAttribute("role") === "menuitem") closeMenu({ focusButton: true });
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
    toast(t("chair.reportSaved", { filename: report.filename }), { code: "report_saved" });
  } catch (error) {
    // A server refusal was already shown from its `error` message.
    if (!error?.code) toast(error?.message ?? String(error), { kind: "error", code: "report_failed" });
  } finally {
    b.disabled = false;
  }
}

/**
 * Connects the panel's buttons to ui.js's `meetingStore`; the panel renders itself whenever the
 * state it shows changes. Call once.
 */
export function initChairPanel(meetingStore) {
  store = meetingStore;
  store.subscribe((next, prev) => {
    if (anyChanged(next, prev, "self", "media", "participants", "room", "audience", "speaking")) renderChairPanel();
  });
  makeFilters();
  view.list.addEventListener("click", onRowClick);
  view.filter.addEventListener("input", renderChosen);
  for (const [type, over] of [["pointerenter", true], ["pointerleave", false]]) {
    view.list.addEventListener(type, () => {
      panel.pointer = over;
      noteHold();
    });
  }
  view.list.addEventListener("menutoggle", noteHold);
  view.muteAll.addEventListener("click", () => client()?.chair("mute_all"));
  view.revoke.addEventListener("click", () => client()?.chair("revoke_floor"));
  view.lock.addEventListener("click", () => client()?.chair(meeting().room?.locked ? "unlock" : "lock"));
  view.extend.addEventListener("click", () => client()?.chair("extend", { minutes: EXTEND_MINUTES }));
  view.end.addEventListener("click", async () => {
    const ok = await confirmAction(
      t("chair.endConfirm"),
      t("chair.end"),
    );
    if (ok) client()?.chair("end");
  });
  view.reportJson.addEventListener("click", () => downloadReport("json", view.reportJson));
  view.reportCsv.addEventListener("click", () => downloadReport("csv", view.reportCsv));
  onLanguageChange(() => {
    view.filters.setAttribute("aria-label", t("chair.filtersLabel"));
    for (const b of view.filters.querySelectorAll(".filter-name")) {
      b.textContent = t(`chair.filter.${b.parentElement.dataset.filter}`);
    }
    renderChairPanel();
  });
}
