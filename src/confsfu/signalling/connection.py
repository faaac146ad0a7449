"""One WebSocket's signalling state: which client messages it may send now, and parsing them."""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import ValidationError

from confsfu.signalling.messages import CLIENT_MESSAGE, ClientMessage

CLIENT_TYPES = frozenset(
    {
        "join",
        "publish_offer",
        "unpublish",
        "subscribe_answer",
        "media_state",
        "raise_hand",
        "lower_hand",
        "request_unmute",
        "chair",
        "view_page",
        "stage_size",
        "pin",
        "chat_send",
        "slots_shown",
        "get_report",
        "ping",
        "leave",
    }
)


class SignallingError(ValueError):
    """A client message was refused; `code` is the protocol's error code, `reason` (or None) why
    in one word."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        in_reply_to: str | None = None,
        fatal: bool = False,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.code = code
        self.message = message
        self.field = field
        self.in_reply_to = in_reply_to
        self.reason = reason


class Phase(StrEnum):
    AWAITING_JOIN = "awaiting_join"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


# Which message types each phase accepts (the rest are out of order).
ALLOWED: dict[Phase, frozenset[str]] = {
    Phase.AWAITING_JOIN: frozenset({"join", "ping", "leave"}),
    Phase.JOINING: frozenset({"ping", "leave"}),
    Phase.JOINED: CLIENT_TYPES - {"join"},
    Phase.CLOSED: frozenset(),
}


def parse_client_message(text: str | bytes) -> ClientMessage:
    """A validated client message, or SignallingError naming what is wrong."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignallingError("bad_json", f"the message is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise SignallingError("bad_json", "the message nests too deeply") from exc
    if not isinstance(raw, dict):
        raise SignallingError("bad_json", "the message must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise SignallingError(
            "unknown_type", f"unknown message type {kind!r}", field="type", in_reply_to=None
        )
    try:
        return CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"] if p != kind)
        raise SignallingError(
            "bad_message",
            f"{loc or 'message'}: {first['msg']}",
            field=loc or None,
            in_reply_to=kind,
        ) from exc


class ConnectionPhase:
    """The reducer: a message type is accepted or refused in the current phase."""

    def __init__(self) -> None:
        self.phase = Phase.AWAITING_JOIN

    def accept(self, message_type: str) -> None:
        if message_type not in ALLOWED[self.phase]:
            raise SignallingError(
                "out_of_order",
                f"{message_type} is not allowed while {self.phase.value.replace('_', ' ')}",
                in_reply_to=message_type,
            )

    def move(self, phase: Phase) -> None:
        self.phase = phase
