// The confsfu page: join form, meeting controls, floor banner and participant list around a client.

import { initLanguagePicker } from "./langui.js"; // first: its words go before the others'
import { msg, onLanguageChange, t, tr } from "./i18n.js";
import { initChairPanel, renderSchedule } from "./chair.js";
import { renderControls, renderFloorBanner, renderParticipants, renderRoomFlags } from "./meetingui.js";
import { initChat, onChat, onChatRefused, renderChat, resetChat } from "./chat.js";
import { connectDevices, devices, endPreview, prejoinChoices, setDevicePanel, startPreview } from "./deviceui.js";
import { closeOwnDrawers, setDrawerRole } from "./drawers.js";
import { clearToasts, toast } from "./notify.js";
import { ConferenceClient } from "./protocol.js";
import {
  initStage,
  keepPin,
  renderStageControls,
  reportStageSize,
  resetStage,
} from "./stageui.js";
import {
  clearMedia,
  detachMedia,
  gridPages,
  observeStore,
  renderMedia,
  resumeAudio,
} from "./tiles.js";
import { createStore } from "./store.js";
import { startWatching, watchFromUrl } from "./watch.js";
import { describeNotice, describeServerError, initials } from "./words.js";

const $ = (id) => document.getElementById(id);

const view = {
  status: $("status"),
  roomName: $("room-name"),
  roomFlags: $("room-flags"),
  joinView: $("join-view"),
  joinForm: $("join-form"),
  meetingView: $("meeting-view"),
  leftView: $("left-view"),
  leftText: $("left-text"),
  selfTile: $("self-tile"),
  selfView: $("self-view"),
  mic: $("mic-toggle"),
  cam: $("cam-toggle"),
  hand: $("hand-toggle"),
  screen: $("screen-toggle"),
  leave: $("leave"),
  rejoin: $("rejoin"),
  notice: $("notice"),
  floorBanner: $("floor-banner"),
  prev: $("grid-prev"),
  next: $("grid-next"),
  participantList: $("participant-list"),
  participants: $("participants"),
  participantCount: $("participant-count"),
};

/**
 * The meeting's state (store.js), one meeting at a time; tiles.js, chair.js, chat.js and
 * stageui.js read it, and change it only through the store.
 * @typedef {object} MeetingState
 * @property {ConferenceClient|null} client
 * @property {MediaStream|null} stream  the own camera and microphone
 * @property {object|null} join  {token} or {room, name}
 * @property {object|null} left  {state, words} once the meeting is over
 * @property {Record<string, object>} participants  the others, by id
 * @property {object|null} self
 * @property {object|null} room  the latest room_state
 * @property {{audio: boolean, video: boolean}} media
 * @property {object[]} slots
 * @property {number} gridPage
 * @property {number} gridPageSize
 * @property {{active: boolean, starting: boolean}} screen
 * @property {boolean} soundBlocked
 * @property {object|null} audience  chairs: {listeners, max_listeners}, how many are watching
 * @property {object|null} status  the status line: {words, state}
 * @property {string} roomLabel
 * @property {object|null} notice  the notice under the self view: {words, action}
 * @property {string} layout  stageui.js's: "speaker" or "grid"
 * @property {string|null} pin  stageui.js's: whom this page's stage shows
 * @property {boolean} details  stageui.js's: connection details open
 * @property {string[]} speaking  stageui.js's: who speaks now
 * @property {() => void} onSoundBlocked  what tiles.js calls when the browser blocks sound
 */

