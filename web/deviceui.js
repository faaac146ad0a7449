// The local devices on the page: the pre-join preview and its toggles, the camera, microphone and
// speaker pickers (before and during the meeting), the level meters and the "you are muted" notice.

import {
  chooseDevice,
  devicesOfKind,
  LevelMeter,
  meterFraction,
  meterStep,
  MutedSpeech,
  openCameraAndMicrophone,
  openDevice,
  savedChoices,
  saveChoice,
  speakerChoiceSupported,
  swapTrack,
} from "./devices.js";
import { onLanguageChange, t } from "./i18n.js";
import { describeDeviceProblem } from "./words.js";

const $ = (id) => document.getElementById(id);
const METER_EVERY_MS = 50;
const KIND_OF = { camera: "videoinput", microphone: "audioinput", speaker: "audiooutput" };
const NONE_KEYS = { camera: "device.noCamera", microphone: "device.noMicrophone", speaker: "" };

const view = {
  preview: $("preview-video"),
  previewOff: $("preview-off"),
  cameraOff: $("join-camera-off"),
  micOff: $("join-mic-off"),
  joinProblems: $("device-problems"),
  joinHint: $("join-hint"),
  meetingProblem: $("devices-problem"),
  panel: $("devices-panel"),
  toggle: $("devices-toggle"),
  close: $("devices-close"),
  meters: [$("join-level"), $("meeting-level")],
  levelWaits: $("join-level-waits"),
  mutedNotice: $("muted-notice"),
  mutedText: $("muted-notice-text"),
  mutedUnmute: $("muted-notice-unmute"),
  audioSinks: $("audio-sinks"),
};

const pickerGroups = [
  { camera: $("join-camera"), microphone: $("join-microphone"), speaker: $("join-speaker"), problem: view.joinProblems },
  { camera: $("meeting-camera"), microphone: $("meeting-microphone"), speaker: $("meeting-speaker"), problem: view.meetingProblem },
];

/** The camera and microphone this page opened, and what the pickers, meters and notice show. */
class LocalDevices {
  constructor() {
    this.stream = null;
    /** Why the camera / microphone is missing: an error ({name, message}), "lost" or null. */
    this.problems = { camera: null, microphone: null };
    this.speakerId = savedChoices().speaker ?? null;
    /** Set by the page (connectDevices): the publishing connection now (its senders get new tracks), or null. */
    this.publishPc = () => null;
    /** Set by the page (connectDevices): () => null outside a meeting, else {muted, byChair}. */
    this.micState = () => null;
    /** Set by the page (connectDevices): called with (kind, hadTrack) after a camera or microphone changed. */
    this.onSwitched = () => {};
    this.onUnmute = () => {};
    /** Set by the page (connectDevices): called with the kind of a device that stopped by itself. */
    this.onLost = () => {};
    this._meter = new LevelMeter();
    this._muted = new MutedSpeech();
    this._shown = 0;
    this._lastTick = performance.now();
    this._timer = null;
    this._generation = 0; // bumped by open() and stop(): an open() that was overtaken lets go
    /** Settles once the latest open() has (the pre-join screen may be joined from before). */
    this.ready = Promise.resolve();
  }

  track(kind) {
    const tracks = kind === "camera" ? this.stream?.getVideoTracks() : this.stream?.getAudioTracks();
    return tracks?.[0] ?? null;
  }

  /** Opens the camera and microphone (saved choices first), fills the pickers, starts the meter. */
  open() {
    this.stop();
    const generation = this._generation;
    this.ready = (async () => {
      const { stream, errors } = await openCameraAndMicrophone(savedChoices());
      if (generation !== this._generation) {
        for (const track of stream?.getTracks() ?? []) track.stop();
        return;
      }
      this.stream = stream;
      for (const track of stream?.getTracks() ?? []) this._watch(track);
      this.problems = errors;
      this._meter.attach(this.track("microphone"));
      this._timer ??= setInterval(() => this._tick(), METER_EVERY_MS);
      await this.refreshPickers();
    })();
    return this.ready;
  }

  /** Stops the camera and microphone (leaving, or before opening them again). */
  stop() {
    this._generation += 1;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this._meter.detach();
    this._muted.update(0, false, performance.now());
    view.mutedNotice.hidden = true;
  }

  /** Words for whatever could not be opened, or "" when both work. */
  problemText() {
    const words = (kind) => {
      const cause = this.problems[kind];
      if (!cause) return null;
      return cause === "lost" ? t(`device.lost.${kind}`) : describeDeviceProblem(kind, cause);
    };
    const parts = [words("camera"), words("microphone")].filter(Boolean);
    if (this.problems.camera && this.problems.microphone) parts.push(t("device.listenOnly"));
    return parts.join(" ");
  }

