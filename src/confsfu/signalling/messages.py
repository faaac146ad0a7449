"""The signalling messages: every JSON object that crosses the WebSocket, as a pydantic model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


class PublishOffer(Message):
    """The browser's offer for its publish PeerConnection."""

    type: Literal["publish_offer"] = "publish_offer"
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class SubscribeAnswer(Message):
    """The browser's answer to the server's subscribe offer."""

    type: Literal["subscribe_answer"] = "subscribe_answer"
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class MediaState(Message):
    """The participant turned its own microphone or camera on or off."""

    type: Literal["media_state"] = "media_state"
    audio: bool
    video: bool


class Ping(Message):
    """Keepalive; answered with pong."""

    type: Literal["ping"] = "ping"


class Leave(Message):
    """The participant leaves the room; the server closes the connection."""

    type: Literal["leave"] = "leave"


ClientMessage = Annotated[
    Join | PublishOffer | SubscribeAnswer | MediaState | Ping | Leave,
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


class IceServer(Message):
    """An ICE server for the browser's RTCPeerConnection configuration."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Joined(Message):
    """The join succeeded: who you are and who is already here."""

    type: Literal["joined"] = "joined"
    participant_id: str
    room: str
    name: str
    role: Literal["chair", "participant"]
    participants: list[ParticipantInfo]
    ice_servers: list[IceServer]


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


class SlotInfo(Message):
    """One outgoing stream of the subscribe PeerConnection and whom it currently carries."""

    mid: str
    kind: Literal["audio", "video"]
    participant_id: str | None
    name: str | None


class SubscribeOffer(Message):
    type: Literal["subscribe_offer"] = "subscribe_offer"
    sdp: str
    slots: list[SlotInfo]


class SlotMap(Message):
    """Which participant each slot carries, sent once a switch has taken effect."""

    type: Literal["slot_map"] = "slot_map"
    slots: list[SlotInfo]


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
    | Pong
    | Error
    | Bye
)
