"""Structured log lines: key=value and JSON, room and participant on every line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from confsfu.server.logs import (
    ContextFilter,
    JsonFormatter,
    KeyValueFormatter,
    ParticipantLog,
    configure_logging,
)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("confsfu.test.logs")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()
    log.propagate = True


def capture(log: logging.Logger, formatter: logging.Formatter) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    log.addHandler(handler)
    return out


def test_key_value_line_names_room_and_participant(logger: logging.Logger) -> None:
    out = capture(logger, KeyValueFormatter())
    session = ParticipantLog(logger, "ab12cd")
    session.info("connected")
    session.room = "demo"
    session.warning("%s joined as %s", "Ana Lima", "chair")
    first, second = out.getvalue().splitlines()
    assert "level=info" in first and "room=- participant=ab12cd msg=connected" in first
    assert first.startswith("ts=") and "logger=confsfu.test.logs" in first
    assert 'room=demo participant=ab12cd msg="Ana Lima joined as chair"' in second
    assert "level=warning" in second


def test_lines_from_other_loggers_carry_empty_fields(logger: logging.Logger) -> None:
    out = capture(logger, KeyValueFormatter())
    logger.info("plain")
    logger.info("with extra", extra={"room": "council", "peers": 3})
    plain, extra = out.getvalue().splitlines()
    assert "room=- participant=- msg=plain" in plain
    assert 'room=council participant=- msg="with extra" peers=3' in extra


def test_values_are_quoted_so_a_line_stays_one_line(logger: logging.Logger) -> None:
    out = capture(logger, KeyValueFormatter())
    ParticipantLog(logger, "p1", room='we"ird room').info('multi\nline = "quoted"')
    (line,) = out.getvalue().splitlines()
    assert 'room="we\\"ird room"' in line
    assert 'msg="multi\\nline = \\"quoted\\""' in line


def test_json_lines_have_the_same_fields(logger: logging.Logger) -> None:
    out = capture(logger, JsonFormatter())
    session = ParticipantLog(logger, "p2", room="demo")
    session.info("left: %s", "timeout", extra={"after_ms": 1500})
    record = json.loads(out.getvalue())
    assert record["room"] == "demo" and record["participant"] == "p2"
    assert record["msg"] == "left: timeout" and record["level"] == "info"
    assert record["after_ms"] == 1500
    assert list(record)[:6] == ["ts", "level", "logger", "room", "participant", "msg"]


def test_exceptions_are_kept_on_the_line(logger: logging.Logger) -> None:
    text_out = capture(logger, KeyValueFormatter())
    json_out = capture(logger, JsonFormatter())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        ParticipantLog(logger, "p3", room="demo").exception("handling failed")
    assert len(text_out.getvalue().splitlines()) == 1
    assert "RuntimeError: boom" in text_out.getvalue()
    assert "RuntimeError: boom" in json.loads(json_out.getvalue())["exc"]


def test_configure_logging_replaces_its_own_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        first_out, second_out = io.StringIO(), io.StringIO()
        configure_logging("INFO", json=False, stream=first_out)
        configure_logging("DEBUG", json=True, stream=second_out)
        assert len([h for h in root.handlers if h.get_name() == "confsfu"]) == 1
        logging.getLogger("confsfu.x").debug("once")
        assert first_out.getvalue() == ""
        assert json.loads(second_out.getvalue())["msg"] == "once"
    finally:
        for handler in [h for h in root.handlers if h.get_name() == "confsfu"]:
            root.removeHandler(handler)
        for handler in before[0]:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(before[1])
