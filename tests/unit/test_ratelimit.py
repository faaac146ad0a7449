"""The per-connection limits: token bucket arithmetic, the UTF-8 size check, offers in flight."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from confsfu.settings import Settings
from confsfu.signalling.ratelimit import InFlight, TokenBucket, utf8_longer_than


def test_a_full_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(20, 40, now_ms=0)
    assert [bucket.allow(0) for _ in range(41)] == [True] * 40 + [False]


def test_the_first_call_starts_the_clock() -> None:
    bucket = TokenBucket(20, 2)
    assert bucket.allow(1_000_000) and bucket.allow(1_000_000)
    assert not bucket.allow(1_000_000)
    assert bucket.allow(1_000_050)  # 50 ms at 20/s is one token


@pytest.mark.parametrize(
    ("elapsed_ms", "tokens"),
    [(0, 0.0), (10, 0.2), (50, 1.0), (500, 10.0), (2000, 40.0), (60_000, 40.0)],
)
def test_refill_is_rate_times_time_capped_at_the_burst(elapsed_ms: int, tokens: float) -> None:
    bucket = TokenBucket(20, 40, now_ms=0)
    for _ in range(40):
        assert bucket.allow(0)
    assert bucket.tokens(elapsed_ms) == pytest.approx(tokens)


def test_sustained_rate_is_allowed_forever() -> None:
    bucket = TokenBucket(20, 40, now_ms=0)
    assert all(bucket.allow(t) for t in range(0, 600_000, 50))


def test_twice_the_rate_is_refused_once_the_burst_is_spent() -> None:
    bucket = TokenBucket(20, 40, now_ms=0)
    results = [bucket.allow(t) for t in range(0, 10_000, 25)]  # 40/s for 10 s
    first_refusal = results.index(False)
    assert 75 <= first_refusal <= 85  # 40 burst plus 20/s refill while sending at 40/s
    assert sum(results) == pytest.approx(40 + 20 * 10, abs=2)


def test_a_clock_step_back_adds_nothing() -> None:
    bucket = TokenBucket(10, 1, now_ms=5000)
    assert bucket.allow(5000)
    assert not bucket.allow(1000)
    assert not bucket.allow(5050)  # still measured from 5000
    assert bucket.allow(5100)


def test_a_refused_message_takes_nothing() -> None:
    bucket = TokenBucket(1, 3, now_ms=0)
    assert bucket.allow(0, cost=2)
    assert not bucket.allow(0, cost=2)
    assert bucket.tokens(0) == pytest.approx(1)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0), (float("nan"), 5)])
def test_nonsense_parameters_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    burst=st.integers(min_value=1, max_value=200),
    steps=st.lists(st.integers(min_value=-100, max_value=2000), max_size=300),
)
def test_never_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, steps: list[int]
) -> None:
    bucket = TokenBucket(rate, burst, now_ms=0)
    now, latest, allowed = 0, 0, 0
    for step in steps:
        now += step
        latest = max(latest, now)
        allowed += bucket.allow(now)
        assert allowed <= burst + rate * latest / 1000 + 1e-6
        assert 0 <= bucket.tokens(now) <= burst


@given(st.text(), st.integers(min_value=0, max_value=400))
def test_utf8_size_check_matches_encoding(text: str, limit: int) -> None:
    expected = len(text.encode("utf-8", "surrogatepass")) > limit
    assert utf8_longer_than(text, limit) is expected


def test_utf8_size_counts_bytes_not_characters() -> None:
    assert not utf8_longer_than("é" * 5, 10)
    assert utf8_longer_than("é" * 6, 10)
    assert utf8_longer_than("\U0001f600" * 3, 11)


def test_one_offer_per_key_in_flight() -> None:
    offers = InFlight()
    assert offers.begin("camera")
    assert not offers.begin("camera")
    assert offers.begin("screen")
    assert "camera" in offers
    offers.end("camera")
    assert "camera" not in offers
    assert offers.begin("camera")
    offers.end("nothing")  # ending what is not in flight is harmless


def test_settings_defaults_and_validation() -> None:
    settings = Settings()
    assert (settings.messages_per_s, settings.message_burst) == (20, 40)
    bucket = TokenBucket(settings.messages_per_s, settings.message_burst)
    assert bucket.tokens(0) == 40
    for bad in ({"messages_per_s": 0}, {"message_burst": 0}, {"messages_per_s": -3}):
        with pytest.raises(ValidationError):
            Settings.model_validate(bad)
