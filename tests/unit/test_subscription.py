"""Subscription: one slot's decisions, and the identity rule (a slot is announced live with a
participant only once a keyframe of theirs went out on it)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.bandwidth.allocator import LayerDecision, Reason
from confsfu.codecs.vp8 import packetize_vp8, parse_vp8
from confsfu.forwarding.slot import SlotForwarder
from confsfu.forwarding.source_packet import SourcePacket
from confsfu.forwarding.subscription import (
    ANNOUNCE,
    ANNOUNCE_MARGIN_MS,
    REINDEX,
    RequestKeyframe,
    Shown,
    Subscription,
)
from confsfu.ids import LayerKey, SourceId
from confsfu.rtp.packet import build_rtp, parse_rtp

KEYFRAME = bytes((0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01)) + bytes(40)
DELTA = bytes((0x31, 0x42, 0x00)) + bytes(40)
PEOPLE = ("freetown", "milan", "seoul")
CAM = {p: SourceId.camera(p, "video") for p in PEOPLE}


@dataclass
class Publisher:
    """One participant's camera: sequence numbers, timestamps and picture ids of its own."""

    key: LayerKey
    seq: int = 0
    ts: int = 0
    picture: int = 0

    def packet(self, keyframe: bool, tid: int = 0) -> SourcePacket:
        self.seq += 1
        self.ts += 3000
        self.picture = (self.picture + 1) & 0x7FFF
        payload = packetize_vp8(
            KEYFRAME if keyframe else DELTA,
            picture_id=self.picture,
            tl0picidx=self.seq & 0xFF,
            temporal_id=tid,
            layer_sync=False,
        )[0]
        pkt = parse_rtp(
            build_rtp(payload_type=96, sequence_number=self.seq & 0xFFFF, timestamp=self.ts,
                      ssrc=hash(self.key) & 0xFFFF, payload=payload)
        )  # fmt: skip
        return SourcePacket(self.key, pkt, self.seq, parse_vp8(pkt.payload), self.picture)


def subscription() -> Subscription:
    return Subscription(SlotForwarder(is_video=True, clock_rate=90_000, initial_seq=7,
                                      initial_ts=1_000))  # fmt: skip


def decision(spatial: int | None, temporal: int | None = 2) -> LayerDecision:
    if spatial is None:
        return LayerDecision("t", None, None, 0, Reason.PAUSED_BANDWIDTH, 2)
    return LayerDecision("t", spatial, temporal, 100_000, Reason.OPTIMAL, 2)


def forward(sub: Subscription, now_ms: int, packet: SourcePacket) -> tuple[bool, list[object]]:
    """What fan_out does for one slot: forward or not, and `switched` when the source moved."""
    before = sub.forwarder.source
    sent = sub.forwarder.forward(now_ms, packet) is not None
    effects: list[object] = list(sub.switched()) if sub.forwarder.source is not before else []
    return sent, effects


# ---- tables ---------------------------------------------------------------------------------


def test_a_new_source_waits_for_its_keyframe_and_is_announced_live_with_its_timestamp() -> None:
    sub = subscription()
    milan = Publisher(CAM["milan"].layer(0))
    effects = sub.assign(0, milan.key)
    assert effects == [REINDEX, ANNOUNCE, RequestKeyframe(milan.key)]
    assert sub.shown() == Shown(CAM["milan"], "waiting")
    assert forward(sub, 10, milan.packet(keyframe=False)) == (False, [])
    sent, effects = forward(sub, 20, milan.packet(keyframe=True))
    assert sent and effects == [REINDEX, ANNOUNCE]
    assert sub.shown() == Shown(CAM["milan"], "live", sub.forwarder.switched_ts)


def test_a_slot_changing_hands_names_the_new_person_only_once_their_picture_went_out() -> None:
    sub = subscription()
    milan, seoul = Publisher(CAM["milan"].layer(0)), Publisher(CAM["seoul"].layer(0))
    sub.assign(0, milan.key)
    forward(sub, 0, milan.packet(keyframe=True))
    since = sub.shown().since_ts
    sub.assign(100, seoul.key)
    assert sub.shown() == Shown(CAM["seoul"], "waiting")  # the page shows Seoul's name card
    assert forward(sub, 110, milan.packet(keyframe=False))[0]  # Milan's frames still flow...
    assert sub.shown().state == "waiting"  # ... but nobody is told the slot shows Milan
    # Seoul's keyframe inside the margin after the announcement is not taken up: the page
    # may not have heard yet that the slot is no longer Milan's.
    assert forward(sub, 120, seoul.packet(keyframe=True)) == (False, [])
    assert sub.shown().state == "waiting"
    forward(sub, 100 + ANNOUNCE_MARGIN_MS, seoul.packet(keyframe=True))
    shown = sub.shown()
    assert (shown.source, shown.state) == (CAM["seoul"], "live")
    assert shown.since_ts is not None and shown.since_ts != since


