"""What browsers are told about ICE: STUN servers, and TURN servers with per-user credentials.

TURN credentials follow coturn's REST API (`use-auth-secret`): the username is
"<expiry unix seconds>:<participant>", the password base64(HMAC-SHA1(secret, username)), so
the TURN server checks them with the shared secret alone and they expire by themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from confsfu.settings import IceSettings
from confsfu.signalling.messages import IceServer


def turn_credentials(secret: str, user: str, *, now_s: int, ttl_s: int) -> tuple[str, str]:
    """(username, password) valid for `ttl_s` seconds from `now_s`."""
    username = f"{now_s + ttl_s}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(ice: IceSettings, participant_id: str, *, now_s: int) -> list[IceServer]:
    servers = [IceServer(urls=[url]) for url in ice.stun_servers]
    for turn in ice.turn_servers:
        username, password = turn_credentials(
            turn.secret, participant_id, now_s=now_s, ttl_s=turn.ttl_s
        )
        servers.append(IceServer(urls=list(turn.urls), username=username, credential=password))
    return servers
