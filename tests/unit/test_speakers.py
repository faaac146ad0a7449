"""Speaker detection from audio levels: loudest n, dominant speaker with hysteresis, time spoken."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.speakers import (
    DominantSpeakerChanged,
    SpeakerConfig,
    SpeakerDetector,
)

# a talker's level at time t: (level_dbov, voice flag) or None for no packet (DTX)
Voice = Callable[[int], tuple[int, bool] | None]
PACKET_MS = 20


def speaks(level: int, start_ms: int = 0, end_ms: int = 10**9) -> Voice:
    def at(t: int) -> tuple[int, bool] | None:
        return (level, True) if start_ms <= t < end_ms else (127, False)

    return at


def simulate(
    det: SpeakerDetector, talkers: Mapping[str, Voice], start_ms: int, end_ms: int
) -> list[tuple[int, str | None]]:
    """Feed 20 ms packets from every talker, calling update() every 100 ms; return changes."""
    changes: list[tuple[int, str | None]] = []
    for t in range(start_ms, end_ms, PACKET_MS):
        for pid, voice in talkers.items():
            sample = voice(t)
            if sample is not None:
                det.on_audio_level(t, pid, *sample)
        if t % 100 == 0:
            changes += [(t, e.pid) for e in det.update(t)]
    return changes


# ---- loudest ----------------------------------------------------------------------------


def test_ten_talkers_loudest_n() -> None:
    det = SpeakerDetector()
    talkers: dict[str, Voice] = {f"p{i}": speaks(20 + 5 * i) for i in range(10)}  # p0 loudest
    talkers["quiet"] = lambda t: (127, False)  # sends packets, all silence
    talkers["noise"] = lambda t: (80, True)  # voice flag but below the silence floor
    simulate(det, talkers, 0, 2_000)
    now = 2_000
    assert det.ranked(now)[:3] == ["p0", "p1", "p2"]
    assert det.ranked(now) == [f"p{i}" for i in range(10)]  # silence never ranked


def test_stale_talkers_are_excluded() -> None:
    det = SpeakerDetector()
    simulate(det, {"early": speaks(10, 0, 1_000), "late": speaks(60, 0, 3_000)}, 0, 3_000)
    assert det.ranked(3_000)[:3] == ["late"]
    assert det.ranked(10_000)[:3] == []  # nobody has sent anything for 7 s


def test_loudest_follows_recent_levels() -> None:
    det = SpeakerDetector()
    simulate(det, {"a": speaks(20, 0, 1_000), "b": speaks(40)}, 0, 1_000)
    assert det.ranked(1_000)[:1] == ["a"]
    simulate(det, {"a": speaks(20, 0, 1_000), "b": speaks(40)}, 1_000, 1_600)
    assert det.ranked(1_600)[:1] == ["b"]


# ---- dominant speaker -------------------------------------------------------------------


def test_first_sustained_speaker_becomes_dominant() -> None:
    det = SpeakerDetector()
    changes = simulate(det, {"a": speaks(40, 200)}, 0, 2_000)
    assert len(changes) == 1
    at, pid = changes[0]
    assert pid == "a"
    assert 200 + 700 <= at <= 200 + 1_000
    assert det.dominant(2_000) == "a"


def test_cough_does_not_steal_the_stage() -> None:
    det = SpeakerDetector()
    talkers = {"a": speaks(40), "b": speaks(5, 3_000, 3_300)}  # b coughs 300 ms, very loud
    changes = simulate(det, talkers, 0, 6_000)
    assert [pid for _, pid in changes] == ["a"]


def test_cough_while_the_speaker_pauses_does_not_steal_the_stage() -> None:
    det = SpeakerDetector()
    talkers = {"a": speaks(40, 0, 3_000), "b": speaks(5, 3_500, 3_900)}
    changes = simulate(det, talkers, 0, 8_000)
    assert [pid for _, pid in changes] == ["a"]
    assert det.dominant(8_000) == "a"  # a silent dominant speaker keeps the stage


def test_sustained_new_speaker_takes_over_within_two_seconds() -> None:
    det = SpeakerDetector()
    talkers = {"a": speaks(40, 0, 3_000), "b": speaks(40, 3_000, 8_000)}
    changes = simulate(det, talkers, 0, 8_000)
    assert [pid for _, pid in changes] == ["a", "b"]
    switched_at = changes[1][0]
    assert 3_000 + 700 <= switched_at <= 3_000 + 2_000


def test_equal_overtalk_does_not_switch_but_clearly_louder_does() -> None:
    det = SpeakerDetector()
    equal = {"a": speaks(40), "b": speaks(40, 2_000)}
    assert [pid for _, pid in simulate(det, equal, 0, 6_000)] == ["a"]
    det = SpeakerDetector()
    louder = {"a": speaks(50), "b": speaks(20, 2_000)}  # 50 vs 20 dB above the floor
    assert [pid for _, pid in simulate(det, louder, 0, 6_000)] == ["a", "b"]


def turns(level: int, offset_ms: int, turn_ms: int, talkers: int) -> Voice:
    """Speaks one turn of `turn_ms` in every `talkers` turns, starting at `offset_ms`."""

    def at(t: int) -> tuple[int, bool] | None:
        return (level, True) if (t - offset_ms) % (turn_ms * talkers) < turn_ms else (127, False)

    return at


@pytest.mark.parametrize(("turn_ms", "lately_ms"), [(600, 2000), (1_000, 2000), (1_000, 3000)])
def test_three_open_microphones_trading_turns_pass_the_stage_no_faster_than_the_hold(
    turn_ms: int, lately_ms: int
) -> None:
    det = SpeakerDetector(SpeakerConfig(min_speech_ms=300, min_hold_ms=lately_ms))
    talkers = {pid: turns(40, k * turn_ms, turn_ms, 3) for k, pid in enumerate("abc")}
    changes = simulate(det, talkers, 0, 30_000)
    times = [t for t, _ in changes]
    assert len(changes) >= 3  # they do take turns on the stage
    assert all(later - earlier >= lately_ms for earlier, later in itertools.pairwise(times))


def test_without_a_hold_the_same_turns_pass_the_stage_each_turn() -> None:
    det = SpeakerDetector(SpeakerConfig(min_speech_ms=300, min_hold_ms=0))
    talkers = {pid: turns(40, k * 600, 600, 3) for k, pid in enumerate("abc")}
    times = [t for t, _ in simulate(det, talkers, 0, 30_000)]
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) < 2_000


def test_removing_the_dominant_speaker() -> None:
    det = SpeakerDetector()
    simulate(det, {"a": speaks(30), "b": speaks(45)}, 0, 2_000)
    assert det.dominant(2_000) == "a"
    det.remove("a")
    assert det.update(2_000) == [DominantSpeakerChanged("b")]
    det.remove("b")
    assert det.update(2_100) == [DominantSpeakerChanged(None)]
    assert det.update(2_200) == []
    assert det.next_deadline_ms() is None


def test_next_deadline() -> None:
    det = SpeakerDetector(SpeakerConfig(decision_interval_ms=300))
    assert det.next_deadline_ms() is None
    det.on_audio_level(1_000, "a", 30, True)
    assert det.next_deadline_ms() == 1_300
    det.update(1_310)
    assert det.next_deadline_ms() == 1_610


def test_voice_flag_can_be_ignored() -> None:
    talkers = {"a": lambda t: (30, False)}
    det = SpeakerDetector()
    simulate(det, talkers, 0, 1_000)
    assert det.ranked(1_000) == [] and det.speaking_ms("a") == 0
    det = SpeakerDetector(SpeakerConfig(use_voice_flag=False))
    simulate(det, talkers, 0, 1_000)
    assert det.ranked(1_000)[:1] == ["a"]


# ---- speaking time ----------------------------------------------------------------------


def test_speaking_time_counts_voiced_packets_only() -> None:
    det = SpeakerDetector()
    simulate(det, {"a": speaks(30, 1_000, 3_000)}, 0, 5_000)
    assert det.speaking_ms("a") == 2_000
    assert det.speaking_ms("nobody") == 0


def test_speaking_time_with_dtx_gaps_and_60_ms_packets() -> None:
    det = SpeakerDetector()
    for t in range(0, 1_200, 60):  # 20 packets of 60 ms
        det.on_audio_level(t, "a", 30, True)
    # DTX: nothing for 2 s, then 10 packets of 20 ms
    for t in range(3_200, 3_400, 20):
        det.on_audio_level(t, "a", 30, True)
    # first packet has no predecessor (20 ms assumed); the one after the gap counts 20 ms
    assert det.speaking_ms("a") == 20 + 19 * 60 + 10 * 20


def test_speaking_time_survives_remove() -> None:
    det = SpeakerDetector()
    simulate(det, {"a": speaks(30, 0, 1_000)}, 0, 1_000)
    det.remove("a")
    assert det.speaking_ms("a") == 1_000
    assert det.talkers == ()
    simulate(det, {"a": speaks(30, 5_000, 5_500)}, 5_000, 5_500)
    assert det.speaking_totals() == {"a": 1_500}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bucket_ms": 0},
        {"window_ms": 1_550},
        {"recent_ms": 2_000},
        {"silence_dbov": 0},
        {"silence_dbov": 128},
        {"min_speech_ms": 2_000},
        {"switch_ratio": 0.5},
        {"min_hold_ms": -1},
        {"max_frame_ms": 10},
    ],
)
def test_config_validation(kwargs: dict[str, int | float]) -> None:
    with pytest.raises(ValueError, match="SpeakerConfig"):
        SpeakerConfig(**kwargs)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 300),
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.integers(0, 127),
            st.booleans(),
        ),
        max_size=300,
    ),
)
def test_random_levels_keep_invariants(packets: list[tuple[int, str, int, bool]]) -> None:
    det = SpeakerDetector()
    now = 0
    for dt, pid, level, voice in packets:
        now += dt
        det.on_audio_level(now, pid, level, voice)
        if dt > 200:
            det.remove(pid)
        det.update(now)
        ranked = det.ranked(now)
        assert len(ranked) == len(set(ranked)) and set(ranked) <= set(det.talkers)
        dominant = det.dominant(now)
        assert dominant is None or dominant in det.talkers
    assert sum(det.speaking_totals().values()) <= now + 20 * len(packets)


@given(
    st.lists(  # per talker, 200 ms segments of (level, voice flag)
        st.lists(st.tuples(st.integers(0, 127), st.booleans()), min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_quiet_packets_left_unreported_change_nothing(
    segments: list[list[tuple[int, bool]]], use_voice_flag: bool
) -> None:
    """The intake leaves out packets at `quiet_from` or quieter without the voice flag: with
    packets every `frame_ms`, every decision, ranking and speaking time stays the same."""
    config = SpeakerConfig(use_voice_flag=use_voice_flag)
    everything, reported = SpeakerDetector(config), SpeakerDetector(config)
    end = 200 * max(len(s) for s in segments)
    for t in range(0, end, PACKET_MS):
        for i, talker in enumerate(segments):
            level, voice = talker[min(t // 200, len(talker) - 1)]
            everything.on_audio_level(t, f"p{i}", level, voice)
            if voice or level < reported.quiet_from:
                reported.on_audio_level(t, f"p{i}", level, voice)
        if t % 100 == 0:
            assert everything.update(t) == reported.update(t)
            assert everything.ranked(t) == reported.ranked(t)
    spoken = {pid: ms for pid, ms in everything.speaking_totals().items() if ms}
    assert spoken == {pid: ms for pid, ms in reported.speaking_totals().items() if ms}


# ---- who spoke lately (a heard slot keeps them) ---------------------------------------


@pytest.mark.parametrize(
    ("now", "ranked", "lately"),
    [  # a, b and c equally loud; c's last packet at 1,980 ms (buckets of 100 ms)
        (2_000, ["a", "b", "c"], []),
        (2_300, ["a", "b", "c"], []),  # c's last bucket still among the recent five
        (2_600, ["a", "b"], ["c"]),  # not recent: spoke lately
        (3_300, ["a", "b"], ["c"]),  # within lately_ms (1.5 s) still
        (3_500, ["a", "b"], []),  # gone
    ],
)
def test_who_spoke_lately(now: int, ranked: list[str], lately: list[str]) -> None:
    det = SpeakerDetector()
    simulate(det, {"a": speaks(30), "b": speaks(30), "c": speaks(30, 0, 2_000)}, 0, now)
    assert det.ranked(now) == ranked
    assert det.lately(now) == lately


def test_a_stalled_server_sees_nobody_recent_but_everyone_lately() -> None:
    # Three talkers, then 1.2 s in which no packet is read (the server's loop held up): no one
    # spoke recently, all three lately, loudest first.
    det = SpeakerDetector()
    simulate(det, {"a": speaks(20), "b": speaks(30), "c": speaks(40)}, 0, 2_000)
    assert det.ranked(3_200) == []
    assert det.lately(3_200) == ["a", "b", "c"]
    assert det.lately(3_600) == []


def test_lately_validation() -> None:
    for lately_ms in (400, 1_600, 1_450):
        with pytest.raises(ValueError, match="lately_ms"):
            SpeakerConfig(lately_ms=lately_ms)
    assert SpeakerConfig(lately_ms=500).lately_ms == 500