def test_a_paused_slot_given_to_someone_else_shows_their_name_card_until_it_resumes() -> None:
    sub = subscription()
    milan, seoul = Publisher(CAM["milan"].layer(0)), Publisher(CAM["seoul"].layer(0))
    sub.assign(0, milan.key)
    forward(sub, 0, milan.packet(keyframe=True))
    sub.apply(10, decision(0))
    assert sub.apply(20, decision(None)) == [ANNOUNCE]
    assert sub.shown().state == "paused" and sub.shown().source is CAM["milan"]
    sub.assign(30, seoul.key)
    assert sub.shown().source is CAM["seoul"] and sub.shown().state == "paused"
    assert sub.forwarder.waiting_for_keyframe is None  # no keyframe asked for while paused
    later = 30 + ANNOUNCE_MARGIN_MS  # past the margin: only the pause holds the switch back
    assert forward(sub, later, seoul.packet(keyframe=True)) == (False, [])  # paused: no switch
    assert sub.shown().source is CAM["seoul"] and sub.shown().state == "paused"
    effects = sub.apply(later + 10, decision(0))
    assert RequestKeyframe(seoul.key) in effects
    assert sub.shown().state == "waiting"
    sent, _ = forward(sub, later + 20, seoul.packet(keyframe=True))
    assert sent and sub.shown().state == "live" and sub.shown().source is CAM["seoul"]


def test_a_layer_change_of_the_same_person_is_no_new_picture() -> None:
    sub = subscription()
    low, high = Publisher(CAM["milan"].layer(0)), Publisher(CAM["milan"].layer(2))
    sub.assign(0, low.key)
    forward(sub, 0, low.packet(keyframe=True))
    since = sub.shown().since_ts
    effects = sub.apply(10, decision(2))
    assert RequestKeyframe(high.key) in effects and REINDEX in effects
    assert sub.shown() == Shown(CAM["milan"], "live", since, decision(2))
    forward(sub, 20, high.packet(keyframe=True))
    assert sub.forwarder.source is high.key
    assert sub.shown().since_ts == since


def test_applying_the_same_decision_again_does_nothing() -> None:
    sub = subscription()
    sub.assign(0, CAM["milan"].layer(0))
    d = decision(0, 1)
    assert sub.apply(0, d) == [ANNOUNCE]
    assert sub.apply(5, d) == []


def test_emptied_slot_is_announced_empty() -> None:
    sub = subscription()
    milan = Publisher(CAM["milan"].layer(0))
    sub.assign(0, milan.key)
    forward(sub, 0, milan.packet(keyframe=True))
    assert sub.assign(10, None) == [REINDEX, ANNOUNCE]
    assert sub.shown() == Shown(None, "empty")


def test_a_restarted_publisher_is_taken_up_on_its_next_keyframe() -> None:
    sub = subscription()
    milan = Publisher(CAM["milan"].layer(0))
    sub.assign(0, milan.key)
    assert sub.restart(5) == []  # nothing carried yet: nothing to restart
    forward(sub, 10, milan.packet(keyframe=True))
    assert sub.restart(20) == [REINDEX, ANNOUNCE, RequestKeyframe(milan.key)]
    assert sub.shown() == Shown(CAM["milan"], "waiting")


@pytest.mark.parametrize("spatial", [None, 0])
def test_audio_slots_are_live_or_empty(spatial: int | None) -> None:
    sub = Subscription(SlotForwarder(is_video=False, clock_rate=48_000, initial_seq=0,
                                     initial_ts=0))  # fmt: skip
    voice = SourceId.camera("seoul", "audio")
    assert sub.assign(0, voice.layer(0)) == [REINDEX, ANNOUNCE]
    assert sub.shown() == Shown(voice, "live")
    assert sub.apply(0, None) == []


# ---- the invariant, for any sequence ----------------------------------------------------------

TWO = PEOPLE[:2]  # two people and two layers reach the interesting states sooner
steps = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), st.sampled_from((*TWO, None)), st.integers(0, 1)),
        st.tuples(st.just("apply"), st.sampled_from((None, 0, 1)), st.integers(0, 2)),
        st.tuples(st.just("packet"), st.sampled_from(TWO), st.integers(0, 1)),
        st.tuples(st.just("keyframe"), st.sampled_from(TWO), st.integers(0, 1)),
        st.tuples(st.just("restart"), st.none(), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=600, deadline=None)
