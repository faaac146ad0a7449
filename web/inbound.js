// The server's messages to a ConferenceClient (protocol.js), each to its handler: methods of the
// client, kept here apart from its public API.

import { chatAfter } from "./chatlog.js";
import { msg as say } from "./i18n.js";
import { joinRequest, joiningWords, keepResume } from "./join.js";
import { afterMediaState } from "./lifecycle.js";
import { audienceFrom, errorFrom, isParticipant, reportFrom } from "./messages.js";
import { ConferenceError, refusalWords } from "./refusals.js";
import { setActiveLayers } from "./rtc.js";
import { applySelfInfo, selfFrom } from "./selfstate.js";
import { mergeSlots, videoMoved } from "./slotmap.js";

/** Gives `Client` (ConferenceClient) the handlers of the server's messages. */
export function withServerMessages(Client) {
  for (const name of Object.getOwnPropertyNames(ServerMessages.prototype)) {
    if (name === "constructor") continue;
    Object.defineProperty(Client.prototype, name, Object.getOwnPropertyDescriptor(ServerMessages.prototype, name));
  }
  return Client;
}

/** The handlers; `this` is the ConferenceClient. */
class ServerMessages {
  _onMessage(epoch, msg) {
    switch (msg.type) {
      case "hello":
        return this._onHello(epoch, msg);
      case "joined":
        return this._onJoined(epoch, msg);
      case "subscribe_offer":
        return this._media.offer(epoch, msg);
      case "publish_answer":
        return msg.purpose === "screen" ? this._screen.answered(msg.sdp) : this._media.answered(epoch, msg.sdp);
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
        this.audience = audienceFrom(msg);
        return this._emit("audience", { ...this.audience });
      case "chat_history":
      case "chat":
      case "chat_removed":
        return this._onChat(msg);
      case "notice":
        if (msg.code === "server_stopping") this._link.stopping(); // the bye that follows
        return this._emit("notice", { code: String(msg.code ?? ""), text: String(msg.text ?? "") });
      case "report":
        return this._onReport(msg);
      case "publisher_layers":
        return this._onPublisherLayers(msg);
      case "pong":
        return this._link.pong();
      case "error":
        return this._onError(msg);
      case "bye":
        return this._onBye(epoch, msg);
      default:
        console.warn("confsfu: ignoring unknown server message", msg.type);
    }
  }

  _onHello(epoch, msg) {
    if (!this._link.hello(epoch, msg)) return;
    this._setState("joining", joiningWords(this.join));
    this._send(joinRequest(this.join));
    this._link.joining(epoch);
  }

  async _onJoined(epoch, msg) {
    this._link.joined(epoch);
    this.gridPageSize = Math.max(1, Number(msg.grid_page_size) || 9);
    this.gridPage = 0; // a new subscriber starts on the first page
    this.room = null;
    if (msg.resume_key && this._resumeSlot) {
      this.join.resume = String(msg.resume_key);
      keepResume(this._resumeSlot, this.join.resume);
    }
    this.self = selfFrom(msg);
    Object.assign(this.self, this.mediaState);
    this.participants = {};
    for (const p of msg.participants ?? []) this.participants[p.id] = { ...p };
    this._emit("joined", { ...this.self, grid_page_size: this.gridPageSize });
    this._stage.joined(); // a new subscriber on the server: it knows no size yet
    this._emit("self", { ...this.self });
    this._emit("participants", { ...this.participants });
    this._setState("joining", say("state.settingUp"));
    this._link.settled({ ...this.self });
    await this._media.open(epoch, msg, {
      stream: this.localStream,
      simulcast: this.simulcast,
      listener: msg.role === "listener",
    });
  }

  _onPcState(epoch, changed) {
    const next = afterMediaState(changed, this._media.states(), this.state, this.self);
    if (next?.kind === "lost") {
      this._link.lost(epoch, next.words);
    } else if (next?.kind === "connected") {
      this._link.mediaConnected();
      this._setState("connected", next.words);
    } else if (next?.kind === "interrupted") {
      this._setState("reconnecting", next.words);
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

  _onChat(msg) {
    const next = chatAfter(this.chat, msg);
    if (!next) return;
    this.chat = next.log;
    this._emit("chat", { messages: this.chat.map((m) => ({ ...m })), change: next.change });
  }

  _emitSlots() {
    for (const slot of this.slots) slot.track = this._media.track(slot.mid);
    this._emit("slots", this.slots.map((s) => ({ ...s })));
  }

  _onParticipant(p) {
    if (!isParticipant(p)) return;
    if (this.self && p.id === this.self.id) {
      this._onSelfInfo(p);
      return;
    }
    this.participants[p.id] = { ...p };
    this._emit("participants", { ...this.participants });
  }

  /** The server's view of this participant: a chair's mute turns the local track off. */
  _onSelfInfo(p) {
    const { newlyMuted, mutesChanged } = applySelfInfo(this.self, p);
    if (newlyMuted.audio) this._local.set("audio", false);
    if (newlyMuted.video) this._local.set("video", false);
    const changed = newlyMuted.audio || newlyMuted.video;
    if (changed || mutesChanged) this._announceMedia(changed);
    this._emit("self", { ...this.self });
  }

  _onRoomState(msg) {
    const { type: _type, ...state } = msg;
    this.room = state;
    if (Number.isFinite(msg.server_time_ms)) this.clockOffsetMs = msg.server_time_ms - Date.now();
    if (this.self) this.self.hand_raised = (state.hands ?? []).includes(this.self.id);
    this._emit("room_state", { ...state });
  }

  _onReport(msg) {
    const report = reportFrom(msg);
    this._reports.answered(report);
    this._emit("report", report);
  }

  /** Turns off the simulcast layers nobody receives (and back on when they are listed again). */
  _onPublisherLayers(msg) {
    const pc = msg.purpose === "screen" ? this.screenPc : this.publishPc;
    if (pc) setActiveLayers(pc, Array.isArray(msg.active) ? msg.active.map(String) : []);
  }

  _onError(msg) {
    const detail = errorFrom(msg);
    this._emit("error", detail);
    if (detail.fatal) {
      const text = refusalWords(detail);
      this._link.fail(new ConferenceError(text, { code: detail.code }));
      return;
    }
    const refusal = new ConferenceError(detail.message || detail.code, { code: detail.code });
    if (detail.in_reply_to === "get_report") this._reports.refused(refusal);
    if (detail.in_reply_to === "publish_offer") this._screen.refused(refusal);
  }

  _onBye(epoch, msg) {
    const reason = String(msg.reason ?? "").trim();
    this._emit("bye", { reason });
    this._link.bye(epoch, reason);
  }
}
