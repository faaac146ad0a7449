// The camera's publish connection and the subscribe connection of one joined connection: made on
// `joined`, the camera's offer and its answer, the server's subscribe offers answered one at a
// time, the received tracks by mid. No DOM; protocol.js's ConferenceClient keeps one.

import { msg as say } from "./i18n.js";
import { ConferenceError } from "./refusals.js";
import { SIMULCAST_ENCODINGS, preferVp8, toIceServers, waitForIceGathering } from "./rtc.js";

/**
 * The client's side of the negotiation, given once.
 * @typedef {object} NegotiationIo
 * @property {(config: RTCConfiguration) => RTCPeerConnection} makePc
 * @property {(msg: object) => boolean} send  a message to the server
 * @property {(epoch: number) => boolean} current  whether `epoch` is still the connection's
 * @property {(epoch: number, state: string) => void} pcState  a connection's new connectionState
 * @property {(error: Error) => void} fail  the end: setting up or answering failed
 * @property {(list: object[]) => void} offeredSlots  a subscribe offer's slots (before answering)
 * @property {() => void} tracks  the tracks by mid changed: the slots get theirs
 * @property {() => void} published  the camera's offer went out
 */

/** The configuration of a joined connection's PeerConnections, from the `joined` message. */
export function pcConfigFrom(joined) {
  return {
    bundlePolicy: "max-bundle",
    iceServers: toIceServers(joined.ice_servers),
    iceTransportPolicy: joined.ice_transport_policy === "relay" ? "relay" : "all",
  };
}

/** The failure `key` (an i18n key with a {detail}) as the error the client ends with. */
function failure(key, error) {
  return new ConferenceError(say(key, { detail: error?.message ?? String(error) }), { cause: error });
}

export class Negotiation {
  /** @param {NegotiationIo} io */
  constructor(io) {
    this._io = io;
    /** @type {RTCPeerConnection|null} */
    this.publishPc = null;
    /** @type {RTCPeerConnection|null} */
    this.subscribePc = null;
    /** @type {RTCConfiguration|null} */
    this.config = null;
    this._tracksByMid = new Map();
    this._chain = Promise.resolve(); // subscribe offers, answered in order
    this._expectOffer();
  }

  /**
   * After `joined` (the message): the subscribe connection, and unless a listener the publish
   * connection with the camera's offer (`stream` may be null: receive only).
   */
  async open(epoch, joined, { stream, simulcast, listener }) {
    this.config = pcConfigFrom(joined);
    try {
      this.subscribePc = this._makePc(epoch);
      this.subscribePc.addEventListener("track", (event) => {
        if (!this._io.current(epoch)) return;
        const mid = event.transceiver?.mid;
        if (mid == null) return;
        this._tracksByMid.set(mid, event.track);
        this._io.tracks();
      });
      if (!listener) {
        this.publishPc = this._makePc(epoch);
        await this._publish(epoch, stream, simulcast);
      }
    } catch (error) {
      if (!this._io.current(epoch)) return;
      this._io.fail(failure("state.setupFailed", error));
    }
  }

  /** The connectionStates of the connections there are (a listener has no publish one). */
  states() {
    return [this.publishPc, this.subscribePc].filter(Boolean).map((pc) => pc.connectionState);
  }

  /** The track received on `mid` (null: none yet). */
  track(mid) {
    return this._tracksByMid.get(mid) ?? null;
  }

  /** A subscribe offer: answered once those before it are. */
  offer(epoch, msg) {
    this._offered();
    this._chain = this._chain.then(() => this._answer(epoch, msg));
  }

  /** The server's answer to the camera's offer. */
  async answered(epoch, sdp) {
    const pc = this.publishPc;
    if (!pc) return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp });
    } catch (error) {
      if (!this._io.current(epoch)) return;
      this._io.fail(failure("state.publishAnswerFailed", error));
    }
  }

  /** Closes both connections and forgets the tracks: the signalling connection is going. */
  close() {
    for (const pc of [this.publishPc, this.subscribePc]) {
      try {
        pc?.close();
      } catch {
        // already closed
      }
    }
    this.publishPc = null;
    this.subscribePc = null;
    this.config = null;
    this._tracksByMid.clear();
    this._chain = Promise.resolve();
    this._expectOffer();
  }

  _makePc(epoch) {
    const pc = this._io.makePc(this.config);
    pc.addEventListener("connectionstatechange", () => {
      if (this._io.current(epoch)) this._io.pcState(epoch, pc.connectionState);
    });
    return pc;
  }

  /** The server takes the camera's offer once it has made its subscribe offer. */
  _expectOffer() {
    this._offerMade = new Promise((resolve) => {
      this._offered = resolve;
    });
  }

  async _publish(epoch, stream, simulcast) {
    const pc = this.publishPc;
    const audioTrack = stream?.getAudioTracks()[0] ?? null;
    const videoTrack = stream?.getVideoTracks()[0] ?? null;
    const streams = stream ? [stream] : [];
    pc.addTransceiver(audioTrack ?? "audio", { direction: "sendonly", streams });
    const videoInit = { direction: "sendonly", streams };
    if (simulcast) videoInit.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
    const video = pc.addTransceiver(videoTrack ?? "video", videoInit);
    preferVp8(video);
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    await this._offerMade;
    if (!this._io.current(epoch)) return;
    this._io.send({ type: "publish_offer", sdp: pc.localDescription.sdp, purpose: "camera" });
    this._io.published();
  }

  async _answer(epoch, msg) {
    if (!this._io.current(epoch)) return;
    const pc = this.subscribePc;
    if (!pc) {
      console.warn("confsfu: subscribe_offer before joined; ignored");
      return;
    }
    this._io.offeredSlots(msg.slots);
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await waitForIceGathering(pc);
      if (!this._io.current(epoch)) return;
      // The track events fired during setRemoteDescription; pick up any mid learned only now.
      for (const t of pc.getTransceivers()) {
        if (t.mid != null && !this._tracksByMid.has(t.mid)) this._tracksByMid.set(t.mid, t.receiver.track);
      }
      this._io.send({ type: "subscribe_answer", sdp: pc.localDescription.sdp });
      this._io.tracks();
    } catch (error) {
      if (!this._io.current(epoch)) return;
      this._io.fail(failure("state.subscribeFailed", error));
    }
  }
}
