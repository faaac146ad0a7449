"""Every tile shows the person its label names: Chromium pages whose fake cameras are each one
solid colour, one page watched while its slots pause, change hands, switch and come back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright

from confsfu.server.app import HUB
from confsfu.tokens import make_token
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path, open_page, screenshot
from tests.conftest import SECRET, RunningServer, start_server
from tests.conftest import test_settings as make_settings

pytestmark = pytest.mark.browser

# Each participant's camera: one colour (RGB), written as Y4M frames (BT.601, limited range).
COLOURS = {
    "Chair": (220, 30, 30),
    "Milan": (30, 200, 40),
    "Seoul": (40, 60, 230),
    "Freetown": (230, 210, 30),
}
WIDTH, HEIGHT, FPS = 1280, 720, 20  # large enough for three simulcast layers

# Per visible video tile of the page: the name it is labelled with, whether its video is drawn
# (computed style), the initials its name card shows (null while it shows none), the plain words
# under the card, what the server sends it and why (the connection details' words), and the centre
# pixel of the frame the video presents now.
TILES = """
() => {
  const out = [];
  const canvas = document.createElement("canvas");
  canvas.width = 32; canvas.height = 18;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  for (const tile of document.querySelectorAll("#stage-tile, #grid .tile")) {
    if (tile.hidden) continue;
    const video = tile.querySelector("video");
    const name = video.dataset.participant;
    if (!name) continue;
    // What a person sees: the video drawn over (not faded out, not hidden), or the name card.
    const style = getComputedStyle(video);
    const shown = style.display !== "none" && style.visibility !== "hidden" &&
      Number(style.opacity) > 0.5;
    const avatar = tile.querySelector(".avatar");
    const card = avatar && getComputedStyle(avatar).display !== "none" ? avatar.textContent : null;
    let rgb = null;
    if (video.videoWidth > 0) {
      ctx.drawImage(video, 0, 0, 32, 18);
      rgb = Array.from(ctx.getImageData(16, 9, 1, 1).data.slice(0, 3));
    }
    const why = tile.querySelector(".why")?.textContent ?? "";
    out.push({name, shown, card, rgb, why, layer: tile.dataset.layer ?? ""});
  }
  return out;
}
"""

# Per tile showing a name card: the pairs of its parts (initials, reason, name, buttons, quality,
# markers, the paused icon) whose boxes overlap, and the tile's size. A part counts when it is
# drawn larger than a pixel (a small tile keeps its reason for screen readers in a 1 px box). And
# the paused icon as drawn: its role, accessible name and tooltip (null while not drawn).
CARD_OVERLAPS = """
() => [...document.querySelectorAll("#stage-tile.no-picture, #grid .tile.no-picture")]
  .filter((tile) => !tile.hidden)
  .map((tile) => {
    const parts = [".avatar", ".why", ".label", ".tile-button", ".quality", ".marker",
                   ".paused-icon"]
      .flatMap((sel) => [...tile.querySelectorAll(sel)].map((e) => [sel, e]))
      .filter(([, e]) => getComputedStyle(e).display !== "none" && !e.closest("[hidden]"))
      .map(([sel, e]) => [sel, e.getBoundingClientRect()])
      .filter(([, r]) => r.width > 1 && r.height > 1);
    const overlaps = [];
    for (let i = 0; i < parts.length; i++) for (let j = i + 1; j < parts.length; j++) {
      const [a, ra] = parts[i], [b, rb] = parts[j];
      if (ra.left < rb.right && rb.left < ra.right && ra.top < rb.bottom && rb.top < ra.bottom) {
        overlaps.push(`${a} ${b}`);
      }
    }
    const box = tile.getBoundingClientRect();
    const i = tile.querySelector(".paused-icon");
    const iconBox = i && getComputedStyle(i).display !== "none" ? i.getBoundingClientRect() : null;
    const icon = iconBox && iconBox.width > 1 && iconBox.height > 1
      ? {role: i.getAttribute("role"), label: i.getAttribute("aria-label"), title: i.title}
      : null;
    return {name: tile.querySelector("video").dataset.participant, parts: parts.length,
            overlaps, size: [Math.round(box.width), Math.round(box.height)],
            tooltip: tile.querySelector(".avatar").title, icon};
  })
