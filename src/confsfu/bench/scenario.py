"""Benchmark scenarios: a YAML file naming who joins, who publishes and what they do."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from confsfu.bandwidth.linksim import Phase
from confsfu.loadgen.schedule import parse_link_schedule, schedule_seconds

MAX_DURATION_S = 75 * 60
LINK_MARGIN_S = 5.0  # the window outlasts a link schedule by this much
SCREEN_FPS = 5  # slides: few frames, each mostly the last one
SCENARIO_DIR = Path(__file__).resolve().parents[3] / "benchmarks" / "scenarios"


class ScenarioError(ValueError):
    """The scenario file is missing, not YAML, or does not describe a valid scenario."""


class VideoLayer(BaseModel):
    """One pre-encoded VP8 layer a publisher sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(ge=16, le=3840)
    height: int = Field(ge=16, le=2160)
    bitrate_bps: int = Field(ge=10_000, le=20_000_000)


DEFAULT_LAYERS = (
    VideoLayer(width=320, height=180, bitrate_bps=150_000),
    VideoLayer(width=640, height=360, bitrate_bps=450_000),
    VideoLayer(width=1280, height=720, bitrate_bps=1_300_000),
)


class Scenario(BaseModel):
    """Who joins (chair, publishers, receive-only subscribers, listeners) and what they do
    meanwhile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    room: str = Field(default="bench", min_length=1, max_length=60)
    # The meeting held `rooms` times side by side, in rooms `room`-1, `room`-2, ... (one room:
    # `room` itself); each room has every participant above (see spread.py).
    rooms: int = Field(default=1, ge=1, le=64)
    chair: bool = False  # one participant joins with a chair token (first to join)
    chair_publishes: bool = True  # the chair has a camera too
    presenter: bool = False  # the chair makes the first publisher the presenter (on the stage)
    screen: VideoLayer | None = None  # the presenter's screen share: slides at SCREEN_FPS
    pass_floor_s: float | None = Field(default=None, ge=1)  # the chair passes the floor on
    publishers: int = Field(ge=0, le=500)
    subscribers: int = Field(default=0, ge=0, le=500)  # receive only
    # The audience: listeners who join as such (a listener token, or the room's watch link) and
    # receive the stage and the room's audio; not participants. `light_listeners`: they count
    # packets and check sequence numbers on the sealed SRTP (nothing decrypted, no delays).
    listeners: int = Field(default=0, ge=0, le=2000)
    light_listeners: bool = True
    simulcast: bool = True  # three rid layers; else the top layer alone
    layers: tuple[VideoLayer, ...] = DEFAULT_LAYERS
    talkers: int = Field(default=1, ge=0)  # publishers talking at any time, rotating
    talk_rotate_s: float = Field(default=4.0, gt=0)
    weak_links: int = Field(default=0, ge=0)  # subscribers reporting `weak_link_bps` via REMB
    weak_link_bps: int = Field(default=300_000, ge=10_000)
    downlink_bps: int | None = Field(default=None, ge=10_000)  # everyone else's REMB (None: none)
    # Emulated downlinks: `scheduled_links` subscribers (receive-only first, then publishers)
    # behind a link in the load generator whose rate follows `link_schedule` from the first
    # packet each receives ("3000x20,300x30": kbit/s x seconds; a tbf token bucket, 20 KB
    # burst, queue of `link_queue_ms`), with `link_delay_ms` one way and `link_loss` (0..0.5)
    # random loss, seeded by `link_seed`; they answer with transport-cc (`twcc`) or a REMB
    # of their own receive-side estimate (`remb`), and are reported per phase (`adaptation`).
    link_schedule: str | None = None
    scheduled_links: int = Field(default=0, ge=0, le=500)
    link_delay_ms: int = Field(default=0, ge=0, le=2000)
    link_loss: float = Field(default=0.0, ge=0.0, le=0.5)
    link_queue_ms: int = Field(default=150, ge=1, le=5000)
    link_estimator: Literal["twcc", "remb"] = "twcc"
    link_seed: int = 1
    audio_slots: int = Field(default=3, ge=1, le=16)  # for a server the benchmark starts
    video_slots: int = Field(default=9, ge=1, le=49)
    workers: int = Field(default=2, ge=1, le=64)
    join_spacing_s: float = Field(default=0.05, ge=0, le=10)
    duration_s: float = Field(default=20.0, ge=1, le=MAX_DURATION_S)

    @field_validator("link_schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            parse_link_schedule(value)  # its ScheduleError (a ValueError) names what is wrong
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.scheduled_links and self.link_schedule is None:
            raise ValueError("scheduled_links needs a link_schedule, e.g. 3000x20,300x30")
        if self.participants < 1:
            raise ValueError("a scenario needs at least one participant")
        if self.presenter and self.publishers < 1:
            raise ValueError("a presenter needs at least one publisher")
        if self.presenter and not self.chair:
            raise ValueError("a presenter is made by the chair: set chair too")
        if self.screen is not None and not self.presenter:
            raise ValueError("screen is the presenter's: set presenter too")
        if self.pass_floor_s is not None and not self.chair:
            raise ValueError("pass_floor_s needs a chair to pass the floor")
        if self.simulcast and len(self.layers) != 3:
            raise ValueError("simulcast needs exactly three layers (lowest first)")
        if not self.layers:
            raise ValueError("at least one video layer is needed")
        return self

    @property
    def participants(self) -> int:
        """In one room (the run has `rooms` times as many)."""
        return int(self.chair) + self.publishers + self.subscribers

    @property
    def room_names(self) -> tuple[str, ...]:
        if self.rooms == 1:
            return (self.room,)
        return tuple(f"{self.room}-{i}" for i in range(1, self.rooms + 1))

    @property
    def link_phases(self) -> tuple[Phase, ...]:
        return parse_link_schedule(self.link_schedule) if self.link_schedule else ()

    @property
    def window_s(self) -> float:
        """The measuring window: duration_s, or the link schedule's length and LINK_MARGIN_S
        if longer (each scheduled link starts with its subscriber's first packet, about when
        the window does)."""
        if not self.scheduled_links:
            return self.duration_s
        return max(self.duration_s, schedule_seconds(self.link_phases) + LINK_MARGIN_S)

    @property
    def camera_publishers(self) -> int:
        return self.publishers + int(self.chair and self.chair_publishes)

    def scaled(self, participants: int) -> Scenario:
        """The same shape with `participants` in all; the chair stays, the rest keep ratio."""
        rest = participants - int(self.chair)
        if rest < 1 and not self.chair:
            raise ScenarioError(f"{self.name} needs at least {int(self.chair) + 1} participants")
        total = self.publishers + self.subscribers
        publishers = round(self.publishers * rest / total) if total else 0
        if self.publishers:
            publishers = max(1, publishers)
        publishers = min(publishers, rest)
        subscribers = rest - publishers
        listeners = publishers - int(self.presenter) + subscribers
        weak = min(self.weak_links, max(0, listeners))
        return self.with_values(
            publishers=publishers,
            subscribers=subscribers,
            weak_links=weak,
            scheduled_links=min(self.scheduled_links, max(0, listeners - weak)),
        )

    def with_values(self, **values: Any) -> Scenario:
        """A validated copy with some fields replaced."""
        try:
            return Scenario.model_validate({**self.model_dump(), **values})
        except ValidationError as exc:
            raise ScenarioError(f"scenario {self.name}: {_explain(exc)}") from exc


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'scenario'}: {err['msg']}"
        for err in exc.errors()
    )


def parse_scenario(text: str | bytes, *, default_name: str = "scenario") -> Scenario:
    """A scenario from YAML text, or ScenarioError."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeError, ValueError) as exc:
        raise ScenarioError(f"the scenario is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError("the scenario must be a YAML mapping")
    data.setdefault("name", default_name)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_explain(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise ScenarioError(str(exc)) from exc


def load_scenario(name_or_path: str) -> Scenario:
    """A scenario by file path, or by name from benchmarks/scenarios/ (mayors, fanout, mesh)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {name_or_path}: {exc}") from exc
    return parse_scenario(text, default_name=path.stem)


def parse_assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE from the command line (VALUE read as YAML), for Scenario.with_values."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{key}: not a valid value: {exc}") from exc
