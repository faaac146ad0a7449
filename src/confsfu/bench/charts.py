"""PNG charts without a plotting library: numpy rasters, a 3x5 pixel font, zlib and struct."""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

# 3x5 glyphs, rows top to bottom, bits left to right.
_FONT: dict[str, tuple[int, ...]] = {
    "0": (7, 5, 5, 5, 7),
    "1": (2, 6, 2, 2, 7),
    "2": (7, 1, 7, 4, 7),
    "3": (7, 1, 7, 1, 7),
    "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7),
    "6": (7, 4, 7, 5, 7),
    "7": (7, 1, 1, 1, 1),
    "8": (7, 5, 7, 5, 7),
    "9": (7, 5, 7, 1, 7),
    "A": (2, 5, 7, 5, 5),
    "B": (6, 5, 6, 5, 6),
    "C": (7, 4, 4, 4, 7),
    "D": (6, 5, 5, 5, 6),
    "E": (7, 4, 6, 4, 7),
    "F": (7, 4, 6, 4, 4),
    "G": (7, 4, 5, 5, 7),
    "H": (5, 5, 7, 5, 5),
    "I": (7, 2, 2, 2, 7),
    "J": (1, 1, 1, 5, 7),
    "K": (5, 5, 6, 5, 5),
    "L": (4, 4, 4, 4, 7),
    "M": (5, 7, 7, 5, 5),
    "N": (6, 5, 5, 5, 5),
    "O": (7, 5, 5, 5, 7),
    "P": (7, 5, 7, 4, 4),
    "Q": (7, 5, 5, 7, 1),
    "R": (6, 5, 6, 5, 5),
    "S": (7, 4, 7, 1, 7),
    "T": (7, 2, 2, 2, 2),
    "U": (5, 5, 5, 5, 7),
    "V": (5, 5, 5, 5, 2),
    "W": (5, 5, 7, 7, 5),
    "X": (5, 5, 2, 5, 5),
    "Y": (5, 5, 2, 2, 2),
    "Z": (7, 1, 2, 4, 7),
    ".": (0, 0, 0, 0, 2),
    ",": (0, 0, 0, 2, 4),
    "-": (0, 0, 7, 0, 0),
    "+": (0, 2, 7, 2, 0),
    "/": (1, 1, 2, 4, 4),
    "%": (5, 1, 2, 4, 5),
    "(": (1, 2, 2, 2, 1),
    ")": (4, 2, 2, 2, 4),
    ":": (0, 2, 0, 2, 0),
    "=": (0, 7, 0, 7, 0),
    "_": (0, 0, 0, 0, 7),
    " ": (0, 0, 0, 0, 0),
}
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
WIDTH, HEIGHT, SCALE = 800, 400, 2
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 30, 40


def write_png(path: Path, image: Image) -> None:
    """An RGB uint8 array (height, width, 3) as a PNG file."""
    height, width, _ = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def text(image: Image, x: int, y: int, label: str, color: tuple[int, int, int] = (0, 0, 0)) -> None:
    """Draw `label` (upper-cased) with its top-left corner at (x, y)."""
    for char in label.upper():
        glyph = _FONT.get(char, _FONT["-"])
        for row, bits in enumerate(glyph):
            for col in range(3):
                if bits & (4 >> col):
                    y0, x0 = y + row * SCALE, x + col * SCALE
                    if y0 >= 0 and y0 + SCALE <= image.shape[0] and x0 >= 0:
                        image[y0 : y0 + SCALE, x0 : x0 + SCALE] = color
        x += 4 * SCALE


def _line(image: Image, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
    steps = max(abs(x1 - x0), abs(y1 - y0), 1)
    xs = np.linspace(x0, x1, steps + 1).round().astype(int)
    ys = np.linspace(y0, y1, steps + 1).round().astype(int)
    ok = (xs >= 0) & (xs < image.shape[1] - 1) & (ys >= 0) & (ys < image.shape[0] - 1)
    xs, ys = xs[ok], ys[ok]
    image[ys, xs] = color
    image[ys + 1, xs] = color  # two pixels thick


def _frame(title: str, y_label: str, y_max: float, x_label: str, x_max: float) -> Image:
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    image[TOP:bottom, LEFT] = 0
    image[bottom, LEFT:right] = 0
    for i in range(5):
        y = bottom - (bottom - TOP) * i // 4
        image[y, LEFT:right] = (225, 225, 225) if i else 0
        text(image, 4, y - 5, _num(y_max * i / 4))
    for i in range(5):
        x = LEFT + (right - LEFT) * i // 4
        text(image, x - 8, bottom + 6, _num(x_max * i / 4))
    text(image, LEFT, 8, title)
    text(image, LEFT + 4, TOP + 4, y_label, (90, 90, 90))
    text(image, right - 8 * len(x_label), bottom + 22, x_label, (90, 90, 90))
    return image


def _num(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}K"
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def line_chart(
    title: str, y_label: str, xs: Sequence[float], series: Mapping[str, Sequence[float]]
) -> Image:
    """One line per series over a shared x axis (seconds); a legend on the right."""
    y_max = max([max(v, default=0.0) for v in series.values()] + [1e-9]) * 1.1
    x_max = max(max(xs, default=1.0), 1e-9)
    image = _frame(title, y_label, y_max, "seconds", x_max)
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    for index, (name, values) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        points = [
            (LEFT + int((right - LEFT) * x / x_max), bottom - int((bottom - TOP) * v / y_max))
            for x, v in zip(xs, values, strict=False)
        ]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            _line(image, x0, y0, x1, y1, color)
        if index < 24:
            text(image, right + 10, TOP + index * 14, name[:18], color)
    return image


def bar_chart(title: str, y_label: str, groups: Mapping[str, Mapping[str, float]]) -> Image:
    """Grouped bars: for each group (x), one bar per key, coloured by key, legend on the right."""
    keys = sorted({k for bars in groups.values() for k in bars})
    y_max = max([v for bars in groups.values() for v in bars.values()] + [1e-9]) * 1.1
    image = _frame(title, y_label, y_max, "", 0)
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    image[bottom + 1 :, LEFT - 20 : right + 20] = 255  # no numeric x axis for bars
    slot = (right - LEFT) // max(len(groups), 1)
    bar = max(2, (slot - 10) // max(len(keys), 1))
    for g, (group, bars) in enumerate(groups.items()):
        x0 = LEFT + g * slot + 5
        for k, key in enumerate(keys):
            value = bars.get(key, 0.0)
            top = bottom - int((bottom - TOP) * value / y_max)
            image[top:bottom, x0 + k * bar : x0 + (k + 1) * bar - 1] = PALETTE[k % len(PALETTE)]
        text(image, x0, bottom + 6, group[: max(1, slot // 8)])
    for k, key in enumerate(keys):
        text(image, right + 10, TOP + k * 14, key[:18], PALETTE[k % len(PALETTE)])
    return image
