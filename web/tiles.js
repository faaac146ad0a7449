// The others' media on the page: the stage, one page of grid tiles, the pager and hidden audio sinks.

import { stageView, tileConnection } from "./layout.js";
import { t } from "./i18n.js";
import { initials, markersFor, pictureWords, stageKindWords } from "./words.js";

const $ = (id) => document.getElementById(id);

const view = {
  stage: $("stage"),
  stageTile: $("stage-tile"),
  stageVideo: $("stage-video"),
  stageEmpty: $("stage-empty"),
  stageSelf: $("stage-self"),
  grid: $("grid"),
  emptyGrid: $("empty-grid"),
  pager: $("grid-pager"),
  prev: $("grid-prev"),
  next: $("grid-next"),
  pageLabel: $("grid-page-label"),
  audioSinks: $("audio-sinks"),
};

const TILE_ASPECT = 16 / 9;
// A taller-than-wide grid area (a phone upright): tiles may grow down to this aspect instead of
// leaving bands of empty space; a camera then fills its tile, cropped at the sides (style.css).
const TALL_TILE_ASPECT = 3 / 4;
const GRID_GAP_PX = 8;

/** Sets a container's markers (see markersFor), touching the DOM only when they change. */
export function setMarkers(container, who, room) {
  const wanted = markersFor(who, room);
  const key = wanted.map(([cls, text]) => `${cls}:${text}`).join("|");
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  container.replaceChildren(...wanted.map(([cls, text]) => {
    const span = document.createElement("span");
    span.className = `marker ${cls}`;
    span.textContent = text;
    return span;
  }));
}

/** Plays `track` in `el` unless it already does. */
function attach(el, track) {
  if (!track || el.confsfuTrack === track) return;
  el.confsfuTrack = track;
  el.srcObject = new MediaStream([track]);
  el.play().catch(() => {}); // muted video may always play; autoplay covers the rest
}

function label(video, slot, name) {
  video.dataset.participant = name;
  video.dataset.participantId = slot.participant_id;
  video.dataset.source = slot.source ?? "camera";
}

/**
 * A tile's connection: a quality indicator in plain words for everyone; the layer the server
 * sends and its technical reason only while connection details are open (`state.details`).
 */
function showConnection(tile, slot, who, state) {
  const conn = tileConnection(slot, who, Boolean(state?.details));
  let quality = tile.querySelector(".quality");
  if (!quality) {
    quality = document.createElement("span");
    quality.className = "quality";
    quality.setAttribute("role", "img");
    quality.append(...[1, 2, 3].map(() => document.createElement("i")));
    tools(tile).append(quality);
  }
  quality.hidden = !slot;
  quality.dataset.quality = conn.quality;
  quality.setAttribute("aria-label", conn.qualityText);
  quality.title = conn.qualityText;
  let badge = tile.querySelector(".layer");
  if (!badge) {
    badge = document.createElement("span");
    badge.className = "layer";
    tile.append(badge);
  }
  badge.textContent = conn.details;
  badge.dataset.reason = slot?.reason ?? "";
  badge.hidden = !conn.details;
  tile.title = slot ? conn.qualityText : "";
  // For operators' tools and tests: what the server sends, whether or not details are open.
  tile.dataset.layer = tileConnection(slot, who, true).details;
}

/** The row of a tile's buttons and indicator, bottom right (toasts keep the top). */
function tools(tile) {
  let box = tile.querySelector(".tile-tools");
  if (!box) {
    box = document.createElement("div");
    box.className = "tile-tools";
    tile.append(box);
  }
  return box;
}

/** The tile's pin button: pins (or unpins) its participant on this page's stage. */
function showPin(tile, pid, name, state) {
  let button = tile.querySelector(".pin-toggle");
  if (!button) {
    button = document.createElement("button");
    button.type = "button";
    button.className = "pin-toggle tile-button";
    tools(tile).prepend(button);
  }
  button.hidden = !pid;
  if (!pid) return;
  const pinned = state.pin === pid;
  button.dataset.participantId = pid;
  button.textContent = pinned ? t("pin.unpin") : t("pin.pin");
  button.setAttribute("aria-pressed", String(pinned));
  button.setAttribute("aria-label", pinned ? t("pin.unpinLabel", { name }) : t("pin.pinLabel", { name }));
}

