"""The page in the browser's language: a Spanish Chromium sees the join screen and the meeting in
Spanish (a button, a toast from a server error, a tile's name card), switches to Korean on the
page without reloading it (the meeting goes on); a French Chromium's watch page is French; a
Korean chair's panel is Korean, and English again when the chair picks English."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from confsfu.settings import RoomSettings
from confsfu.tokens import make_token
from tests.browser.conftest import PageDriver, screenshot, wait_for
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.browser

# Every shown tile's name and name-card reason ("" while its video plays).
TILES = """
() => [...document.querySelectorAll('#stage-tile, #grid .tile')]
  .filter((t) => !t.hidden && t.offsetParent !== null)
  .map((t) => ({name: t.querySelector('video')?.dataset.participant ?? null,
                why: t.querySelector('.why')?.textContent ?? ''}))
"""


async def page_in(browser: Browser, locale: str, url: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    page = await context.new_page()
    page.on("console", lambda m: print(f"[{locale}] {m.type}: {m.text}"))
    await page.goto(url)
    return page


async def text(page: PageDriver, selector: str) -> str:
    return ((await page.text_content(selector)) or "").strip()


async def toasts(page: Page) -> list[str]:
    found: list[str] = await page.eval_on_selector_all(
        "#toasts .toast p", "(ps) => ps.map((p) => p.textContent)"
    )
    return found


async def why_of(page: PageDriver, name: str) -> str | None:
    tiles: list[dict[str, Any]] = await page.evaluate(TILES)
    return next((t["why"] for t in tiles if t["name"] == name), None)


@pytest.fixture
async def open_room(server_factory: Any) -> RunningServer:
    room = RoomSettings(name="demo", open=True, watch_link=True, max_listeners=5)
    running: RunningServer = await server_factory(rooms=[room])
    return running


async def test_spanish_browser_then_korean_on_the_page(
    browser: Browser, open_room: RunningServer
) -> None:
    url = open_room.http_url
    page = await page_in(browser, "es-ES", f"{url}/?room=demo")
    assert await page.evaluate("navigator.language") == "es-ES"

    # The join screen, in Spanish.
    await page.wait_for_selector("#join-view:not([hidden])")
    assert await page.evaluate("document.documentElement.lang") == "es"
    assert await text(page, "#join-form h2") == "Entrar a una reunión"
    assert await text(page, "#join-form button[type=submit]") == "Entrar"
    assert await text(page, "label[for=join-name]") == "Tu nombre"
    assert await page.get_attribute("#join-name", "placeholder") == "p. ej. Ana Souza"
    assert await page.eval_on_selector("#language", "(s) => s.value") == "es"
    ready = "Comprueba tu cámara y tu micrófono y luego entra."
    await wait_for(lambda: _equals(lambda: text(page, "#join-hint"), ready), "the Spanish hint")
    await screenshot(page, "languages-es-join.png")

    await page.fill("#join-name", "Ana")
    await page.click("#join-form button[type=submit]")
    await page.wait_for_function("() => window.conference?.state === 'connected'")
    assert (await text(page, "#status")).startswith("Conectado a la sala «demo» como Ana")
    assert await text(page, "#mic-toggle") == "Silenciar"
    assert await text(page, "#hand-toggle") == "Levantar la mano"
    assert await page.get_attribute("#chat-toggle", "aria-label") == "Chat"

    # Someone with the camera off: their tile shows the name card with the reason in Spanish.
    other = await page_in(browser, "en-US", f"{url}/?room=demo&name=Bashir")
    await other.wait_for_function("() => window.conference?.state === 'connected'")
    assert await text(other, "#mic-toggle") == "Mute"  # the other browser speaks English
    await other.evaluate("() => window.conference.setCamera(false)")

    async def bashir_card() -> str | None:
        return await why_of(page, "Bashir")

    await wait_for(
        lambda: _equals(bashir_card, "cámara apagada"), "Bashir's name card in Spanish", 20
    )

    # A request the server refuses: the toast is in Spanish.
    await page.evaluate("() => window.conference.requestUnmute('audio')")
    spanish_refusal = "No hay nada que pedir: el moderador no te ha silenciado."
    await wait_for(lambda: _contains(toasts(page), spanish_refusal), "the Spanish toast")
    await screenshot(page, "languages-es-meeting.png")

    # Korean, picked on the page: no reload, the same connection, the words change.
    await page.evaluate("() => { window.__sameDocument = true; }")
    client_before = await page.evaluate("() => window.conference.self.id")
    await page.select_option("#language", "ko")
    assert await page.evaluate("document.documentElement.lang") == "ko"
    assert await page.evaluate("window.__sameDocument") is True
    assert await page.evaluate("() => window.conference.state") == "connected"
    assert await page.evaluate("() => window.conference.self.id") == client_before
    assert await page.evaluate("localStorage.getItem('confsfu.lang')") == "ko"
    assert await text(page, "#mic-toggle") == "음소거"
    assert await text(page, "#hand-toggle") == "손 들기"
    assert await text(page, "#leave") == "나가기"
    assert await text(page, "#devices-toggle") == "장치"
    assert (await text(page, "#status")).startswith("“demo” 회의실에 Ana(으)로 연결됨")
    await wait_for(lambda: _equals(bashir_card, "카메라 꺼짐"), "Bashir's name card in Korean")
    await page.evaluate("() => window.conference.requestUnmute('audio')")
    korean_refusal = "요청할 것이 없습니다: 의장이 나를 음소거하지 않았습니다."
    await wait_for(lambda: _contains(toasts(page), korean_refusal), "the Korean toast")
    await screenshot(page, "languages-ko-meeting.png")

    # The choice is kept: a reload comes back in Korean (though the browser says Spanish).
    await page.reload()
    await page.wait_for_function("() => window.conference?.state === 'connected'")
    assert await page.evaluate("document.documentElement.lang") == "ko"
    assert await text(page, "#mic-toggle") == "음소거"


async def test_the_watch_page_in_french(browser: Browser, open_room: RunningServer) -> None:
    page = await page_in(browser, "fr-FR", f"{open_room.http_url}/?room=demo&watch=1")
    await page.wait_for_function("() => window.conference?.state === 'connected'")
    assert await page.evaluate("document.documentElement.lang") == "fr"
    assert await text(page, "#room-name") == "Vous regardez : demo"
    assert (await text(page, "#watch-text")).startswith("Vous regardez. Personne ne vous voit")
    assert await text(page, "#watch-leave") == "Quitter"
    assert await text(page, "#watch-fullscreen") == "Plein écran"
    assert await text(page, "#status") == "Vous regardez la salle « demo »"
    await screenshot(page, "languages-fr-watch.png")
    await page.click("#watch-leave")
    await wait_for(lambda: text(page, "#left-text"), "the left view")
    assert await text(page, "#left-text") == "Vous avez arrêté de regarder."
    assert await text(page, "#rejoin") == "Regarder à nouveau"


async def _equals(check: Any, wanted: str) -> bool:
    return bool(await check() == wanted)


async def _contains(found: Any, wanted: str) -> bool:
    return wanted in await found


async def test_the_chair_panel_in_korean(browser: Browser, open_room: RunningServer) -> None:
    token = make_token(SECRET, room="demo", name="Ines", role="chair", now_s=int(time.time()))
    page = await page_in(browser, "ko-KR", f"{open_room.http_url}/?token={token}")
    await page.wait_for_function("() => window.conference?.state === 'connected'")
    await page.wait_for_selector("#chair-panel:not([hidden])")
    assert await page.evaluate("document.documentElement.lang") == "ko"
    assert await text(page, "#chair-mute-all") == "모두 음소거"
    assert await text(page, "#chair-lock") == "회의 잠그기"
    assert await text(page, "#chair-schedule") == "예정된 종료 시각이 없습니다."
    assert await text(page, "#chair-extend-why") == (
        "연장할 수 없습니다: 이 회의에는 예정된 종료 시각이 없어 연장할 것이 없습니다."
    )
    filters = await page.eval_on_selector_all(
        "#chair-filters .filter-name", "(spans) => spans.map((s) => s.textContent)"
    )
    assert filters == ["말하는 중", "손 듦", "음소거", "연결 약함"]
    row = await page.eval_on_selector_all(
        "#chair-participants .badge", "(badges) => badges.map((b) => b.textContent)"
    )
    assert row == ["나", "의장"], row
    await page.click("#chair-lock")
    await wait_for(lambda: _equals(lambda: text(page, "#chair-lock"), "회의 잠금 해제"), "unlock")
    await screenshot(page, "languages-ko-chair.png")
    # English again, on the page: the panel's rows and buttons follow.
    await page.select_option("#language", "en")
    assert await text(page, "#chair-lock") == "Unlock meeting"
    assert await text(page, "#chair-schedule") == "No scheduled end."
    row = await page.eval_on_selector_all(
        "#chair-participants .badge", "(badges) => badges.map((b) => b.textContent)"
    )
    assert row == ["you", "chair"], row