const store = createStore(
  /** @type {MeetingState} */ ({
    client: null,
    stream: null,
    join: null,
    left: null,
    participants: {},
    self: null,
    room: null,
    media: { audio: false, video: false },
    slots: [],
    gridPage: 0,
    gridPageSize: 9,
    screen: { active: false, starting: false },
    soundBlocked: false,
    audience: null,
    status: null,
    roomLabel: "",
    notice: null,
    layout: "speaker",
    pin: null,
    details: false,
    speaking: [],
    onSoundBlocked: () => offerSoundButton(),
  }),
  {
    /** A new meeting (or the same again): nobody known yet. */
    meetingStarted: (_, join) => ({
      join,
      left: null,
      participants: {},
      self: null,
      room: null,
      slots: [],
      gridPage: 0,
      screen: { active: false, starting: false },
    }),
    joined: (_, self) => ({ self, gridPage: 0, gridPageSize: self.grid_page_size }),
    selfChanged: (s, self) => ({ self: { ...s.self, ...self } }),
  },
);
/** The meeting's state now (a frozen snapshot). */
const meeting = store.get;

observeStore(store);
connectDevices({
  publishPc: () => meeting().client?.publishPc ?? null,
  micState: () => {
    const { client, self } = meeting();
    if (!client || !self) return null;
    return { muted: !client.mediaState.audio, byChair: Boolean(self.chair_muted_audio) };
  },
  onUnmute: () => meeting().client?.setMicrophone(true),
  onLost: () => setNotice(() => devices.problemText()),
  onSwitched: (kind, hadTrack) => {
    const client = meeting().client;
    if (kind === "camera") view.selfView.srcObject = null; // the same stream with a new track
    if (client && !client.localStream) client.localStream = devices.stream; // joined listen-only
    store.update({ stream: devices.stream });
    if (client && !hadTrack) {
      // A device that was missing now works: on, unless the chair has turned it off.
      const on = kind === "camera" ? client.setCamera(true) : client.setMicrophone(true);
      if (!on) devices.track(kind).enabled = false;
    }
    if (kind === "camera" && devices.track("camera")) view.selfView.srcObject = devices.stream;
    if (!devices.problemText()) setNotice("");
    renderControls(view, meeting());
  },
});
initChairPanel(store);
initChat(store);
initStage(store);

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

/** The pre-join screen; `join` is a join the URL gave already (with `prejoin=1`), else null. */
function showJoinForm(join = null) {
  const params = new URLSearchParams(location.search);
  const form = view.joinForm;
  store.update({ join });
  form.elements.room.value = (params.get("room") ?? "").trim() || "demo";
  form.elements.name.value = (params.get("name") ?? "").trim();
  const invited = Boolean(join?.token); // the invitation says who and where
  $("join-who").hidden = invited;
  for (const input of [form.elements.name, form.elements.room]) input.required = !invited;
  showOnly(view.joinView);
  setStatus(invited ? msg("device.ready") : msg("join.enterName"));
  if (invited) form.querySelector("button[type=submit]").focus();
  else (form.elements.name.value ? form.elements.room : form.elements.name).focus();
  startPreview();
}

view.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (meeting().join?.token) {
    startMeeting(meeting().join, prejoinChoices());
    return;
  }
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
  startMeeting({ room, name }, prejoinChoices());
});

window.addEventListener("popstate", () => location.reload());

// ---- the meeting ---------------------------------------------------------------------------

