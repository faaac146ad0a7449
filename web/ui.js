// The confsfu page: join form, video grid, controls and participant list around a ConferenceClient.

import { ConferenceClient, openLocalMedia } from "./protocol.js";

const $ = (id) => document.getElementById(id);

const view = {
  status: $("status"),
  roomName: $("room-name"),
  joinView: $("join-view"),
  joinForm: $("join-form"),
  meetingView: $("meeting-view"),
  leftView: $("left-view"),
  leftText: $("left-text"),
  grid: $("grid"),
  emptyGrid: $("empty-grid"),
  selfTile: $("self-tile"),
  selfView: $("self-view"),
  mic: $("mic-toggle"),
  cam: $("cam-toggle"),
  leave: $("leave"),
  rejoin: $("rejoin"),
  notice: $("notice"),
  participants: $("participants"),
  participantCount: $("participant-count"),
  audioSinks: $("audio-sinks"),
};

/** Page state: one meeting at a time. */
const page = {
  client: null,
  stream: null,
  join: null, // {token} or {room, name}
  participants: {},
  self: null,
  media: { audio: false, video: false },
  slots: [],
  lastError: "",
  errorTimer: 0,
  soundBlocked: false,
};

// ---- start-up ------------------------------------------------------------------------------

function joinFromUrl() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  if (token) return { token };
  const room = (params.get("room") ?? "").trim();
  const name = (params.get("name") ?? "").trim();
  if (room && name) return { room: room.slice(0, 64), name: name.slice(0, 64) };
  return null;
}

function showOnly(section) {
  for (const s of [view.joinView, view.meetingView, view.leftView]) s.hidden = s !== section;
}

function showJoinForm() {
  const params = new URLSearchParams(location.search);
  const form = view.joinForm;
  form.elements.room.value = (params.get("room") ?? "").trim() || "demo";
  form.elements.name.value = (params.get("name") ?? "").trim();
  showOnly(view.joinView);
  setStatus("Enter your name to join.");
  (form.elements.name.value ? form.elements.room : form.elements.name).focus();
}

view.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = view.joinForm;
  const name = form.elements.name.value.trim();
  const room = form.elements.room.value.trim() || "demo";
  if (!name) {
    form.elements.name.focus();
    return;
  }
  const url = new URL(location.href);
  url.search = new URLSearchParams({ room, name }).toString();
  history.pushState(null, "", url); // start now (keeps this click's permission to play sound)
  startMeeting({ room, name });
});

window.addEventListener("popstate", () => location.reload());

// ---- the meeting ---------------------------------------------------------------------------

async function startMeeting(join) {
  page.join = join;
  page.participants = {};
  page.self = null;
  page.slots = [];
  page.lastError = "";
  view.grid.replaceChildren();
  view.audioSinks.replaceChildren();
  renderGridLayout();
  renderParticipants();
  view.roomName.textContent = join.room ? `Room: ${join.room}` : "";
  showOnly(view.meetingView);
  setNotice("");

  setStatus("Asking for your camera and microphone…");
  const local = await openLocalMedia({ audio: true, video: { width: 1280, height: 720 } });
  page.stream = local.stream;
  page.media = { audio: local.audio, video: local.video };
  view.selfView.srcObject = local.video ? local.stream : null;
  if (local.notice) setNotice(local.notice);
  renderControls();

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams(location.search);
  const client = new ConferenceClient({
    url: `${scheme}//${location.host}/ws`,
    join,
    simulcast: params.get("simulcast") !== "0",
  });
  page.client = client;
  window.conference = client;

  client.addEventListener("state", (e) => onState(client, e.detail));
  client.addEventListener("joined", (e) => {
    if (client !== page.client) return;
    page.self = e.detail;
    view.selfTile.querySelector(".avatar").textContent = initials(e.detail.name);
    view.roomName.textContent = `Room: ${e.detail.room}`;
    renderParticipants();
  });
  client.addEventListener("participants", (e) => {
    if (client !== page.client) return;
    page.participants = e.detail;
    renderParticipants();
    renderTiles();
  });
  client.addEventListener("slots", (e) => {
    if (client !== page.client) return;
    page.slots = e.detail;
    renderTiles();
    renderAudio();
  });
  client.addEventListener("media", (e) => {
    if (client !== page.client) return;
    page.media = e.detail;
    renderControls();
    renderParticipants();
  });
  client.addEventListener("error", (e) => {
    if (client !== page.client || e.detail.fatal) return; // fatal ones arrive as state "failed"
    showError(describeServerError(e.detail));
  });

  try {
    await client.start(local.stream);
  } catch (error) {
    // The `state` event has already said why, in words.
    console.warn("confsfu: could not join", error);
  }
}

function onState(client, { state, text }) {
  if (client !== page.client) return;
  setStatus(text, state);
  if (state === "closed" || state === "failed") {
    stopLocalMedia();
    view.leftText.textContent = text;
    view.rejoin.textContent = state === "failed" ? "Try again" : "Rejoin";
    view.leftView.dataset.state = state;
    showOnly(view.leftView);
    view.rejoin.focus();
  }
}

