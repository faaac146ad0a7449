// WebRTC helpers for the confsfu client: ICE gathering, codec preference, the screen (no DOM).
// The camera and microphone are devices.js's.

import { t } from "./i18n.js";

const ICE_GATHER_TIMEOUT_MS = 5_000; // send what was gathered if gathering never completes

// Simulcast layers, lowest first (the server learns rid -> layer from this order).
export const SIMULCAST_ENCODINGS = Object.freeze([
  Object.freeze({ rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 }),
]);

/** A getUserMedia failure in plain words. */
export function describeMediaError(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return t("mediaError.denied");
    case "NotFoundError":
    case "OverconstrainedError":
      return t("mediaError.notFound");
    case "NotReadableError":
    case "AbortError":
      return t("mediaError.inUse");
    case undefined:
      return t("mediaError.unavailable");
    default:
      return error.message || String(error.name);
  }
}

/** Resolves once the PeerConnection has gathered all its ICE candidates (or after a timeout). */
export function waitForIceGathering(pc, timeoutMs = ICE_GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") finish();
    };
    const onCandidate = (event) => {
      if (!event.candidate) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

/** The `iceServers` of an RTCConfiguration from the server's `ice_servers` (nulls dropped). */
export function toIceServers(servers) {
  return (servers ?? []).map((s) => {
    const out = { urls: s.urls };
    if (s.username != null) out.username = s.username;
    if (s.credential != null) out.credential = s.credential;
    return out;
  });
}

/** Put VP8 (and its RTX) first and alone, the only video codec the server forwards. */
export function preferVp8(transceiver) {
  if (!transceiver.setCodecPreferences) return;
  // Browsers check preferences against either the receiver's or the sender's capabilities.
  for (const source of [globalThis.RTCRtpReceiver, globalThis.RTCRtpSender]) {
    try {
      const caps = source?.getCapabilities?.("video");
      const wanted = (caps?.codecs ?? []).filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType));
      if (!wanted.some((c) => /vp8/i.test(c.mimeType))) continue;
      transceiver.setCodecPreferences(wanted);
      return;
    } catch (error) {
      console.warn("confsfu: could not prefer VP8", error);
    }
  }
}

/**
 * Asks the browser for a screen, window or tab to share (video only).
 * Resolves to a MediaStream; rejects with an Error whose message is in plain words.
 */
export async function openScreen(mediaDevices = globalThis.navigator?.mediaDevices) {
  if (!mediaDevices?.getDisplayMedia) {
    throw new Error(t("screen.unsupported"));
  }
  try {
    return await mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
  } catch (error) {
    if (error?.name === "NotAllowedError") throw new Error(t("screen.cancelled"));
    throw new Error(t("screen.failed", { detail: describeMediaError(error) }));
  }
}

/**
 * Sends only the simulcast layers (rids) in `active` on `pc`'s senders: the others nobody
 * receives (publisher_layers). An empty list changes nothing: never every layer off.
 */
export function setActiveLayers(pc, active) {
  const on = new Set(active);
  if (on.size === 0) return;
  for (const sender of pc.getSenders()) {
    const params = sender.getParameters();
    const encodings = params.encodings ?? [];
    if (!encodings.some((e) => e.rid)) continue; // not simulcast: nothing to choose
    let changed = false;
    for (const e of encodings) {
      if (e.active !== on.has(e.rid)) {
        e.active = on.has(e.rid);
        changed = true;
      }
    }
    if (changed) {
      sender.setParameters(params).catch((error) => {
        console.warn("confsfu: could not change the simulcast layers", error);
      });
    }
  }
}