/** Joins; `prepared` holds the pre-join screen's choices (its devices are open already). */
async function startMeeting(join, prepared = null) {
  store.actions.meetingStarted(join);
  resetStage();
  clearMedia();
  clearToasts();
  resetChat();
  renderRoomName(join.room ?? "");
  showOnly(view.meetingView);
  setNotice("");
  view.selfTile.querySelector(".avatar").textContent = join.name ? initials(join.name) : "";
  renderAll();

  setDevicePanel(false);
  closeOwnDrawers();
  endPreview();
  setStatus(msg("join.asking"));
  await (prepared ? devices.ready : devices.open());
  store.update({
    stream: devices.stream,
    media: { audio: Boolean(devices.track("microphone")), video: Boolean(devices.track("camera")) },
  });
  view.selfView.srcObject = devices.track("camera") ? devices.stream : null;
  setNotice(() => devices.problemText());
  renderControls(view, meeting());

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams(location.search);
  const client = new ConferenceClient({
    url: `${scheme}//${location.host}/ws`,
    join,
    simulcast: params.get("simulcast") !== "0",
  });
  store.update({ client });
  window.conference = client;
  reportStageSize(client);

  const on = (type, handler) => client.addEventListener(type, (e) => {
    if (client === meeting().client) handler(e.detail);
  });
  on("state", (detail) => onState(detail));
  on("joined", (self) => {
    store.actions.joined(self);
    view.selfTile.querySelector(".avatar").textContent = initials(self.name);
    renderRoomName(self.room);
    view.meetingView.classList.toggle("is-chair", self.role === "chair");
    setDrawerRole(self.role === "chair");
    renderStageControls();
    renderAll();
  });
  on("self", (self) => {
    store.actions.selfChanged(self);
    renderControls(view, meeting());
    renderParticipants(view, meeting());
  });
  on("participants", (participants) => {
    store.update({ participants });
    keepPin();
    keepGridPageInRange();
    renderAll();
  });
  on("slots", (slots) => {
    store.update({ slots });
    renderMedia(meeting());
  });
  on("room_state", (room) => {
    store.update({ room });
    renderAll();
  });
  on("audience", (audience) => {
    store.update({ audience }); // the chair panel renders it
  });
  on("media", (media) => {
    store.update({ media });
    renderControls(view, meeting());
    renderParticipants(view, meeting());
  });
  on("chat", (detail) => onChat(detail));
  on("notice", (notice) => toast(describeNotice(notice, namesById()), { kind: "notice", code: notice.code }));
  on("screen", (screen) => {
    const wasActive = meeting().screen.active;
    store.update({ screen });
    if (wasActive && !screen.active && screen.text) toast(screen.text, { code: "screen_stopped" });
    renderControls(view, meeting());
  });
  on("error", (error) => {
    if (error.fatal) return; // fatal ones arrive as state "failed"
    if (error.in_reply_to === "chat_send") {
      onChatRefused(error, namesById()); // said in the chat panel, next to the text
      return;
    }
    toast(describeServerError(error, namesById()), { kind: "error", code: error.code });
  });

  if (prepared?.cameraOff) client.setCamera(false);
  if (prepared?.micOff) client.setMicrophone(false);
  try {
    await client.start(devices.stream);
  } catch (error) {
    // The `state` event has already said why, in words.
    console.warn("confsfu: could not join", error);
  }
}

function onState({ state, words }) {
  setStatus(words, state);
  if (state === "closed" || state === "failed") {
    stopLocalMedia();
    store.update({ left: { state, words } });
    renderLeft();
    view.leftView.dataset.state = state;
    showOnly(view.leftView);
    view.rejoin.focus();
  }
}

function stopLocalMedia() {
  devices.stop();
  store.update({ stream: null });
  view.selfView.srcObject = null;
  detachMedia();
}

function namesById() {
  const names = {};
  for (const p of Object.values(meeting().participants)) names[p.id] = p.name;
  if (meeting().self) names[meeting().self.id] = t("names.you");
  return names;
}

function keepGridPageInRange() {
  const last = gridPages(meeting()) - 1;
  if (meeting().gridPage > last) {
    store.update({ gridPage: last });
    meeting().client?.viewPage(last);
  }
}

// ---- controls --------------------------------------------------------------------------------

view.mic.addEventListener("click", () => {
  const client = meeting().client;
  if (!client) return;
  if (meeting().self?.chair_muted_audio) client.requestUnmute("audio");
  else client.setMicrophone(!client.mediaState.audio);
});

view.cam.addEventListener("click", () => {
  const client = meeting().client;
  if (!client) return;
  if (meeting().self?.chair_muted_video) client.requestUnmute("video");
  else client.setCamera(!client.mediaState.video);
});

view.hand.addEventListener("click", () => {
  const client = meeting().client;
  if (!client) return;
  if (client.handRaised) client.lowerHand();
  else client.raiseHand();
});

view.screen.addEventListener("click", async () => {
  const client = meeting().client;
  if (!client) return;
  if (client.sharingScreen) {
    client.stopScreenShare();
    return;
  }
  try {
    await client.startScreenShare();
  } catch (error) {
    // A server refusal was already shown from its `error` message.
    if (!error?.code) toast(error?.message ?? String(error), { kind: "error", code: "screen_failed" });
  }
});

