"""Keyframe requests per source: many wishes become at most one request per interval."""

from __future__ import annotations

from confsfu.ids import LayerKey


class KeyframeRequester:
    """Throttles picture-loss requests towards each publisher source."""

    __slots__ = ("_interval_ms", "_last_ms", "requests_sent", "requests_suppressed")

    def __init__(self, interval_ms: int) -> None:
        self._interval_ms = interval_ms
        self._last_ms: dict[LayerKey, int] = {}
        self.requests_sent = 0
        self.requests_suppressed = 0

    def should_request(self, now_ms: int, source: LayerKey) -> bool:
        """True when a request for `source` should go out now; False inside the interval."""
        last = self._last_ms.get(source)
        if last is not None and now_ms - last < self._interval_ms:
            self.requests_suppressed += 1
            return False
        self._last_ms[source] = now_ms
        self.requests_sent += 1
        return True

    def keyframe_arrived(self, source: LayerKey) -> None:
        """A keyframe came: the next wish may be served at once."""
        self._last_ms.pop(source, None)

    def forget(self, source: LayerKey) -> None:
        self._last_ms.pop(source, None)
