"""The WebSocket's Origin check: same host or a configured public origin; tools send none."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from confsfu.server.app import origin_allowed
from confsfu.settings import Settings

SETTINGS = Settings(public_origin=["https://meet.example.org"])


def allowed(headers: dict[str, str], settings: Settings = SETTINGS) -> bool:
    return origin_allowed(make_mocked_request("GET", "/ws", headers=headers), settings)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080"},
        {"Host": "sfu.example.org", "Origin": "https://sfu.example.org"},
        {"Host": "10.0.0.5:8443", "Origin": "https://meet.example.org"},  # configured
        {"Host": "127.0.0.1:8080"},  # no Origin: not a browser
        {},
    ],
    ids=["same-host-http", "same-host-https", "public-origin", "no-origin", "no-headers"],
)
def test_allowed(headers: dict[str, str]) -> None:
    assert allowed(headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:8080", "Origin": "http://evil.example.com"},
        {"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:9999"},  # another port
        {"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1"},  # port missing
        {"Host": "127.0.0.1:8080", "Origin": "null"},  # file:// pages, sandboxed iframes
        {"Host": "127.0.0.1:8080", "Origin": ""},
        {"Host": "127.0.0.1:8080", "Origin": "ws://127.0.0.1:8080"},
        {"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080.evil.com"},
        {"Host": "sfu.example.org", "Origin": "https://meet.example.org.evil.com"},
        {"Host": "sfu.example.org", "Origin": "https://MEET.example.org/"},
        {"Origin": "http://127.0.0.1:8080"},  # no Host to compare with
    ],
    ids=[
        "other-site",
        "other-port",
        "port-missing",
        "null",
        "empty",
        "ws-scheme",
        "suffix",
        "public-suffix",
        "public-case-and-slash",
        "no-host",
    ],
)
def test_refused(headers: dict[str, str]) -> None:
    assert not allowed(headers)


def test_without_public_origins_only_the_same_host_is_allowed() -> None:
    settings = Settings()
    assert allowed({"Host": "a.example:1", "Origin": "http://a.example:1"}, settings)
    assert not allowed({"Host": "a.example:1", "Origin": "https://meet.example.org"}, settings)
