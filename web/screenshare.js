// A participant's screen share: a second publish PeerConnection, offered with purpose "screen"
// and live once the server answers. No DOM; protocol.js's ConferenceClient keeps one.

import { msg as say, tr } from "./i18n.js";
import { ConferenceError } from "./refusals.js";
import { openScreen, preferVp8, waitForIceGathering } from "./rtc.js";

export const SCREEN_ANSWER_TIMEOUT_MS = 15_000;

/**
 * The client's side of a share, given once.
 * @typedef {object} ScreenIo
 * @property {() => RTCPeerConnection} makePc  a connection with the meeting's configuration
 * @property {(msg: object) => boolean} send  a message to the server
 * @property {(epoch: number, ms: number, fn: () => void) => void} later  `fn` after `ms`,
 *   unless the signalling connection changed meanwhile
 * @property {(detail: object) => void} emit  the client's `screen` event
 */

export class ScreenShare {
  /** @param {ScreenIo} io */
  constructor(io) {
    this._io = io;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {MediaStream|null} */
    this.stream = null;
    this._pending = null; // {resolve, reject} while the offer awaits its answer
  }

  /**
   * Asks the browser which screen to share (openScreen) and shares it, unless meanwhile the
   * signalling connection changed (`current()` false) or another share started: then the
   * screen's tracks stop and it rejects. Nothing while a share is on.
   */
  async open(epoch, current, mediaDevices = undefined) {
    if (this.pc) return;
    const stream = await openScreen(mediaDevices);
    if (!current() || this.pc) {
      for (const track of stream.getTracks()) track.stop();
      throw new ConferenceError(say("screen.connectionChanged"));
    }
    await this.start(stream, epoch);
  }

  /**
   * Offers `stream` (the browser's screen, video only) on a connection of its own; resolves once
   * the server has answered, else rejects with a ConferenceError (the share is stopped then).
   */
  async start(stream, epoch) {
    const track = stream.getVideoTracks()[0];
    const pc = this._io.makePc();
    this.pc = pc;
    this.stream = stream;
    track.addEventListener("ended", () => {
      if (this.stream === stream) this.stop();
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc === this.pc && pc.connectionState === "failed") this.stop(say("screen.lost"));
    });
    const answered = new Promise((resolve, reject) => {
      this._pending = { resolve, reject };
    });
    this._emit(null);
    try {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      preferVp8(transceiver);
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      if (pc !== this.pc) throw new ConferenceError(say("screen.stopped"));
      this._io.send({ type: "publish_offer", sdp: pc.localDescription.sdp, purpose: "screen" });
      this._io.later(epoch, SCREEN_ANSWER_TIMEOUT_MS, () => {
        if (pc === this.pc) this._pending?.reject(new ConferenceError(say("screen.noAnswer")));
      });
      await answered;
      this._emit(null);
    } catch (error) {
      if (pc === this.pc) this.stop(error?.words ?? error?.message ?? String(error));
      throw error instanceof ConferenceError ? error : new ConferenceError(
        say("screen.failed", { detail: error?.words ?? error?.message ?? String(error) }),
        { cause: error },
      );
    }
  }

  /** The server's answer (publish_answer, purpose "screen"). */
  async answered(sdp) {
    const pc = this.pc;
    const pending = this._pending;
    if (!pc || !pending) return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp });
      if (this._pending === pending) {
        this._pending = null;
        pending.resolve();
      }
    } catch (error) {
      pending.reject(new ConferenceError(
        say("screen.answerFailed", { detail: error?.message ?? String(error) }),
        { cause: error },
      ));
    }
  }

  /** The server refused the offer. */
  refused(error) {
    this._pending?.reject(error);
  }

  /** Stops the share (if any) and tells the server; `text` says why, for the `screen` event. */
  stop(text = null) {
    if (!this.pc) return;
    this._io.send({ type: "unpublish", purpose: "screen" });
    this.close(text);
  }

  /** Closes the share without telling the server (its connection is gone). */
  close(text = null) {
    const { pc, stream, _pending: pending } = this;
    this.pc = null;
    this.stream = null;
    this._pending = null;
    try {
      pc?.close();
    } catch {
      // already closed
    }
    for (const t of stream?.getTracks() ?? []) t.stop();
    pending?.reject(new ConferenceError(text ?? say("screen.stopped")));
    this._emit(text);
  }

  _emit(text) {
    this._io.emit({
      active: this.pc !== null && this._pending === null,
      starting: this._pending !== null,
      text: text == null ? text : tr(text),
      words: text,
    });
  }
}
