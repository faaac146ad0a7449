// web/devices.js's logic, with fake tracks, streams, connections and media devices.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  chooseDevice,
  constraintsFor,
  devicesOfKind,
  meterFraction,
  meterStep,
  MutedSpeech,
  openCameraAndMicrophone,
  rms,
  saveChoice,
  savedChoices,
  speakerChoiceSupported,
  swapTrack,
} from "../../web/devices.js";
import { setLanguage } from "../../web/i18n.js";
import { describeDeviceProblem } from "../../web/words.js";

class FakeTrack {
  constructor(kind, id) {
    Object.assign(this, { kind, id, enabled: true, readyState: "live" });
  }
  stop() {
    this.readyState = "ended";
  }
}

class FakeStream {
  constructor(tracks = []) {
    this.tracks = [...tracks];
  }
  getTracks() {
    return [...this.tracks];
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === "audio");
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === "video");
  }
  addTrack(t) {
    this.tracks.push(t);
  }
  removeTrack(t) {
    this.tracks = this.tracks.filter((x) => x !== t);
  }
}
globalThis.MediaStream = FakeStream;

function fakePc(tracks) {
  const transceivers = tracks.map(([kind, track]) => ({
    stopped: false,
    receiver: { track: new FakeTrack(kind, `recv-${kind}`) },
    sender: {
      track,
      replaced: 0,
      async replaceTrack(t) {
        this.track = t;
        this.replaced += 1;
      },
    },
  }));
  return { getTransceivers: () => transceivers, transceivers };
}

function device(kind, deviceId, label = "") {
  return { kind, deviceId, label };
}

test("devicesOfKind keeps one kind, drops duplicates and names unlabelled devices", () => {
  const list = [
    device("videoinput", "a", ""),
    device("audioinput", "m", "Headset"),
    device("videoinput", "b", ""),
    device("videoinput", "a", "again"),
    device("videoinput", "", "no id"),
  ];
  assert.deepEqual(devicesOfKind(list, "videoinput"), [
    { id: "a", label: "Camera 1" },
    { id: "b", label: "Camera 2" },
  ]);
  assert.deepEqual(devicesOfKind(list, "audioinput"), [{ id: "m", label: "Headset" }]);
  assert.deepEqual(devicesOfKind(undefined, "audiooutput"), []);
});

test("chooseDevice: the one in use, else the wanted one, else default, else the first", () => {
  const options = [{ id: "x" }, { id: "default" }, { id: "y" }];
  assert.equal(chooseDevice(options, { inUse: "y", wanted: "x" }), "y");
  assert.equal(chooseDevice(options, { inUse: "gone", wanted: "x" }), "x");
  assert.equal(chooseDevice(options, { wanted: "gone" }), "default");
  assert.equal(chooseDevice([{ id: "x" }, { id: "y" }]), "x");
  assert.equal(chooseDevice([]), null);
});

test("the meter maps decibels linearly between its floor and ceiling", () => {
  assert.equal(rms([]), 0);
  assert.ok(Math.abs(rms([1, -1, 1, -1]) - 1) < 1e-12);
  assert.equal(meterFraction(0), 0);
  assert.equal(meterFraction(Number.NaN), 0);
  assert.equal(meterFraction(10 ** (-70 / 20)), 0); // under the floor
  assert.ok(Math.abs(meterFraction(10 ** (-35 / 20)) - 0.5) < 1e-9);
  assert.equal(meterFraction(0.7), 1); // a full-scale sine
  let previous = -1;
  for (let db = -80; db <= 0; db += 5) {
    const f = meterFraction(10 ** (db / 20));
    assert.ok(f >= previous);
    previous = f;
  }
});

test("meterStep rises at once and falls slowly, never below zero", () => {
  assert.equal(meterStep(0.2, 0.9, 50), 0.9);
  assert.ok(Math.abs(meterStep(0.9, 0, 100) - 0.75) < 1e-9);
  assert.equal(meterStep(0.1, 0, 1000), 0);
  assert.equal(meterStep(0.5, 0.3, -20), 0.5); // a clock going back does not drop it
});

