"""The signalling messages: every JSON object that crosses the WebSocket, as a pydantic model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from confsfu.conference.chat import MAX_RAW_CHARS
from confsfu.ids import Kind, Purpose

PROTOCOL_VERSION = 1
MAX_SDP_CHARS = 200_000
MAX_NAME_CHARS = 64


class Message(BaseModel):
    """Base of every message: frozen, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- client -> server -------------------------------------------------------------------------


class Join(Message):
    """Join a room, with a signed token or (open rooms only) as a guest with a name."""

    type: Literal["join"] = "join"
    token: str | None = Field(default=None, max_length=4096)
    room: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    # A guest coming back after a lost connection: the resume_key its last `joined` gave it.
    resume: str | None = Field(default=None, min_length=8, max_length=64)
    # The page confirms each slot map that moved a video slot to another person (slots_shown):
    # the server then holds the new person's frames until it did, however busy the page is.
    confirms_slots: bool = False
    # Join as a listener (the audience): receive the stage and the room's audio, publish
    # nothing. With a token, or by the room's watch link (`room`, a `name` optional).
    watch: bool = False


ChairCommand = Literal[
    "mute",
    "unmute",
    "mute_all",
    "grant_floor",
    "revoke_floor",
    "make_presenter",
    "lower_hand",
    "remove",
    "lock",
    "unlock",
    "extend",
    "end",
    "remove_chat",
    "chat_off",
    "chat_on",
]


class PublishOffer(Message):
    """The browser's offer for a publish PeerConnection: its camera+mic, or a screen share."""

    type: Literal["publish_offer"] = "publish_offer"
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    purpose: Purpose = "camera"


class Unpublish(Message):
    """The browser stopped a publish PeerConnection (e.g. the screen share ended)."""

    type: Literal["unpublish"] = "unpublish"
    purpose: Purpose


class RaiseHand(Message):
    type: Literal["raise_hand"] = "raise_hand"


class LowerHand(Message):
    """Lower your own hand."""

    type: Literal["lower_hand"] = "lower_hand"


class RequestUnmute(Message):
    """Ask the chair to lift a chair's mute."""

    type: Literal["request_unmute"] = "request_unmute"
    kind: Kind = "audio"


class Chair(Message):
    """A chair action; refused with `forbidden` for anyone who is not a chair."""

    type: Literal["chair"] = "chair"
    action: ChairCommand
    participant_id: str | None = Field(default=None, max_length=64)
    kind: Kind | None = None  # mute / unmute
    limit_s: int | None = Field(default=None, ge=5, le=4 * 3600)  # grant_floor
    minutes: int | None = Field(default=None, ge=1, le=600)  # extend
    message_id: int | None = Field(default=None, ge=1, le=2**53)  # remove_chat


class ChatSend(Message):
    """Post a chat message to the room. The server cleans the text (control characters go) and
    refuses it empty, longer than 1,000 characters, beyond the rate, or while chat is off."""

    type: Literal["chat_send"] = "chat_send"
    text: str = Field(min_length=1, max_length=MAX_RAW_CHARS)


class ViewPage(Message):
    """Show this page of the participant grid (0 is the first)."""

    type: Literal["view_page"] = "view_page"
    page: int = Field(ge=0, le=1000)


class StageSize(Message):
    """The page shows its stage `height` device pixels high (0: not known): a camera on it gets
    no taller a layer than fills that."""

    type: Literal["stage_size"] = "stage_size"
    height: int = Field(ge=0, le=16_384)


class Pin(Message):
    """Show this participant on my own stage (null: the room's stage again); one pin each."""

    type: Literal["pin"] = "pin"
    participant_id: str | None = Field(max_length=64)


class GetReport(Message):
    """Chairs: the meeting report so far."""

    type: Literal["get_report"] = "get_report"
    format: Literal["json", "csv"] = "json"


