// Cameras, microphones and speakers: choosing, opening and swapping them, the microphone level and
// "you are muted" detection. No DOM here: deviceui.js draws the pickers and the meter.

import { t } from "./i18n.js";
import { describeDeviceProblem } from "./words.js";

export const CAMERA_SIZE = Object.freeze({ width: 1280, height: 720 });
const STORAGE_KEY = "confsfu.devices";

/** The devices of one kind as [{id, label}], labelled in words when the browser gives no label. */
export function devicesOfKind(devices, kind) {
  const keys = { videoinput: "device.unnamed.camera", audioinput: "device.unnamed.microphone", audiooutput: "device.unnamed.speaker" };
  const out = [];
  const seen = new Set();
  for (const d of devices ?? []) {
    if (d.kind !== kind || !d.deviceId || seen.has(d.deviceId)) continue;
    seen.add(d.deviceId);
    out.push({ id: d.deviceId, label: d.label || t(keys[kind] ?? "device.unnamed.device", { number: out.length + 1 }) });
  }
  return out;
}

/**
 * Which device a picker shows as chosen: the one in use, else the one asked for, else the
 * system's "default", else the first; null when there is none.
 */
export function chooseDevice(options, { inUse = null, wanted = null } = {}) {
  const ids = options.map((o) => o.id);
  for (const id of [inUse, wanted, "default"]) {
    if (id && ids.includes(id)) return id;
  }
  return ids[0] ?? null;
}

