"""The relay core (confsfu.scale.relay): announcements, needs and their expiry, RTP delivered
within the rate bound, keyframe requests and NACKs back, and a hostile peer's frames."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.ids import SourceId
from confsfu.rtp.packet import build_rtp
from confsfu.scale import relay as r
from confsfu.scale import relay_frame as rf
from confsfu.scale.relay import Deliver, KeyframeAsked, RelayChanged, RelayRoom, Resend
from confsfu.scale.relay_frame import RelayFrame

CAM = SourceId.camera("ann", "video")
MIC = SourceId.camera("ann", "audio")


def packet(seq: int) -> bytes:
    return build_rtp(payload_type=96, sequence_number=seq, timestamp=0, ssrc=5, payload=b"v")


def pair() -> tuple[RelayRoom, RelayRoom]:
    """Worker 0 publishes ann's camera and microphone; worker 1 has heard of them."""
    home, member = RelayRoom(7, [1]), RelayRoom(7, [0])
    assert home.add_local(CAM) == 1 and home.add_local(MIC, level_id=1) == 2
    for frame in home.announcements():
        assert member.on_frame(0, rf.decode(frame), 0) == []
    assert member.remote_sources() == {(0, 1): CAM, (0, 2): MIC}
    return home, member


def deliver(home: RelayRoom, member: RelayRoom, frame: bytes | None, now: int) -> list[r.Effect]:
    assert frame is not None
    return member.on_frame(0, rf.decode(frame), now)


def test_needs_start_and_lapse_the_relay() -> None:
    home, member = pair()
    assert home.targets(CAM.layer(2), 0) == ()
    ((peer, need),) = member.need_frames({CAM.layer(2)})
    assert peer == 0
    assert home.on_frame(1, rf.decode(need), 100) == [RelayChanged(CAM.layer(2), (1,))]
    assert home.on_frame(1, rf.decode(need), 200) == [], "said again: no change"
    assert home.targets(CAM.layer(2), 200) == (1,)
    assert home.expire(200 + r.NEED_TTL_MS - 1) == []
    assert home.expire(200 + r.NEED_TTL_MS) == [RelayChanged(CAM.layer(2), ())]
    assert home.targets(CAM.layer(2), 200 + r.NEED_TTL_MS) == ()


def test_a_need_withdrawn_and_a_peer_gone() -> None:
    home, _ = pair()
    need = RelayFrame(rf.LAYER_NEED, 7, 1, 0, rf.NEEDED)
    assert home.on_frame(1, need, 0) == [RelayChanged(CAM.layer(0), (1,))]
    assert home.on_frame(1, RelayFrame(rf.LAYER_NEED, 7, 1, 0, 0), 0) == [
        RelayChanged(CAM.layer(0), ())
    ]
    home.on_frame(1, need, 0)
    home.peers = frozenset()
    assert home.expire(1) == [RelayChanged(CAM.layer(0), ())]
    assert home.remove_local(CAM) == []


def test_rtp_is_delivered_as_the_remote_source() -> None:
    home, member = pair()
    frame = home.rtp_frame(MIC.layer(0), packet(3))
    assert deliver(home, member, frame, 0) == [Deliver(0, MIC, MIC.layer(0), 1, packet(3))]
    assert home.rtp_frame(SourceId.camera("bob", "audio").layer(0), packet(3)) is None


def test_keyframe_requests_and_nacks_go_back() -> None:
    home, member = pair()
    sent = {seq: home.rtp_frame(CAM.layer(1), packet(seq)) for seq in (10, 11, 12)}
    peer, ask = member.ask_frame(CAM.layer(1)) or (None, b"")
    assert peer == 0 and home.on_frame(1, rf.decode(ask), 0) == [KeyframeAsked(CAM.layer(1))]
    _, nack = member.ask_frame(CAM.layer(1), [11, 12, 13 + r.HISTORY - 1]) or (None, b"")
    assert home.on_frame(1, rf.decode(nack), 0) == [Resend(1, (sent[11], sent[12]))]
    assert home.drops["relay_nack_missed"] == 1, "a slot reused by another number"
    assert member.ask_frame(SourceId.camera("bob", "video").layer(0)) is None


def test_the_rate_bound_per_source() -> None:
    home, member = pair()
    frame = home.rtp_frame(MIC.layer(0), packet(1))
    got = sum(len(deliver(home, member, frame, 1000)) for _ in range(r.BURST + 50))
    assert got == r.BURST and member.drops["relay_rate"] == 50
    assert len(deliver(home, member, frame, 1001)) == 1, "refilled at the rate"
    assert len(deliver(home, member, frame, 1001 + 2000)) == 1


