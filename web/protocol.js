// The confsfu signalling client (protocol version 1): one WebSocket and its PeerConnections, no DOM.
//
// Usage:
//   const client = new ConferenceClient({ url: "ws://host/ws", join: { room: "demo", name: "Ana" } });
//   client.addEventListener("state", (e) => console.log(e.detail.state, e.detail.text));
//   await client.start(localStream);
//
// Events (CustomEvent, payload in `detail`):
//   state        {state, text, words}  state: connecting | joining | connected | reconnecting | closed |
//                failed; text in the page's language, words the same as an i18n.js message ({key, params})
//   joined       {participant_id, room, name, role, audio, video, grid_page_size}
//   self         this participant as the server sees it: {id, name, role, audio, video,
//                chair_muted_audio, chair_muted_video, hand_raised, unmute_requested, quality}
//   participants {[id]: ParticipantInfo}  everyone else in the room
//   slots        [{mid, kind, purpose, source, participant_id, name, track}]
//   media        {audio, video}  own microphone/camera as announced to the others
//   room_state   the meeting's shared state (floor, hands, presenter, stage, schedule), see protocol.md
//   notice       {code, text}  something to tell this participant (e.g. the chair muted you)
//   report       {format, filename, content}  a meeting report the chair asked for
//   chat         {messages, change}  the room's chat as this page knows it (oldest first, each
//                {id, sender, name, role, sent_ms, text}; text is plain text, never markup);
//                change: {kind: "history"} | {kind: "posted", message} | {kind: "removed", message_id}
//   screen       {active, starting, text, words}  own screen share started/stopped (text says why it
//                stopped; words: the same as an i18n.js message)
//   (publisher_layers is handled here: simulcast layers nobody receives are switched off)
//   error        {code, message, field, in_reply_to, fatal, reason}  a message the server refused
//   bye          {reason}

import { msg as say, tr } from "./i18n.js";
import { withServerMessages } from "./inbound.js";
import { joinFrom, readResume, resumeSlot } from "./join.js";
import { LocalMedia } from "./localmedia.js";
import { Negotiation } from "./negotiation.js";
import { ConferenceError } from "./refusals.js";
import { ReportRequests } from "./reports.js";
import {
  chairRequest,
  chatRequest,
  gridPageOf,
  pinRequest,
  stageHeightOf,
  unmuteRequest,
} from "./requests.js";
import { ScreenShare } from "./screenshare.js";
import { handRaised, mayChat, mayShareScreen } from "./selfstate.js";
import { SignallingConnection } from "./signalling.js";
import { mergeSlots } from "./slotmap.js";
import { StageSize } from "./stagesize.js";

export { CHAT_MAX_CHARS } from "./chatlog.js";
export { PROTOCOL_VERSION } from "./lifecycle.js";
export { ConferenceError } from "./refusals.js";
export { CHAIR_ACTIONS } from "./requests.js";
export { describeMediaError, openScreen, waitForIceGathering } from "./rtc.js";

