"""A join's admission by this deployment's settings: the one rule the single server, a worker and
the front apply before anything else."""

from __future__ import annotations

import time

from confsfu.settings import Settings
from confsfu.signalling.admission import Admission, admit
from confsfu.signalling.messages import Join
from confsfu.tokens import verify_token


def admit_join(message: Join, settings: Settings) -> Admission:
    """Who `message` joins as, and where; raises the fatal SignallingError of a refusal."""

    def room_is_open(name: str) -> bool | None:
        config = settings.room(name)
        return None if config is None else config.open

    def watch_link(name: str) -> bool:
        config = settings.room(name)
        return config is not None and config.watch_link

    return admit(
        message,
        verify=lambda token: verify_token(settings.token_secret, token, now_s=int(time.time())),
        room_is_open=room_is_open,
        watch_link=watch_link,
    )
