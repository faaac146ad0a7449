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

import { chatHistory, chatPosted, chatRemoved } from "./chatlog.js";
import { msg as say, tr } from "./i18n.js";
import { byeWords, ConferenceError, refusalWords } from "./refusals.js";
import {
  SIMULCAST_ENCODINGS,
  openScreen,
  preferVp8,
  setActiveLayers,
  toIceServers,
  waitForIceGathering,
} from "./rtc.js";
import { ScreenShare } from "./screenshare.js";
import { mergeSlots, videoMoved } from "./slotmap.js";

export { CHAT_MAX_CHARS } from "./chatlog.js";
export { ConferenceError } from "./refusals.js";
export { describeMediaError, openScreen, waitForIceGathering } from "./rtc.js";

export const PROTOCOL_VERSION = 1;

const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 30_000; // no pong for this long: the connection is dead
const HELLO_TIMEOUT_MS = 10_000;
const JOINED_TIMEOUT_MS = 15_000;
const REPORT_TIMEOUT_MS = 15_000;
const STAGE_SIZE_MS = 250; // stage sizes (a window being resized) go out at most this often
const RECONNECT_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000];

export const CHAIR_ACTIONS = Object.freeze([
  "mute", "unmute", "mute_all", "grant_floor", "revoke_floor", "make_presenter",
  "lower_hand", "remove", "lock", "unlock", "extend", "end",
  "remove_chat", "chat_off", "chat_on",
]);
const CHAIR_FIELDS = ["participant_id", "kind", "limit_s", "minutes", "message_id"];
const MODERATION_FIELDS = [
  "chair_muted_audio", "chair_muted_video", "hand_raised", "unmute_requested", "quality",
];