/** Signalling and media for one participant in one room (the server's messages: inbound.js). */
export class ConferenceClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.url       the signalling WebSocket, e.g. "ws://127.0.0.1:8080/ws"
   * @param {object} options.join      {token} or {room, name}; with `watch: true` (a name
   *   optional) as a listener: receive the stage and the room's audio, publish nothing
   * @param {boolean} [options.simulcast=true]  publish the camera in three layers
   * @param {boolean} [options.reconnect=true]  rejoin by itself after a lost connection
   */
  constructor({
    url,
    join,
    simulcast = true,
    reconnect = true,
    WebSocketImpl = globalThis.WebSocket,
    RTCPeerConnectionImpl = globalThis.RTCPeerConnection,
  }) {
    super();
    if (!url) throw new TypeError("ConferenceClient needs a url");
    this.join = joinFrom(join);
    // A guest comes back as the same participant (after a reload too) with the key it was given;
    // a listener has nothing to come back to.
    this._resumeSlot = resumeSlot(this.join);
    const resume = readResume(this._resumeSlot);
    if (resume) this.join.resume = resume;
    this.simulcast = simulcast;
    this._RTCPeerConnection = RTCPeerConnectionImpl;

    /** The signalling connection (signalling.js): the socket, its epoch, pings, reconnecting. */
    this._link = new SignallingConnection({
      url,
      reconnect,
      WebSocketImpl,
      hooks: {
        message: (epoch, msg) => this._onMessage(epoch, msg),
        state: (state, words) => this._setState(state, words),
        teardown: () => this._teardown(),
      },
    });
    /** The publish and subscribe connections (negotiation.js), made anew on every join. */
    this._media = new Negotiation({
      makePc: (config) => new this._RTCPeerConnection(config),
      send: (m) => this._send(m),
      current: (epoch) => epoch === this._link.epoch,
      pcState: (epoch, state) => this._onPcState(epoch, state),
      fail: (error) => this._link.fail(error),
      offeredSlots: (list) => {
        this.slots = mergeSlots(this.slots, list, true);
      },
      tracks: () => this._emitSlots(),
      published: () => this._announceMedia(),
    });
    /** The screen share (screenshare.js): its own publish connection while it lasts. */
    this._screen = new ScreenShare({
      makePc: () => new this._RTCPeerConnection(this._pcConfig),
      send: (m) => this._send(m),
      later: (epoch, ms, fn) => this._link.later(epoch, ms, fn),
      emit: (detail) => this._emit("screen", detail),
    });
    /** A chair's requests for the meeting report (reports.js). */
    this._reports = new ReportRequests();
    /** @type {Array<{mid: string, kind: string, purpose: string, source: string|null, participant_id: string|null, name: string|null, track: MediaStreamTrack|null}>} */
    this.slots = [];
    /** Everyone else in the room, by id. */
    this.participants = {};
    /** Who this client joined as, with the server's view of its moderation state (null before `joined`). */
    this.self = null;
    /** The latest room_state (null before the first). */
    this.room = null;
    /** Server clock minus local clock, from the latest room_state. */
    this.clockOffsetMs = 0;
    this.gridPageSize = 9;
    /** Chairs: {listeners, max_listeners}, how many are watching (null before the first count). */
    this.audience = null;
    this.gridPage = 0;
    /** The stage size the server hears (stagesize.js). */
    this._stage = new StageSize((height) => Boolean(this.self) && this._send({ type: "stage_size", height }));
    /** The room's chat, oldest first: [{id, sender, name, role, sent_ms, text}]. */
    this.chat = [];
    this.state = "idle";
    this.stateText = "";
    /** The microphone and camera (localmedia.js). */
    this._local = new LocalMedia();
  }

  // ---- public API ----------------------------------------------------------------------------

  /** Connects and joins, publishing `localStream` (may be null: receive only). Resolves once joined. */
  async start(localStream = null) {
    if (this._link.ended) throw new ConferenceError(say("client.closed"));
    this.localStream = localStream;
    return this._link.open();
  }

  get url() {
    return this._link.url;
  }

  get reconnect() {
    return this._link.reconnect;
  }

  /** The server's name from its hello on this connection (null before it). */
  get serverName() {
    return this._link.serverName;
  }

  /** @type {RTCPeerConnection|null} the camera's publish PeerConnection (null for a listener) */
  get publishPc() {
    return this._media.publishPc;
  }

  /** @type {RTCPeerConnection|null} */
  get subscribePc() {
    return this._media.subscribePc;
  }

  /** The configuration of this connection's PeerConnections (null before joined). */
  get _pcConfig() {
    return this._media.config;
  }

  /**
   * Turns the microphone on or off and tells the others. Returns false (and changes nothing) when
   * turning it on while the chair has muted it: use requestUnmute("audio") then.
   */
  setMicrophone(on) {
    if (!this._local.set("audio", on, this.self)) return false;
    this._announceMedia();
    return true;
  }

  /** Turns the camera on or off and tells the others; false while the chair has stopped it. */
  setCamera(on) {
    if (!this._local.set("video", on, this.self)) return false;
    this._announceMedia();
    return true;
  }

  /** @type {MediaStream|null} what the camera's publish connection sends (null: receive only) */
  get localStream() {
    return this._local.stream;
  }

  set localStream(stream) {
    this._local.stream = stream;
  }

  /** What the others are told about this participant's microphone and camera. */
  get mediaState() {
    return this._local.state(this.self);
  }

  get isChair() {
    return this.self?.role === "chair";
  }

  /** A listener: receives the stage and the room's audio, publishes nothing. */
  get isListener() {
    return this.self?.role === "listener";
  }

  /** Whether the server would take a screen share now: chairs, the presenter, the floor holder. */
  get mayShareScreen() {
    return mayShareScreen(this.self, this.room);
  }

  get handRaised() {
    return handRaised(this.self, this.room);
  }

  get sharingScreen() {
    return this._screen.pc !== null;
  }

  /** @type {RTCPeerConnection|null} the screen share's publish PeerConnection */
  get screenPc() {
    return this._screen.pc;
  }

  /** @type {MediaStream|null} the screen being shared */
  get screenStream() {
    return this._screen.stream;
  }

  /** The server's clock now (unix ms), for countdowns to room_state deadlines. */
  serverNow() {
    return Date.now() + this.clockOffsetMs;
  }

  raiseHand() {
    return this._send({ type: "raise_hand" });
  }

  lowerHand() {
    return this._send({ type: "lower_hand" });
  }

  /** Asks the chair to lift its mute of `kind` ("audio" or "video"). */
  requestUnmute(kind = "audio") {
    return this._send(unmuteRequest(kind));
  }

  /**
   * A chair action, e.g. chair("mute", {participant_id, kind: "audio"}), chair("grant_floor",
   * {participant_id, limit_s: 120}), chair("extend", {minutes: 15}), chair("mute_all").
   * The server refuses it with an `error` (code forbidden) unless this participant is a chair.
   */
  chair(action, fields = {}) {
    return this._send(chairRequest(action, fields));
  }

  /** Whether this participant may post in the chat now (chairs always; others while it is on). */
  get mayChat() {
    return mayChat(this.self, this.room);
  }

  /**
   * Posts a chat message. Returns false (nothing sent) when the text is empty or not connected;
   * the server answers with a `chat` message to everyone, or an `error` (in_reply_to chat_send):
   * too long, too many messages at once (rate_limited), or chat turned off by the chair.
   */
  sendChat(text) {
    const msg = chatRequest(text);
    if (!msg || !this.self) return false;
    return this._send(msg);
  }

  /** Shows page `page` (0 first) of the participant grid, `gridPageSize` tiles a page. */
  viewPage(page) {
    this.gridPage = gridPageOf(page);
    return this._send({ type: "view_page", page: this.gridPage });
  }

  /** Shows `participantId` on my own stage (null: the room's stage again). */
  pin(participantId) {
    return this._send(pinRequest(participantId));
  }

  /**
   * The page shows its stage `height` device pixels high (0: hidden): the server sends no
   * taller a layer than fills it. Sent at most every STAGE_SIZE_MS, the latest size last, and
   * again after every join.
   */
  setStageSize(height) {
    this._stage.set(stageHeightOf(height));
  }

  /** Device pixels the page shows its stage (0: not known). */
  get stageHeight() {
    return this._stage.height;
  }

  /** Chairs: the meeting report so far. Resolves to {format, filename, content}. */
  getReport(format = "json") {
    return this._reports.ask(format, (m) => this._send(m));
  }

  /**
   * Shares a screen (the browser asks which) on a second publish PeerConnection. Resolves once the
   * server has accepted it; rejects with an Error in plain words (code "forbidden" when this
   * participant may not share now). The share stops by itself when the browser's sharing ends.
   */
  async startScreenShare() {
    if (!this.self || !this._pcConfig || this._link.ended) {
      throw new ConferenceError(say("screen.joinFirst"));
    }
    const epoch = this._link.epoch;
    await this._screen.open(epoch, () => epoch === this._link.epoch && !this._link.ended);
  }

  /** Stops the screen share (if any) and tells the server; `text` says why, for the `screen` event. */
  stopScreenShare(text = null) {
    this._screen.stop(text);
  }

  /**
   * Leaves the room: sends `leave`, closes the PeerConnections and the socket. With
   * `{unloading: true}` (the page is closing or reloading) the server keeps this participant's
   * place for a few seconds, so a reload comes back as the same participant in the same state.
   */
  leave({ unloading = false } = {}) {
    if (this._link.ended && this.state === "closed") return;
    this._send(unloading ? { type: "leave", unloading: true } : { type: "leave" });
    this._link.end("closed", say("state.left"));
  }

  /** The signalling connection is going: close what belonged to it. */
  _teardown() {
    if (this.screenPc) this._screen.close(say("screen.connectionLost"));
    this._reports.lost();
    this._media.close();
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** Tells the others (and the page) the microphone/camera state; `send` false: the page only. */
  _announceMedia(send = true) {
    const media = this.mediaState;
    if (this.self) Object.assign(this.self, media);
    this._emit("media", media);
    if (this.self && send) this._send({ type: "media_state", ...media });
  }

  /** Sends `msg` on the signalling connection; false (nothing sent) while it is not open. */
  _send(msg) {
    return this._link.send(msg);
  }

  /** `words`: a message (i18n.js msg()); the event carries it, and its text in today's language. */
  _setState(state, words) {
    const text = tr(words);
    this.state = state;
    this.stateText = text;
    this._emit("state", { state, text, words });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

withServerMessages(ConferenceClient);