function stopLocalMedia() {
  for (const track of page.stream?.getTracks() ?? []) track.stop();
  page.stream = null;
  view.selfView.srcObject = null;
  for (const el of view.audioSinks.querySelectorAll("audio")) el.srcObject = null;
  for (const el of view.grid.querySelectorAll("video")) el.srcObject = null;
}

view.mic.addEventListener("click", () => {
  page.client?.setMicrophone(!page.client.mediaState.audio);
});

view.cam.addEventListener("click", () => {
  page.client?.setCamera(!page.client.mediaState.video);
});

view.leave.addEventListener("click", () => {
  page.client?.leave();
});

view.rejoin.addEventListener("click", () => {
  if (page.join) startMeeting(page.join);
});

window.addEventListener("pagehide", () => {
  if (page.client && !["closed", "failed"].includes(page.client.state)) page.client.leave();
});

// ---- rendering -------------------------------------------------------------------------------

function setStatus(text, state = "info") {
  view.status.dataset.state = state;
  view.status.textContent = page.lastError ? `${text} — ${page.lastError}` : text;
  view.status.dataset.text = text;
}

function showError(text) {
  page.lastError = text;
  setStatus(view.status.dataset.text ?? "", view.status.dataset.state);
  clearTimeout(page.errorTimer);
  page.errorTimer = setTimeout(() => {
    page.lastError = "";
    setStatus(view.status.dataset.text ?? "", view.status.dataset.state);
  }, 8000);
}

function describeServerError({ code, message, in_reply_to: inReplyTo }) {
  const what = {
    bad_sdp: "The server could not use your browser's media description",
    too_large: "A message was too large for the server",
    out_of_order: "The server did not expect that request now",
  }[code] ?? "The server refused a request";
  const about = inReplyTo ? ` (${inReplyTo.replaceAll("_", " ")})` : "";
  return message ? `${what}${about}: ${message}` : `${what}${about}.`;
}

function setNotice(text, action = null) {
  view.notice.replaceChildren();
  view.notice.hidden = !text;
  if (!text) return;
  const p = document.createElement("p");
  p.textContent = text;
  view.notice.append(p);
  if (action) view.notice.append(action);
}

function renderControls() {
  const { audio, video } = page.media;
  const hasAudio = (page.stream?.getAudioTracks().length ?? 0) > 0;
  const hasVideo = (page.stream?.getVideoTracks().length ?? 0) > 0;
  view.mic.textContent = audio ? "Mute" : "Unmute";
  view.mic.disabled = !hasAudio;
  view.mic.setAttribute("aria-pressed", String(!audio));
  view.mic.title = hasAudio ? "" : "No microphone available";
  view.cam.textContent = video ? "Stop camera" : "Start camera";
  view.cam.disabled = !hasVideo;
  view.cam.setAttribute("aria-pressed", String(!video));
  view.cam.title = hasVideo ? "" : "No camera available";
  setMarkers(view.selfTile.querySelector(".markers"), { audio, video });
  view.selfTile.classList.toggle("camera-off", !video);
}

function setMarkers(container, { audio, video }) {
  const wanted = [];
  if (!audio) wanted.push(["muted", "muted"]);
  if (!video) wanted.push(["camera-off", "camera off"]);
  const key = wanted.map(([k]) => k).join(" ");
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  container.replaceChildren(...wanted.map(([cls, text]) => {
    const span = document.createElement("span");
    span.className = `marker ${cls}`;
    span.textContent = text;
    return span;
  }));
}

/** One tile per video slot; shown only while the slot carries a participant. */
function renderTiles() {
  const seen = new Set();
  for (const slot of page.slots) {
    if (slot.kind !== "video") continue;
    seen.add(slot.mid);
    let tile = view.grid.querySelector(`.tile[data-slot="${CSS.escape(slot.mid)}"]`);
    if (!tile) tile = createTile(slot.mid);
    const video = tile.querySelector("video");
    if (slot.track && video.confsfuTrack !== slot.track) {
      video.confsfuTrack = slot.track;
      video.srcObject = new MediaStream([slot.track]);
      video.play().catch(() => {}); // muted video may always play; autoplay covers the rest
    }
    const occupied = slot.participant_id != null;
    tile.hidden = !occupied;
    if (occupied) {
      const name = slot.name ?? page.participants[slot.participant_id]?.name ?? "";
      video.dataset.participant = name;
      video.dataset.participantId = slot.participant_id;
      tile.querySelector(".label").textContent = name;
      tile.querySelector(".avatar").textContent = initials(name);
      const who = page.participants[slot.participant_id] ?? { audio: true, video: true };
      setMarkers(tile.querySelector(".markers"), who);
      tile.classList.toggle("camera-off", !who.video);
    } else {
      delete video.dataset.participant;
      delete video.dataset.participantId;
      tile.querySelector(".label").textContent = "";
    }
  }
  for (const tile of view.grid.querySelectorAll(".tile")) {
    if (!seen.has(tile.dataset.slot)) tile.remove();
  }
  renderGridLayout();
}