/** Feeds samples every `stepMs` from `fromMs` to `toMs`; `level(t)` gives the fill. */
function feed(detector, { fromMs, toMs, stepMs = 50, muted = true, level }) {
  const shown = [];
  for (let t = fromMs; t < toMs; t += stepMs) shown.push([t, detector.update(level(t), muted, t)]);
  return shown;
}

const beeps = (t) => (t % 500 < 100 ? 0.8 : 0); // a loud moment every half second
const firstShown = (samples) => samples.find(([, s]) => s)?.[0] ?? null;

test("MutedSpeech: speech while muted brings the notice up within a second or so", () => {
  const d = new MutedSpeech();
  const samples = feed(d, { fromMs: 0, toMs: 3000, level: beeps });
  const at = firstShown(samples);
  assert.ok(at !== null && at <= 1500, `shown at ${at}`);
  assert.ok(samples.slice(samples.findIndex(([, s]) => s)).every(([, s]) => s), "it flickered");
});

test("MutedSpeech: nothing while the microphone is on, however loud", () => {
  const d = new MutedSpeech();
  const samples = feed(d, { fromMs: 0, toMs: 5000, muted: false, level: () => 1 });
  assert.equal(firstShown(samples), null);
});

test("MutedSpeech: a click or a short noise is not speech", () => {
  const d = new MutedSpeech();
  const click = (t) => (t === 1000 || t === 2600 ? 1 : 0.05);
  assert.equal(firstShown(feed(d, { fromMs: 0, toMs: 5000, level: click })), null);
});

test("MutedSpeech: stays up through pauses, goes after silence or at once on unmute", () => {
  const d = new MutedSpeech({ offMs: 3000 });
  feed(d, { fromMs: 0, toMs: 2000, level: beeps });
  assert.equal(d.showing, true);
  // The last loud moment was at 1.55 s: shown through the pause until 3 s later, then gone.
  const pause = feed(d, { fromMs: 2000, toMs: 4550, level: () => 0 });
  assert.ok(pause.every(([, s]) => s));
  const quiet = feed(d, { fromMs: 4550, toMs: 6000, level: () => 0 });
  assert.ok(quiet.every(([, s]) => !s));
  // Speaking again: it needs loud time again, then comes back.
  assert.equal(d.update(0.8, true, 6000), false);
  assert.equal(firstShown(feed(d, { fromMs: 6050, toMs: 8000, level: beeps })) !== null, true);
  // Unmuting hides it at once.
  assert.equal(d.update(0.9, false, 8000), false);
  assert.equal(d.update(0.9, true, 8050), false);
});

test("MutedSpeech: a long gap between samples counts as one short step", () => {
  const d = new MutedSpeech();
  d.update(0, true, 0);
  assert.equal(d.update(1, true, 60_000), false); // a throttled tab's one loud sample
});

test("constraintsFor: exact ids for a pick, ideal for a saved choice, the camera at 720p", () => {
  assert.deepEqual(constraintsFor(), { video: { width: 1280, height: 720 }, audio: true });
  assert.deepEqual(constraintsFor({ cameraId: "c", microphoneId: "m" }), {
    video: { width: 1280, height: 720, deviceId: { ideal: "c" } },
    audio: { deviceId: { ideal: "m" } },
  });
  assert.deepEqual(constraintsFor({ cameraId: "c", exact: true }).video.deviceId, { exact: "c" });
});

test("saved choices survive broken or failing storage", () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  assert.deepEqual(savedChoices(storage), {});
  saveChoice("camera", "c1", storage);
  saveChoice("speaker", "s1", storage);
  assert.deepEqual(savedChoices(storage), { camera: "c1", speaker: "s1" });
  store.set("confsfu.devices", "{not json");
  assert.deepEqual(savedChoices(storage), {});
  const failing = { getItem: () => { throw new Error("denied"); }, setItem: () => { throw new Error("full"); } };
  assert.deepEqual(savedChoices(failing), {});
  saveChoice("camera", "c2", failing); // no throw
  assert.deepEqual(savedChoices(undefined), {});
});

test("speakerChoiceSupported follows setSinkId", () => {
  assert.equal(speakerChoiceSupported({ setSinkId() {} }), true);
  assert.equal(speakerChoiceSupported({}), false); // Firefox ESR without it
  assert.equal(speakerChoiceSupported(undefined), false);
});

