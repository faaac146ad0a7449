"""Deployment settings: a YAML file, CONFSFU_ environment overrides, unknown keys rejected."""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from confsfu.signalling.sdp_limits import SdpLimits

# The shipped token secret: anyone can mint a chair's token with it, so it only serves a server
# that listens on loopback (the demo).
DEMO_TOKEN_SECRET = "change-me-demo-secret-0123456789abcdef"


def is_loopback_host(host: str) -> bool:
    """Whether listening on `host` (an address or name) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost, "" or "0.0.0.0"-like: may be public


def demo_secret_refusal(host: str, token_secret: str) -> str | None:
    """Why the server must not start with these settings (the demo secret off loopback), or
    None when it may."""
    if token_secret != DEMO_TOKEN_SECRET or is_loopback_host(host):
        return None
    return (
        f"refusing to listen on {host!r} with the shipped demo token_secret: anyone could mint "
        "join tokens (even a chair's). Set a secret of your own, at least 32 characters, e.g. "
        "CONFSFU_TOKEN_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "
        "or `token_secret:` in your YAML config; or listen on 127.0.0.1 for the demo."
    )


class RoomSettings(BaseModel):
    """One configured room."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    open: bool = False  # guests may join with just a name, as participants
    max_participants: int = Field(default=100, ge=1)
    # The audience: listeners (a listener token, or with `watch_link` anyone with the room's
    # watch link, ?room=NAME&watch=1) receive the stage and the room's audio and publish
    # nothing; they are not participants and do not count toward max_participants.
    watch_link: bool = False
    max_listeners: int = Field(default=200, ge=0, le=5000)
    scheduled_minutes: int | None = Field(default=None, ge=1, le=24 * 60)


class TurnServerSettings(BaseModel):
    """A TURN server sharing a secret with confsfu (coturn: use-auth-secret, static-auth-secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str] = Field(min_length=1)  # e.g. turn:turn.example.org:3478?transport=udp
    secret: str = Field(min_length=16)
    ttl_s: int = Field(default=12 * 3600, ge=60)  # how long minted credentials stay valid


class IceSettings(BaseModel):
    """Which addresses the server's ICE agent offers, and what browsers are told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "loopback": only 127.0.0.1 (tests); "host": the machine's own addresses plus 127.0.0.1.
    candidates: Literal["loopback", "host"] = "host"
    # The address browsers reach this machine at when it sits behind a 1:1 NAT (a cloud VM):
    # every host candidate is also announced with it.
    public_ip: IPvAnyAddress | None = None
    stun_servers: list[str] = []
    turn_servers: list[TurnServerSettings] = []
    # "relay": browsers use only TURN (for networks that block everything else; needs a TURN
    # server above).
    browser_transport_policy: Literal["all", "relay"] = "all"


class SlotSettings(BaseModel):
    """The fixed outgoing streams of every subscribe PeerConnection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    audio: int = Field(default=3, ge=1, le=16)
    video: int = Field(default=9, ge=1, le=49)


class MediaSettings(BaseModel):
    """Media-plane tunables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keyframe_request_interval_ms: int = Field(default=500, ge=50)
    rtx_history_packets: int = Field(default=1024, ge=64, le=32768)
    upstream_nack_delay_ms: int = Field(default=10, ge=0)
    upstream_nack_retries: int = Field(default=5, ge=1)
    publisher_remb_bps: int = Field(default=3_000_000, ge=100_000)
    start_bitrate_kbps: int = Field(default=2500, ge=100)
    audio_silence_level_dbov: int = Field(default=127, ge=0, le=127)
    speaker_stale_ms: int = Field(default=1500, ge=100)
    # A source whose packets carry no audio level (conference/voice_activity.py) speaks at
    # voice_assumed_dbov while its Opus packets average voice_frame_bytes per frame or more
    # (0: such a source is never heard).
    voice_frame_bytes: int = Field(default=10, ge=0, le=1500)
    voice_assumed_dbov: int = Field(default=40, ge=0, le=69)

    @field_validator("rtx_history_packets")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):  # PacketHistory is a ring indexed by seq & (size - 1)
            raise ValueError("rtx_history_packets must be a power of two (64, 128, ..., 32768)")
        return value


