"""check_sdp: one pass over the text refuses SDP beyond the limits, naming the limit and value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.settings import SdpSettings
from confsfu.signalling.sdp_limits import SdpLimitError, SdpLimits, check_sdp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LIMITS = SdpSettings().limits()
HEAD = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def section(kind: str = "video", mid: int = 0, extra: str = "") -> str:
    return f"m={kind} 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n{extra}"


def lines(prefix: str, n: int) -> str:
    return "".join(f"{prefix}{i}\r\n" for i in range(n))


def test_settings_defaults_are_the_sdp_limits_defaults() -> None:
    assert SdpLimits() == LIMITS


@pytest.mark.parametrize(
    "name",
    [
        "chromium_offer.sdp",
        "chromium_offer_simulcast.sdp",
        "chromium_offer_legacy_sim.sdp",
        "firefox_offer_simulcast.sdp",
        "aiortc_answer_simulcast.sdp",
    ],
)
def test_browser_offers_and_answers_pass(name: str) -> None:
    check_sdp((FIXTURES / name).read_text(), LIMITS)


def test_a_subscribe_answer_passes_with_as_many_m_lines_as_the_offer() -> None:
    offer = (FIXTURES / "aiortc_subscribe_offer.sdp").read_text()
    answer = (FIXTURES / "firefox_subscribe_answer.sdp").read_text()
    with pytest.raises(SdpLimitError, match=r"sdp\.sections"):
        check_sdp(answer, LIMITS)
    # what the session allows an answer to its subscribe offer
    check_sdp(answer, dataclasses.replace(LIMITS, sections=offer.count("\nm=")))


# (what the SDP holds, the limit it exceeds, the value reported)
OVER = [
    (HEAD + "".join(section(mid=i) for i in range(5)), "sections", 5),
    (HEAD + "".join(section(mid=i) for i in range(500)), "sections", 5),
    (HEAD + section(extra=lines("a=rid:r", 4)), "rids_per_section", 4),
    (HEAD + section(extra=lines("a=rtpmap:", 49)), "codecs_per_section", 49),
    (HEAD + "m=video 9 RTP/AVP " + " ".join(map(str, range(49))), "codecs_per_section", 49),
    (HEAD + section(extra=lines("a=extmap:", 21)), "extensions_per_section", 21),
    (HEAD + section(extra=lines("a=candidate:", 33)), "candidates_per_section", 33),
    (HEAD + section(extra=lines("a=ssrc:", 33)), "ssrc_lines_per_section", 33),
    (HEAD + section(extra=lines("a=ssrc-group:FID 1 ", 9)), "ssrc_groups_per_section", 9),
    (HEAD + section(extra="a=ssrc-group:SIM 1 2 3 4\r\n"), "ssrcs_per_group", 4),
    (HEAD + section(extra=lines("a=x-", 300)), "lines_per_section", 301),
    (HEAD + lines("a=x-", 297), "lines_per_section", 301),
    (HEAD + section(extra="a=" + "x" * 1023 + "\r\n"), "line_chars", 1025),
    (HEAD + "".join(section(mid=i, extra=lines("a=x-", 148)) for i in range(4)), "lines", 601),
    # separators other than CRLF cannot hide m-lines or candidates from the count
    ("v=0\x1c" + "m=audio 9 RTP/AVP 0\u2028" * 5, "sections", 5),
    ("v=0\n" + section() + "a=candidate:x\r" * 33, "candidates_per_section", 33),
]


@pytest.mark.parametrize(("sdp", "limit", "value"), OVER)
def test_sdp_beyond_a_limit_is_refused_naming_it(sdp: str, limit: str, value: int) -> None:
    with pytest.raises(SdpLimitError) as caught:
        check_sdp(sdp, LIMITS)
    assert (caught.value.limit, caught.value.value) == (limit, value)
    assert caught.value.maximum == getattr(LIMITS, limit)
    assert f"sdp.{limit}" in str(caught.value) and str(value) in str(caught.value)


@pytest.mark.parametrize(("sdp", "limit", "value"), OVER)
def test_the_same_sdp_passes_when_its_limit_is_raised(sdp: str, limit: str, value: int) -> None:
    wide = dataclasses.replace(LIMITS, **{"lines": 10_000, limit: 10_000})
    check_sdp(sdp, wide)


def test_at_each_limit_passes() -> None:
    wide = dataclasses.replace(LIMITS, lines=10_000)  # all per-section limits at once
    extra = (
        lines("a=rid:r", 3)
        + lines("a=rtpmap:", 48)
        + lines("a=extmap:", 20)
        + lines("a=candidate:", 32)
        + lines("a=ssrc:", 32)
        + lines("a=ssrc-group:FID 1 ", 7)
        + "a=ssrc-group:SIM 1 2 3\r\n"
    )
    check_sdp(HEAD + "".join(section(mid=i, extra=extra) for i in range(LIMITS.sections)), wide)
    check_sdp(HEAD + "".join(section(mid=i, extra=lines("a=x-", 295)) for i in range(2)), LIMITS)


def test_the_error_says_where() -> None:
    with pytest.raises(SdpLimitError, match="m-line 2 has at least 4 a=rid lines; at most 3"):
        check_sdp(HEAD + section() + section(extra=lines("a=rid:r", 4)), LIMITS)
    with pytest.raises(SdpLimitError, match="the session part has at least 1025 characters"):
        check_sdp("v=0\r\ns=" + "x" * 1023, LIMITS)


SDPISH = st.lists(
    st.sampled_from(
        [
            *("m=", "a=", "rid:", "ssrc:", "ssrc-group:", "SIM ", "candidate:", "extmap:"),
            *("rtpmap:", "\r\n", "\n", "\r", "\x1c", " ", "1", "x"),
        ]
    )
    | st.text(max_size=20),
    max_size=200,
).map("".join)


@settings(max_examples=500)
@given(text=SDPISH, limits=st.builds(SdpLimits, *[st.integers(0, 5)] * 11))
def test_random_sdpish_text_raises_nothing_but_sdp_limit_error(
    text: str, limits: SdpLimits
) -> None:
    try:
        check_sdp(text, limits)
    except SdpLimitError as exc:
        assert exc.value > exc.maximum
        assert exc.limit in {f.name for f in dataclasses.fields(SdpLimits)}