test("swapTrack replaces the camera on its sender, keeps its state, stops the old one", async () => {
  const oldCam = new FakeTrack("video", "cam0");
  oldCam.enabled = false; // camera off: the new one too
  const mic = new FakeTrack("audio", "mic0");
  const stream = new FakeStream([mic, oldCam]);
  const pc = fakePc([["audio", mic], ["video", oldCam]]);
  const newCam = new FakeTrack("video", "cam2");
  const returned = await swapTrack({ track: newCam, stream, pc });
  assert.equal(returned, oldCam);
  const [audioT, videoT] = pc.transceivers;
  assert.equal(videoT.sender.track, newCam);
  assert.equal(videoT.sender.replaced, 1);
  assert.equal(audioT.sender.replaced, 0);
  assert.equal(newCam.enabled, false);
  assert.equal(oldCam.readyState, "ended");
  assert.deepEqual(stream.getTracks(), [mic, newCam]);
});

test("swapTrack adds a device that was missing to its empty sender, and works without a connection", async () => {
  const mic = new FakeTrack("audio", "mic0");
  const stream = new FakeStream([mic]);
  const pc = fakePc([["audio", mic], ["video", null]]);
  const cam = new FakeTrack("video", "cam0");
  assert.equal(await swapTrack({ track: cam, stream, pc }), null);
  assert.equal(pc.transceivers[1].sender.track, cam);
  assert.equal(cam.enabled, true);
  const mic2 = new FakeTrack("audio", "mic1");
  await swapTrack({ track: mic2, stream }); // the pre-join screen: no connection yet
  assert.deepEqual(stream.getAudioTracks(), [mic2]);
  assert.equal(mic.readyState, "ended");
});

function fakeDevices(refuse) {
  return {
    async getUserMedia(c) {
      const kinds = [c.audio && "audio", c.video && "video"].filter(Boolean);
      const refused = kinds.find((k) => refuse[k]);
      if (refused) throw Object.assign(new Error("no"), { name: refuse[refused] });
      return new FakeStream(kinds.map((k) => new FakeTrack(k, `${k}0`)));
    },
  };
}

test("openCameraAndMicrophone: both, or each alone with the other's problem in words", async () => {
  const both = await openCameraAndMicrophone({}, fakeDevices({}));
  assert.equal(both.stream.getTracks().length, 2);
  assert.deepEqual(both.problems, { camera: null, microphone: null });

  const noCamera = await openCameraAndMicrophone({}, fakeDevices({ video: "NotAllowedError" }));
  assert.deepEqual(noCamera.stream.getTracks().map((t) => t.kind), ["audio"]);
  assert.equal(noCamera.problems.camera, describeDeviceProblem("camera", { name: "NotAllowedError" }));
  assert.equal(noCamera.problems.microphone, null);

  const none = await openCameraAndMicrophone({}, fakeDevices({ video: "NotFoundError", audio: "NotReadableError" }));
  assert.equal(none.stream, null);
  assert.match(none.problems.camera, /No camera was found/);
  assert.match(none.problems.microphone, /in use by another application/);
  // The errors too, to word the problems again in another language.
  assert.deepEqual(none.errors, {
    camera: { name: "NotFoundError", message: "no" },
    microphone: { name: "NotReadableError", message: "no" },
  });
  setLanguage("es");
  assert.equal(
    describeDeviceProblem("camera", none.errors.camera),
    "No se encontró ninguna cámara. Comprueba que esté conectada. " +
      "Aun así puedes entrar: los demás te oirán, pero no te verán.",
  );
  setLanguage("en");

  const insecure = await openCameraAndMicrophone({}, {});
  assert.equal(insecure.stream, null);
  assert.match(insecure.problems.camera, /https or localhost/);
});

test("describeDeviceProblem says what happened and what still works", () => {
  const denied = describeDeviceProblem("camera", { name: "NotAllowedError" });
  assert.match(denied, /blocked the camera/);
  assert.match(denied, /others will hear you but not see you/);
  const mic = describeDeviceProblem("microphone", { name: "OverconstrainedError" });
  assert.match(mic, /No microphone was found/);
  assert.match(mic, /others will see you but not hear you/);
  assert.match(describeDeviceProblem("camera", { name: "Weird", message: "odd" }), /\(odd\)/);
});
