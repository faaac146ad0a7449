"""Structured log lines (key=value or JSON) that name the room and participant on every line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
CONTEXT_FIELDS = ("room", "participant")


class ContextFilter(logging.Filter):
    """Gives every record `room` and `participant` attributes (None when nobody set them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        return True


class ParticipantLog(logging.LoggerAdapter[logging.Logger]):
    """A logger for one participant's session; `room` is filled in once they join."""

    def __init__(self, logger: logging.Logger, participant: str, room: str | None = None) -> None:
        super().__init__(logger, {})
        self.participant = participant
        self.room = room

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("room", self.room)
        extra.setdefault("participant", self.participant)
        kwargs["extra"] = extra
        return msg, kwargs


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record as ordered fields: time, level, logger, room, participant, message, extras."""
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    for name in CONTEXT_FIELDS:
        fields[name] = getattr(record, name, None)
    fields["msg"] = record.getMessage()
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in fields:
            fields[key] = value
    return fields


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=info logger=... room=demo participant=ab12 msg="..."`, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        return " ".join(f"{key}={_kv_value(value)}" for key, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the same fields as KeyValueFormatter."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        return json.dumps(fields, default=str, ensure_ascii=False)


def _kv_value(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)  # quoted, with newlines and quotes escaped


def configure_logging(
    level: str | int = "INFO", json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to `stream` (stderr) as key=value or JSON lines; returns the handler.

    Replaces handlers an earlier call installed, so calling it twice does not double lines.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else KeyValueFormatter())
    handler.addFilter(ContextFilter())
    handler.set_name("confsfu")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "confsfu"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