@given(steps)
def test_a_slot_announced_live_with_someone_last_sent_a_keyframe_of_theirs(
    sequence: list[tuple[str, str | None, int]],
) -> None:
    sub = subscription()
    publishers = {(p, s): Publisher(CAM[p].layer(s)) for p in PEOPLE for s in range(3)}
    last_keyframe_of: SourceId | None = None  # whose keyframe this slot sent last
    last_sent_of: SourceId | None = None
    for now_ms, (what, who, n) in enumerate(sequence):
        if what == "assign":
            sub.assign(now_ms, CAM[who].layer(n) if who is not None else None)
        elif what == "apply":
            spatial = who if isinstance(who, int) or who is None else None
            sub.apply(now_ms, decision(spatial, n))
        elif what == "restart":
            sub.restart(now_ms)
        else:
            assert who is not None
            pub = publishers[who, n]
            packet = pub.packet(keyframe=what == "keyframe", tid=0 if what == "keyframe" else n)
            sent, _ = forward(sub, now_ms, packet)
            if sent:
                last_sent_of = CAM[who]
                if packet.keyframe:
                    last_keyframe_of = CAM[who]
        shown = sub.shown()
        if shown.state == "live":
            # Live: the last keyframe that went out is theirs, and so is everything since.
            assert shown.source is last_keyframe_of is last_sent_of
            assert shown.since_ts is not None
        else:
            assert shown.since_ts is None
        if sub.forwarder.source is None and sub.forwarder.pending is None:
            assert shown == Shown(None, "empty")


# ---- a page that confirms what it shows ----------------------------------------------------


def confirming() -> Subscription:
    return Subscription(
        SlotForwarder(is_video=True, clock_rate=90_000, initial_seq=7, initial_ts=1_000),
        confirms=True,
    )


def showing(sub: Subscription, pub: Publisher) -> None:
    sub.assign(0, pub.key)
    assert forward(sub, 0, pub.packet(keyframe=True))[0]


def test_a_switch_waits_for_the_page_to_confirm_the_map_that_announced_it() -> None:
    sub = confirming()
    milan, seoul = Publisher(CAM["milan"].layer(0)), Publisher(CAM["seoul"].layer(0))
    showing(sub, milan)
    effects = sub.assign(100, seoul.key)
    assert RequestKeyframe(seoul.key) not in effects  # no keyframe while none can go out
    assert sub.held and sub.forwarder.waiting_for_keyframe == seoul.key
    assert sub.confirmed(150, 3) == []  # a map from before the switch was told: not this one
    assert sub.told(160, 4) == []  # map 4 names Seoul
    # However late the page is, Seoul's keyframe does not go out while it may still show Milan.
    assert forward(sub, 10_000, seoul.packet(keyframe=True)) == (False, [])
    assert sub.confirmed(10_010, 4) == [RequestKeyframe(seoul.key)]
    assert not sub.held
    sent, _ = forward(sub, 10_020, seoul.packet(keyframe=True))
    assert sent and sub.shown().source is CAM["seoul"] and sub.shown().state == "live"


@pytest.mark.parametrize(
    ("steps", "released"),
    [
        # (what happens, in order): told N / confirmed N; whether the switch may go ahead
        ([("told", 2), ("confirmed", 2)], True),
        ([("told", 2), ("confirmed", 1)], False),
        ([("told", 2), ("confirmed", 5)], True),  # a later map shows it too
        ([("confirmed", 2), ("told", 2)], True),  # unchanged rows: map 2 told it, page showed it
        ([("confirmed", 1), ("told", 2)], False),
        ([("told", 2), ("told", 3), ("confirmed", 2)], True),  # the first map that told counts
    ],
)
def test_which_confirmations_release_a_held_switch(
    steps: list[tuple[str, int]], released: bool
) -> None:
    sub = confirming()
    milan, seoul = Publisher(CAM["milan"].layer(0)), Publisher(CAM["seoul"].layer(0))
    showing(sub, milan)
    sub.assign(100, seoul.key)
    for what, seq in steps:
        getattr(sub, what)(200, seq)
    assert sub.held is not released


