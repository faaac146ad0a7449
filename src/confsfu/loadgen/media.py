"""Media made once with av (libvpx, libopus), cached; nothing encodes at run time."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    data: bytes
    keyframe: bool


def cache_dir() -> Path:
    root = os.environ.get("CONFSFU_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "confsfu"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(key: str, make: object) -> list[EncodedFrame]:
    digest = hashlib.sha256(f"{CACHE_VERSION}:{key}".encode()).hexdigest()[:16]
    path = cache_dir() / f"{digest}.pickle"
    if path.exists():
        loaded: list[EncodedFrame] = pickle.loads(path.read_bytes())
        return loaded
    assert callable(make)
    frames: list[EncodedFrame] = make()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(frames))
    tmp.replace(path)
    return frames


def vp8_frames(
    width: int = 640,
    height: int = 360,
    *,
    fps: int = 30,
    seconds: int = 4,
    bitrate_bps: int = 1_000_000,
    keyframe_interval: int = 60,
) -> list[EncodedFrame]:
    """A moving test pattern in VP8, a keyframe every `keyframe_interval` frames."""
    key = f"vp8:{width}x{height}@{fps}:{seconds}s:{bitrate_bps}:{keyframe_interval}"
    return _cached(
        key, lambda: _encode_vp8(width, height, fps, seconds, bitrate_bps, keyframe_interval)
    )


def vp8_slides(
    width: int = 1280,
    height: int = 720,
    *,
    fps: int = 5,
    slides: int = 4,
    slide_s: int = 10,
    bitrate_bps: int = 400_000,
) -> list[EncodedFrame]:
    """A screen share of `slides` text slides in VP8, `slide_s` seconds each, a pointer moving
    over them; each slide starts with a keyframe (as a new slide is mostly new pixels)."""
    key = f"slides:{width}x{height}@{fps}:{slides}x{slide_s}s:{bitrate_bps}"
    return _cached(key, lambda: _encode_slides(width, height, fps, slides, slide_s, bitrate_bps))


def _encode_slides(
    width: int, height: int, fps: int, slides: int, slide_s: int, bitrate_bps: int
) -> list[EncodedFrame]:
    codec = _vp8_encoder(width, height, fps, bitrate_bps, gop=fps * slide_s)
    rng = np.random.default_rng(7)
    frames: list[EncodedFrame] = []
    for n in range(slides):
        page = np.full((height, width, 3), 250, dtype=np.uint8)
        page[: height // 8] = (30, 60, 120)  # a title bar
        for line in range(10):  # lines of "text": dark dashes of random lengths
            top = height // 5 + line * height // 14
            left = width // 12
            while left < width * 0.5:
                word = int(rng.integers(width // 40, width // 10))
                page[top : top + height // 40, left : left + word] = 40
                left += word + width // 80
        # A photo on the right half: smooth colour with grain, the costly part of a keyframe.
        ph, pw = height * 5 // 8, width * 3 // 8
        yy, xx = np.mgrid[0:ph, 0:pw]
        photo = np.stack([(xx * 200 // pw + n * 50) % 256, yy * 180 // ph, (xx + yy) % 256], -1)
        grain = rng.integers(0, 48, size=(ph, pw, 3))
        page[height // 4 : height // 4 + ph, width // 2 + width // 16 :][:, :pw] = np.clip(
            photo + grain, 0, 255
        )
        for i in range(fps * slide_s):
            img = page.copy()
            x = (i * width // (fps * slide_s) + n * 97) % (width - 24)
            img[height // 2 : height // 2 + 24, x : x + 24] = (200, 30, 30)  # the pointer
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = n * fps * slide_s + i
            if i == 0:
                frame.pict_type = av.video.frame.PictureType.I
            frames.extend(_encoded(codec.encode(frame)))
    frames.extend(_encoded(codec.encode(None)))
    return frames


def opus_frames(seconds: int = 4, variant: int = 0) -> list[EncodedFrame]:
    """20 ms Opus packets of a warbling tone; each variant is a different pitch (and bytes)."""
    return _cached(f"opus:{seconds}s:{variant}", lambda: _encode_opus(seconds, 440 + 37 * variant))


def _vp8_encoder(width: int, height: int, fps: int, bitrate_bps: int, gop: int) -> Any:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.bit_rate = bitrate_bps
    codec.gop_size = gop
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return codec


def _encoded(packets: Iterable[Any]) -> list[EncodedFrame]:
    return [EncodedFrame(bytes(packet), bool(packet.is_keyframe)) for packet in packets]


def _encode_vp8(
    width: int, height: int, fps: int, seconds: int, bitrate_bps: int, keyframe_interval: int
) -> list[EncodedFrame]:
    codec = _vp8_encoder(width, height, fps, bitrate_bps, keyframe_interval)
    frames: list[EncodedFrame] = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(fps * seconds):
        img = np.zeros((height, width, 3), dtype=np.uint8)
        img[..., 0] = (xx * 255 // width + i * 4) % 256
        img[..., 1] = (yy * 255 // height + i * 2) % 256
        img[..., 2] = ((xx + yy + i * 8) // 16 % 2) * 200
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        if i % keyframe_interval == 0:
            frame.pict_type = av.video.frame.PictureType.I
        frames.extend(_encoded(codec.encode(frame)))
    frames.extend(_encoded(codec.encode(None)))
    return frames


def _encode_opus(seconds: int, pitch_hz: int) -> list[EncodedFrame]:
    rate = 48000
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = rate
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.time_base = Fraction(1, rate)
    samples_per_frame = 960
    out: list[EncodedFrame] = []
    t = 0
    for _ in range(seconds * 50):
        n = np.arange(t, t + samples_per_frame)
        tone = 0.3 * np.sin(2 * math.pi * (pitch_hz + 60 * np.sin(n / rate * 3)) * n / rate)
        pcm = (np.repeat(tone[:, None], 2, axis=1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = rate
        frame.pts = t
        t += samples_per_frame
        for packet in codec.encode(frame):
            out.append(EncodedFrame(bytes(packet), True))
    return out
