"""ICE for browsers: TURN REST-API credentials, host candidates announced at a public address."""

from __future__ import annotations

import base64
import hashlib
import hmac

from confsfu.sdp import announce_address, parse_sdp
from confsfu.server.ice import ice_servers, turn_credentials
from confsfu.settings import IceSettings, TurnServerSettings

SECRET = "0123456789abcdef-turn"


def test_turn_credentials_follow_coturns_rest_api() -> None:
    user, password = turn_credentials(SECRET, "pid1", now_s=1_000, ttl_s=600)
    assert user == "1600:pid1"
    expected = hmac.new(SECRET.encode(), b"1600:pid1", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


def test_ice_servers_list_stun_then_turn_with_fresh_credentials() -> None:
    ice = IceSettings(
        stun_servers=["stun:stun.example.org:3478"],
        turn_servers=[
            TurnServerSettings(urls=["turn:t.example.org:3478"], secret=SECRET, ttl_s=60)
        ],
    )
    stun, turn = ice_servers(ice, "abc", now_s=10)
    assert stun.urls == ["stun:stun.example.org:3478"] and stun.username is None
    assert turn.urls == ["turn:t.example.org:3478"] and turn.username == "70:abc"
    assert turn.credential == turn_credentials(SECRET, "abc", now_s=10, ttl_s=60)[1]


SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 40000 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.0.5\r\na=mid:0\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=candidate:abc 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
    "a=candidate:def 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 10.0.0.5 rport 40000\r\n"
    "a=end-of-candidates\r\n"
)


def test_each_host_candidate_is_also_announced_at_the_public_address() -> None:
    out = announce_address(SDP, "203.0.113.9")
    lines = out.split("\r\n")
    added = [line for line in lines if "203.0.113.9" in line]
    assert added == [
        "a=candidate:abcn 1 udp 1065353215 203.0.113.9 40000 typ srflx raddr 10.0.0.5 rport 40000"
    ]
    assert (
        lines.index(added[0])
        == lines.index("a=candidate:abc 1 udp 2130706431 10.0.0.5 40000 typ host") + 1
    )
    assert out.endswith("\r\n") and len(lines) == len(SDP.split("\r\n")) + 1
    parse_sdp(out)  # still a valid description