"""


def write_y4m(path: Path, rgb: tuple[int, int, int], frames: int = 3) -> None:
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    plane = np.full((HEIGHT, WIDTH), round(y), dtype=np.uint8).tobytes()
    chroma = (HEIGHT // 2) * (WIDTH // 2)
    frame = b"FRAME\n" + plane + bytes([round(u)]) * chroma + bytes([round(v)]) * chroma
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)


def initials(name: str) -> str:
    """web/words.js's initials."""
    return "".join(w[0].upper() for w in name.split()[:2]) or "?"


def colour_of(rgb: list[int]) -> str | None:
    """The participant whose camera colour this is, or None when it is none of them (black,
    a blend of two frames)."""
    name, best = min(
        ((n, sum((a - b) ** 2 for a, b in zip(rgb, c, strict=True))) for n, c in COLOURS.items()),
        key=lambda x: x[1],
    )
    return name if best < 60**2 else None


class Watcher:
    """Samples the watched page's tiles and keeps what it saw."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.pictures = 0  # samples of a tile showing a picture
        self.cards = 0  # samples of a tile showing a name card
        self.seen: set[str] = set()
        self.blank = 0  # samples of a tile showing a picture that is no camera's colour

    async def sample(self, seconds: float, every_s: float = 0.1) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for tile in await self.page.evaluate(TILES):
                if not tile["shown"]:
                    # No picture: the card must be the labelled person's, saying why.
                    if tile["card"] != initials(tile["name"]) or not tile["why"]:
                        await self.fail(f"{tile['name']}'s tile shows no card of theirs", tile)
                    self.cards += 1
                    continue
                if tile["card"] is not None:
                    await self.fail(f"tile labelled {tile['name']} shows a card over video", tile)
                who = colour_of(tile["rgb"]) if tile["rgb"] is not None else None
                if who is None:
                    self.blank += 1  # a picture that is nobody's: black, or a blend
                    continue
                self.pictures += 1
                self.seen.add(who)
                if who != tile["name"]:
                    await self.fail(f"tile labelled {tile['name']} shows {who}", tile)
            await asyncio.sleep(every_s)

    async def fail(self, what: str, tile: dict[str, Any]) -> None:
        path = await screenshot(self.page, "identity-mismatch.png")
        raise AssertionError(f"{what}: {tile} ({path})")

    async def until(self, what: Callable[[list[dict[str, Any]]], bool], timeout_s: float) -> None:
        """Sample until the tiles satisfy `what`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self.sample(0.3)
            if what(await self.page.evaluate(TILES)):
                return
        raise AssertionError(f"timed out; tiles: {await self.page.evaluate(TILES)}")


def hold_estimate(server: RunningServer, name: str, bps: int) -> None:
    """Hold one subscriber's bandwidth estimate at `bps`, whatever its browser reports."""
    for live in server.app[HUB].rooms.values():
        for pid, p in live.room.participants.items():
            sub = live.media.subscribers.get(pid)
            if p.name == name and sub is not None:
                sub.estimator.estimate_bps = lambda now_ms: bps  # type: ignore[method-assign]
                sub.budget.ready_ms = -(10**9)  # past the warm-up
                return
    raise AssertionError(f"{name} is not subscribed")


def shows(names: set[str]) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda tiles: {t["name"] for t in tiles if t["shown"]} >= names


@asynccontextmanager
async def coloured_cameras(
    tmp_path: Path, names: Iterable[str]
) -> AsyncIterator[dict[str, Browser]]:
    """One Chromium per one of `names`, each with a camera of its own colour (COLOURS)."""
    names = list(names)
    async with async_playwright() as p, AsyncExitStack() as stack:

        async def launch(name: str) -> Browser:
            path = tmp_path / f"{name}.y4m"
            write_y4m(path, COLOURS[name])
            flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={path}"]
            return await p.chromium.launch(executable_path=chromium_path(), args=flags)

        # all at once: a launch mostly waits on the browser's own start
        launched = await asyncio.gather(*map(launch, names), return_exceptions=True)
        for b in launched:
            if not isinstance(b, BaseException):
                stack.push_async_callback(b.close)
        for b in launched:
            if isinstance(b, BaseException):
                raise b
        yield dict(zip(names, launched, strict=True))  # type: ignore[arg-type]


