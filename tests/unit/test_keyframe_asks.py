"""The media shell's keyframe requests: an ask for a layer nobody sends is no request held back.

Chromium's weak-link runs showed ~800 requests 'suppressed' a run: a slot waiting on a layer its
publisher did not send was re-asked on every 100 ms scan, and each ask within the interval
counted as a subscriber's request held back (`keyframe_requests_suppressed`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confsfu.forwarding.keyframes import KeyframeRequester
from confsfu.ids import LayerKey, SourceId
from confsfu.server.media_feedback import MediaFeedback


@dataclass
class FakeRouter:
    ssrcs: dict[LayerKey, list[int]]

    def media_ssrcs(self, key: LayerKey) -> list[int]:
        return self.ssrcs.get(key, [])


@dataclass
class FakePc:
    sent: list[bytes] = field(default_factory=list)

    def send_rtcp(self, data: bytes) -> None:
        self.sent.append(data)


@dataclass
class FakePublisher:
    router: FakeRouter
    rtcp_ssrc: int = 1
    pc: FakePc = field(default_factory=FakePc)


def shell_with(publisher: FakePublisher | None) -> MediaFeedback:
    shell = MediaFeedback.__new__(MediaFeedback)  # _request_keyframe reads only these
    shell._drops, shell._counters = Counter(), Counter()
    shell._keyframes_awaited = True
    shell.keyframes = KeyframeRequester(500)
    fake: Any = publisher
    shell._publisher_of = lambda source: fake  # type: ignore[method-assign]
    return shell


CAM = SourceId.camera("a", "video")


def test_a_layer_nobody_sends_is_not_asked_nor_counted_as_suppressed() -> None:
    top, low = LayerKey(CAM, 2), LayerKey(CAM, 0)
    publisher = FakePublisher(FakeRouter({low: [0xBEEF]}))
    shell = shell_with(publisher)
    for now in range(0, 10_000, 100):  # the scans while a slot waits on the top layer
        shell._request_keyframe(now, top)
    assert shell.keyframes.requests_suppressed == 0 and shell.keyframes.requests_sent == 0
    assert shell._drops["keyframe_no_layer"] == 100
    assert publisher.pc.sent == []
    for now in range(0, 1_000, 100):  # a layer it sends: one request per 500 ms interval
        shell._request_keyframe(now, low)
    assert shell._counters["keyframe_requests"] == 2 and len(publisher.pc.sent) == 2
    assert shell.keyframes.requests_suppressed == 8


def test_no_publisher_is_nobody_to_ask() -> None:
    shell = shell_with(None)
    shell._request_keyframe(0, LayerKey(CAM, 0))
    assert shell._drops["keyframe_no_layer"] == 1 and shell.keyframes.requests_sent == 0