/**
 * Shows a tile's video only while it presents the person the label names (docs/protocol.md:
 * a slot's `state` and `since_ts`), else the person's name card: a paused or switching tile
 * never shows a frozen frame or someone else's picture.
 */
function followPicture(tile, video, slot, who) {
  const pid = slot?.participant_id ?? null;
  const live = slot?.state === "live" && who?.video !== false;
  let gate = video.confsfuGate;
  if (!gate || gate.pid !== pid || gate.live !== live) {
    gate = video.confsfuGate = { pid, live, since: live ? slot.since_ts : null, revealed: false };
    if (live) awaitPicture(tile, video, gate);
  }
  showPicture(tile, gate.revealed);
  const why = tile.querySelector(".why");
  if (why) why.textContent = gate.revealed ? "" : pictureWords(slot, who);
  // A small tile shows only the initials: its reason is their tooltip (style.css).
  const avatar = tile.querySelector(".avatar");
  if (avatar) avatar.title = why?.textContent ?? "";
  const paused = !gate.revealed && slot?.state === "paused" && who?.video !== false;
  showPausedIcon(tile, paused ? pictureWords(slot, who) : "");
}

/**
 * A paused tile's icon: on a small tile (style.css) the card has no room for the reason's words,
 * so the icon tells it, named for screen readers and with the words as its tooltip.
 */
function showPausedIcon(tile, reason) {
  let icon = tile.querySelector(".paused-icon");
  if (!icon && !reason) return;
  if (!icon) {
    icon = document.createElement("span");
    icon.className = "paused-icon";
    icon.setAttribute("role", "img");
    icon.append(document.createElement("i"), document.createElement("i")); // two bars: paused
    const why = tile.querySelector(".why");
    if (why) why.before(icon); // before the words: style.css hides them while it shows
    else tile.append(icon);
  }
  icon.hidden = !reason;
  icon.title = reason;
  icon.setAttribute("aria-label", reason);
}

function showPicture(tile, shown) {
  tile.classList.toggle("no-picture", !shown);
  tile.dataset.picture = String(shown);
}

/** Reveals the video at its first frame of the slot's current person. */
function awaitPicture(tile, video, gate) {
  if (!video.requestVideoFrameCallback) {
    gate.revealed = true; // no way to tell frames apart: show what plays
    return;
  }
  const check = (_now, meta) => {
    if (video.confsfuGate !== gate) return; // the slot moved on meanwhile
    const ts = meta?.rtpTimestamp;
    // Serial arithmetic on 32 bits: at or after since_ts is this person's.
    if (ts === undefined || gate.since == null || ((ts - gate.since) >>> 0) < 0x80000000) {
      gate.revealed = true;
      showPicture(tile, true);
      const why = tile.querySelector(".why");
      if (why) why.textContent = "";
      return;
    }
    video.requestVideoFrameCallback(check);
  };
  video.requestVideoFrameCallback(check);
}

function unlabel(video) {
  delete video.dataset.participant;
  delete video.dataset.participantId;
  delete video.dataset.source;
}

/** Renders the stage, the grid, the pager and the audio from `state`, a store.js snapshot. */
export function renderMedia(state) {
  renderStage(state);
  renderGrid(state);
  renderPager(state);
  renderAudio(state);
}

export function clearMedia() {
  view.grid.replaceChildren();
  view.audioSinks.replaceChildren();
  unlabel(view.stageVideo);
  view.stageVideo.srcObject = null;
  view.stageVideo.confsfuTrack = null;
  view.stageTile.hidden = true;
}

/** Stops showing every remote stream (the meeting is over). */
export function detachMedia() {
  for (const el of document.querySelectorAll("#audio-sinks audio, #grid video, #stage-video")) {
    el.srcObject = null;
    el.confsfuTrack = null;
  }
}

function nameOf(state, slot) {
  return slot.name ?? state.participants[slot.participant_id]?.name ?? "";
}