@pytest.fixture
async def cameras(tmp_path: Path) -> AsyncIterator[dict[str, Browser]]:
    """One Chromium per participant, each with a camera of its own colour."""
    async with coloured_cameras(tmp_path, COLOURS) as browsers:
        yield browsers


async def open_coloured_pages(
    cameras: dict[str, Browser], server: RunningServer
) -> dict[str, Page]:
    """One page per colour in "council", each with its own token (Chair as the chair)."""
    now = int(time.time())
    pages: dict[str, Page] = {}
    for name in COLOURS:
        role = "chair" if name == "Chair" else "participant"
        token = make_token(SECRET, room="council", name=name, role=role, now_s=now)
        pages[name] = await open_page(cameras[name], f"{server.http_url}/?token={token}")
    return pages


async def test_every_tile_shows_the_person_its_label_names(
    cameras: dict[str, Browser],
) -> None:
    settings = make_settings(slots={"audio": 3, "video": 1})
    runner, server = await start_server(settings)
    try:
        pages = await open_coloured_pages(cameras, server)
        chair, watched = pages["Chair"], Watcher(pages["Freetown"])
        ids = {}
        for name, page in pages.items():
            await page.wait_for_function("window.conference && window.conference.self")
            ids[name] = await page.evaluate("window.conference.self.id")
        # The watched page's estimate is the test's: a browser's first reports on a busy machine
        # can be low enough to pause its grid tile for good (the weak-links issue), which is not
        # what this test is about.
        await watched.page.wait_for_function("window.conference.subscribePc")
        hold_estimate(server, "Freetown", 5_000_000)
        await chair.evaluate(
            "id => window.conference.chair('grant_floor', {participant_id: id})", ids["Seoul"]
        )
        # Seoul on the stage, one of the others in the one grid tile.
        await watched.until(lambda t: len([x for x in t if x["shown"]]) == 2, 60)
        await watched.sample(2)
        await screenshot(watched.page, "identity-start.png")

        hold_estimate(server, "Freetown", 60_000)  # the grid tile pauses
        # A name card in plain words; the server's words stay for the connection details.
        await watched.until(lambda t: any(not x["shown"] and "paused" in x["layer"] for x in t), 20)
        await screenshot(watched.page, "identity-paused.png")
        # The paused tile is small: its card's parts side by side, none over another, and the
        # reason in the initials' tooltip and as an icon a screen reader names.
        cards = await watched.page.evaluate(CARD_OVERLAPS)
        assert cards and all(c["parts"] >= 3 and not c["overlaps"] for c in cards), cards
        weak = "video paused: weak connection"
        assert any(c["tooltip"] == weak for c in cards), cards
        assert any(c["icon"] == {"role": "img", "label": weak, "title": weak} for c in cards), cards
        for page in (1, 0, 1):  # paging moves the paused slot to someone else and back
            await watched.page.evaluate(f"window.conference.viewPage({page})")
            await watched.sample(2)
        await chair.evaluate(  # the stage changes hands too
            "id => window.conference.chair('grant_floor', {participant_id: id})", ids["Milan"]
        )
        await watched.sample(3)
        hold_estimate(server, "Freetown", 5_000_000)  # the link recovers
        await watched.until(shows({"Milan"}), 30)
        await watched.until(lambda t: all(x["shown"] for x in t) and len(t) == 2, 40)
        await watched.sample(2)
        await screenshot(watched.page, "identity-back.png")

        await pages["Seoul"].reload()  # Seoul comes back as itself
        await watched.sample(3)
        await watched.until(lambda t: all(x["shown"] for x in t) and len(t) == 2, 40)
        await watched.sample(2)
        assert watched.cards > 0, "no tile was ever paused"
        assert watched.pictures > 20
        # A shown tile is a camera's colour; a few samples may catch a frame mid-decode.
        assert watched.blank <= watched.pictures // 20, (watched.blank, watched.pictures)
        assert {"Milan", "Seoul"} <= watched.seen
    finally:
        await runner.cleanup()
