"""Join tokens: HS256 JWTs naming the room, the display name, the role and the expiry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import jwt

Role = Literal["chair", "participant", "listener"]
ROLES: tuple[Role, ...] = ("chair", "participant", "listener")
ALGORITHM = "HS256"


class TokenError(ValueError):
    """The token is forged, malformed, expired or names the wrong room."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    room: str
    name: str
    role: Role
    expires_s: int
    token_id: str


def make_token(
    secret: str, *, room: str, name: str, role: Role, now_s: int, valid_s: int = 3 * 3600
) -> str:
    """A signed token valid from now_s for valid_s seconds."""
    claims = {
        "room": room,
        "name": name,
        "role": role,
        "iat": now_s,
        "exp": now_s + valid_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, *, now_s: int) -> TokenClaims:
    """The token's claims, or TokenError saying what is wrong with it."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "room", "name", "role", "jti"], "verify_exp": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenError("the token's signature is not valid") from exc
    except (jwt.PyJWTError, UnicodeError) as exc:  # UnicodeError: lone surrogates from JSON
        raise TokenError(f"the token is malformed: {exc}") from exc
    room, name, role, exp, jti = (claims.get(k) for k in ("room", "name", "role", "exp", "jti"))
    if not isinstance(room, str) or not isinstance(name, str) or not isinstance(jti, str):
        raise TokenError("the token's room, name and jti must be strings")
    if not 1 <= len(name) <= 64:
        raise TokenError("the token's name must be 1 to 64 characters")
    if role not in ROLES:
        raise TokenError(f"the token's role must be chair, participant or listener, not {role!r}")
    if not isinstance(exp, int):
        raise TokenError("the token's exp must be an integer")
    if exp <= now_s:
        raise TokenError("the token has expired")
    return TokenClaims(room=room, name=name, role=role, expires_s=exp, token_id=jti)
