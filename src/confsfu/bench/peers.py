"""Who joins a benchmark run, in joining order, with which token and link (`plan_peers`)."""

from __future__ import annotations

import time

from confsfu.bench.scenario import Scenario, ScenarioError
from confsfu.bench.worker import PeerPlan
from confsfu.tokens import make_token


def plan_peers(scenario: Scenario, secret: str | None, tokens: tuple[str, ...]) -> list[PeerPlan]:
    """Everyone who joins, in joining order: the chair, the presenter, publishers, subscribers."""
    now_s = int(time.time())
    chair_tokens = [t for t in tokens if _token_role(t) == "chair"]
    other_tokens = [t for t in tokens if _token_role(t) != "chair"]

    listener_tokens = [t for t in other_tokens if _token_role(t) == "listener"]
    other_tokens = [t for t in other_tokens if t not in listener_tokens]

    def token(name: str, role: str) -> str | None:
        if role == "listener":  # a listener token if given; else the room's watch link
            if listener_tokens:
                return listener_tokens.pop(0)
            if tokens or secret is None:
                return None
            return make_token(secret, room=scenario.room, name=name, role="listener", now_s=now_s)
        pool = chair_tokens if role == "chair" else other_tokens
        if tokens:
            if not pool:
                raise ScenarioError(f"the token file has no {role} token left for {name}")
            return pool.pop(0)
        if secret is None:
            if role == "chair":
                raise ScenarioError("a chair needs --token-secret or a chair token in --token-file")
            return None
        return make_token(
            secret,
            room=scenario.room,
            name=name,
            role="chair" if role == "chair" else "participant",
            now_s=now_s,
        )

    plans: list[PeerPlan] = []
    weak_left = scenario.weak_links
    # Scheduled links go to receive-only subscribers first, then to publishers from the second
    # on (the first is the presenter, or the one everybody watches), never to a weak one.
    weak_subscribers = min(weak_left, scenario.subscribers)
    linked_subscribers = min(scenario.scheduled_links, scenario.subscribers - weak_subscribers)
    links_left = scenario.scheduled_links - linked_subscribers
    if scenario.chair:
        plans.append(
            PeerPlan(
                name="Chair",
                role="chair",
                publish=scenario.chair_publishes,
                token=token("Chair", "chair"),
                remb_bps=scenario.downlink_bps,
                publisher_index=scenario.publishers if scenario.chair_publishes else None,
            )
        )
    for i in range(scenario.publishers):
        presenter = scenario.presenter and i == 0
        name = "Presenter" if presenter else f"Publisher {i:03d}"
        weak = not presenter and weak_left > 0 and i >= scenario.publishers - scenario.weak_links
        weak_left -= int(weak)
        linked = i >= 1 and not weak and links_left > 0
        links_left -= int(linked)
        plans.append(
            PeerPlan(
                name=name,
                role="participant",
                publish=True,
                token=token(name, "participant"),
                remb_bps=scenario.weak_link_bps if weak else scenario.downlink_bps,
                publisher_index=i,
                presenter=presenter,
                link=linked,
            )
        )
    for i in range(scenario.subscribers):
        name = f"Viewer {i:03d}"
        weak = weak_left > 0 and i >= scenario.subscribers - weak_left
        plans.append(
            PeerPlan(
                name=name,
                role="participant",
                publish=False,
                token=token(name, "participant"),
                remb_bps=scenario.weak_link_bps if weak else scenario.downlink_bps,
                publisher_index=None,
                link=i < linked_subscribers,
            )
        )
    for i in range(scenario.listeners):
        name = f"Listener {i:04d}"
        plans.append(
            PeerPlan(
                name=name,
                role="listener",
                publish=False,
                token=token(name, "listener"),
                remb_bps=scenario.downlink_bps,
                publisher_index=None,
            )
        )
    return plans


def _token_role(token: str) -> str:
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ScenarioError(f"a token in the token file is malformed: {exc}") from exc
    return str(claims.get("role", "participant"))
