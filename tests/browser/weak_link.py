"""A Chromium or Firefox subscriber behind a link whose rate follows a schedule (issue 20): its
own network namespace, `tc tbf` on the host's end of the veth (what reaches the subscriber) or
the user-space TUN link's emulator (tests/browser/tunlink.py: delay and loss without netem), the
stage sampled from the page four times a second. Used by the browser test (a short
schedule, loose bounds) and by benchmarks/weak_link.py (the full schedule, REMB against
transport-cc, and a direct Chromium-to-Chromium call as the reference)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from confsfu.server.app import HUB
from confsfu.server.clock import clock_ms
from confsfu.tokens import make_token
from tests.browser.conftest import CHROMIUM_FLAGS, PageDriver, chromium_path, open_page
from tests.browser.firefox import Firefox
from tests.browser.netns import Namespace, run
from tests.conftest import SECRET, RunningServer, start_server
from tests.conftest import test_settings as make_settings

log = logging.getLogger(__name__)  # the phases, for a run's decision log beside the server's

TOP_WIDTH = 1280
SAMPLE_S = 0.25
FREEZE_LISTED_S = 0.6  # a stretch without a new stage frame this long is listed with its time


@dataclass(frozen=True)
class Phase:
    kbit_s: int
    seconds: float  # at most
    settle_s: float | None = None  # a rise may end this long after the top layer is back


# The test's schedule: the last phase ends 5 s after 1280 is back (or after 35 s).
SHORT = (Phase(3000, 8), Phase(300, 20), Phase(3000, 35, settle_s=5))
FULL = (Phase(3000, 20), Phase(300, 30), Phase(1000, 20), Phase(3000, 30))

# What the subscriber's page has received: the stage's picture and the audio's packets.
SAMPLE = """
async (mode) => {
  let pc, mid = null;
  if (mode === "direct") { pc = window.directPc; }
  else {
    const c = window.conference;
    if (!c || !c.subscribePc) return null;
    pc = c.subscribePc;
    const slot = c.slots.find((s) => s.purpose === "stage" && s.name);
    if (!slot) return null;
    mid = slot.mid;
  }
  if (!pc) return null;
  const stats = await pc.getStats();
  const out = {width: 0, decoded: 0, audioLost: 0, audioReceived: 0, bytes: 0, card: false};
  // The stage shows the name card, not the video (a paused slot, or one awaiting its picture).
  const tile = mode === "direct" ? null : document.getElementById("stage-tile");
  out.card = tile?.dataset.picture === "false";
  let pairBytes = 0;  // Firefox counts bytes on the selected candidate pair, not the transport
  stats.forEach((s) => {
    if (s.type === "transport") out.bytes = s.bytesReceived ?? out.bytes;
    if (s.type === "candidate-pair" && s.selected) pairBytes = s.bytesReceived ?? 0;
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video" && (mid === null || s.mid === mid)) {
      out.width = s.frameWidth ?? 0; out.decoded = s.framesDecoded ?? 0;
    }
    if (s.kind === "audio") {
      out.audioLost += Math.max(s.packetsLost ?? 0, 0); out.audioReceived += s.packetsReceived ?? 0;
    }
  });
  out.bytes = out.bytes || pairBytes;
  return out;
}
"""


# Installed in a viewer's page (issue 20, Firefox's freezes): the page itself times the stage's
# frames, so a slow driver round trip cannot lengthen a freeze. Two clocks: the video element's
# presented frames (requestVideoFrameCallback) and getStats' framesDecoded polled every 100 ms.
# Each gap over 0.4 s is kept with what the inbound video's counters did across it.
MONITOR = """
(mode) => {
  if (window.confsfuMonitor) return;
  const GAP_MS = 400, KEEP = 200;
  const m = window.confsfuMonitor = {gaps: [], seen: new Set(), lastFrame: null, lastDecode: null,
    lastDecoded: -1, stats: null, statsAtDecode: null, longest: {decoded: 0, presented: 0}};
  const COUNTS = ["framesDecoded", "framesDropped", "framesReceived", "keyFramesDecoded",
    "nackCount", "pliCount", "firCount", "packetsLost", "packetsReceived",
    "retransmittedPacketsReceived", "jitterBufferDelay", "jitterBufferEmittedCount",
    "freezeCount", "totalFreezesDuration", "framesPerSecond"];
  const snap = (s) => Object.fromEntries(COUNTS.filter((k) => s[k] !== undefined)
    .map((k) => [k, s[k]]));
  const delta = (a, b) => Object.fromEntries(Object.keys(b ?? {}).map((k) =>
    [k, Math.round(((b[k] ?? 0) - ((a ?? {})[k] ?? 0)) * 1000) / 1000]));
  const keep = (g) => {
    m.longest[g.clock] = Math.max(m.longest[g.clock], g.ms);
    if (g.ms > GAP_MS) { m.gaps.push(g); if (m.gaps.length > KEEP) m.gaps.shift(); }
  };
  const video = () => mode === "direct" ? document.querySelector("video")
    : document.getElementById("stage-video");
  const onFrame = (v) => (now) => {
    if (m.lastFrame !== null) keep({clock: "presented", at: m.lastFrame, ms: now - m.lastFrame});
    m.lastFrame = now;
    v.requestVideoFrameCallback(onFrame(v));
  };
  let busy = false;  // one getStats at a time: a slow one is not stacked on
  setInterval(async () => {
    const v = video();
    if (v && v.requestVideoFrameCallback && !m.seen.has(v)) {
      m.seen.add(v); v.requestVideoFrameCallback(onFrame(v));
    }
    const c = window.conference;
    const pc = mode === "direct" ? window.directPc : c && c.subscribePc;
    if (!pc || busy) return;
    const slot = mode === "direct" ? null
      : c.slots.find((s) => s.purpose === "stage" && s.name);
    // The stage's receiver only: the whole connection's stats cost far more.
    const t = pc.getTransceivers().find((x) =>
      slot ? x.mid === slot.mid : x.receiver.track.kind === "video");
    if (!t) return;
    busy = true;
    let stats;
    try { stats = await t.receiver.getStats(); } finally { busy = false; }
    const now = performance.now();
    stats.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      m.stats = snap(s);
      if (s.framesDecoded === m.lastDecoded) return;
      if (m.lastDecode !== null)
        keep({clock: "decoded", at: m.lastDecode, ms: now - m.lastDecode,
              counts: delta(m.statsAtDecode, m.stats)});
      m.lastDecode = now; m.lastDecoded = s.framesDecoded; m.statsAtDecode = m.stats;
    });
  }, 100);
}
"""
# The gaps kept since the last call and the longest of each clock (a gap still open counts up
# to now), with the page's clock now (to place them in time).
MONITOR_TAKE = """
() => {
  const m = window.confsfuMonitor;
  if (!m) return null;
  const now = performance.now();
  const open = {decoded: m.lastDecode, presented: m.lastFrame};
  const longest = Object.fromEntries(Object.entries(m.longest).map(([k, v]) =>
    [k, Math.max(v, open[k] === null ? 0 : now - open[k])]));
  const gaps = m.gaps; m.gaps = []; m.longest = {decoded: 0, presented: 0};
  return {now, gaps, longest, stats: m.stats};
}
"""


# What the server did for a viewer: layers chosen, estimate (bit/s), video packets sent to it,
# bytes received from the others' publishers (see `server_view`).
ServerView = tuple[str, int, int, int]


@dataclass
class PhaseFigures:
    kbit_s: int
    down_s: float | None = None  # below the top layer after a drop (None: it never went)
    up_s: float | None = None  # back to the top layer after a rise (None: it never came)
    # The longest stretch with no new stage frame decoded, timed in the page (MONITOR: getStats
    # every 100 ms) or, without it, from the driver's samples (SAMPLE_S apart plus the round trip).
    longest_freeze_s: float = 0.0
    freeze_at_s: float = 0.0  # when in the phase the longest freeze began
    freezes: list[tuple[float, float]] = field(default_factory=list)  # (at, s) each over 0.6 s
    card_s: float = 0.0  # how long the stage showed the name card instead of the video
    audio_loss_pct: float = 0.0
    link_use_pct: float = 0.0
    widths: list[int] = field(default_factory=list)  # the stage's widths in turn
    # Through the server: the layers it chose for the viewer in turn, and its estimate's range.
    layers: list[str] = field(default_factory=list)
    estimate_kbit_s: tuple[int, int] | None = None
    # With the page's timing: the longest gap between presented frames (the video element's
    # requestVideoFrameCallback), and what the driver's samples alone gave (SAMPLE_S apart, plus
    # a round trip to the page that a loaded Firefox can stretch past a second).
    presented_freeze_s: float | None = None
    sampled_freeze_s: float | None = None
    sampled_freezes: list[tuple[float, float]] = field(default_factory=list)
    slowest_sample_s: float = 0.0  # the longest round trip of a sample


@dataclass
class Figures:
    label: str
    phases: list[PhaseFigures] = field(default_factory=list)
    server: str = ""  # what the server counted meanwhile (through it)
    load: str = ""  # the machine's load average at the end (the benchmark's)

    def lines(self) -> list[str]:
        out = [f"{self.label}:" + (f" (load average {self.load})" if self.load else "")]
        if self.server:
            out.append(f"  server: {self.server}")
        for p in self.phases:
            down = "-" if p.down_s is None else f"{p.down_s:.1f} s"
            up = "-" if p.up_s is None else f"{p.up_s:.1f} s"
            out.append(
                f"  {p.kbit_s:>5} kbit/s: down {down}, back to {TOP_WIDTH} {up}, longest freeze "
                f"{p.longest_freeze_s:.1f} s (at {p.freeze_at_s:.1f} s), name card "
                f"{p.card_s:.1f} s, audio lost {p.audio_loss_pct:.1f} %, link used "
                f"{p.link_use_pct:.0f} %; widths {p.widths}"
            )
            if p.freezes:
                out.append("         freezes over 0.6 s (at, long): " + ", ".join(
                    f"{at:.1f} s {long:.1f} s" for at, long in p.freezes
                ))  # fmt: skip
            if p.sampled_freeze_s is not None:
                out.append(
                    f"         freeze timed in the page; presented gap "
                    f"{_s(p.presented_freeze_s)}; the driver's samples gave "
                    f"{p.sampled_freeze_s:.1f} s ({len(p.sampled_freezes)} over "
                    f"{FREEZE_LISTED_S} s; slowest sample {p.slowest_sample_s:.1f} s)"
                )
            if p.estimate_kbit_s is not None:
                low, high = p.estimate_kbit_s
                out.append(f"         estimate {low}-{high} kbit/s; layers {p.layers}")
        return out


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


async def take_gaps(
    page: PageDriver, figures: PhaseFigures, start: float, served: list[tuple[float, int, int]]
) -> None:
    """The page's frame gaps since the last call (MONITOR) into `figures` (`start`: the
    phase's on the monotonic clock): the longest stage freeze and those over FREEZE_LISTED_S,
    each logged with its time on the log's clock, what the inbound counters did and what the
    server sent it and received from the publisher meanwhile (`served`, sampled)."""
    taken = await page.evaluate(MONITOR_TAKE)
    if not taken:
        return
    mono_now, log_now_ms = time.monotonic(), logging.makeLogRecord({}).relativeCreated
    figures.sampled_freeze_s = figures.longest_freeze_s
    figures.sampled_freezes, figures.freezes = figures.freezes, []
    figures.longest_freeze_s = taken["longest"]["decoded"] / 1000
    figures.presented_freeze_s = taken["longest"]["presented"] / 1000
    for gap in taken["gaps"]:
        seconds, ago_s = gap["ms"] / 1000, (taken["now"] - gap["at"]) / 1000
        if seconds <= FREEZE_LISTED_S:
            continue
        if gap["clock"] == "decoded":
            at = mono_now - ago_s - start
            figures.freezes.append((at, seconds))
            if seconds >= figures.longest_freeze_s - 1e-3:
                figures.freeze_at_s = at
        begun = mono_now - ago_s
        within = [x for x in served if begun <= x[0] <= begun + seconds]
        server = (
            f"; server sent {within[-1][1] - within[0][1]} video packets, received "
            f"{(within[-1][2] - within[0][2]) // 1000} kB over {within[-1][0] - within[0][0]:.2f} s"
            if len(within) > 1 else ""
        )  # fmt: skip
        log.info(
            "page: no %s frame for %.2f s from %.0f ms: %s%s",
            gap["clock"], seconds, log_now_ms - ago_s * 1000, gap.get("counts", ""), server,
        )  # fmt: skip
    log.info("page stats at %.0f ms: %s", log_now_ms, taken["stats"])


def shape(ns: Namespace, kbit_s: int | None, delay_ms: int = 0, loss_pct: float = 0.0) -> None:
    """What the host sends into the namespace: a token bucket at `kbit_s` whose queue holds
    150 ms (tbf). Delay and random loss need netem, which not every kernel has (this machine's
    has not: `tc` answers "Specified qdisc kind is unknown"). A namespace joined by the TUN link
    is shaped by its emulator: the same bucket and queue, the delay both ways (netem's here
    delays only the downlink), the loss on the downlink."""
    if ns.shaper is not None:
        ns.shaper.shape(kbit_s, delay_ms, loss_pct)
        return
    subprocess.run(["tc", "qdisc", "del", "dev", ns.host_if, "root"], capture_output=True)
    if kbit_s is None:
        return
    if delay_ms or loss_pct:
        run("tc", "qdisc", "add", "dev", ns.host_if, "root", "handle", "1:", "netem",
            "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%")  # fmt: skip
        run("tc", "qdisc", "add", "dev", ns.host_if, "parent", "1:", "handle", "2:", "tbf",
            "rate", f"{kbit_s}kbit", "burst", "20kb", "latency", "150ms")  # fmt: skip
        return
    run("tc", "qdisc", "add", "dev", ns.host_if, "root", "tbf", "rate", f"{kbit_s}kbit",
        "burst", "20kb", "latency", "150ms")  # fmt: skip


async def follow(
    page: PageDriver,
    ns: Namespace,
    schedule: tuple[Phase, ...],
    mode: str,
    delay_ms: int,
    loss_pct: float,
    server_view: Callable[[], ServerView | None] | None = None,
) -> list[PhaseFigures]:
    """Run the schedule on the link, sampling the page (and `server_view`: the layers the
    server chose for it and its estimate, in bit/s); the figures per phase."""
    out: list[PhaseFigures] = []
    previous: int | None = None
    served: list[tuple[float, int, int]] = []  # (monotonic s, video packets sent, bytes in)
    await page.evaluate(MONITOR, mode)
    await page.evaluate(MONITOR_TAKE)  # the gaps before the schedule are not its
    for phase in schedule:
        shape(ns, phase.kbit_s, delay_ms, loss_pct)
        log.info("link at %d kbit/s for %d s", phase.kbit_s, phase.seconds)
        figures = PhaseFigures(phase.kbit_s)
        start = time.monotonic()
        first = last = await page.evaluate(SAMPLE, mode)
        last_new_frame = last_at = start
        while time.monotonic() - start < phase.seconds:
            settled = figures.up_s is not None and phase.settle_s is not None
            if settled and time.monotonic() - start >= figures.up_s + phase.settle_s:
                break
            await asyncio.sleep(SAMPLE_S)
            now = time.monotonic()
            sample = await page.evaluate(SAMPLE, mode)
            figures.slowest_sample_s = max(figures.slowest_sample_s, time.monotonic() - now)
            if server_view is not None and (view := server_view()) is not None:
                chosen, estimate = view[0], view[1] // 1000
                served.append((now, view[2], view[3]))
                if not figures.layers or figures.layers[-1] != chosen:
                    figures.layers.append(chosen)
                low, high = figures.estimate_kbit_s or (estimate, estimate)
                figures.estimate_kbit_s = (min(low, estimate), max(high, estimate))
            if not sample or not last:
                continue
            if sample.get("card"):
                figures.card_s += now - last_at
            if sample["width"] and (not figures.widths or figures.widths[-1] != sample["width"]):
                figures.widths.append(sample["width"])
            if sample["decoded"] > last["decoded"]:
                if now - last_new_frame > FREEZE_LISTED_S:
                    figures.freezes.append((last_new_frame - start, now - last_new_frame))
                if now - last_new_frame > figures.longest_freeze_s:
                    figures.longest_freeze_s = now - last_new_frame
                    figures.freeze_at_s = last_new_frame - start
                last_new_frame = now
            dropping = previous is not None and phase.kbit_s < previous
            if dropping and figures.down_s is None and 0 < sample["width"] < TOP_WIDTH:
                figures.down_s = now - start
            rising = previous is None or phase.kbit_s > previous
            if rising and figures.up_s is None and sample["width"] >= TOP_WIDTH:
                figures.up_s = now - start
            last, last_at = sample, now
        if last is not None and time.monotonic() - last_new_frame > figures.longest_freeze_s:
            figures.longest_freeze_s = time.monotonic() - last_new_frame
            figures.freeze_at_s = last_new_frame - start
        if first and last:
            received = last["audioReceived"] - first["audioReceived"]
            lost = last["audioLost"] - first["audioLost"]
            figures.audio_loss_pct = 100 * lost / max(received + lost, 1)
            elapsed = time.monotonic() - start
            figures.link_use_pct = (
                100 * (last["bytes"] - first["bytes"]) * 8 / (phase.kbit_s * 1000 * elapsed)
            )
        await take_gaps(page, figures, start, served)
        out.append(figures)
        previous = phase.kbit_s
    shape(ns, None)
    return out


@asynccontextmanager
async def chromium_in(ns: Namespace, tmp: Path) -> AsyncIterator[Browser]:
    """Chromium started inside the namespace (Playwright drives it over pipes)."""
    wrapper = tmp / f"chromium-in-{ns.name}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns.name} {chromium_path()} "$@"\n')
    wrapper.chmod(0o755)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s: {what}")


# Of the server's counters and drops, those that tell what it did about the link.
SERVER_COUNTS = (
    "drain_holds",
    "keyframe_requests",
    "keyframe_requests_suppressed",  # an ask (a subscriber's, or a re-ask while a slot
    # waits) within the interval of the last request for that layer
    "keyframe_no_layer",  # an ask for a layer the publisher does not send: nobody to ask
    "pli_draining",
    "rtx_out",
    "nack_draining",
    "nack_resent_recently",  # a repeated NACK within the interval of its answer
    "nack_over_limit",
    "nack_not_in_history",
)


def server_counts(server: RunningServer) -> dict[str, int]:
    out: dict[str, int] = {}
    for live in server.app[HUB].rooms.values():
        for key, value in [*live.media.counters.items(), *live.media.drops.items()]:
            out[key] = out.get(key, 0) + value
        suppressed = live.media.keyframes.requests_suppressed
        out["keyframe_requests_suppressed"] = (
            out.get("keyframe_requests_suppressed", 0) + suppressed
        )
    return out


def server_view(server: RunningServer, name: str) -> ServerView | None:
    """The layers the server chose for `name`'s tiles ("2/2" spatial/temporal, else why
    paused; "(held)" while its video waits for the link's queue to drain), its estimate, the
    video packets sent to it and the bytes received from the others' publishers so far."""
    for live in server.app[HUB].rooms.values():
        for pid, p in live.room.participants.items():
            sub = live.media.subscribers.get(pid)
            if p.name != name or sub is None:
                continue
            budget = sub.budget
            chosen = " ".join(
                str(d.reason) if d.paused else f"{d.spatial}/{d.temporal}"
                for d in budget.allocator.decisions
            )
            if budget.drain.holding:
                chosen += " (held)"
            sent = sum(slot.packets_sent for slot in sub.slots if slot.kind == "video")
            published = sum(
                r.bytes_received
                for (other, _), pub in live.media.publishers.items()
                if other != pid
                for r in pub.receptions.values()
            )
            return chosen, budget.estimate_bps(clock_ms()), sent, published
    return None