function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  return words.slice(0, 2).map((w) => [...w][0].toUpperCase()).join("") || "?";
}

function createTile(mid) {
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
  const label = document.createElement("figcaption");
  label.className = "label";
  const markers = document.createElement("div");
  markers.className = "markers";
  const avatar = document.createElement("div");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  tile.append(video, avatar, label, markers);
  // Keep slot order (mids as the server listed them).
  const order = page.slots.filter((s) => s.kind === "video").map((s) => s.mid);
  const after = [...view.grid.children].find((t) => order.indexOf(t.dataset.slot) > order.indexOf(mid));
  view.grid.insertBefore(tile, after ?? null);
  return tile;
}

const TILE_ASPECT = 16 / 9;
const GRID_GAP_PX = 8;

/** Columns and tile size that make the tiles as large as the stage allows. */
function renderGridLayout() {
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
  view.grid.dataset.count = String(count);
  view.grid.style.setProperty("--cols", String(best.cols));
  view.grid.style.setProperty("--rows", String(rows));
  if (best.width > 0) {
    view.grid.style.setProperty("--tile-w", `${Math.floor(best.width)}px`);
    view.grid.style.setProperty("--tile-h", `${Math.floor(best.width / TILE_ASPECT)}px`);
  }
  view.emptyGrid.hidden = count > 0;
  const others = Object.keys(page.participants).length;
  view.emptyGrid.textContent = others > 0
    ? "Others are here; their video will appear when they turn on their camera."
    : "Waiting for others to join…";
}

new ResizeObserver(() => renderGridLayout()).observe(view.grid);

/** One hidden <audio> per audio slot. */
function renderAudio() {
  const seen = new Set();
  for (const slot of page.slots) {
    if (slot.kind !== "audio") continue;
    seen.add(slot.mid);
    let audio = view.audioSinks.querySelector(`audio[data-mid="${CSS.escape(slot.mid)}"]`);
    if (!audio) {
      audio = document.createElement("audio");
      audio.autoplay = true;
      audio.setAttribute("autoplay", "");
      audio.dataset.mid = slot.mid;
      view.audioSinks.append(audio);
    }
    audio.dataset.participantId = slot.participant_id ?? "";
    if (slot.track && audio.confsfuTrack !== slot.track) {
      audio.confsfuTrack = slot.track;
      audio.srcObject = new MediaStream([slot.track]);
      audio.play().catch((error) => {
        if (error?.name === "NotAllowedError") offerSoundButton();
      });
    }
  }
  for (const audio of view.audioSinks.querySelectorAll("audio")) {
    if (!seen.has(audio.dataset.mid)) audio.remove();
  }
}

function offerSoundButton() {
  if (page.soundBlocked) return;
  page.soundBlocked = true;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "primary";
  button.textContent = "Turn on sound";
  button.addEventListener("click", () => {
    page.soundBlocked = false;
    for (const audio of view.audioSinks.querySelectorAll("audio")) audio.play().catch(() => {});
    setNotice("");
  });
  setNotice("Your browser blocked the meeting's sound until you click.", button);
}

function renderParticipants() {
  const items = [];
  if (page.self || page.join) {
    items.push({
      id: page.self?.id ?? "self",
      name: `${page.self?.name ?? page.join?.name ?? "You"} (you)`,
      role: page.self?.role ?? "participant",
      audio: page.media.audio,
      video: page.media.video,
      self: true,
    });
  }
  const others = Object.values(page.participants)
    .sort((a, b) => a.name.localeCompare(b.name));
  items.push(...others);
  view.participants.replaceChildren(...items.map((p) => {
    const li = document.createElement("li");
    li.dataset.id = p.id;
    li.classList.toggle("self", Boolean(p.self));
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.name;
    li.append(name);
    if (p.role === "chair") {
      const role = document.createElement("span");
      role.className = "role";
      role.textContent = "chair";
      li.append(role);
    }
    const state = document.createElement("span");
    state.className = "media-state";
    const mic = document.createElement("span");
    mic.className = p.audio ? "mic on" : "mic off";
    mic.textContent = p.audio ? "mic on" : "muted";
    const cam = document.createElement("span");
    cam.className = p.video ? "cam on" : "cam off";
    cam.textContent = p.video ? "camera on" : "camera off";
    state.append(mic, cam);
    li.append(state);
    return li;
  }));
  view.participantCount.textContent = `(${items.length})`;
  renderGridLayout();
}

// ---- go ----------------------------------------------------------------------------------------

const initial = joinFromUrl();
if (initial) startMeeting(initial);
else showJoinForm();