def test_bounds_on_sources() -> None:
    home = RelayRoom(1, [1])
    for i in range(r.MAX_SOURCES):
        assert home.add_local(SourceId.camera(f"p{i}", "audio")) is not None
    assert home.add_local(SourceId.camera("more", "audio")) is None
    member = RelayRoom(1, [0])
    for i in range(r.MAX_REMOTE + 10):
        info = rf.SourceInfo(f"p{i}", "camera", "audio")
        member.on_frame(0, RelayFrame(rf.SOURCE, 1, i, 0, 0, rf.source_payload(info)), 0)
    assert len(member.remote_sources()) == r.MAX_REMOTE
    assert member.drops["relay_remote_limit"] == 10


def test_strangers_and_unknown_sources_are_dropped() -> None:
    home, member = pair()
    assert home.on_frame(5, RelayFrame(rf.KEYFRAME_REQUEST, 7, 1), 0) == []
    assert home.on_frame(1, RelayFrame(rf.KEYFRAME_REQUEST, 7, 99), 0) == []
    assert member.on_frame(0, RelayFrame(rf.RTP, 7, 99, 0, 0, packet(1)), 0) == []
    assert home.drops["relay_not_peer"] == 1
    assert home.drops["relay_unknown_source"] == 1 and member.drops["relay_unknown_source"] == 1
    assert member.forget_peer(0) == [CAM, MIC] and member.remote_sources() == {}


frames = st.builds(
    RelayFrame,
    st.sampled_from(sorted(rf.KINDS)),
    st.just(7),
    st.integers(0, 300),
    st.integers(0, 2),
    st.integers(0, 255),
    st.binary(max_size=40),
)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 2), frames, st.integers(0, 10_000)), max_size=80))
def test_a_hostile_peer_never_raises_nor_grows_anything(
    steps: list[tuple[int, RelayFrame, int]],
) -> None:
    home, member = pair()
    for peer, frame, now in steps:
        try:
            data = rf.encode(frame)
        except rf.RelayFrameError:
            continue
        for room in (home, member):
            room.on_frame(peer, rf.decode(data), now)
            room.expire(now)
    assert len(member.remote_sources()) <= r.MAX_REMOTE
    assert len(home.remote_sources()) <= r.MAX_REMOTE
    for local in home._locals.values():
        assert set(local.needs) <= {0, 1, 2}
        assert all(set(n) <= {1} for n in local.needs.values()), "only peers need"
        assert all(len(ring) == r.HISTORY for ring in local.history.values())


def test_the_highest_layer_peers_need_is_kept_on() -> None:
    home, _ = pair()
    assert home.wanted_layers(0) == {}
    home.on_frame(1, RelayFrame(rf.LAYER_NEED, 7, 1, 0, rf.NEEDED), 0)
    home.on_frame(1, RelayFrame(rf.LAYER_NEED, 7, 1, 2, rf.NEEDED), 10)
    assert home.wanted_layers(100) == {CAM: 2}
    assert home.wanted_layers(r.NEED_TTL_MS + 5) == {CAM: 2}, "layer 2 said later"
    assert home.wanted_layers(r.NEED_TTL_MS + 10) == {}


def test_remote_sources_not_announced_again_lapse() -> None:
    home, member = pair()  # announced at 0
    for frame in home.announcements()[:1]:  # the camera again, at 2000
        member.on_frame(0, rf.decode(frame), 2000)
    assert member.expire_remotes(r.NEED_TTL_MS - 1) == []
    assert member.expire_remotes(r.NEED_TTL_MS) == [MIC]
    member.peers = frozenset()
    assert member.expire_remotes(r.NEED_TTL_MS) == [CAM], "its worker left the room"


def test_rtp_in_is_on_frame_s_rtp_case_without_a_list() -> None:
    """The shell's fast path for RTP frames delivers what `on_frame` would, with the layer's
    one LayerKey (a relayed stream is matched by identity), and drops the same frames."""
    home, member = pair()
    for layer in range(rf.MAX_LAYER + 1):
        frame = rf.decode(home.rtp_frame(CAM.layer(layer), packet(layer)) or b"")
        got = member.rtp_in(0, frame, 0)
        assert got == Deliver(0, CAM, CAM.layer(layer), 0, packet(layer))
        assert got is not None and got.key is CAM.layer(layer)
        assert member.on_frame(0, frame, 0) == [got]
    frame = rf.decode(home.rtp_frame(MIC.layer(0), packet(9)) or b"")
    assert member.rtp_in(3, frame, 0) is None, "not a peer"
    assert member.rtp_in(0, frame._replace(source=99), 0) is None, "an unknown source"
    assert member.drops["relay_not_peer"] == 1 and member.drops["relay_unknown_source"] == 1
