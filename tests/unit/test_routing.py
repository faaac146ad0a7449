"""Which worker decides a page's message when its room spans workers: the table covers every
client message, and the meeting's decisions are the authority's."""

from __future__ import annotations

import typing

import pytest

from confsfu.signalling import messages
from confsfu.signalling.routing import ROUTES, Route, decided_by_authority, route


def client_types() -> set[str]:
    union = typing.get_args(typing.get_args(messages.ClientMessage)[0])
    return {model.model_fields["type"].default for model in union}


def test_the_table_names_every_client_message_and_nothing_else() -> None:
    assert set(ROUTES) == client_types()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("join", Route.CONNECTION),
        ("ping", Route.CONNECTION),
        ("leave", Route.CONNECTION),
        ("publish_offer", Route.MEDIA),
        ("unpublish", Route.MEDIA),
        ("subscribe_answer", Route.MEDIA),
        ("view_page", Route.MEDIA),
        ("stage_size", Route.MEDIA),
        ("pin", Route.MEDIA),
        ("slots_shown", Route.MEDIA),
        ("media_state", Route.MEETING),
        ("raise_hand", Route.MEETING),
        ("lower_hand", Route.MEETING),
        ("request_unmute", Route.MEETING),
        ("chair", Route.MEETING),
        ("chat_send", Route.MEETING),
        ("get_report", Route.MEETING),
        ("no_such_message", Route.CONNECTION),
    ],
)
def test_routes(kind: str, expected: Route) -> None:
    assert route(kind) is expected
    assert decided_by_authority(kind) == (expected is Route.MEETING)