  async refreshPickers() {
    let devices = [];
    try {
      devices = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
    } catch {
      devices = [];
    }
    const saved = savedChoices();
    for (const group of pickerGroups) {
      for (const kind of ["camera", "microphone", "speaker"]) {
        const options = devicesOfKind(devices, KIND_OF[kind]);
        const inUse = kind === "speaker" ? this.speakerId : this.track(kind)?.getSettings?.().deviceId;
        fillPicker(group[kind], options, chooseDevice(options, { inUse, wanted: saved[kind] }), NONE_KEYS[kind] && t(NONE_KEYS[kind]));
      }
      const speakers = speakerChoiceSupported() && group.speaker.options.length > 0;
      for (const el of document.querySelectorAll(".speaker-field")) {
        if (el === group.speaker || el.htmlFor === group.speaker.id) el.hidden = !speakers;
      }
    }
  }

  /** The participant picked a device: open it and put it in place (on the senders in a meeting). */
  async pick(kind, id, problemEl) {
    problemEl.hidden = true;
    if (kind === "speaker") {
      this.speakerId = id;
      saveChoice("speaker", id);
      await this.applySpeaker(undefined, problemEl);
      return;
    }
    const { track, problem } = await openDevice(kind, id);
    if (!track) {
      showProblem(problemEl, problem);
      await this.refreshPickers();
      return;
    }
    this.stream ??= new MediaStream();
    this._watch(track);
    const old = await swapTrack({ track, stream: this.stream, pc: this.publishPc() });
    this.problems[kind] = null;
    saveChoice(kind, id);
    if (kind === "microphone") this._meter.attach(track);
    if (!view.preview.closest("[hidden]")) {
      view.preview.srcObject = null; // the same stream with a new track: play it afresh
      syncToggles();
      showProblem(view.joinProblems, this.problemText());
    }
    await this.refreshPickers();
    this.onSwitched(kind, old !== null);
  }

  /** Plays the meeting's audio on the chosen speaker (where the browser can choose). */
  async applySpeaker(elements = view.audioSinks.querySelectorAll("audio"), problemEl = view.meetingProblem) {
    if (!this.speakerId || !speakerChoiceSupported()) return;
    for (const audio of elements) {
      if (audio.sinkId === this.speakerId) continue;
      try {
        await audio.setSinkId(this.speakerId);
      } catch (error) {
        showProblem(problemEl, t("device.switchFailed", { detail: error?.message ?? error }));
      }
    }
  }

  /** A device that stops by itself (unplugged, taken by another application) is said in words. */
  _watch(track) {
    const kind = track.kind === "video" ? "camera" : "microphone";
    track.addEventListener("ended", () => {
      if (this.track(kind) !== track) return;
      this.problems[kind] = "lost";
      if (!view.joinProblems.closest("[hidden]")) showProblem(view.joinProblems, this.problemText());
      this.onLost(kind);
    });
  }

  /** The microphone's level now (RMS, 0..1; 0 without one). */
  micLevel() {
    return this._meter.level();
  }

  resumeAudio() {
    this._meter.resume();
  }

  _tick() {
    const now = performance.now();
    const fraction = meterFraction(this._meter.level());
    this._shown = meterStep(this._shown, fraction, now - this._lastTick);
    this._lastTick = now;
    const percent = Math.round(this._shown * 100);
    for (const meter of view.meters) {
      if (meter.offsetParent === null) continue;
      meter.firstElementChild.style.transform = `scaleX(${this._shown.toFixed(3)})`;
      meter.setAttribute("aria-valuenow", String(percent));
    }
    const waiting = this._meter.waiting();
    if (view.levelWaits.hidden === waiting) {
      view.levelWaits.textContent = t("device.levelWaits");
      view.levelWaits.hidden = !waiting;
    }
    const mic = this.track("microphone") ? this.micState() : null;
    const show = this._muted.update(fraction, Boolean(mic?.muted), now);
    if (show) {
      const text = mic.byChair ? t("device.chairMutedSpeaking") : t("device.mutedSpeaking");
      if (view.mutedText.textContent !== text) view.mutedText.textContent = text;
      view.mutedUnmute.hidden = mic.byChair;
    }
    view.mutedNotice.hidden = !show;
  }
}

