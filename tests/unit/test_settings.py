"""Settings: the embedded default, YAML files, CONFSFU_ environment overrides, unknown keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from confsfu.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CONFSFU_ variable from the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("CONFSFU_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployment.yaml"
    path.write_text(text)
    return path


def test_embedded_default_has_an_open_demo_room() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    demo = settings.room("demo")
    assert demo is not None and demo.open
    assert settings.room("nowhere") is None
    assert (settings.slots.audio, settings.slots.video) == (3, 9)
    assert settings.ice.candidates == "host"
    assert len(settings.token_secret) >= 32


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_yaml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
host: 0.0.0.0
port: 8443
token_secret: a-very-long-secret-for-this-deployment-0123
rooms:
  - name: council
    max_participants: 46
  - name: lobby
    open: true
slots:
  video: 12
media:
  keyframe_request_interval_ms: 300
log_level: DEBUG
""",
    )
    settings = load_settings(path)
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 8443, "DEBUG")
    council = settings.room("council")
    assert council is not None and not council.open and council.max_participants == 46
    assert settings.room("demo") is None  # the file's rooms replace the default's
    assert (settings.slots.audio, settings.slots.video) == (3, 12)  # unset keys keep defaults
    assert settings.media.keyframe_request_interval_ms == 300
    assert settings.media.rtx_history_packets == 1024


def test_empty_yaml_file_gives_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "# nothing here\n"))
    assert settings.port == 8080
    assert settings.room("demo") is not None


def test_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- port: 1\n")
    with pytest.raises(ValueError, match="mapping"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour: red\n", "colour"),
        ("slots:\n  videos: 4\n", "videos"),
        ("media:\n  keyframe_interval_ms: 4\n", "keyframe_interval_ms"),
        ("ice:\n  turn: x\n", "turn"),
        ("rooms:\n  - name: a\n    password: x\n", "password"),
    ],
)
def test_unknown_keys_are_rejected(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        load_settings(write(tmp_path, text))


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ValidationError, match="colour"):
        load_settings(colour="red")


@pytest.mark.parametrize(
    "text",
    [
        "port: 70000\n",
        "token_secret: short\n",
        "slots:\n  video: 0\n",
        "log_level: CHATTY\n",
        "ice:\n  candidates: everywhere\n",
        "rooms:\n  - name: ''\n",
        "media:\n  rtx_history_packets: 1000\n",  # the history ring needs a power of two
    ],
)
def test_invalid_values_are_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValidationError):
        load_settings(write(tmp_path, text))


def test_overrides_as_arguments() -> None:
    settings = load_settings(port=0, host="::1")
    assert (settings.port, settings.host) == (0, "::1")


def test_environment_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFSFU_PORT", "9000")
    monkeypatch.setenv("CONFSFU_SLOTS__VIDEO", "4")
    settings = load_settings()
    assert settings.port == 9000
    assert (settings.slots.video, settings.slots.audio) == (4, 3)


def test_environment_overrides_the_file_and_merges_nested_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "port: 8443\nslots:\n  audio: 5\n  video: 16\n")
    monkeypatch.setenv("CONFSFU_PORT", "9000")
    monkeypatch.setenv("CONFSFU_SLOTS__VIDEO", "4")
    settings = load_settings(path)
    assert settings.port == 9000
    assert (settings.slots.audio, settings.slots.video) == (5, 4)


def test_environment_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFSFU_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        load_settings()
    monkeypatch.setenv("CONFSFU_PORT", "9000")
    monkeypatch.setenv("CONFSFU_SLOTS__VIDEO", "99")
    with pytest.raises(ValidationError, match="video"):
        load_settings()


def test_explicit_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFSFU_PORT", "9000")
    assert load_settings(port=1234).port == 1234


def test_node_spill_needs_a_node_and_the_udp_relay() -> None:
    secret = "r" * 32
    base = {"node_id": "a", "node_address": "10.0.0.1:8080", "redis_url": "redis://h:1/0"}
    ok = Settings(**base, node_spill=True, relay_transport="udp", relay_secret=secret)
    assert ok.node_spill
    with pytest.raises(ValidationError):
        Settings(**base, node_spill=True)  # the relay over Unix sockets stays on one machine
    with pytest.raises(ValidationError):
        Settings(node_spill=True, relay_transport="udp", relay_secret=secret)  # not a node