class SubscribeAnswer(Message):
    """The browser's answer to the server's subscribe offer."""

    type: Literal["subscribe_answer"] = "subscribe_answer"
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class MediaState(Message):
    """The participant turned its own microphone or camera on or off."""

    type: Literal["media_state"] = "media_state"
    audio: bool
    video: bool


class SlotsShown(Message):
    """The page shows slot map `seq` (its tiles are labelled as it says): a video slot it moved
    to another person may now carry their frames."""

    type: Literal["slots_shown"] = "slots_shown"
    seq: int = Field(ge=1, le=2**53)


class Ping(Message):
    """Keepalive; answered with pong."""

    type: Literal["ping"] = "ping"


class Leave(Message):
    """The participant leaves the room; the server closes the connection."""

    type: Literal["leave"] = "leave"
    # The page is being closed or reloaded: keep my place for a few seconds, in case it reloads.
    unloading: bool = False


ClientMessage = Annotated[
    Join
    | PublishOffer
    | Unpublish
    | SubscribeAnswer
    | MediaState
    | RaiseHand
    | LowerHand
    | RequestUnmute
    | Chair
    | ViewPage
    | StageSize
    | Pin
    | ChatSend
    | GetReport
    | SlotsShown
    | Ping
    | Leave,
    Field(discriminator="type"),
]
CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# ---- server -> client -------------------------------------------------------------------------


class Hello(Message):
    """First message on every connection: the protocol version this server speaks."""

    type: Literal["hello"] = "hello"
    protocol_version: int = PROTOCOL_VERSION
    server: str


class ParticipantInfo(Message):
    """What every participant may know about another."""

    id: str
    name: str
    role: Literal["chair", "participant"]
    audio: bool
    video: bool
    chair_muted_audio: bool = False
    chair_muted_video: bool = False
    hand_raised: bool = False
    unmute_requested: bool = False
    quality: Literal["good", "fair", "poor", "unknown"] = "unknown"
    # "reconnecting": the connection dropped and the server waits for them to come back.
    connection: Literal["connected", "reconnecting"] = "connected"


class IceServer(Message):
    """An ICE server for the browser's RTCPeerConnection configuration."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Joined(Message):
    """The join succeeded: who you are and who is already here (a listener is told nobody)."""

    type: Literal["joined"] = "joined"
    participant_id: str
    room: str
    name: str
    role: Literal["chair", "participant", "listener"]
    participants: list[ParticipantInfo]
    ice_servers: list[IceServer]
    grid_page_size: int = 9
    you: ParticipantInfo | None = None  # your own state as the others see it
    resumed: bool = False  # you came back as the same participant, in the same state
    resume_key: str | None = None  # guests: send it as `resume` to come back after a drop
    ice_transport_policy: Literal["all", "relay"] = "all"


class ParticipantJoined(Message):
    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


class ParticipantUpdated(Message):
    type: Literal["participant_updated"] = "participant_updated"
    participant: ParticipantInfo


class ParticipantLeft(Message):
    type: Literal["participant_left"] = "participant_left"
    participant_id: str
    reason: str


class PublishAnswer(Message):
    type: Literal["publish_answer"] = "publish_answer"
    sdp: str
    purpose: Purpose = "camera"


class RoomState(Message):
    """The meeting's shared state, sent to everyone whenever it changes."""

    type: Literal["room_state"] = "room_state"
    server_time_ms: int  # unix ms, to turn the deadlines below into countdowns
    floor_holder: str | None
    floor_until_ms: int | None  # unix ms, None without a time limit
    hands: list[str]  # participant ids in order of raising
    presenter: str | None
    locked: bool
    scheduled_end_ms: int | None  # unix ms
    stage: str | None  # the participant on the stage
    stage_kind: Literal["screen", "floor", "speaker"] | None
    dominant_speaker: str | None
    chat_enabled: bool = True  # participants may post (chairs always may)