function fillPicker(select, options, chosen, noneWords) {
  const key = JSON.stringify([options, chosen, noneWords]);
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  select.replaceChildren(...options.map(({ id, label }) => new Option(label, id, false, id === chosen)));
  if (!options.length && noneWords) select.append(new Option(noneWords, ""));
  select.disabled = options.length === 0;
}

function showProblem(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

export const devices = new LocalDevices();

/**
 * The page's side of the devices (ui.js, once): `publishPc`, `micState`, `onSwitched`,
 * `onUnmute`, `onLost` as LocalDevices describes them; the ones not given stay as they are.
 */
export function connectDevices(hooks) {
  for (const name of ["publishPc", "micState", "onSwitched", "onUnmute", "onLost"]) {
    if (typeof hooks[name] === "function") devices[name] = hooks[name];
  }
}

for (const group of pickerGroups) {
  for (const kind of ["camera", "microphone", "speaker"]) {
    group[kind].addEventListener("change", () => {
      const id = group[kind].value;
      if (id) devices.pick(kind, id, group.problem);
    });
  }
}

// Audio the meeting adds plays on the chosen speaker too.
new MutationObserver((changes) => {
  const added = changes.flatMap((c) => [...c.addedNodes]).filter((n) => n.nodeName === "AUDIO");
  if (added.length) devices.applySpeaker(added);
}).observe(view.audioSinks, { childList: true });

// Browsers let audio start from a click or key press (Firefox: not from pointerdown itself).
for (const type of ["pointerdown", "pointerup", "click", "keydown", "keyup", "touchend"]) {
  document.addEventListener(type, () => devices.resumeAudio(), { capture: true });
}

navigator.mediaDevices?.addEventListener?.("devicechange", () => devices.refreshPickers());

// ---- the pre-join screen -------------------------------------------------------------------------

/** Opens the devices for the pre-join screen and shows the preview, pickers and any problem. */
export async function startPreview() {
  view.joinHint.hidden = false;
  view.joinHint.textContent = t("device.checking");
  await devices.open();
  view.preview.srcObject = devices.track("camera") ? devices.stream : null;
  syncToggles();
  showProblem(view.joinProblems, devices.problemText());
  view.joinHint.textContent = t("device.ready");
  view.joinHint.dataset.ready = "true";
}

/** "Join with ... off" checked and disabled for a device that is missing, free for one that works. */
function syncToggles() {
  for (const [kind, box] of [["camera", view.cameraOff], ["microphone", view.micOff]]) {
    const has = Boolean(devices.track(kind));
    if (!has) box.checked = true;
    else if (box.disabled) box.checked = false; // it just came back
    box.disabled = !has;
  }
  renderPreview();
}

/** What the participant chose on the pre-join screen. */
export function prejoinChoices() {
  return { cameraOff: view.cameraOff.checked, micOff: view.micOff.checked };
}

function renderPreview() {
  const camera = devices.track("camera");
  if (camera) camera.enabled = !view.cameraOff.checked;
  const mic = devices.track("microphone");
  if (mic) mic.enabled = !view.micOff.checked;
  if (camera && view.preview.srcObject !== devices.stream) view.preview.srcObject = devices.stream;
  view.previewOff.hidden = Boolean(camera) && !view.cameraOff.checked;
  view.previewOff.textContent = camera ? t("device.previewOff") : t("device.previewNone");
}

view.cameraOff.addEventListener("change", renderPreview);
view.micOff.addEventListener("change", renderPreview);

/** Leaves the pre-join screen: the preview lets go of the stream (the meeting shows it). */
export function endPreview() {
  view.preview.srcObject = null;
}

// ---- during the meeting -------------------------------------------------------------------------

export function setDevicePanel(open) {
  view.panel.hidden = !open;
  view.toggle.setAttribute("aria-expanded", String(open));
  if (open) {
    devices.refreshPickers();
    $("meeting-camera").focus();
  }
}

view.toggle.addEventListener("click", () => setDevicePanel(view.panel.hidden));
view.close.addEventListener("click", () => {
  setDevicePanel(false);
  view.toggle.focus();
});
view.panel.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  setDevicePanel(false);
  view.toggle.focus();
});
view.mutedUnmute.addEventListener("click", () => devices.onUnmute());

onLanguageChange(() => {
  if (view.joinHint.dataset.ready) view.joinHint.textContent = t("device.ready");
  view.levelWaits.textContent = t("device.levelWaits");
  view.mutedText.textContent = "";
  renderPreview();
  if (!view.joinProblems.closest("[hidden]")) showProblem(view.joinProblems, devices.problemText());
  devices.refreshPickers(); // unnamed devices ("Camera 2") and "No camera found"
});
