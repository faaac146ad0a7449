"""Client message parsing (every type, unknown fields, bad JSON) and the connection phase table."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.signalling.connection import (
    ALLOWED,
    CLIENT_TYPES,
    ConnectionPhase,
    Phase,
    SignallingError,
    parse_client_message,
)
from confsfu.signalling.messages import (
    MAX_NAME_CHARS,
    MAX_SDP_CHARS,
    PROTOCOL_VERSION,
    Hello,
    Join,
    Leave,
    MediaState,
    Ping,
    PublishOffer,
    SubscribeAnswer,
)

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

# One valid example per client message type (types the protocol does not have yet are skipped).
EXAMPLES: list[dict[str, Any]] = [
    {"type": "join", "token": "abc.def.ghi"},
    {"type": "join", "room": "demo", "name": "Ada"},
    {"type": "join"},
    {"type": "publish_offer", "sdp": SDP},
    {"type": "subscribe_answer", "sdp": SDP},
    {"type": "media_state", "audio": False, "video": True},
    {"type": "ping"},
    {"type": "leave"},
    {"type": "unpublish", "purpose": "screen"},
    {"type": "raise_hand"},
    {"type": "lower_hand"},
    {"type": "request_unmute", "kind": "video"},
    {"type": "chair", "action": "mute", "participant_id": "p2", "kind": "audio"},
    {"type": "view_page", "page": 2},
    {"type": "stage_size", "height": 540},
    {"type": "pin", "participant_id": "p2"},
    {"type": "pin", "participant_id": None},
    {"type": "slots_shown", "seq": 7},
    {"type": "get_report", "format": "csv"},
    {"type": "chat_send", "text": "Hello from Lima <b>x</b>"},
    {"type": "chair", "action": "remove_chat", "message_id": 12},
    {"type": "chair", "action": "chat_off"},
]
VALID = [raw for raw in EXAMPLES if raw["type"] in CLIENT_TYPES]
IDS = [str(raw["type"]) for raw in VALID]


def refused(text: str | bytes) -> SignallingError:
    with pytest.raises(SignallingError) as info:
        parse_client_message(text)
    return info.value


@pytest.mark.parametrize("raw", VALID, ids=IDS)
def test_every_client_message_type_parses(raw: dict[str, Any]) -> None:
    text = json.dumps(raw)
    msg = parse_client_message(text)
    assert msg.type == raw["type"]
    assert msg.model_dump().items() >= raw.items()
    assert parse_client_message(text.encode()) == msg


def test_typed_models_for_the_original_messages() -> None:
    assert parse_client_message('{"type": "join", "name": "Ada"}') == Join(name="Ada")
    assert parse_client_message(json.dumps({"type": "publish_offer", "sdp": SDP})) == (
        PublishOffer(sdp=SDP)
    )
    assert parse_client_message(json.dumps({"type": "subscribe_answer", "sdp": SDP})) == (
        SubscribeAnswer(sdp=SDP)
    )
    assert parse_client_message('{"type": "media_state", "audio": true, "video": false}') == (
        MediaState(audio=True, video=False)
    )
    assert parse_client_message('{"type": "ping"}') == Ping()
    assert parse_client_message('{"type": "leave"}') == Leave()


def test_every_client_type_has_a_valid_example() -> None:
    missing = CLIENT_TYPES - {raw["type"] for raw in EXAMPLES}
    assert not missing, f"add an example for {sorted(missing)} to EXAMPLES"


@pytest.mark.parametrize("raw", VALID, ids=IDS)
def test_unknown_fields_are_rejected_naming_the_field(raw: dict[str, Any]) -> None:
    err = refused(json.dumps({**raw, "colour": "red"}))
    assert err.code == "bad_message"
    assert err.field == "colour"
    assert "colour" in err.message
    assert err.in_reply_to == raw["type"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "media_state", "audio": True}, "video"),
        ({"type": "media_state", "audio": "loud", "video": True}, "audio"),
        ({"type": "publish_offer"}, "sdp"),
        ({"type": "publish_offer", "sdp": ""}, "sdp"),
        ({"type": "subscribe_answer", "sdp": "x" * (MAX_SDP_CHARS + 1)}, "sdp"),
        ({"type": "join", "name": ""}, "name"),
        ({"type": "join", "name": "n" * (MAX_NAME_CHARS + 1)}, "name"),
        ({"type": "join", "room": 5}, "room"),
        ({"type": "join", "token": "t" * 4097}, "token"),
        ({"type": "chat_send"}, "text"),
        ({"type": "chat_send", "text": ""}, "text"),
        ({"type": "chat_send", "text": "x" * 4001}, "text"),
        ({"type": "chat_send", "text": ["hi"]}, "text"),
        ({"type": "chair", "action": "remove_chat", "message_id": 0}, "message_id"),
    ],
)
def test_invalid_fields_are_named(raw: dict[str, Any], field: str) -> None:
    err = refused(json.dumps(raw))
    assert (err.code, err.field, err.in_reply_to) == ("bad_message", field, raw["type"])
    assert err.message.startswith(f"{field}:")


@pytest.mark.parametrize(
    "raw",
    [{"type": "hello"}, {"type": "dance"}, {"type": 5}, {"type": None}, {}, {"sdp": "x"}],
)
def test_unknown_or_missing_type(raw: dict[str, Any]) -> None:
    err = refused(json.dumps(raw))
    assert (err.code, err.field) == ("unknown_type", "type")


def test_server_message_types_are_not_accepted_from_clients() -> None:
    hello = Hello(server="confsfu").model_dump_json()
    assert refused(hello).code == "unknown_type"
    assert Hello(server="x").protocol_version == PROTOCOL_VERSION


@pytest.mark.parametrize("text", ["[]", '"join"', "42", "null", "true", '[{"type": "ping"}]'])
def test_non_object_json_is_refused(text: str) -> None:
    err = refused(text)
    assert err.code == "bad_json" and "object" in err.message


@pytest.mark.parametrize(
    "text",
    ["", "{", "{'type': 'ping'}", '{"type": "ping",}', b"\xff\xfe\xfd", "NaN-ish", "1" * 5000],
)
def test_invalid_json_is_refused(text: str | bytes) -> None:
    assert refused(text).code == "bad_json"


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    assert refused("[" * 100_000 + "]" * 100_000).code == "bad_json"
    assert refused('{"type": "join", "token": ' + "[" * 100_000).code == "bad_json"


def test_messages_are_frozen() -> None:
    msg = parse_client_message('{"type": "media_state", "audio": true, "video": true}')
    assert isinstance(msg, MediaState)
    with pytest.raises(ValueError):
        msg.audio = False  # type: ignore[misc]


@settings(max_examples=300)
@given(text=st.one_of(st.text(), st.binary()))
def test_arbitrary_text_raises_only_signalling_error(text: str | bytes) -> None:
    with contextlib.suppress(SignallingError):
        parse_client_message(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    value=st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(["type", "token", "room", "name", "sdp", "audio", "video", "x"]),
            st.one_of(st.sampled_from(sorted(CLIENT_TYPES)), json_values),
        ),
    )
)
def test_arbitrary_json_raises_only_signalling_error(value: Any) -> None:
    try:
        msg = parse_client_message(json.dumps(value))
    except SignallingError as err:
        assert err.code in {"bad_json", "unknown_type", "bad_message"}
        assert err.message
    else:
        assert msg.type in CLIENT_TYPES
        assert isinstance(value, dict) and value["type"] == msg.type


# ---- the phase table ----------------------------------------------------------------------


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("message_type", sorted(CLIENT_TYPES))
def test_phase_table(phase: Phase, message_type: str) -> None:
    connection = ConnectionPhase()
    connection.move(phase)
    if message_type in ALLOWED[phase]:
        connection.accept(message_type)
    else:
        with pytest.raises(SignallingError) as info:
            connection.accept(message_type)
        assert info.value.code == "out_of_order"
        assert info.value.in_reply_to == message_type
        assert message_type in info.value.message
    assert connection.phase is phase  # accepting never moves the phase


def test_phase_table_covers_every_phase_with_known_types() -> None:
    assert set(ALLOWED) == set(Phase)
    for allowed in ALLOWED.values():
        assert allowed <= CLIENT_TYPES
    assert ALLOWED[Phase.CLOSED] == frozenset()


def test_the_expected_conversation() -> None:
    connection = ConnectionPhase()
    assert connection.phase is Phase.AWAITING_JOIN
    for message_type in ("ping", "join"):
        connection.accept(message_type)
    connection.move(Phase.JOINING)
    with pytest.raises(SignallingError):
        connection.accept("join")  # no second join while the first is handled
    connection.move(Phase.JOINED)
    for message_type in ("publish_offer", "subscribe_answer", "media_state", "ping", "leave"):
        connection.accept(message_type)
    with pytest.raises(SignallingError, match="not allowed while joined"):
        connection.accept("join")
    connection.move(Phase.CLOSED)
    with pytest.raises(SignallingError, match="closed"):
        connection.accept("ping")


def test_unknown_message_type_is_out_of_order_everywhere() -> None:
    for phase in Phase:
        connection = ConnectionPhase()
        connection.move(phase)
        with pytest.raises(SignallingError):
            connection.accept("hello")