class BandwidthSettings(BaseModel):
    """Per-subscriber bandwidth estimation and layer allocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # auto: offer transport-cc and estimate on the sending side from its feedback (twcc), with
    # REMB for a client that does not take it up; twcc/remb/loss: that one only (remb and loss
    # do not offer transport-cc, so browsers send REMB). Firefox's REMB, once low, does not
    # answer probe padding: on REMB alone it can keep its thumbnails paused for good.
    estimator: Literal["auto", "twcc", "remb", "loss"] = "auto"
    initial_bps: int = Field(default=2_500_000, ge=50_000)  # until the first feedback
    # A new subscriber's first reports describe its receiver starting up, not its link (and
    # without probing they could only grow with what we send): hold the initial estimate as a
    # floor this long after it answered.
    warmup_ms: int = Field(default=6000, ge=0)
    min_bps: int = Field(default=50_000, ge=10_000)
    max_bps: int = Field(default=8_000_000, ge=100_000)
    threshold: float = Field(default=0.15, gt=0, lt=1)  # re-allocate beyond this change
    upgrade_hold_ms: int = Field(default=5000, ge=0)  # no upgrade this long after a downgrade
    rise_ms: int = Field(default=1000, ge=0)  # a rise must last this long to count
    grid_max_spatial: int = Field(default=0, ge=0, le=2)  # thumbnails: the lowest layer
    grid_max_temporal: int = Field(default=1, ge=0, le=2)  # ... at half the frame rate
    stage_max_spatial: int = Field(default=2, ge=0, le=2)
    stage_max_temporal: int = Field(default=2, ge=0, le=2)
    layer_off_delay_ms: int = Field(default=5000, ge=0)  # before a publisher stops a layer
    meter_window_ms: int = Field(default=4000, ge=500, le=30_000)  # layer bitrate averaging
    # Probing: while a subscriber's layers are held down by its estimate, padding lifts what it
    # receives to probe_gain x the estimate for up to probe_duration_ms, so a receiver-side
    # estimate (which stays below ~1.5x what arrives) can show that the link recovered. Failed
    # probes back off, doubling up to probe_max_interval_ms.
    probe: bool = True
    probe_gain: float = Field(default=1.2, ge=1.0, le=3.0)
    probe_duration_ms: int = Field(default=10_000, ge=500)
    probe_max_interval_ms: int = Field(default=60_000, ge=4000)


class SdpSettings(BaseModel):
    """How much one offer or answer may hold; beyond it the SDP is refused (error `sdp_limit`)
    before anything parses it. The defaults fit Chromium, Firefox and Safari offers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sections: int = Field(default=4, ge=2, le=64)  # m-lines in a publish offer (browsers: 2)
    rids_per_section: int = Field(default=3, ge=1, le=3)
    codecs_per_section: int = Field(default=48, ge=1, le=128)
    extensions_per_section: int = Field(default=20, ge=1, le=64)
    candidates_per_section: int = Field(default=32, ge=0, le=256)
    ssrc_lines_per_section: int = Field(default=32, ge=1, le=256)
    ssrc_groups_per_section: int = Field(default=8, ge=1, le=64)
    ssrcs_per_group: int = Field(default=3, ge=2, le=3)  # SIM: one SSRC per layer
    lines_per_section: int = Field(default=300, ge=20, le=2000)
    # In the whole SDP (a subscribe answer may have twice the server's offer): parsing costs
    # about 13 us a line, so this bounds how long one offer holds the event loop.
    lines: int = Field(default=600, ge=100, le=10_000)
    line_chars: int = Field(default=1024, ge=256, le=8192)

    def limits(self) -> SdpLimits:
        return SdpLimits(**self.model_dump())


