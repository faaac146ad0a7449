"""CPU per incoming audio packet of judging voice activity by Opus packet size (issue 21), the
intake (C) and its Python specification, against a packet that carries an audio level.

.venv/bin/python benchmarks/bench_voice.py

The intake has no slot for the audio (fan_outs empty), so what is measured is the packet read,
its Reception, the level (read or judged) and the speakers' on_audio_level where one is
reported: the whole per-packet cost of being heard, without the forwarding.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confsfu.conference.speakers import SpeakerDetector
from confsfu.conference.voice_activity import VoiceActivity, VoiceConfig
from confsfu.forwarding._reception import Reception
from confsfu.rtp.extensions import build_audio_level
from confsfu.rtp.packet import build_rtp
from confsfu.server import _wire

N = 20_000
LEVEL_ID = 1
TONE = bytes([0xF8]) + bytes(159)  # GStreamer's opusenc on a tone: 160 bytes, CELT 20 ms
SILENCE = bytes([0xF8, 0xFF, 0xFE])  # digital silence


def packets(payload: bytes, level: int | None) -> list[bytes]:
    ext = {LEVEL_ID: build_audio_level(True, level)} if level is not None else {}
    return [
        build_rtp(
            payload_type=111,
            sequence_number=i % 65536,
            timestamp=960 * i,
            ssrc=2,
            payload=payload,
            extensions=ext,
        )
        for i in range(N)
    ]


def intake(speakers: SpeakerDetector, frame_bytes: int) -> _wire.Intake:
    def unexpected(*args: object) -> None:
        raise AssertionError("not a packet the intake should hand back")

    taken = _wire.Intake(
        "a", {}, slow=unexpected, on_level=speakers.on_audio_level, on_keyframe=unexpected,
        after_fan_out=unexpected, schedule_flush=lambda: None,
    )  # fmt: skip
    taken.level_id, taken.level_floor = LEVEL_ID, speakers.quiet_from
    taken.voice_frame_bytes, taken.voice_dbov = frame_bytes, 40
    track = Reception(2)
    track.route("a#0", False, 0)
    assert taken.add(track)
    return taken


def per_packet_us(run: Callable[[], None]) -> float:
    best = min(_timed(run) for _ in range(5))
    return best / N / 1000


def _timed(run: Callable[[], None]) -> int:
    begin = time.process_time_ns()
    run()
    return time.process_time_ns() - begin


def main() -> None:
    print("per audio packet (CPU microseconds, best of 5)")
    cases = [
        ("level extension, voiced (Chromium)", packets(TONE, 30), 10),
        ("no level, sound: judged, reported", packets(TONE, None), 10),
        ("no level, silence: judged, not reported", packets(SILENCE, None), 10),
        ("no level, judging off", packets(TONE, None), 0),
    ]
    for name, data, frame_bytes in cases:

        def run(data: list[bytes] = data, frame_bytes: int = frame_bytes) -> None:
            taken = intake(SpeakerDetector(), frame_bytes)
            receive = taken.receive
            for now_ms, clear in enumerate(data, 1000):
                receive(clear, 20 * now_ms)

        print(f"  intake (C) + speakers, {name:42s} {per_packet_us(run):.3f}")
    for name, payload in (("sound", TONE), ("silence", SILENCE)):

        def core(payload: bytes = payload) -> None:
            on_packet = VoiceActivity(VoiceConfig()).on_packet
            for _ in range(N):
                on_packet(False, payload)

        print(f"  VoiceActivity.on_packet (Python spec), {name:26s} {per_packet_us(core):.3f}")


if __name__ == "__main__":
    main()