/** Signalling and media for one participant in one room. */
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
    if (!join || !(join.token || (join.room && (join.name || join.watch)))) {
      throw new TypeError("ConferenceClient needs join: {token} or {room, name}");
    }
    this.url = url;
    this.join = join.token ? { token: String(join.token) } : { room: String(join.room) };
    if (!join.token && join.name) this.join.name = String(join.name);
    if (join.watch) this.join.watch = true;
    // A guest comes back as the same participant (after a reload too) with the key it was given;
    // a listener has nothing to come back to.
    this._resumeSlot = join.token || join.watch
      ? null
      : `confsfu.resume:${this.join.room}:${this.join.name}`;
    const resume = this._resumeSlot ? readSession(this._resumeSlot) : null;
    if (resume) this.join.resume = resume;
    this.simulcast = simulcast;
    this.reconnect = reconnect;
    this._WebSocket = WebSocketImpl;
    this._RTCPeerConnection = RTCPeerConnectionImpl;

    /** @type {RTCPeerConnection|null} */
    this.publishPc = null;
    /** @type {RTCPeerConnection|null} */
    this.subscribePc = null;
    /** The screen share (screenshare.js): its own publish connection while it lasts. */
    this._screen = new ScreenShare({
      makePc: () => new this._RTCPeerConnection(this._pcConfig),
      send: (m) => this._send(m),
      later: (epoch, ms, fn) => this._later(epoch, ms, fn),
      emit: (detail) => this._emit("screen", detail),
    });
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
    this.stageHeight = 0; // device pixels the page shows its stage (0: not known)
    this._stageSent = 0; // ... as the server last heard it on this connection
    this._stageSizeTimer = 0;
    /** The room's chat, oldest first: [{id, sender, name, role, sent_ms, text}]. */
    this.chat = [];
    this.state = "idle";
    this.stateText = "";
    this.serverName = null;

    this.localStream = null;
    this._micOn = true;
    this._camOn = true;
    this._ws = null;
    this._epoch = 0; // bumped per connection attempt; stale callbacks compare and bail out
    this._tracksByMid = new Map();
    this._timers = new Set();
    this._pingTimer = null;
    this._lastPongAt = 0;
    this._attempt = 0;
    this._everJoined = false;
    this._ended = false; // leave(), bye or a fatal refusal: never reconnect
    this._subscribeChain = Promise.resolve();
    this._pcConfig = null;
    this._serverStopping = false; // a server_stopping notice came: its bye means "come back"
    this._reports = []; // [{format, resolve, reject, timer}] in order of asking
  }

  // ---- public API ----------------------------------------------------------------------------

  /** Connects and joins, publishing `localStream` (may be null: receive only). Resolves once joined. */
  async start(localStream = null) {
    if (this._ended) throw new ConferenceError(say("client.closed"));
    this.localStream = localStream;
    return this._connect();
  }

  /**
   * Turns the microphone on or off and tells the others. Returns false (and changes nothing) when
   * turning it on while the chair has muted it: use requestUnmute("audio") then.
   */
  setMicrophone(on) {
    if (on && this.self?.chair_muted_audio) return false;
    this._micOn = Boolean(on);
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = this._micOn;
    this._announceMedia();
    return true;
  }

  /** Turns the camera on or off and tells the others; false while the chair has stopped it. */
  setCamera(on) {
    if (on && this.self?.chair_muted_video) return false;
    this._camOn = Boolean(on);
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = this._camOn;
    this._announceMedia();
    return true;
  }

  /** What the others are told about this participant's microphone and camera. */
  get mediaState() {
    const hasAudio = (this.localStream?.getAudioTracks().length ?? 0) > 0;
    const hasVideo = (this.localStream?.getVideoTracks().length ?? 0) > 0;
    return {
      audio: hasAudio && this._micOn && !this.self?.chair_muted_audio,
      video: hasVideo && this._camOn && !this.self?.chair_muted_video,
    };
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
    const id = this.self?.id;
    if (!id) return false;
    return this.isChair || this.room?.presenter === id || this.room?.floor_holder === id;
  }

  get handRaised() {
    return Boolean(this.self && (this.room?.hands ?? []).includes(this.self.id));
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
    if (kind !== "audio" && kind !== "video") throw new TypeError(`requestUnmute: bad kind ${kind}`);
    return this._send({ type: "request_unmute", kind });
  }

  /**
   * A chair action, e.g. chair("mute", {participant_id, kind: "audio"}), chair("grant_floor",
   * {participant_id, limit_s: 120}), chair("extend", {minutes: 15}), chair("mute_all").
   * The server refuses it with an `error` (code forbidden) unless this participant is a chair.
   */
  chair(action, fields = {}) {
    if (!CHAIR_ACTIONS.includes(action)) throw new TypeError(`chair: unknown action ${action}`);
    const msg = { type: "chair", action };
    for (const key of CHAIR_FIELDS) {
      if (fields[key] !== undefined) msg[key] = fields[key];
    }
    return this._send(msg);
  }

  /** Whether this participant may post in the chat now (chairs always; others while it is on). */
  get mayChat() {
    return this.isChair || this.room?.chat_enabled !== false;
  }

  /**
   * Posts a chat message. Returns false (nothing sent) when the text is empty or not connected;
   * the server answers with a `chat` message to everyone, or an `error` (in_reply_to chat_send):
   * too long, too many messages at once (rate_limited), or chat turned off by the chair.
   */
  sendChat(text) {
    const body = String(text ?? "").trim();
    if (!body || !this.self) return false;
    return this._send({ type: "chat_send", text: body.slice(0, 4000) });
  }

  /** Shows page `page` (0 first) of the participant grid, `gridPageSize` tiles a page. */
  viewPage(page) {
    const n = Math.max(0, Math.min(1000, Math.floor(Number(page) || 0)));
    this.gridPage = n;
    return this._send({ type: "view_page", page: n });
  }

  /** Shows `participantId` on my own stage (null: the room's stage again). */
  pin(participantId) {
    return this._send({ type: "pin", participant_id: participantId ?? null });
  }

  /**
   * The page shows its stage `height` device pixels high (0: hidden): the server sends no
   * taller a layer than fills it. Sent at most every STAGE_SIZE_MS, the latest size last, and
   * again after every join.
   */
  setStageSize(height) {
    const h = Math.max(0, Math.min(16384, Math.round(Number(height) || 0)));
    if (h === this.stageHeight) return;
    this.stageHeight = h;
    if (this._stageSizeTimer) return;
    this._stageSizeTimer = setTimeout(() => {
      this._stageSizeTimer = 0;
      this._sendStageSize();
    }, STAGE_SIZE_MS);
  }

  _sendStageSize() {
    if (!this.self || this._stageSent === this.stageHeight) return;
    if (this._send({ type: "stage_size", height: this.stageHeight })) this._stageSent = this.stageHeight;
  }

  /** Chairs: the meeting report so far. Resolves to {format, filename, content}. */
  getReport(format = "json") {
    if (format !== "json" && format !== "csv") {
      return Promise.reject(new TypeError(`getReport: format must be json or csv, not ${format}`));
    }
    return new Promise((resolve, reject) => {
      const waiter = { format, resolve, reject, timer: 0 };
      const drop = () => {
        clearTimeout(waiter.timer);
        this._reports = this._reports.filter((w) => w !== waiter);
      };
      waiter.resolve = (value) => {
        drop();
        resolve(value);
      };
      waiter.reject = (error) => {
        drop();
        reject(error);
      };
      waiter.timer = setTimeout(
        () => waiter.reject(new ConferenceError(say("report.late"))),
        REPORT_TIMEOUT_MS,
      );
      this._reports.push(waiter);
      if (!this._send({ type: "get_report", format })) {
        waiter.reject(new ConferenceError(say("client.notConnected")));
      }
    });
  }

  /**
   * Shares a screen (the browser asks which) on a second publish PeerConnection. Resolves once the
   * server has accepted it; rejects with an Error in plain words (code "forbidden" when this
   * participant may not share now). The share stops by itself when the browser's sharing ends.
   */
  async startScreenShare() {
    if (!this.self || !this._pcConfig || this._ended) {
      throw new ConferenceError(say("screen.joinFirst"));
    }
    if (this.screenPc) return;
    const epoch = this._epoch;
    const stream = await openScreen();
    if (epoch !== this._epoch || this._ended || this.screenPc) {
      for (const track of stream.getTracks()) track.stop();
      throw new ConferenceError(say("screen.connectionChanged"));
    }
    await this._screen.start(stream, epoch);
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
    if (this._ended && this.state === "closed") return;
    this._send(unloading ? { type: "leave", unloading: true } : { type: "leave" });
    this._end("closed", say("state.left"));
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  async _connect() {
    const epoch = ++this._epoch;
    this._teardown();
    this._setState(
      this._attempt > 0 ? "reconnecting" : "connecting",
      this._attempt > 0
        ? say("state.reconnecting", { attempt: this._attempt, count: RECONNECT_DELAYS_MS.length })
        : say("state.connecting"),
    );
    return new Promise((resolve, reject) => {
      this._pendingStart = { epoch, resolve, reject };
      let ws;
      try {
        ws = new this._WebSocket(this.url);
      } catch (error) {
        this._fail(new ConferenceError(say("state.badAddress", { url: this.url }), { cause: error }));
        return;
      }
      this._ws = ws;
      this._later(epoch, HELLO_TIMEOUT_MS, () => {
        if (!this.serverName) this._lost(epoch, say("state.noAnswer"));
      });
      ws.addEventListener("message", (event) => {
        if (epoch !== this._epoch) return;
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          console.warn("confsfu: server sent a frame that is not JSON", event.data);
          return;
        }
        if (msg === null || typeof msg !== "object" || typeof msg.type !== "string") {
          console.warn("confsfu: server sent a frame without a type", msg);
          return;
        }
        this._onMessage(epoch, msg);
      });
      ws.addEventListener("close", () => {
        if (epoch !== this._epoch) return;
        let text = say("state.unreachable");
        if (this.serverName !== null) text = say("state.connectionLost");
        else if (this._everJoined) text = say("state.cannotReach");
        this._lost(epoch, text);
      });
      ws.addEventListener("error", () => {
        // A `close` event always follows; it decides what to do.
      });
    });
  }

  /** The socket or the media died: reconnect if we had joined before, else fail. */
  _lost(epoch, text) {
    if (epoch !== this._epoch || this._ended) return;
    if (this.reconnect && this._everJoined && this._attempt < RECONNECT_DELAYS_MS.length) {
      const delay = RECONNECT_DELAYS_MS[this._attempt];
      this._attempt += 1;
      this._teardown();
      this._setState("reconnecting", say("state.reconnectingIn", { why: text, seconds: Math.round(delay / 1000) }));
      const next = ++this._epoch;
      this._later(next, delay, () => {
        this._connect().catch(() => {
          // reported through the `state` event
        });
      });
      return;
    }
    this._fail(new ConferenceError(this._everJoined && this.reconnect
      ? say("state.reconnectFailed", { why: text })
      : text));
  }

  _fail(error) {
    const text = error instanceof ConferenceError ? error.words : say("state.wentWrong", { detail: error?.message ?? String(error) });
    this._end("failed", text);
    const pending = this._pendingStart;
    this._pendingStart = null;
    pending?.reject(error instanceof ConferenceError ? error : new ConferenceError(text, { cause: error }));
  }

  /** Final stop: no reconnection after this. */
  _end(state, text) {
    this._ended = true;
    this._epoch += 1;
    this._teardown();
    this._setState(state, text);
  }

  _teardown() {
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    if (this.screenPc) this._screen.close(say("screen.connectionLost"));
    for (const waiter of [...this._reports]) {
      waiter.reject(new ConferenceError(say("report.lost")));
    }
    const ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState <= 1) {
      try {
        ws.close(1000, "bye");
      } catch {
        // already closing
      }
    }
    for (const pc of [this.publishPc, this.subscribePc]) {
      try {
        pc?.close();
      } catch {
        // already closed
      }
    }
    this.publishPc = null;
    this.subscribePc = null;
    this._pcConfig = null;
    this._tracksByMid.clear();
    this._subscribeChain = Promise.resolve();
    this._serverStopping = false;
    this._offered = new Promise((resolve) => {
      this._markOffered = resolve;
    });
    this.serverName = null;
  }

  // ---- messages from the server --------------------------------------------------------------

  _onMessage(epoch, msg) {
    switch (msg.type) {
      case "hello":
        return this._onHello(epoch, msg);
      case "joined":
        return this._onJoined(epoch, msg);
      case "subscribe_offer":
        this._markOffered();
        this._subscribeChain = this._subscribeChain.then(() => this._onSubscribeOffer(epoch, msg));
        return;
      case "publish_answer":
        return msg.purpose === "screen" ? this._screen.answered(msg.sdp) : this._onPublishAnswer(epoch, msg);
      case "slot_map":
        return this._onSlotMap(msg);
      case "participant_joined":
      case "participant_updated":
        return this._onParticipant(msg.participant);
      case "participant_left":
        delete this.participants[msg.participant_id];
        return this._emit("participants", { ...this.participants });
      case "room_state":
        return this._onRoomState(msg);
      case "audience":
        this.audience = {
          listeners: Math.max(0, Number(msg.listeners) || 0),
          max_listeners: Math.max(0, Number(msg.max_listeners) || 0),
        };
        return this._emit("audience", { ...this.audience });
      case "chat_history":
        this.chat = chatHistory(msg.messages);
        return this._emitChat({ kind: "history" });
      case "chat": {
        const posted = chatPosted(this.chat, msg.message);
        if (!posted) return;
        this.chat = posted.log;
        return this._emitChat({ kind: "posted", message: { ...posted.message } });
      }
      case "chat_removed": {
        const id = Number(msg.message_id);
        this.chat = chatRemoved(this.chat, id);
        return this._emitChat({ kind: "removed", message_id: id });
      }
      case "notice":
        if (msg.code === "server_stopping") this._serverStopping = true; // the bye that follows
        return this._emit("notice", { code: String(msg.code ?? ""), text: String(msg.text ?? "") });
      case "report":
        return this._onReport(msg);
      case "publisher_layers":
        return this._onPublisherLayers(msg);
      case "pong":
        this._lastPongAt = Date.now();
        return;
      case "error":
        return this._onError(msg);
      case "bye":
        return this._onBye(epoch, msg);
      default:
        console.warn("confsfu: ignoring unknown server message", msg.type);
    }
  }

  _onHello(epoch, msg) {
    if (msg.protocol_version !== PROTOCOL_VERSION) {
      this._fail(new ConferenceError(
        say("state.protocol", { page: PROTOCOL_VERSION, server: String(msg.protocol_version) }),
      ));
      return;
    }
    this.serverName = String(msg.server ?? "");
    this._setState("joining", this.join.room ? say("state.joiningRoom", { room: this.join.room }) : say("state.joining"));
    // confirms_slots: this page says when its tiles name whom the server moved them to.
    this._send({ type: "join", ...this.join, confirms_slots: true });
    this._later(epoch, JOINED_TIMEOUT_MS, () => {
      if (!this._joinedIn(epoch)) this._lost(epoch, say("state.notLetIn"));
    });
    this._lastPongAt = Date.now();
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (epoch !== this._epoch) return;
      if (Date.now() - this._lastPongAt > PONG_TIMEOUT_MS) {
        this._lost(epoch, say("state.stoppedAnswering"));
        return;
      }
      this._send({ type: "ping" });
    }, PING_INTERVAL_MS);
  }

  _joinedIn(epoch) {
    return this._joinedEpoch === epoch;
  }

  async _onJoined(epoch, msg) {
    this._joinedEpoch = epoch;
    this._everJoined = true;
    this.gridPageSize = Math.max(1, Number(msg.grid_page_size) || 9);
    this.gridPage = 0; // a new subscriber starts on the first page
    this.room = null;
    if (msg.resume_key && this._resumeSlot) {
      this.join.resume = String(msg.resume_key);
      writeSession(this._resumeSlot, this.join.resume);
    }
    const you = msg.you ?? {};
    this.self = {
      id: msg.participant_id,
      participant_id: msg.participant_id,
      room: msg.room,
      name: msg.name,
      role: msg.role,
      chair_muted_audio: Boolean(you.chair_muted_audio),
      chair_muted_video: Boolean(you.chair_muted_video),
      hand_raised: Boolean(you.hand_raised),
      unmute_requested: Boolean(you.unmute_requested),
      quality: "unknown",
      resumed: Boolean(msg.resumed),
    };
    Object.assign(this.self, this.mediaState);
    this.participants = {};
    for (const p of msg.participants ?? []) this.participants[p.id] = { ...p };
    this._emit("joined", { ...this.self, grid_page_size: this.gridPageSize });
    this._stageSent = 0; // a new subscriber on the server: it knows no size yet
    this._sendStageSize();
    this._emit("self", { ...this.self });
    this._emit("participants", { ...this.participants });
    this._setState("joining", say("state.settingUp"));
    const pending = this._pendingStart;
    this._pendingStart = null;
    pending?.resolve({ ...this.self });

    this._pcConfig = {
      bundlePolicy: "max-bundle",
      iceServers: toIceServers(msg.ice_servers),
      iceTransportPolicy: msg.ice_transport_policy === "relay" ? "relay" : "all",
    };
    try {
      this.subscribePc = this._makePc(epoch, this._pcConfig, "subscribe");
      this.subscribePc.addEventListener("track", (event) => {
        if (epoch !== this._epoch) return;
        const mid = event.transceiver?.mid;
        if (mid == null) return;
        this._tracksByMid.set(mid, event.track);
        this._emitSlots();
      });
      if (msg.role !== "listener") {
        this.publishPc = this._makePc(epoch, this._pcConfig, "publish");
        await this._publish(epoch);
      }
    } catch (error) {
      if (epoch !== this._epoch) return;
      this._fail(new ConferenceError(
        say("state.setupFailed", { detail: error?.message ?? String(error) }),
        { cause: error },
      ));
    }
  }

  _makePc(epoch, config, role) {
    const pc = new this._RTCPeerConnection(config);
    pc.addEventListener("connectionstatechange", () => {
      if (epoch !== this._epoch) return;
      this._onPcState(epoch, role, pc.connectionState);
    });
    return pc;
  }

  _onPcState(epoch, role, state) {
    if (state === "failed") {
      this._lost(epoch, say("state.mediaFailed"));
      return;
    }
    // A listener has no publish connection.
    const states = [this.publishPc, this.subscribePc].filter(Boolean).map((pc) => pc.connectionState);
    if (states.every((s) => s === "connected")) {
      this._attempt = 0;
      this._setState("connected", this.isListener
        ? say("state.watching", { room: this.self?.room ?? "" })
        : say("state.connected", { room: this.self?.room ?? "", name: this.self?.name ?? "" }));
    } else if (state === "disconnected" && this.state === "connected") {
      this._setState("reconnecting", say("state.mediaInterrupted"));
    }
  }

  async _publish(epoch) {
    const pc = this.publishPc;
    const audioTrack = this.localStream?.getAudioTracks()[0] ?? null;
    const videoTrack = this.localStream?.getVideoTracks()[0] ?? null;
    const streams = this.localStream ? [this.localStream] : [];
    pc.addTransceiver(audioTrack ?? "audio", { direction: "sendonly", streams });
    const videoInit = { direction: "sendonly", streams };
    if (this.simulcast) videoInit.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
    const video = pc.addTransceiver(videoTrack ?? "video", videoInit);
    preferVp8(video);
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    await this._offered; // the server takes our messages once it has made its subscribe offer
    if (epoch !== this._epoch) return;
    this._send({ type: "publish_offer", sdp: pc.localDescription.sdp, purpose: "camera" });
    this._announceMedia();
  }

  async _onPublishAnswer(epoch, msg) {
    const pc = this.publishPc;
    if (!pc) return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    } catch (error) {
      if (epoch !== this._epoch) return;
      this._fail(new ConferenceError(
        say("state.publishAnswerFailed", { detail: error?.message ?? String(error) }),
        { cause: error },
      ));
    }
  }

  async _onSubscribeOffer(epoch, msg) {
    if (epoch !== this._epoch) return;
    const pc = this.subscribePc;
    if (!pc) {
      console.warn("confsfu: subscribe_offer before joined; ignored");
      return;
    }
    this.slots = mergeSlots(this.slots, msg.slots, true);
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await waitForIceGathering(pc);
      if (epoch !== this._epoch) return;
      // The track events fired during setRemoteDescription; pick up any mid learned only now.
      for (const t of pc.getTransceivers()) {
        if (t.mid != null && !this._tracksByMid.has(t.mid)) this._tracksByMid.set(t.mid, t.receiver.track);
      }
      this._send({ type: "subscribe_answer", sdp: pc.localDescription.sdp });
      this._emitSlots();
    } catch (error) {
      if (epoch !== this._epoch) return;
      this._fail(new ConferenceError(
        say("state.subscribeFailed", { detail: error?.message ?? String(error) }),
        { cause: error },
      ));
    }
  }

  _onSlotMap(msg) {
    const before = new Map(this.slots.map((s) => [s.mid, s.participant_id]));
    this.slots = mergeSlots(this.slots, msg.slots, false);
    this._emitSlots(); // the tiles are drawn anew: the moved ones show the new person's name card
    // A video tile that moved to another person gets their frames only once the server hears
    // that the page no longer shows the previous one (docs/protocol.md, slots_shown).
    const moved = videoMoved(before, this.slots);
    if (moved && Number.isSafeInteger(msg.seq) && msg.seq > 0) this._send({ type: "slots_shown", seq: msg.seq });
  }

  _emitChat(change) {
    this._emit("chat", { messages: this.chat.map((m) => ({ ...m })), change });
  }

  _emitSlots() {
    for (const slot of this.slots) slot.track = this._tracksByMid.get(slot.mid) ?? null;
    this._emit("slots", this.slots.map((s) => ({ ...s })));
  }

  _onParticipant(p) {
    if (!p || typeof p.id !== "string") return;
    if (this.self && p.id === this.self.id) {
      this._onSelfInfo(p);
      return;
    }
    this.participants[p.id] = { ...p };
    this._emit("participants", { ...this.participants });
  }

  /** The server's view of this participant: a chair's mute turns the local track off. */
  _onSelfInfo(p) {
    const self = this.self;
    const was = { audio: self.chair_muted_audio, video: self.chair_muted_video };
    for (const key of MODERATION_FIELDS) {
      if (key in p) self[key] = p[key];
    }
    let changed = false;
    if (self.chair_muted_audio && !was.audio) {
      this._micOn = false;
      for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = false;
      changed = true;
    }
    if (self.chair_muted_video && !was.video) {
      this._camOn = false;
      for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = false;
      changed = true;
    }
    if (changed || was.audio !== self.chair_muted_audio || was.video !== self.chair_muted_video) {
      this._announceMedia(changed);
    }
    this._emit("self", { ...self });
  }

  _onRoomState(msg) {
    const { type: _type, ...state } = msg;
    this.room = state;
    if (Number.isFinite(msg.server_time_ms)) this.clockOffsetMs = msg.server_time_ms - Date.now();
    if (this.self) this.self.hand_raised = (state.hands ?? []).includes(this.self.id);
    this._emit("room_state", { ...state });
  }

  _onReport(msg) {
    const report = {
      format: String(msg.format ?? ""),
      filename: String(msg.filename ?? "report"),
      content: String(msg.content ?? ""),
    };
    const waiter = this._reports.find((w) => w.format === report.format);
    waiter?.resolve(report);
    this._emit("report", report);
  }

  /** Turns off the simulcast layers nobody receives (and back on when they are listed again). */
  _onPublisherLayers(msg) {
    const pc = msg.purpose === "screen" ? this.screenPc : this.publishPc;
    if (pc) setActiveLayers(pc, Array.isArray(msg.active) ? msg.active.map(String) : []);
  }

  _onError(msg) {
    const detail = {
      code: msg.code ?? "unknown",
      message: msg.message ?? "",
      field: msg.field ?? null,
      in_reply_to: msg.in_reply_to ?? null,
      fatal: Boolean(msg.fatal),
      reason: typeof msg.reason === "string" ? msg.reason : null,
    };
    this._emit("error", detail);
    if (detail.fatal) {
      const text = refusalWords(detail);
      this._fail(new ConferenceError(text, { code: detail.code }));
      return;
    }
    const refusal = new ConferenceError(detail.message || detail.code, { code: detail.code });
    if (detail.in_reply_to === "get_report") this._reports[0]?.reject(refusal);
    if (detail.in_reply_to === "publish_offer") this._screen.refused(refusal);
  }

  _onBye(epoch, msg) {
    const reason = String(msg.reason ?? "").trim();
    this._emit("bye", { reason });
    if (this._ended) return; // leave() or a fatal error already said why
    if (this._serverStopping) {
      this._serverStopping = false;
      this._lost(epoch, say("state.restarting")); // the meeting resumes: rejoin
      return;
    }
    const text = byeWords(reason);
    this._end("closed", text);
    const pending = this._pendingStart;
    this._pendingStart = null;
    pending?.reject(new ConferenceError(text));
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** Tells the others (and the page) the microphone/camera state; `send` false: the page only. */
  _announceMedia(send = true) {
    const media = this.mediaState;
    if (this.self) Object.assign(this.self, media);
    this._emit("media", media);
    if (this.self && send) this._send({ type: "media_state", ...media });
  }

  _send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  _later(epoch, delayMs, fn) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      if (epoch === this._epoch) fn();
    }, delayMs);
    this._timers.add(timer);
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

/** sessionStorage survives a reload of the tab, and nothing else; absent outside a page. */
function readSession(key) {
  try {
    return globalThis.sessionStorage?.getItem(key) ?? null;
  } catch {
    return null; // storage disabled
  }
}

function writeSession(key, value) {
  try {
    globalThis.sessionStorage?.setItem(key, value);
  } catch {
    // storage disabled: a reload joins as a new guest
  }
}