async def through_server(
    outside: Browser,
    inside: Browser | Firefox,
    ns: Namespace,
    schedule: tuple[Phase, ...],
    *,
    estimator: str = "auto",
    delay_ms: int = 0,
    loss_pct: float = 0.0,
) -> Figures:
    """Seoul (outside) holds the floor; Kinshasa (inside the namespace) watches the stage."""
    settings = make_settings(ice={"candidates": "host"}, bandwidth={"estimator": estimator})
    runner, server = await start_server(settings, host="0.0.0.0")
    # Pages are closed after each run: one left open keeps its camera and its reconnecting
    # page busy on a machine the next run measures on.
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        now = int(time.time())
        chair = make_token(SECRET, room="council", name="Seoul", role="chair", now_s=now)
        guest = make_token(SECRET, room="council", name="Kinshasa", role="participant", now_s=now)
        presenter = await open_page(outside, f"{server.http_url}/?token={chair}")
        closers.append(presenter.context.close)
        url = f"http://{ns.host_ip}:{server.port}/?token={guest}"
        viewer: PageDriver
        if isinstance(inside, Firefox):
            firefox_page = await inside.new_page(url, "Kinshasa")
            closers.append(firefox_page.close)
            viewer = firefox_page
        else:
            chromium_page = await open_page(inside, url)
            closers.append(chromium_page.context.close)
            viewer = chromium_page
        await presenter.wait_for_function("window.conference && window.conference.self")
        await presenter.evaluate(
            "window.conference.chair('grant_floor', {participant_id: window.conference.self.id})"
        )

        async def on_top() -> bool:
            s = await viewer.evaluate(SAMPLE, "server")
            return bool(s and s["width"] >= TOP_WIDTH and s["decoded"] > 20)

        await until(on_top, 45, "the stage at the top layer before the schedule")
        browser = "Firefox" if isinstance(inside, Firefox) else "Chromium"
        label = f"{browser} through confsfu ({estimator})"
        log.info("%s: the schedule begins", label)
        before = server_counts(server)
        view = partial(server_view, server, "Kinshasa")
        phases = await follow(viewer, ns, schedule, "server", delay_ms, loss_pct, view)
        after = server_counts(server)
        counted = ", ".join(f"{k} {after.get(k, 0) - before.get(k, 0)}" for k in SERVER_COUNTS)
        return Figures(label, phases, counted)
    finally:
        shape(ns, None)
        await close_all(closers)
        await runner.cleanup()


