"""Per-connection limits on hostile input: message rate, message size, one offer in flight."""

from __future__ import annotations


class TokenBucket:
    """Allows `rate_per_s` messages a second on average and bursts of up to `burst`.

    The bucket starts full. Time comes in as `now_ms`; a clock that goes backwards adds nothing.
    """

    __slots__ = ("_last_ms", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: int, *, now_ms: int | None = None) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be positive, not {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._last_ms = now_ms

    def tokens(self, now_ms: int) -> float:
        """How many messages could be sent right now."""
        self._refill(now_ms)
        return self._tokens

    def allow(self, now_ms: int, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are that many; False (and nothing taken) otherwise."""
        self._refill(now_ms)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def _refill(self, now_ms: int) -> None:
        last = self._last_ms
        if last is None or now_ms > last:
            self._last_ms = now_ms
        if last is None or now_ms <= last:
            return
        refilled = self._tokens + (now_ms - last) * self.rate_per_s / 1000
        self._tokens = min(float(self.burst), refilled)


def utf8_longer_than(text: str, limit_bytes: int) -> bool:
    """Whether `text` encoded as UTF-8 exceeds `limit_bytes`, encoding only when it must."""
    if len(text) > limit_bytes:
        return True  # every character takes at least one byte
    if len(text) * 4 <= limit_bytes:
        return False  # and at most four
    return len(text.encode("utf-8", "surrogatepass")) > limit_bytes


class InFlight:
    """Requests being processed, by key: a second request with the same key is refused."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def begin(self, key: str) -> bool:
        """Mark `key` as in flight; False if it already was (the caller refuses with `busy`)."""
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def end(self, key: str) -> None:
        self._keys.discard(key)

    def __contains__(self, key: object) -> bool:
        return key in self._keys
