// The layout on the page: speaker view or grid (the bar's toggle), pins, full screen for the stage,
// the connection details switch, speaking indicators and each participant's microphone and camera.

import { devices } from "./deviceui.js";
import { keptPin, loadLayout, sameSet, saveLayout, Speaking, togglePin } from "./layout.js";
import { toast } from "./notify.js";
import { anyChanged } from "./store.js";
import { layoutGrid, renderMedia } from "./tiles.js";
import { onLanguageChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

const view = {
  meeting: $("meeting-view"),
  main: document.querySelector(".main-column"),
  stage: $("stage"),
  stageTile: $("stage-tile"),
  grid: $("grid"),
  layout: $("layout-toggle"),
  fullscreen: $("stage-fullscreen"),
  details: $("details-toggle"),
  selfTile: $("self-tile"),
  participants: $("participants"),
};

const SPEAKING_POLL_MS = 200;
const SVG = "http://www.w3.org/2000/svg";

/** ui.js's store (store.js): the meeting's state, where layout, pin, details and speaking live. */
let store = null;
/** The meeting's state now, or null before initStage. */
const meeting = () => store?.get() ?? null;
const speaking = new Speaking();

/** Wires the controls to ui.js's `meetingStore`; call once. */
export function initStage(meetingStore) {
  store = meetingStore;
  store.update({ layout: loadLayout(), pin: null, details: false, speaking: [] });
  store.subscribe((next, prev) => {
    if (anyChanged(next, prev, "speaking")) markSpeaking();
  });
  wordControls();
  onLanguageChange(wordControls);
  view.layout.addEventListener("click", () => {
    store.update((s) => ({ layout: s.layout === "grid" ? "speaker" : "grid" }));
    saveLayout(meeting().layout);
    applyLayout();
  });
  view.meeting.addEventListener("click", (event) => {
    const button = event.target.closest?.(".pin-toggle");
    if (button?.dataset.participantId) setPin(togglePin(meeting().pin, button.dataset.participantId));
  });
  view.fullscreen.hidden = !document.fullscreenEnabled;
  view.fullscreen.addEventListener("click", toggleFullscreen);
  document.addEventListener("fullscreenchange", showFullscreen);
  showFullscreen();
  view.details.addEventListener("click", () => {
    store.update((s) => ({ details: !s.details }));
    const { details } = meeting();
    view.details.setAttribute("aria-pressed", String(details));
    view.meeting.classList.toggle("details-open", details);
    renderMedia(meeting());
  });
  setInterval(pollSpeaking, SPEAKING_POLL_MS);
}

let sizeClient = null; // the meeting's or the watch page's client, told the stage's size

/**
 * Tells `client` (from now on, whenever the stage tile changes size) how tall the stage is in
 * device pixels, for the server: no taller a layer than fills it.
 */
export function reportStageSize(client = sizeClient) {
  sizeClient = client;
  const { height } = view.stageTile.getBoundingClientRect();
  const shown = !view.stageTile.hidden && height > 0;
  client?.setStageSize(shown ? height * (window.devicePixelRatio || 1) : 0);
}

new ResizeObserver(() => reportStageSize()).observe(view.stageTile);

/** The layout, details and full screen buttons in the page's language. */
function wordControls() {
  view.layout.textContent = t("layout.gridView");
  view.layout.title = t("layout.gridViewTitle");
  view.details.textContent = t("layout.details");
  view.details.title = t("layout.detailsTitle");
  showFullscreen();
}

/** A new meeting: no pin, the stage not full screen, the layout chosen last. */
export function resetStage() {
  store.update({ pin: null, speaking: [] });
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  applyLayout(); // only for a meeting: the watch page (watch.js) keeps its stage where it is
}

/**
 * After `joined`: chairs (and `?details=1`, for operators) may open connection details; back as
 * the same participant (a reload, a new connection), the server's pin is set to this page's.
 */
export function renderStageControls() {
  const operator = new URLSearchParams(location.search).get("details") === "1";
  const { self, client, pin, participants } = meeting();
  view.details.hidden = !(operator || self?.role === "chair");
  if (!self?.resumed) return;
  client?.pin(keptPin(pin, participants));
}

/** After the participant list changed: a pin of someone who left ends (the server ends it too). */
export function keepPin() {
  store.update((s) => ({ pin: keptPin(s.pin, s.participants) }));
}

function setPin(pid) {
  store.update({ pin: pid });
  meeting().client?.pin(pid);
  renderMedia(meeting());
}

/** Speaker view: the stage large, the others in a strip; grid: the stage is one tile among them. */
function applyLayout() {
  const { layout } = meeting();
  const grid = layout === "grid";
  view.main.dataset.layout = layout;
  view.layout.setAttribute("aria-pressed", String(grid));
  if (grid && view.stageTile.parentElement !== view.grid) view.grid.prepend(view.stageTile);
  if (!grid && view.stageTile.parentElement !== view.stage) view.stage.prepend(view.stageTile);
  renderMedia(meeting());
  layoutGrid(meeting());
}

async function toggleFullscreen() {
  try {
    if (document.fullscreenElement) await document.exitFullscreen();
    else await view.stageTile.requestFullscreen();
  } catch (error) {
    toast(t("layout.fullScreenFailed", { detail: error?.message ?? error }), { kind: "error", code: "fullscreen" });
  }
}

function showFullscreen() {
  const on = document.fullscreenElement === view.stageTile;
  view.fullscreen.setAttribute("aria-pressed", String(on));
  view.fullscreen.textContent = on ? t("layout.exitFullScreen") : t("layout.fullScreen");
  view.fullscreen.setAttribute("aria-label", on ? t("layout.exitFullScreen") : t("layout.fullScreenLabel"));
}

// ---- speaking ------------------------------------------------------------------------------

/** Samples the level of each audio slot (as the browser plays it) and of the own microphone. */
async function pollSpeaking() {
  if (!meeting()?.client || polling) return;
  polling = true;
  try {
    const pc = meeting().client.subscribePc;
    if (pc) {
      const receivers = new Map(pc.getTransceivers().map((t) => [t.mid, t.receiver]));
      const audio = (meeting().slots ?? []).filter((s) => s.kind === "audio" && s.participant_id);
      const levels = await Promise.all(audio.map((slot) => levelOf(receivers.get(slot.mid))));
      const now = performance.now();
      audio.forEach((slot, i) => {
        // A slot given to someone else still reports the one before for a moment.
        const held = slotOwners.get(slot.mid);
        if (held?.pid !== slot.participant_id) slotOwners.set(slot.mid, { pid: slot.participant_id, since: now });
        else if (now - held.since >= SLOT_SETTLE_MS) speaking.feed(slot.participant_id, levels[i], now);
      });
    }
  } finally {
    polling = false;
  }
  const now = performance.now();
  const { self, client } = meeting();
  if (self?.id && client?.mediaState?.audio && !self.chair_muted_audio) {
    speaking.feed(self.id, devices.micLevel(), now);
  }
  const next = speaking.now(now);
  // The store tells the tiles, the list (markSpeaking) and the chair panel.
  if (!sameSet(next, new Set(meeting().speaking))) store.update({ speaking: [...next].sort() });
}

let polling = false;
const slotOwners = new Map(); // audio slot mid -> {pid, since}: whom it carries, since when
const SLOT_SETTLE_MS = 1000;

/** The received audio's level now (0..1), from the receiver's inbound-rtp statistics. */
async function levelOf(receiver) {
  if (!receiver) return 0;
  try {
    const stats = await receiver.getStats();
    for (const report of stats.values()) {
      if (report.type === "inbound-rtp" && typeof report.audioLevel === "number") return report.audioLevel;
    }
  } catch {
    // closed meanwhile
  }
  return 0;
}

/** Marks the tiles and list rows of whoever speaks now. */
export function markSpeaking() {
  if (!store) return;
  const { self } = meeting();
  const ids = new Set(meeting().speaking);
  for (const tile of document.querySelectorAll("#stage-tile, #grid .tile")) {
    const pid = tile.querySelector("video")?.dataset.participantId;
    tile.classList.toggle("speaking", Boolean(pid && ids.has(pid) && !tile.hidden));
  }
  view.selfTile.classList.toggle("speaking", Boolean(self && ids.has(self.id)));
  for (const li of view.participants.querySelectorAll("li[data-id]")) {
    const on = ids.has(li.dataset.id);
    li.classList.toggle("speaking", on);
    const badge = li.querySelector(".speaking-badge");
    if (badge) badge.hidden = !on;
  }
}

// ---- the participant list's microphone and camera --------------------------------------------

/** A list row's microphone and camera state (icons with words for screen readers) and "speaking". */
export function mediaIcons(p) {
  const box = document.createElement("span");
  box.className = "media-icons";
  const micOn = Boolean(p.audio) && !p.chair_muted_audio;
  const camOn = Boolean(p.video) && !p.chair_muted_video;
  box.append(
    icon("mic", micOn, micOn ? t("media.micOn") : t("media.micOff")),
    icon("cam", camOn, camOn ? t("media.camOn") : t("media.camOff")),
  );
  const badge = document.createElement("span");
  badge.className = "speaking-badge";
  badge.textContent = t("media.speaking");
  badge.hidden = !meeting()?.speaking.includes(p.id);
  box.append(badge);
  return box;
}

const SHAPES = {
  mic: ["M9 2h6v11H9z", "M5 11a7 7 0 0 0 14 0M12 18v4M8 22h8"],
  cam: ["M2 6h13v12H2z", "M15 10l7-4v12l-7-4z"],
};

function icon(kind, on, words) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `media-icon ${kind} ${on ? "on" : "off"}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", words);
  const title = document.createElementNS(SVG, "title");
  title.textContent = words;
  svg.append(title);
  for (const d of [...SHAPES[kind], ...(on ? [] : ["M3 3l18 18"])]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
