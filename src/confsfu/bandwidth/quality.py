"""A participant's connection quality in words, from the loss its receiver reports.

Sans-IO. Loss hovering at a threshold must not flip the word on every report (each change goes
to every page), so a worse word comes at the threshold and a better one only below the margin.
"""

from __future__ import annotations

from typing import Literal

Quality = Literal["good", "fair", "poor", "unknown"]

FAIR_FROM = 0.02  # loss fraction at which "good" becomes "fair"
POOR_FROM = 0.10  # ... and "fair" becomes "poor"
MARGIN = 0.5  # a better word needs loss below this share of its threshold


class QualityWatch:
    """One participant's quality word, changed with hysteresis."""

    __slots__ = ("quality",)

    def __init__(self) -> None:
        self.quality: Quality = "unknown"

    def update(self, loss_fraction: float) -> Quality | None:
        """The new word when it changed, else None."""
        loss = min(max(loss_fraction, 0.0), 1.0)
        now = self.quality
        if loss >= POOR_FROM:
            new: Quality = "poor"
        elif loss >= FAIR_FROM:
            new = "poor" if now == "poor" and loss >= POOR_FROM * MARGIN else "fair"
        elif now in ("fair", "poor") and loss >= FAIR_FROM * MARGIN:
            new = "fair"
        else:
            new = "good"
        if new == now:
            return None
        self.quality = new
        return new
