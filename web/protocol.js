// The confsfu signalling client (protocol version 1): one WebSocket and two RTCPeerConnections, no DOM.
//
// Usage:
//   const client = new ConferenceClient({ url: "ws://host/ws", join: { room: "demo", name: "Ana" } });
//   client.addEventListener("state", (e) => console.log(e.detail.state, e.detail.text));
//   await client.start(localStream);
//
// Events (CustomEvent, payload in `detail`):
//   state        {state, text}  state: connecting | joining | connected | reconnecting | closed | failed
//   joined       {participant_id, room, name, role, audio, video}
//   participants {[id]: {id, name, role, audio, video}}  everyone else in the room
//   slots        [{mid, kind, participant_id, name, track}]
//   media        {audio, video}  own microphone/camera as announced to the others
//   error        {code, message, field, in_reply_to, fatal}  a message the server refused
//   bye          {reason}

export const PROTOCOL_VERSION = 1;

const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 30_000; // no pong for this long: the connection is dead
const HELLO_TIMEOUT_MS = 10_000;
const JOINED_TIMEOUT_MS = 15_000;
const ICE_GATHER_TIMEOUT_MS = 5_000; // send what was gathered if gathering never completes
const RECONNECT_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000];

// Simulcast layers, lowest first (the server learns rid -> layer from this order).
const SIMULCAST_ENCODINGS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** Openings for fatal refusals; the server's own message follows. */
const REFUSAL_TEXT = {
  bad_token: "Your invitation link is not valid or has expired",
  room_full: "The room is full",
};

/** A failure with a sentence a participant understands. */
export class ConferenceError extends Error {
  constructor(text, { retry = false, cause = undefined } = {}) {
    super(text, cause === undefined ? undefined : { cause });
    this.name = "ConferenceError";
    this.retry = retry; // whether reconnecting could help
  }
}

/**
 * Opens the microphone and camera, falling back to what is available.
 * Resolves to {stream, audio, video, notice}; `notice` explains what is missing (or is null).
 */
export async function openLocalMedia({
  audio = true,
  video = { width: 1280, height: 720 },
  mediaDevices = globalThis.navigator?.mediaDevices,
} = {}) {
  if (!mediaDevices?.getUserMedia) {
    return {
      stream: null,
      audio: false,
      video: false,
      notice:
        "This browser cannot use a camera or microphone here (the page needs https or localhost). " +
        "You can still watch and listen.",
    };
  }
  const attempts = [
    { audio, video },
    { audio, video: false },
    { audio: false, video },
  ];
  let firstError = null;
  for (const constraints of attempts) {
    if (!constraints.audio && !constraints.video) continue;
    try {
      const stream = await mediaDevices.getUserMedia(constraints);
      const hasAudio = stream.getAudioTracks().length > 0;
      const hasVideo = stream.getVideoTracks().length > 0;
      let notice = null;
      if (!hasAudio || !hasVideo) {
        const missing = !hasAudio ? "microphone" : "camera";
        notice = `Your ${missing} could not be used (${describeMediaError(firstError)}). ` +
          `Others will ${!hasAudio ? "not hear" : "not see"} you.`;
      }
      return { stream, audio: hasAudio, video: hasVideo, notice };
    } catch (error) {
      firstError ??= error; // a refusal may cover one device only: try the other alone
    }
  }
  return {
    stream: null,
    audio: false,
    video: false,
    notice: `Camera and microphone are off: ${describeMediaError(firstError)}. ` +
      "You can still watch and listen.",
  };
}