class Settings(BaseSettings):
    """All of a deployment's settings."""

    model_config = SettingsConfigDict(
        env_prefix="CONFSFU_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # an error must not print the secrets
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_origin: list[
        str
    ] = []  # extra allowed Origin values; same-host origins are always allowed
    token_secret: str = Field(default=DEMO_TOKEN_SECRET, min_length=32)
    rooms: list[RoomSettings] = [RoomSettings(name="demo", open=True)]
    ice: IceSettings = IceSettings()
    slots: SlotSettings = SlotSettings()
    media: MediaSettings = MediaSettings()
    bandwidth: BandwidthSettings = BandwidthSettings()
    sdp: SdpSettings = SdpSettings()
    max_message_bytes: int = Field(default=256 * 1024, ge=1024)
    # Per connection: messages a second on average, and the burst allowed above that.
    messages_per_s: float = Field(default=20.0, gt=0, le=10_000)
    message_burst: int = Field(default=40, ge=1, le=100_000)
    # Where meeting reports are written at shutdown (relative to the working directory).
    report_dir: Path = Path("reports")
    # WebSocket ping interval; a participant silent for 1.5 intervals is gone.
    heartbeat_s: float = Field(default=5.0, gt=0.1, le=60)
    # A participant whose connection drops stays (shown as reconnecting) this long: a reload or a
    # network change brings them back in the same state; after it they have left.
    reconnect_grace_s: float = Field(default=20.0, ge=0, le=600)
    # A meeting nobody has been in for this long ends: its report is written and the room (its
    # bans, lock, report) forgotten; the next to join starts a new meeting.
    empty_meeting_end_s: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)
    # The same after a page said it is closing (a reload, or a closed tab: the tile goes soon).
    unload_grace_s: float = Field(default=4.0, ge=0, le=60)
    # Per connection: what may wait to be written before the page counts as not reading and the
    # connection is closed (so a stalled page never holds up anyone else's messages).
    send_queue_messages: int = Field(default=1000, ge=16, le=1_000_000)
    send_queue_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Where `confsfu serve` allocates Python objects: the C library's malloc gives a meeting's
    # memory back once everyone has left; CPython's pymalloc keeps arenas that a few survivors
    # pin (see confsfu/allocator.py). PYTHONMALLOC in the environment overrides it.
    python_allocator: Literal["malloc", "pymalloc"] = "malloc"
    # The event loop `confsfu serve` runs on: uvloop (when installed) or the standard library's.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Media worker processes under one front (docs/scale-out.md); 1: this process serves alone.
    workers: int = Field(default=1, ge=1, le=64)
    # With workers: a Redis server (redis://[:password@]host[:port][/db]) the front keeps its
    # rooms' meeting snapshots in too, so a restarted server's meetings carry on. None: memory.
    redis_url: str | None = Field(default=None, pattern=r"^redis://")
    # A node of a deployment of several servers through Redis (docs/scale-out.md, "Nodes
    # through Redis"; needs redis_url): its name, and the host:port the other nodes' fronts
    # reach this one at. None: this server stands alone.
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    node_address: str | None = Field(default=None, max_length=300)
    # A node's lease in Redis lives this long unrenewed (it is renewed each second): a node
    # killed is taken over by the others after at most this.
    node_lease_s: float = Field(default=4.0, ge=3.0, le=30.0)
    # A join on this node for a room another node holds is served here, as a relay member of
    # the room (its media relayed between the nodes over UDP, its meeting at the authority's
    # home), instead of piped to that node (docs/scale-out.md, "A room spanning nodes"). Needs
    # node_id and relay_transport udp.
    node_spill: bool = False
    # Connections a worker takes before a room's new participants spill to another worker,
    # which relays the room's media (docs/scale-out.md); 0: no bound, a room stays on one.
    worker_max_connections: int = Field(default=0, ge=0, le=100_000)
    # How a room's workers exchange relay frames (docs/scale-out.md, "The relay"): "unix", a
    # datagram socket per worker in the front's directory (one machine), or "udp": datagrams
    # authenticated with a per-room key, which can cross a network (nodes).
    relay_transport: Literal["unix", "udp"] = "unix"
    # With udp: the address this machine's workers bind and are reached at (an IP literal), and
    # the first port (worker i binds relay_port + i; 0: any free port).
    relay_host: IPvAnyAddress = ipaddress.ip_address("127.0.0.1")
    relay_port: int = Field(default=0, ge=0, le=65535 - 64)
    # With udp: the secret every node of the deployment shares (at least 32 characters); each
    # room's key is derived from it. Never logged (a SecretStr).
    relay_secret: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (command-line flags) beat the environment, which beats the file.
        return (init_settings, env_settings, _FileSource(settings_cls))

    @model_validator(mode="after")
    def _relay_secret(self) -> Settings:
        secret = self.relay_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("relay_secret: at least 32 characters")
        if self.relay_transport == "udp" and secret is None:
            raise ValueError("relay_transport udp needs a relay_secret (at least 32 characters)")
        if self.node_spill and (self.node_id is None or self.relay_transport != "udp"):
            raise ValueError("node_spill needs node_id and relay_transport udp")
        return self

    def room(self, name: str) -> RoomSettings | None:
        return next((r for r in self.rooms if r.name == name), None)


_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("confsfu_settings_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file's values, below the environment and explicit arguments."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from YAML (the embedded default when None), then environment, then `overrides`."""
    if path is None:
        text = resources.files("confsfu").joinpath("default.yaml").read_text()
    else:
        text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path or 'default.yaml'} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path or 'default.yaml'}: the top level must be a mapping")
    token = _FILE_DATA.set(data)
    try:
        return Settings(**overrides)
    finally:
        _FILE_DATA.reset(token)