/** The root mean square of time-domain samples in [-1, 1]. */
export function rms(samples) {
  if (!samples?.length) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

export const METER_FLOOR_DB = -60; // silence and hiss show as an empty meter
export const METER_CEIL_DB = -10; // loud speech fills it

/** A level (RMS) as the meter's fill in [0, 1], linear in decibels between floor and ceiling. */
export function meterFraction(level) {
  if (!(level > 0)) return 0;
  const db = 20 * Math.log10(level);
  return Math.min(1, Math.max(0, (db - METER_FLOOR_DB) / (METER_CEIL_DB - METER_FLOOR_DB)));
}

/** The meter's next fill: rises at once, falls by `fallPerS` a second (short sounds stay visible). */
export function meterStep(shown, fraction, dtMs, fallPerS = 1.5) {
  const fallen = shown - (fallPerS * Math.max(0, dtMs)) / 1000;
  return Math.max(fraction, fallen, 0);
}

/**
 * "You are muted" with hysteresis: shown once the microphone, while muted, was loud (fill at or
 * over `threshold`) for `onMs` in total within the last `windowMs`; hidden on unmute or after
 * `offMs` without a loud moment. update() takes samples in time order and says whether to show.
 */
export class MutedSpeech {
  constructor({ threshold = 0.4, onMs = 200, windowMs = 2_000, offMs = 3_000, maxStepMs = 100 } = {}) {
    Object.assign(this, { threshold, onMs, windowMs, offMs, maxStepMs });
    this.showing = false;
    this._loud = []; // [[atMs, durationMs]] within the window
    this._lastAt = null;
    this._lastLoudAt = -Infinity;
  }

  update(fraction, muted, nowMs) {
    const step = this._lastAt == null ? 0 : Math.min(this.maxStepMs, Math.max(0, nowMs - this._lastAt));
    this._lastAt = nowMs;
    if (!muted) {
      this._loud = [];
      this.showing = false;
      return false;
    }
    if (fraction >= this.threshold) {
      this._loud.push([nowMs, step]);
      this._lastLoudAt = nowMs;
    }
    while (this._loud.length && this._loud[0][0] <= nowMs - this.windowMs) this._loud.shift();
    const loudMs = this._loud.reduce((sum, [, ms]) => sum + ms, 0);
    if (!this.showing && loudMs >= this.onMs) this.showing = true;
    else if (this.showing && nowMs - this._lastLoudAt >= this.offMs) {
      this.showing = false;
      this._loud = [];
    }
    return this.showing;
  }
}

/** getUserMedia constraints for a camera and microphone (ids: exact when picked, else the saved ones). */
export function constraintsFor({ cameraId = null, microphoneId = null, exact = false } = {}) {
  const pick = (id) => (id ? { deviceId: exact ? { exact: id } : { ideal: id } } : {});
  return {
    video: { ...CAMERA_SIZE, ...pick(cameraId) },
    audio: microphoneId ? pick(microphoneId) : true,
  };
}

/** The devices chosen last time ({camera, microphone, speaker} ids), or {}. */
export function savedChoices(storage = globalThis.localStorage) {
  try {
    const value = JSON.parse(storage?.getItem(STORAGE_KEY) ?? "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

export function saveChoice(kind, id, storage = globalThis.localStorage) {
  try {
    storage?.setItem(STORAGE_KEY, JSON.stringify({ ...savedChoices(storage), [kind]: id }));
  } catch {
    // private mode or full: the choice lasts this page only
  }
}

/** Whether audio can be sent to a chosen speaker here (not in browsers without setSinkId). */
export function speakerChoiceSupported(proto = globalThis.HTMLMediaElement?.prototype) {
  return Boolean(proto && "setSinkId" in proto);
}

/**
 * Opens the camera and microphone (the saved choices if still there) with one request, or each
 * alone when that fails, to say which one is missing. Resolves to {stream, problems, errors} where
 * problems.camera / problems.microphone say in words what went wrong (null when fine), and
 * errors the same as {name, message} (to word again in another language).
 */
export async function openCameraAndMicrophone(choices = {}, mediaDevices = globalThis.navigator?.mediaDevices) {
  const problems = { camera: null, microphone: null };
  const errors = { camera: null, microphone: null };
  const MediaStreamClass = globalThis.MediaStream;
  if (!mediaDevices?.getUserMedia) {
    const error = { name: "NoMediaDevices" };
    problems.camera = describeDeviceProblem("camera", error);
    problems.microphone = describeDeviceProblem("microphone", error);
    return { stream: null, problems, errors: { camera: error, microphone: error } };
  }
  try {
    const wanted = constraintsFor({ cameraId: choices.camera, microphoneId: choices.microphone });
    const stream = await mediaDevices.getUserMedia(wanted);
    return { stream, problems, errors };
  } catch {
    // a refusal or a missing device may concern one of the two: ask for each alone
  }
  const tracks = [];
  for (const kind of ["camera", "microphone"]) {
    const { track, problem, error } = await openDevice(kind, choices[kind], mediaDevices, false);
    if (track) tracks.push(track);
    problems[kind] = problem ?? null;
    errors[kind] = error ?? null;
  }
  return { stream: tracks.length ? new MediaStreamClass(tracks) : null, problems, errors };
}

/**
 * Opens one device ("camera" or "microphone") by id. Resolves to {track} or {problem, error}
 * (words saying what went wrong and what still works; the error as {name, message}).
 */
export async function openDevice(kind, id, mediaDevices = globalThis.navigator?.mediaDevices, exact = true) {
  const c = constraintsFor(kind === "camera" ? { cameraId: id, exact } : { microphoneId: id, exact });
  const constraints = kind === "camera" ? { video: c.video } : { audio: c.audio };
  try {
    const stream = await mediaDevices.getUserMedia(constraints);
    const track = kind === "camera" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    if (!track) throw Object.assign(new Error(), { name: "NotFoundError" }); // said by its name
    return { track };
  } catch (error) {
    return { problem: describeDeviceProblem(kind, error), error: { name: error?.name, message: error?.message } };
  }
}

/**
 * Puts `track` in place of the stream's track of its kind: on the publishing connection's sender
 * (replaceTrack keeps the sender and its simulcast encodings, so the others keep receiving), in
 * `stream`, with the old track's on/off state; the old track is stopped. Returns the old track.
 */
export async function swapTrack({ track, stream, pc = null }) {
  const kind = track.kind;
  const old = (kind === "video" ? stream.getVideoTracks() : stream.getAudioTracks())[0] ?? null;
  if (old) track.enabled = old.enabled;
  const ofKind = (pc?.getTransceivers?.() ?? []).filter((t) => !t.stopped && t.receiver?.track?.kind === kind);
  const transceiver = ofKind.find((t) => t.sender.track === old) ?? ofKind[0];
  if (transceiver) await transceiver.sender.replaceTrack(track);
  if (old) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(track);
  return old;
}

/** The microphone's level through a Web Audio AnalyserNode, read from a clone of the track (so it
 * still hears while the track is muted: that is how "you are muted" knows). */
export class LevelMeter {
  constructor(AudioContextClass = globalThis.AudioContext) {
    this._AudioContext = AudioContextClass;
    this.ctx = null;
    this._nodes = null;
  }

  attach(track) {
    this.detach();
    if (!track || !this._AudioContext) return;
    this.ctx ??= new this._AudioContext();
    const clone = track.clone();
    clone.enabled = true;
    const source = this.ctx.createMediaStreamSource(new MediaStream([clone]));
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = 4096; // ~85 ms at 48 kHz: read every 50 ms, no short sound is missed
    source.connect(analyser);
    this._nodes = { clone, source, analyser, samples: new Float32Array(analyser.fftSize) };
    this.resume();
  }

  /** Browsers start audio only after a click or key press: call again from one. */
  resume() {
    if (this.ctx?.state === "suspended") this.ctx.resume().catch(() => {});
  }

  /** Whether the browser holds audio back until a click or key press (so the level reads 0). */
  waiting() {
    return this._nodes !== null && this.ctx?.state === "suspended";
  }

  /** The level (RMS) now, 0 without a microphone. */
  level() {
    const nodes = this._nodes;
    if (!nodes) return 0;
    nodes.analyser.getFloatTimeDomainData(nodes.samples);
    return rms(nodes.samples);
  }

  detach() {
    const nodes = this._nodes;
    this._nodes = null;
    if (!nodes) return;
    nodes.source.disconnect();
    nodes.clone.stop();
  }

  close() {
    this.detach();
    this.ctx?.close().catch(() => {});
    this.ctx = null;
  }
}