/** A getUserMedia failure in plain words. */
export function describeMediaError(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "access was denied; allow the camera and microphone in your browser's site settings";
    case "NotFoundError":
    case "OverconstrainedError":
      return "no such device was found";
    case "NotReadableError":
    case "AbortError":
      return "the device is in use by another application or not working";
    case undefined:
      return "it is not available";
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
function toIceServers(servers) {
  return (servers ?? []).map((s) => {
    const out = { urls: s.urls };
    if (s.username != null) out.username = s.username;
    if (s.credential != null) out.credential = s.credential;
    return out;
  });
}

/** Put VP8 (and its RTX) first and alone, the only video codec the server forwards. */
function preferVp8(transceiver) {
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

/** Signalling and media for one participant in one room. */
export class ConferenceClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.url       the signalling WebSocket, e.g. "ws://127.0.0.1:8080/ws"
   * @param {object} options.join      {token} or {room, name}
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
    if (!join || !(join.token || (join.room && join.name))) {
      throw new TypeError("ConferenceClient needs join: {token} or {room, name}");
    }
    this.url = url;
    this.join = join.token ? { token: String(join.token) } : {
      room: String(join.room),
      name: String(join.name),
    };
    this.simulcast = simulcast;
    this.reconnect = reconnect;
    this._WebSocket = WebSocketImpl;
    this._RTCPeerConnection = RTCPeerConnectionImpl;

    /** @type {RTCPeerConnection|null} */
    this.publishPc = null;
    /** @type {RTCPeerConnection|null} */
    this.subscribePc = null;
    /** @type {Array<{mid: string, kind: string, participant_id: string|null, name: string|null, track: MediaStreamTrack|null}>} */
    this.slots = [];
    /** Everyone else in the room, by id. */
    this.participants = {};
    /** Who this client joined as (null before `joined`). */
    this.self = null;
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
  }

  // ---- public API ----------------------------------------------------------------------------

  /** Connects and joins, publishing `localStream` (may be null: receive only). Resolves once joined. */
  async start(localStream = null) {
    if (this._ended) throw new ConferenceError("This connection was closed; create a new client.");
    this.localStream = localStream;
    return this._connect();
  }

  /** Turns the microphone on or off and tells the others. */
  setMicrophone(on) {
    this._micOn = Boolean(on);
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = this._micOn;
    this._announceMedia();
  }

  /** Turns the camera on or off and tells the others. */
  setCamera(on) {
    this._camOn = Boolean(on);
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = this._camOn;
    this._announceMedia();
  }

  /** What the others are told about this participant's microphone and camera. */
  get mediaState() {
    const hasAudio = (this.localStream?.getAudioTracks().length ?? 0) > 0;
    const hasVideo = (this.localStream?.getVideoTracks().length ?? 0) > 0;
    return { audio: hasAudio && this._micOn, video: hasVideo && this._camOn };
  }

  /** Leaves the room: sends `leave`, closes both PeerConnections and the socket. */
  leave() {
    if (this._ended && this.state === "closed") return;
    this._send({ type: "leave" });
    this._end("closed", "You left the meeting");
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  async _connect() {
    const epoch = ++this._epoch;
    this._teardown();
    this._setState(
      this._attempt > 0 ? "reconnecting" : "connecting",
      this._attempt > 0
        ? `Connection lost. Reconnecting (attempt ${this._attempt} of ${RECONNECT_DELAYS_MS.length})…`
        : "Connecting to the server…",
    );
    return new Promise((resolve, reject) => {
      this._pendingStart = { epoch, resolve, reject };
      let ws;
      try {
        ws = new this._WebSocket(this.url);
      } catch (error) {
        this._fail(new ConferenceError(`The server address is not valid (${this.url}).`, { cause: error }));
        return;
      }
      this._ws = ws;
      this._later(epoch, HELLO_TIMEOUT_MS, () => {
        if (!this.serverName) this._lost(epoch, "The server does not answer.");
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
      ws.addEventListener("close", (event) => {
        if (epoch !== this._epoch) return;
        let text = "Could not reach the server. Check your network connection and try again.";
        if (this.serverName !== null) text = "The connection to the server was lost.";
        else if (this._everJoined) text = "The server cannot be reached.";
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
      this._setState("reconnecting", `${text} Reconnecting in ${Math.round(delay / 1000)} s…`);
      const next = ++this._epoch;
      this._later(next, delay, () => {
        this._connect().catch(() => {
          // reported through the `state` event
        });
      });
      return;
    }
    this._fail(new ConferenceError(this._everJoined && this.reconnect
      ? `${text} Reconnecting did not help; please try again later.`
      : text));
  }

  _fail(error) {
    const text = error instanceof ConferenceError ? error.message : `Something went wrong: ${error?.message ?? error}`;
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
    this._tracksByMid.clear();
    this._subscribeChain = Promise.resolve();
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
        return this._onPublishAnswer(epoch, msg);
      case "slot_map":
        return this._onSlotMap(msg);
      case "participant_joined":
      case "participant_updated":
        return this._onParticipant(msg.participant);
      case "participant_left":
        delete this.participants[msg.participant_id];
        return this._emit("participants", { ...this.participants });
      case "pong":
        this._lastPongAt = Date.now();
        return;
      case "error":
        return this._onError(msg);
      case "bye":
        return this._onBye(msg);
      default:
        console.warn("confsfu: ignoring unknown server message", msg.type);
    }
  }

  _onHello(epoch, msg) {
    if (msg.protocol_version !== PROTOCOL_VERSION) {
      this._fail(new ConferenceError(
        `This page speaks protocol version ${PROTOCOL_VERSION} but the server speaks ` +
          `${msg.protocol_version}. Reload the page to get the current version.`,
      ));
      return;
    }
    this.serverName = String(msg.server ?? "");
    this._setState("joining", this.join.room ? `Joining room “${this.join.room}”…` : "Joining…");
    this._send({ type: "join", ...this.join });
    this._later(epoch, JOINED_TIMEOUT_MS, () => {
      if (!this._joinedIn(epoch)) this._lost(epoch, "The server did not let you in in time.");
    });
    this._lastPongAt = Date.now();
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (epoch !== this._epoch) return;
      if (Date.now() - this._lastPongAt > PONG_TIMEOUT_MS) {
        this._lost(epoch, "The server stopped answering.");
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
    this.self = {
      id: msg.participant_id,
      participant_id: msg.participant_id,
      room: msg.room,
      name: msg.name,
      role: msg.role,
      ...this.mediaState,
    };
    this.participants = {};
    for (const p of msg.participants ?? []) this.participants[p.id] = { ...p };
    this._emit("joined", { ...this.self });
    this._emit("participants", { ...this.participants });
    this._setState("joining", "Setting up audio and video…");
    const pending = this._pendingStart;
    this._pendingStart = null;
    pending?.resolve({ ...this.self });

    const config = { bundlePolicy: "max-bundle", iceServers: toIceServers(msg.ice_servers) };
    try {
      this.subscribePc = this._makePc(epoch, config, "subscribe");
      this.subscribePc.addEventListener("track", (event) => {
        if (epoch !== this._epoch) return;
        const mid = event.transceiver?.mid;
        if (mid == null) return;
        this._tracksByMid.set(mid, event.track);
        this._emitSlots();
      });
      this.publishPc = this._makePc(epoch, config, "publish");
      await this._publish(epoch);
    } catch (error) {
      if (epoch !== this._epoch) return;
      this._fail(new ConferenceError(
        `Could not set up your audio and video: ${error?.message ?? error}.`,
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
      this._lost(epoch, "Connection to the media server failed.");
      return;
    }
    const states = [this.publishPc?.connectionState, this.subscribePc?.connectionState];
    if (states.every((s) => s === "connected")) {
      this._attempt = 0;
      this._setState("connected", `Connected to room “${this.self?.room ?? ""}” as ${this.self?.name ?? ""}`);
    } else if (state === "disconnected" && this.state === "connected") {
      this._setState("reconnecting", "The media connection is interrupted; trying to recover…");
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
    this._send({ type: "publish_offer", sdp: pc.localDescription.sdp });
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
        `Your browser could not use the server's answer for your camera and microphone (${error?.message ?? error}).`,
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
    this._setSlots(msg.slots ?? [], true);
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
        `Your browser could not accept the others' audio and video (${error?.message ?? error}).`,
        { cause: error },
      ));
    }
  }

  _onSlotMap(msg) {
    this._setSlots(msg.slots ?? [], false);
    this._emitSlots();
  }

  /** Updates slots by mid; `replace` drops slots not listed (a new subscribe offer). */
  _setSlots(list, replace) {
    const byMid = new Map(replace ? [] : this.slots.map((s) => [s.mid, s]));
    const order = replace ? [] : this.slots.map((s) => s.mid);
    for (const s of list) {
      if (!byMid.has(s.mid)) order.push(s.mid);
      byMid.set(s.mid, {
        mid: String(s.mid),
        kind: s.kind,
        participant_id: s.participant_id ?? null,
        name: s.name ?? null,
        track: null,
      });
    }
    this.slots = order.map((mid) => byMid.get(mid));
  }

  _emitSlots() {
    for (const slot of this.slots) slot.track = this._tracksByMid.get(slot.mid) ?? null;
    this._emit("slots", this.slots.map((s) => ({ ...s })));
  }

  _onParticipant(p) {
    if (!p || typeof p.id !== "string") return;
    if (this.self && p.id === this.self.id) return; // our own echo
    this.participants[p.id] = { ...p };
    this._emit("participants", { ...this.participants });
  }

  _onError(msg) {
    const detail = {
      code: msg.code ?? "unknown",
      message: msg.message ?? "",
      field: msg.field ?? null,
      in_reply_to: msg.in_reply_to ?? null,
      fatal: Boolean(msg.fatal),
    };
    this._emit("error", detail);
    if (detail.fatal) {
      const lead = REFUSAL_TEXT[detail.code] ?? "You could not join";
      const text = detail.message ? `${lead}: ${detail.message}.` : `${lead}.`;
      this._fail(new ConferenceError(text));
    }
  }

  _onBye(msg) {
    const reason = String(msg.reason ?? "").trim();
    this._emit("bye", { reason });
    if (this._ended) return; // leave() or a fatal error already said why
    const text = reason
      ? `The server closed the meeting for you: ${reason}.`
      : "The server closed the meeting for you.";
    this._end("closed", text);
    const pending = this._pendingStart;
    this._pendingStart = null;
    pending?.reject(new ConferenceError(text));
  }

  // ---- helpers -----------------------------------------------------------------------------

  _announceMedia() {
    const media = this.mediaState;
    if (this.self) Object.assign(this.self, media);
    this._emit("media", media);
    if (this.self) this._send({ type: "media_state", ...media });
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

  _setState(state, text) {
    this.state = state;
    this.stateText = text;
    this._emit("state", { state, text });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
