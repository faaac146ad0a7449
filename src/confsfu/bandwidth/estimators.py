"""The receiver-report estimators (loss-based, REMB) and the choice among all three by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from confsfu.bandwidth.estimation import (
    BandwidthEstimator,
    EstimatorConfig,
    EstimatorError,
    LossController,
    check_feedback,
    check_fraction,
    check_rate,
    check_seq,
    check_size,
    clamp,
)
from confsfu.bandwidth.twcc import TwccEstimator


class LossBasedEstimator:
    """Receiver reports only: GCC's loss controller, starting at `initial_bps`."""

    def __init__(self, config: EstimatorConfig) -> None:
        self._loss = LossController(float(config.initial_bps), config)

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None:
        check_rate(bitrate_bps)

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None:
        self._loss.on_loss(now_ms, check_fraction(fraction_lost), self._loss.value_bps)

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None:
        check_seq(transport_seq)
        check_size(size_bytes)

    def on_transport_feedback(self, now_ms: int, packets: Sequence[tuple[int, int | None]]) -> None:
        check_feedback(packets)

    def estimate_bps(self, now_ms: int) -> int:
        return int(self._loss.value_bps)

    def measured_ms(self) -> int | None:
        return None  # it never probes the link itself


class RembEstimator:
    """The subscriber's own REMB estimate, capped by the loss controller (uncapped at start)."""

    def __init__(self, config: EstimatorConfig) -> None:
        self._config = config
        self._remb_bps: float | None = None
        self._loss = LossController(float(config.max_bps), config)

    def _source_bps(self) -> float:
        return float(self._config.initial_bps) if self._remb_bps is None else self._remb_bps

    def on_remb(self, now_ms: int, bitrate_bps: float) -> None:
        self._remb_bps = clamp(check_rate(bitrate_bps), self._config)

    def on_receiver_report(self, now_ms: int, fraction_lost: float) -> None:
        basis = min(self._source_bps(), self._loss.value_bps)
        self._loss.on_loss(now_ms, check_fraction(fraction_lost), basis)

    def on_packet_sent(self, now_ms: int, transport_seq: int, size_bytes: int) -> None:
        check_seq(transport_seq)
        check_size(size_bytes)

    def on_transport_feedback(self, now_ms: int, packets: Sequence[tuple[int, int | None]]) -> None:
        check_feedback(packets)

    def estimate_bps(self, now_ms: int) -> int:
        return int(clamp(min(self._source_bps(), self._loss.value_bps), self._config))

    def measured_ms(self) -> int | None:
        return None  # it never probes the link itself


def make_estimator(
    kind: Literal["remb", "loss", "twcc"], config: EstimatorConfig
) -> BandwidthEstimator:
    """The estimator the settings name."""
    if kind == "remb":
        return RembEstimator(config)
    if kind == "loss":
        return LossBasedEstimator(config)
    if kind == "twcc":
        return TwccEstimator(config)
    raise EstimatorError(f"unknown estimator kind {kind!r}; expected remb, loss or twcc")