view.prev.addEventListener("click", () => turnPage(-1));
view.next.addEventListener("click", () => turnPage(+1));

function turnPage(delta) {
  const last = gridPages(meeting()) - 1;
  const next = Math.max(0, Math.min(last, meeting().gridPage + delta));
  if (next === meeting().gridPage) return;
  store.update({ gridPage: next });
  meeting().client?.viewPage(next);
  renderMedia(meeting());
}

view.leave.addEventListener("click", () => {
  meeting().client?.leave();
});

view.rejoin.addEventListener("click", () => {
  if (meeting().join) startMeeting(meeting().join);
});

window.addEventListener("pagehide", () => {
  if (meeting().client && !["closed", "failed"].includes(meeting().client.state)) {
    meeting().client.leave({ unloading: true }); // a reload comes back as the same participant
  }
});

// ---- rendering -------------------------------------------------------------------------------

function renderAll() {
  renderMedia(meeting());
  renderControls(view, meeting());
  renderFloorBanner(view, meeting());
  renderRoomFlags(view, meeting());
  renderParticipants(view, meeting());
  renderChat(); // the chair panel renders itself from the store (chair.js)
}

/** The status line: `words` is a message (i18n.js msg()), worded again when the language changes. */
function setStatus(words, state = "info") {
  store.update({ status: { words, state } });
  view.status.dataset.state = state;
  view.status.textContent = tr(words);
}

function renderRoomName(room) {
  store.update({ roomLabel: room });
  view.roomName.textContent = room ? t("room.label", { room }) : "";
}

/** The page after leaving: why, and the button to come back. */
function renderLeft() {
  if (!meeting().left) return;
  view.leftText.textContent = tr(meeting().left.words);
  view.rejoin.textContent = meeting().left.state === "failed" ? t("left.tryAgain") : t("left.rejoin");
}

/** The notice under the self view; `words` is text, or a function giving it (worded again on a
 * language change). */
function setNotice(words, action = null) {
  store.update({ notice: { words, action } });
  const text = typeof words === "function" ? words() : words;
  view.notice.replaceChildren();
  view.notice.hidden = !text;
  if (!text) return;
  const p = document.createElement("p");
  p.textContent = text;
  view.notice.append(p);
  if (action) view.notice.append(action);
}

function offerSoundButton() {
  if (meeting().soundBlocked) return;
  store.update({ soundBlocked: true });
  const button = document.createElement("button");
  button.type = "button";
  button.className = "primary";
  button.textContent = t("sound.turnOn");
  button.dataset.i18n = "sound.turnOn"; // reworded with the page (langui.js)
  button.addEventListener("click", () => {
    store.update({ soundBlocked: false });
    resumeAudio();
    setNotice("");
  });
  setNotice(() => t("sound.blocked"), button);
}

// Countdowns: the floor's time limit and the scheduled end.
setInterval(() => {
  if (!meeting().room) return;
  renderFloorBanner(view, meeting());
  renderSchedule();
}, 500);

// A new language: everything the page words itself is worded again (the static text: langui.js).
onLanguageChange(() => {
  if (meeting().status) setStatus(meeting().status.words, meeting().status.state);
  renderRoomName(meeting().roomLabel ?? "");
  renderLeft();
  if (meeting().notice) setNotice(meeting().notice.words, meeting().notice.action);
  if (!view.meetingView.hidden && !document.body.classList.contains("watching")) renderAll();
});

// ---- go ----------------------------------------------------------------------------------------

// A watch link (or a listener's invitation) shows the watch page; a link with a name or an
// invitation joins at once; `prejoin=1` shows the pre-join screen first.
initLanguagePicker();
const watching = watchFromUrl(location.search);
const initial = watching ? null : joinFromUrl();
if (watching) startWatching(watching);
else if (initial && new URLSearchParams(location.search).get("prejoin") !== "1") startMeeting(initial);
else showJoinForm(initial);
