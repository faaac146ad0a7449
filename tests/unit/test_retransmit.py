"""The retransmission limiter: a share of the estimate over a sliding second, each packet at most
once per interval, a bounded memory."""

from __future__ import annotations

import pytest

from confsfu.bandwidth.retransmit import RetransmitConfig, RetransmitLimiter


def _resend(limiter: RetransmitLimiter, now_ms: int, seq: int, size: int, estimate: int) -> bool:
    if limiter.allow(now_ms, 1, seq, size, estimate):
        limiter.sent(now_ms, 1, seq, size)
        return True
    return False


@pytest.mark.parametrize(
    ("estimate_bps", "packets_allowed"),
    [
        (300_000, 15),  # half of 300 kbit/s over a second: 150 kbit = 15 packets of 1250 bytes
        (1_000_000, 50),
        (0, 0),
    ],
)
def test_a_second_of_resends_is_a_share_of_the_estimate(
    estimate_bps: int, packets_allowed: int
) -> None:
    limiter = RetransmitLimiter()
    sent = sum(_resend(limiter, 10, seq, 1250, estimate_bps) for seq in range(200))
    assert sent == packets_allowed


def test_the_share_frees_up_a_second_later() -> None:
    limiter = RetransmitLimiter()
    assert sum(_resend(limiter, 0, seq, 1250, 300_000) for seq in range(100)) == 15
    assert not _resend(limiter, 999, 500, 1250, 300_000)
    assert _resend(limiter, 1000, 501, 1250, 300_000)


@pytest.mark.parametrize(("again_ms", "allowed"), [(0, False), (99, False), (100, True)])
def test_one_packet_is_resent_at_most_once_per_interval(again_ms: int, allowed: bool) -> None:
    limiter = RetransmitLimiter()
    assert _resend(limiter, 1000, 7, 100, 10_000_000)
    assert _resend(limiter, 1000 + again_ms, 7, 100, 10_000_000) is allowed
    assert _resend(limiter, 1000 + again_ms, 8, 100, 10_000_000)  # another packet: yes


@pytest.mark.parametrize(
    ("again_ms", "estimate_bps", "why"),
    [
        (50, 10_000_000, "resent_recently"),  # a repeated NACK while the answer is on its way
        (50, 0, "resent_recently"),  # the interval is told first
        (150, 10_000_000, None),  # the answer was lost: the next NACK is answered
        (150, 8_000, "over_limit"),  # half of 8 kbit/s: 500 bytes, spent by the first
        (1000, 8_000, None),  # the share freed up
    ],
)
def test_a_refusal_says_why(again_ms: int, estimate_bps: int, why: str | None) -> None:
    limiter = RetransmitLimiter()
    assert _resend(limiter, 1000, 7, 400, 10_000_000)
    assert limiter.refusal(1000 + again_ms, 1, 7, 400, estimate_bps) == why


def test_memory_is_bounded() -> None:
    limiter = RetransmitLimiter(RetransmitConfig(remembered=4))
    for seq in range(10):
        assert _resend(limiter, 0, seq, 10, 10_000_000)
    assert _resend(limiter, 0, 0, 10, 10_000_000)  # forgotten: allowed again
    assert not _resend(limiter, 0, 9, 10, 10_000_000)


@pytest.mark.parametrize("bad", [{"share": 0.0}, {"share": 1.5}, {"min_interval_ms": -1}])
def test_bad_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetransmitConfig(**bad)  # type: ignore[arg-type]