class AudienceCount(Message):
    """To chairs: how many listeners are watching (after joining, then as it changes, at most
    once a second)."""

    type: Literal["audience"] = "audience"
    listeners: int
    max_listeners: int


class Notice(Message):
    """Something a participant should be told (e.g. the chair muted you)."""

    type: Literal["notice"] = "notice"
    code: str
    text: str  # in English; pages word it in their language from `code` and `params`
    params: dict[str, str | int] = {}  # what the text says: kind, participant_id, name, minutes


class ChatInfo(Message):
    """One chat message as pages show it: plain text, never markup."""

    id: int  # 1, 2, ... per room: later messages have larger ids
    sender: str  # participant id
    name: str  # the sender's name when posting
    role: Literal["chair", "participant"]
    sent_ms: int  # unix ms
    text: str


class ChatPosted(Message):
    """A chat message, to everyone in the room (its sender too)."""

    type: Literal["chat"] = "chat"
    message: ChatInfo


class ChatRemoved(Message):
    """A chair removed a chat message: pages drop it."""

    type: Literal["chat_removed"] = "chat_removed"
    message_id: int


class ChatHistory(Message):
    """The room's recent chat (up to 200 messages, oldest first), after joining and coming back:
    it replaces whatever the page showed."""

    type: Literal["chat_history"] = "chat_history"
    messages: list[ChatInfo]


class Report(Message):
    type: Literal["report"] = "report"
    format: Literal["json", "csv"]
    filename: str
    content: str


class SlotInfo(Message):
    """One outgoing stream of the subscribe PeerConnection and whom it currently carries."""

    mid: str
    kind: Literal["audio", "video"]
    participant_id: str | None
    name: str | None
    purpose: Literal["audio", "stage", "grid"] = "grid"
    source: Purpose | None = None  # which of the participant's videos: camera or screen
    spatial: int | None = None  # simulcast layer forwarded (0 lowest), None: paused or audio
    temporal: int | None = None  # highest temporal layer forwarded
    reason: str | None = None  # why this layer: "optimal", "bandwidth", "tile size", ...
    # live: pictures of `participant_id` go out (video: from RTP timestamp `since_ts` on);
    # waiting: the slot is theirs, no picture of theirs went out yet; paused: theirs, no video.
    state: Literal["empty", "waiting", "paused", "live"] = "empty"
    since_ts: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)


class SubscribeOffer(Message):
    type: Literal["subscribe_offer"] = "subscribe_offer"
    sdp: str
    slots: list[SlotInfo]


class SlotMap(Message):
    """Which participant each slot carries, sent once a switch has taken effect."""

    type: Literal["slot_map"] = "slot_map"
    slots: list[SlotInfo]
    seq: int  # 1, 2, ... for each subscription: what slots_shown confirms


class PublisherLayers(Message):
    """Which simulcast encodings of a publish connection anyone receives; the page turns the
    others off (and back on when this message lists them again)."""

    type: Literal["publisher_layers"] = "publisher_layers"
    purpose: Purpose
    active: list[str]  # rids, lowest first


class Pong(Message):
    type: Literal["pong"] = "pong"


class Error(Message):
    """A request was refused; the connection stays open unless `fatal`."""

    type: Literal["error"] = "error"
    code: str
    message: str
    field: str | None = None
    in_reply_to: str | None = None
    fatal: bool = False
    reason: str | None = None  # why, in one word, for pages that word it themselves (protocol.md)


class Bye(Message):
    """The server is closing this connection, and why."""

    type: Literal["bye"] = "bye"
    reason: str


ServerMessage = (
    Hello
    | Joined
    | ParticipantJoined
    | ParticipantUpdated
    | ParticipantLeft
    | PublishAnswer
    | SubscribeOffer
    | SlotMap
    | RoomState
    | AudienceCount
    | ChatPosted
    | ChatRemoved
    | ChatHistory
    | Notice
    | Report
    | PublisherLayers
    | Pong
    | Error
    | Bye
)