async def close_all(closers: list[Callable[[], Awaitable[None]]]) -> None:
    for close in closers:
        with contextlib.suppress(Exception):  # a browser that went away closed it already
            await close()


# Two pages call each other directly (no server): the caller sends its fake camera at 1280x720,
# the callee receives; the test relays the offer and answer.
DIRECT_CALLER = """
async () => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {audio: true, video: {width: 1280, height: 720, frameRate: 20}});
  const pc = window.directPc = new RTCPeerConnection();
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === "complete") r();
    else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
  return pc.localDescription.sdp;
}
"""
DIRECT_CALLEE = """
async (offer) => {
  const pc = window.directPc = new RTCPeerConnection();
  pc.ontrack = (e) => {
    if (e.track.kind !== "video") return;
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.srcObject = new MediaStream([e.track]);
    document.body.append(v);
  };
  await pc.setRemoteDescription({type: "offer", sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((r) => { if (pc.iceGatheringState === "complete") r();
    else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
  return pc.localDescription.sdp;
}
"""


async def direct_call(
    outside: Browser,
    inside: Browser,
    ns: Namespace,
    schedule: tuple[Phase, ...],
    *,
    delay_ms: int = 0,
    loss_pct: float = 0.0,
) -> Figures:
    """The reference a user compares against: Chromium to Chromium, the same link. (The server
    only gives the pages an origin: a camera needs a secure one, as 127.0.0.1 is.)"""
    runner, server = await start_server(make_settings(), host="0.0.0.0")
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        caller = await (await outside.new_context()).new_page()
        closers.append(caller.context.close)
        callee = await (await inside.new_context()).new_page()
        closers.append(callee.context.close)
        await caller.goto(f"{server.http_url}/healthz")
        await callee.goto(f"http://{ns.host_ip}:{server.port}/healthz")
        offer = await caller.evaluate(DIRECT_CALLER)
        answer = await callee.evaluate(DIRECT_CALLEE, offer)
        await caller.evaluate(
            "(sdp) => window.directPc.setRemoteDescription({type: 'answer', sdp})", answer
        )

        async def on_top() -> bool:
            s = await callee.evaluate(SAMPLE, "direct")
            return bool(s and s["width"] >= TOP_WIDTH and s["decoded"] > 20)

        await until(on_top, 45, "the direct call at 1280x720 before the schedule")
        phases = await follow(callee, ns, schedule, "direct", delay_ms, loss_pct)
        return Figures("direct Chromium call", phases)
    finally:
        shape(ns, None)
        await close_all(closers)
        await runner.cleanup()


def describe(figures: list[Figures]) -> str:
    return "\n".join(line for f in figures for line in f.lines())
