// The watch page: a listener's view of a meeting. The stage and the meeting's sound; no camera,
// no microphone, nothing to publish; leave, volume and full screen are the only controls.

import { onLanguageChange, t, tr } from "./i18n.js";
import { clearToasts, toast } from "./notify.js";
import { ConferenceClient } from "./protocol.js";
import { reportStageSize } from "./stageui.js";
import { createStore } from "./store.js";
import { clearMedia, detachMedia, renderMedia, resumeAudio } from "./tiles.js";
import { describeNotice, describeServerError } from "./words.js";

const $ = (id) => document.getElementById(id);

const view = {
  status: $("status"),
  roomName: $("room-name"),
  joinView: $("join-view"),
  meetingView: $("meeting-view"),
  leftView: $("left-view"),
  leftText: $("left-text"),
  rejoin: $("rejoin"),
  stage: $("stage"),
  bar: $("watch-bar"),
  text: $("watch-text"),
  volume: $("watch-volume"),
  fullscreen: $("watch-fullscreen"),
  leave: $("watch-leave"),
  sound: $("watch-sound"),
  audioSinks: $("audio-sinks"),
};

/**
 * The watch page's own store (store.js): what tiles.js reads (the stage's and the audio's slots,
 * the room's state; nobody's list) and the status line.
 */
const store = createStore({
  client: null,
  join: null,
  participants: {},
  self: null,
  room: null,
  slots: [],
  gridPage: 0,
  gridPageSize: 1,
  status: null, // {state, words}
  onSoundBlocked: () => {
    view.sound.hidden = false;
  },
});
/** The watch page's state now (a frozen snapshot). */
const watch = store.get;

/**
 * The join a watch link asks for, or null: `?room=NAME&watch=1` (a `name` optional), a
 * listener's invitation `?token=...`, or any invitation with `&watch=1`.
 */
export function watchFromUrl(search) {
  const params = new URLSearchParams(search);
  const watch = params.get("watch") === "1";
  const token = params.get("token");
  if (token) return watch || tokenRole(token) === "listener" ? { token, watch: true } : null;
  const room = (params.get("room") ?? "").trim().slice(0, 64);
  if (!watch || !room) return null;
  const name = (params.get("name") ?? "").trim().slice(0, 64);
  return name ? { room, name, watch: true } : { room, watch: true };
}

/** The role a token says (the server checks it; the page only picks its view). */
function tokenRole(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="))).role;
  } catch {
    return null;
  }
}

function setVolume() {
  const volume = Number(view.volume.value) / 100;
  for (const audio of view.audioSinks.querySelectorAll("audio")) audio.volume = volume;
  view.volume.setAttribute("aria-valuetext", t("watch.volumeValue", { percent: Number(view.volume.value) }));
}

function render() {
  renderMedia(watch());
  setVolume(); // audio elements may be new
  const stage = watch().slots.find((s) => s.kind === "video" && s.purpose === "stage");
  const who = stage?.name;
  view.text.textContent = who ? t("watch.onStage", { name: who }) : t("watch.nobody");
}

function onState({ state, words }) {
  store.update({ status: { state, words } });
  renderStatus();
  if (state === "closed" || state === "failed") {
    detachMedia();
    view.leftView.dataset.state = state;
    showOnly(view.leftView);
    view.rejoin.focus();
  }
}

/** The status line and, once it ended, why (worded again when the language changes). */
function renderStatus() {
  if (!watch().status) return;
  const { state, words } = watch().status;
  view.status.textContent = tr(words);
  view.status.dataset.state = state;
  if (state !== "closed" && state !== "failed") return;
  view.leftText.textContent = words?.key === "state.left" ? t("watch.stopped") : tr(words);
  view.rejoin.textContent = t("watch.again");
}

function renderRoomName() {
  const room = watch().self?.room ?? watch().join?.room;
  view.roomName.textContent = room ? t("watch.room", { room }) : t("watch.watching");
}

function showOnly(section) {
  for (const s of [view.joinView, view.meetingView, view.leftView]) s.hidden = s !== section;
}

/** Joins as a listener and shows the watch view. */
export async function startWatching(join) {
  document.body.classList.add("watching");
  store.update({ join, self: null, room: null, slots: [], status: null });
  clearMedia();
  clearToasts();
  renderRoomName();
  view.sound.hidden = true;
  view.bar.hidden = false;
  showOnly(view.meetingView);
  render();

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const client = new ConferenceClient({ url: `${scheme}//${location.host}/ws`, join });
  store.update({ client });
  window.conference = client;
  reportStageSize(client);
  const on = (type, handler) => client.addEventListener(type, (e) => {
    if (client === watch().client) handler(e.detail);
  });
  on("state", onState);
  on("joined", (self) => {
    store.update({ self });
    renderRoomName();
  });
  on("slots", (slots) => {
    store.update({ slots });
    render();
  });
  on("room_state", (room) => {
    store.update({ room });
    render();
  });
  on("notice", (notice) => toast(describeNotice(notice), { kind: "notice", code: notice.code }));
  on("error", (error) => {
    if (!error.fatal) toast(describeServerError(error, {}), { kind: "error", code: error.code });
  });
  try {
    await client.start(null);
  } catch (error) {
    console.warn("confsfu: could not start watching", error); // the state event said why
  }
}

view.volume.addEventListener("input", setVolume);

view.sound.addEventListener("click", () => {
  view.sound.hidden = true;
  resumeAudio();
});

view.fullscreen.addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else view.stage.requestFullscreen?.().catch(() => {});
});

document.addEventListener("fullscreenchange", () => {
  view.fullscreen.textContent = document.fullscreenElement ? t("layout.exitFullScreen") : t("layout.fullScreen");
});

onLanguageChange(() => {
  if (!document.body.classList.contains("watching")) return;
  renderStatus();
  renderRoomName();
  render();
  view.fullscreen.textContent = document.fullscreenElement ? t("layout.exitFullScreen") : t("layout.fullScreen");
});

view.leave.addEventListener("click", () => watch().client?.leave());

view.rejoin.addEventListener("click", () => {
  if (watch().join && document.body.classList.contains("watching")) startWatching(watch().join);
});

window.addEventListener("pagehide", () => {
  const { client } = watch();
  if (client && !["closed", "failed"].includes(client.state)) client.leave();
});