export function renderStage(state) {
  const slot = state.slots.find((s) => s.kind === "video" && s.purpose === "stage");
  const video = view.stageVideo;
  const room = state.room;
  const { slot: showing, why, selfOnStage } = stageView({
    slots: state.slots,
    selfId: state.self?.id,
    room,
    pin: state.pin,
  });
  if (slot) {
    video.dataset.mid = slot.mid;
    attach(video, slot.track);
  }
  const shown = Boolean(showing);
  view.stageTile.hidden = !shown;
  view.stage.dataset.kind = shown ? (slot.source === "screen" ? "screen" : "camera") : "none";
  view.stage.dataset.why = why ?? "none";
  if (shown) {
    const name = nameOf(state, slot);
    label(video, slot, name);
    const kind = why === "pinned" ? t("stage.pinned") : why === "previous" ? t("stage.previous")
      : stageKindWords(slot, room);
    const caption = view.stageTile.querySelector(".label");
    caption.replaceChildren();
    const strong = document.createElement("span");
    strong.className = "name";
    strong.textContent = name;
    caption.append(strong);
    if (kind) {
      const span = document.createElement("span");
      span.className = "kind";
      span.textContent = ` ${kind}`;
      caption.append(span);
    }
    view.stageTile.querySelector(".avatar").textContent = initials(name);
    const who = state.participants[slot.participant_id] ?? { id: slot.participant_id, audio: true, video: true };
    showConnection(view.stageTile, slot, who, state);
    showPin(view.stageTile, slot.participant_id, name, state);
    const screen = slot.source === "screen";
    // The caption already says who has the floor or presents.
    const captioned = { ...room, floor_holder: null, presenter: null };
    const shownWho = screen ? { ...who, video: true, chair_muted_video: false } : who;
    setMarkers(view.stageTile.querySelector(".markers"), shownWho, captioned);
    view.stageTile.classList.toggle("camera-off", !screen && !who.video);
    followPicture(view.stageTile, video, slot, shownWho);
    view.stageTile.classList.toggle("speaking", Boolean(state.speaking?.includes(slot.participant_id)));
  } else {
    unlabel(video);
    view.stageTile.querySelector(".label").replaceChildren();
    view.stageTile.classList.remove("speaking");
    showPin(view.stageTile, null, "", state);
  }
  view.stageEmpty.hidden = shown || selfOnStage;
  view.stageEmpty.textContent = t("stage.nobody");
  view.stageSelf.hidden = !selfOnStage;
  view.stageSelf.textContent = selfOnStage ? t(`stage.you.${["screen", "floor"].includes(room.stage_kind) ? room.stage_kind : "speaker"}`) : "";
}

/** One tile per grid slot; shown only while the slot carries a participant. */
function renderGrid(state) {
  const seen = new Set();
  const gridSlots = state.slots.filter((s) => s.kind === "video" && s.purpose === "grid");
  for (const slot of gridSlots) {
    seen.add(slot.mid);
    let tile = view.grid.querySelector(`.tile[data-slot="${CSS.escape(slot.mid)}"]`);
    if (!tile) tile = createTile(slot.mid, gridSlots);
    const video = tile.querySelector("video");
    attach(video, slot.track);
    const occupied = slot.participant_id != null;
    tile.hidden = !occupied;
    if (occupied) {
      const name = nameOf(state, slot);
      label(video, slot, name);
      tile.querySelector(".label").textContent = name;
      tile.querySelector(".avatar").textContent = initials(name);
      const who = state.participants[slot.participant_id] ?? { id: slot.participant_id, audio: true, video: true };
      showConnection(tile, slot, who, state);
      showPin(tile, slot.participant_id, name, state);
      setMarkers(tile.querySelector(".markers"), who, state.room);
      tile.classList.toggle("camera-off", !who.video);
      followPicture(tile, video, slot, who);
      tile.classList.toggle("speaking", Boolean(state.speaking?.includes(slot.participant_id)));
    } else {
      unlabel(video);
      tile.querySelector(".label").textContent = "";
      tile.classList.remove("speaking");
      showConnection(tile, null, null, state);
      showPin(tile, null, "", state);
      followPicture(tile, video, null, null);
    }
  }
  for (const tile of view.grid.querySelectorAll(".tile.remote")) {
    if (!seen.has(tile.dataset.slot)) tile.remove();
  }
  layoutGrid(state);
}

function createTile(mid, gridSlots) {
  const tile = document.createElement("figure");
  tile.className = "tile remote";
  tile.dataset.slot = mid;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound comes through the audio slots
  video.setAttribute("autoplay", "");
  video.setAttribute("playsinline", "");
  video.dataset.mid = mid;
  video.dataset.purpose = "grid";
  const caption = document.createElement("figcaption");
  caption.className = "label";
  const markers = document.createElement("div");
  markers.className = "markers";
  const avatar = document.createElement("div");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  const why = document.createElement("div");
  why.className = "why";
  tile.append(video, avatar, why, caption, markers);
  // Keep slot order (mids as the server listed them).
  const order = gridSlots.map((s) => s.mid);
  const after = [...view.grid.children].find((t) => order.indexOf(t.dataset.slot) > order.indexOf(mid));
  view.grid.insertBefore(tile, after ?? null);
  return tile;
}