def test_a_confirmation_for_an_earlier_switch_does_not_release_a_later_one() -> None:
    sub = confirming()
    milan, seoul = Publisher(CAM["milan"].layer(0)), Publisher(CAM["seoul"].layer(0))
    freetown = Publisher(CAM["freetown"].layer(0))
    showing(sub, milan)
    sub.assign(100, seoul.key)
    sub.told(110, 2)
    sub.assign(120, freetown.key)  # moved on before the page confirmed map 2
    sub.told(130, 3)
    sub.confirmed(140, 2)
    assert sub.held and forward(sub, 150, freetown.packet(keyframe=True)) == (False, [])
    sub.confirmed(160, 3)
    assert forward(sub, 170, freetown.packet(keyframe=True))[0]


@pytest.mark.parametrize("emptied", [False, True])
def test_no_hold_back_to_whom_the_page_shows_and_a_hold_after_an_emptied_slot(
    emptied: bool,
) -> None:
    sub = confirming()
    milan, seoul = Publisher(CAM["milan"].layer(0)), Publisher(CAM["seoul"].layer(0))
    showing(sub, milan)
    if emptied:
        sub.assign(50, None)  # the page may still show Milan's last frame: Seoul waits
        sub.assign(60, seoul.key)
        assert sub.held
    else:
        sub.assign(100, seoul.key)
        assert sub.held
        sub.assign(110, milan.key)  # back to Milan before the page confirmed: nothing to wait for
        assert not sub.held
        assert forward(sub, 120, milan.packet(keyframe=False))[0]


def test_audio_and_a_first_picture_never_wait() -> None:
    audio = Subscription(
        SlotForwarder(is_video=False, clock_rate=48_000, initial_seq=1, initial_ts=1), confirms=True
    )
    mic = {p: SourceId.camera(p, "audio").layer(0) for p in ("milan", "seoul")}
    audio.assign(0, mic["milan"])
    audio.assign(10, mic["seoul"])
    assert not audio.held
    video = confirming()
    video.assign(0, Publisher(CAM["seoul"].layer(0)).key)  # nobody shown on it yet
    assert not video.held


def test_resuming_on_a_lower_layer_asks_only_that_layers_keyframe() -> None:
    """A hold (bandwidth/drain) pauses the slot on the layer it carried; it resumes on a lower
    one: a keyframe of the layer left would resume that one into the link that just fell."""
    sub = subscription()
    low, high = Publisher(CAM["milan"].layer(0)), Publisher(CAM["milan"].layer(2))
    sub.assign(0, high.key)
    forward(sub, 0, high.packet(keyframe=True))
    sub.apply(10, decision(None))
    assert not forward(sub, 15, high.packet(keyframe=False, tid=0))[0]  # held
    effects = sub.apply(20, decision(0))
    asked = [e for e in effects if isinstance(e, RequestKeyframe)]
    assert asked == [RequestKeyframe(low.key)]
    assert not forward(sub, 30, high.packet(keyframe=False, tid=0))[0]
    assert forward(sub, 40, low.packet(keyframe=True))[0] and sub.forwarder.source is low.key


def test_going_down_the_layer_left_keeps_its_frame_rate_until_the_switch() -> None:
    """(2, T0) down to (0, T2): the bandwidth fell, so the layer still sent while the new one's
    keyframe comes must not go up to T2 meanwhile."""
    sub = subscription()
    low, high = Publisher(CAM["milan"].layer(0)), Publisher(CAM["milan"].layer(2))
    sub.assign(0, high.key)
    sub.apply(0, decision(2, 0))
    forward(sub, 0, high.packet(keyframe=True))
    sub.apply(10, decision(0, 2))
    assert sub.forwarder.max_temporal == 0
    assert not forward(sub, 20, high.packet(keyframe=False, tid=2))[0]
    assert forward(sub, 30, low.packet(keyframe=True))[0] and sub.forwarder.source is low.key
    assert sub.forwarder.max_temporal == 2
    assert forward(sub, 40, low.packet(keyframe=False, tid=0))[0]
    assert forward(sub, 50, low.packet(keyframe=False, tid=2))[0]


def test_a_hold_while_the_queue_drains_keeps_the_picture_shown() -> None:
    sub = subscription()
    high = Publisher(CAM["milan"].layer(2))
    sub.assign(0, high.key)
    forward(sub, 0, high.packet(keyframe=True))
    since = sub.shown().since_ts
    held = LayerDecision("t", None, None, 0, Reason.DRAINING, 2)
    assert ANNOUNCE in sub.apply(10, held)
    assert not forward(sub, 20, high.packet(keyframe=False))[0]
    assert sub.shown() == Shown(CAM["milan"], "live", since, held)
    sub.apply(30, decision(None))  # a pause for bandwidth shows the name card
    assert sub.shown().state == "paused"