/** Columns and tile size that make the tiles as large as the grid area allows. */
export function layoutGrid(state) {
  const count = view.grid.querySelectorAll(".tile:not([hidden])").length;
  const { width, height } = view.grid.getBoundingClientRect();
  let best = { cols: Math.max(1, Math.ceil(Math.sqrt(count))), width: 0 };
  for (let cols = 1; cols <= Math.max(1, count) && width > 0 && height > 0; cols++) {
    const rows = Math.ceil(Math.max(1, count) / cols);
    const w = Math.min(
      (width - GRID_GAP_PX * (cols - 1)) / cols,
      ((height - GRID_GAP_PX * (rows - 1)) / rows) * TILE_ASPECT,
    );
    if (w > best.width) best = { cols, width: w };
  }
  const rows = Math.max(1, Math.ceil(count / best.cols));
  const cellHeight = (height - GRID_GAP_PX * (rows - 1)) / rows;
  const tileHeight = height > width
    ? Math.min(cellHeight, best.width / TALL_TILE_ASPECT)
    : best.width / TILE_ASPECT;
  view.grid.dataset.count = String(count);
  view.grid.style.setProperty("--cols", String(best.cols));
  view.grid.style.setProperty("--rows", String(rows));
  if (best.width > 0) {
    view.grid.style.setProperty("--tile-w", `${Math.floor(best.width)}px`);
    view.grid.style.setProperty("--tile-h", `${Math.floor(tileHeight)}px`);
  }
  const others = Object.keys(state.participants).length;
  const stage = (state.slots ?? []).find((s) => s.kind === "video" && s.purpose === "stage");
  const onStage = stage?.participant_id != null && stage.participant_id in state.participants;
  // The only other one on the stage with their camera is shown there: nothing is missing.
  view.emptyGrid.hidden = count > 0 || (others === 1 && onStage);
  view.emptyGrid.textContent = others > 0
    ? t("grid.othersNoVideo")
    : t("grid.waiting");
}

/** Number of grid pages for the others in the room. */
export function gridPages(state) {
  const others = Object.keys(state.participants).length;
  return Math.max(1, Math.ceil(others / Math.max(1, state.gridPageSize)));
}

function renderPager(state) {
  const pages = gridPages(state);
  const current = Math.min(state.gridPage, pages - 1);
  view.pager.hidden = pages <= 1;
  view.pageLabel.textContent = t("grid.page", { page: current + 1, count: pages });
  view.prev.disabled = current <= 0;
  view.next.disabled = current >= pages - 1;
}

/** One hidden <audio> per audio slot. */
function renderAudio(state) {
  const seen = new Set();
  for (const slot of state.slots) {
    if (slot.kind !== "audio") continue;
    seen.add(slot.mid);
    let audio = view.audioSinks.querySelector(`audio[data-mid="${CSS.escape(slot.mid)}"]`);
    if (!audio) {
      audio = document.createElement("audio");
      audio.autoplay = true;
      audio.setAttribute("autoplay", "");
      audio.dataset.mid = slot.mid;
      audio.dataset.purpose = "audio";
      view.audioSinks.append(audio);
    }
    audio.dataset.participantId = slot.participant_id ?? "";
    if (slot.track && audio.confsfuTrack !== slot.track) {
      audio.confsfuTrack = slot.track;
      audio.srcObject = new MediaStream([slot.track]);
      audio.play().catch((error) => {
        if (error?.name === "NotAllowedError") state.onSoundBlocked?.();
      });
    }
  }
  for (const audio of view.audioSinks.querySelectorAll("audio")) {
    if (!seen.has(audio.dataset.mid)) audio.remove();
  }
}

/** Plays every audio sink again (after the participant allowed sound). */
export function resumeAudio() {
  for (const audio of view.audioSinks.querySelectorAll("audio")) audio.play().catch(() => {});
}

let observed = null;
new ResizeObserver(() => layoutGrid(observed?.get() ?? { participants: {} })).observe(view.grid);

/** The store (store.js) whose state the resize observer lays out with. */
export function observeStore(store) {
  observed = store;
}
