"""Room chat: the text cleaner, posting limits (length, rate, chat off), removal, bounded state,
and chat through the Meeting (permissions, report)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.chat import (
    HISTORY,
    MAX_CHARS,
    RATE_COUNT,
    RATE_WINDOW_MS,
    Chat,
    ChatError,
    ChatPosted,
    ChatRemoved,
    ChatToggled,
    check_text,
    clean_text,
)
from confsfu.conference.meeting import Meeting, MeetingError
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room

# ---- the text ---------------------------------------------------------------------------------

CLEAN = [
    ("hello", "hello"),
    ("  padded \n", "padded"),
    ("<b>x</b> & 'y'", "<b>x</b> & 'y'"),  # kept as text: pages never read it as markup
    ("a\r\nb\rc", "a\nb\nc"),
    ("a\u2028b\u2029c", "a\nb\nc"),
    ("tab\there", "tab\there"),
    ("bell\x07 nul\x00 esc\x1b[31m", "bell nul esc[31m"),
    ("del\x7f c1\x9b x\x85y", "del c1 x\ny"),  # NEL is a line break
    ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override
    ("iso\u2066late\u2069d", "isolated"),
    ("lone \ud800 surrogate", "lone  surrogate"),
    ("a\n\n\n\n\nb", "a\n\nb"),
    ("a\n \n\t\n b", "a\n\n b"),
    ("emoji 👩‍💻 and zwj", "emoji 👩‍💻 and zwj"),
    ("مرحبا Lima", "مرحبا Lima"),
    ("\x00\x01\x02", ""),
    ("   ", ""),
]


@pytest.mark.parametrize(("raw", "clean"), CLEAN)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize("raw", [None, 5, b"bytes", ["a"], {"text": "a"}])
def test_anything_but_a_string_is_empty(raw: object) -> None:
    assert clean_text(raw) == ""
    with pytest.raises(ChatError) as info:
        check_text(raw)
    assert info.value.code == "bad_message"


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("x", True),
        ("x" * MAX_CHARS, True),
        ("x" * (MAX_CHARS + 1), False),
        (" " * 50 + "x" * MAX_CHARS + "\n" * 50, True),  # counted after stripping
        ("\x07" * 3000 + "x", True),  # counted after cleaning
        ("", False),
        ("\u202e\x00 \n", False),
    ],
)
def test_check_text_limits(raw: str, ok: bool) -> None:
    if ok:
        assert check_text(raw) == clean_text(raw)
    else:
        with pytest.raises(ChatError) as info:
            check_text(raw)
        assert info.value.code == "bad_message"


@given(st.text())
def test_clean_text_never_raises_and_leaves_no_control_characters(raw: str) -> None:
    text = clean_text(raw)
    assert text == text.strip()
    assert clean_text(text) == text  # cleaning twice changes nothing
    for ch in text:
        assert ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F), repr(ch)
        assert not 0xD800 <= ord(ch) <= 0xDFFF
        assert ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\r\u2028\u2029"
    assert "\n\n\n" not in text
    text.encode("utf-8")  # no lone surrogates: it can go out as JSON


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.lists(st.text())))
def test_check_text_raises_only_chat_errors(raw: object) -> None:
    try:
        text = check_text(raw)
    except ChatError as exc:
        assert exc.code == "bad_message"
    else:
        assert 1 <= len(text) <= MAX_CHARS


# ---- posting ----------------------------------------------------------------------------------

# (who, at_ms, text, expected: "ok" or the error code); chat off from t=50_000 to 60_000.
POSTS = [
    ("a", 0, "one", "ok"),
    ("a", 1_000, "two", "ok"),
    ("a", 2_000, "three", "ok"),
    ("a", 3_000, "four", "ok"),
    ("a", 4_000, "five", "ok"),
    ("a", 5_000, "six", "rate_limited"),  # 5 in the last 10 s
    ("b", 5_000, "another's own limit", "ok"),
    ("a", 9_999, "still", "rate_limited"),
    ("a", 10_000, "the first has aged out", "ok"),
    ("a", 10_001, "not the second yet", "rate_limited"),
    ("a", 11_000, "the second has", "ok"),
    ("a", 20_000, "   ", "bad_message"),
    ("a", 20_000, "x" * (MAX_CHARS + 1), "bad_message"),
    ("a", 20_000, "refusals cost nothing", "ok"),
    ("a", 50_000, "chat is off", "refused"),
    ("chair", 50_000, "chairs may", "ok"),
    ("a", 60_000, "chat is on again", "ok"),
]


def test_post_table() -> None:
    chat = Chat()
    posted: list[str] = []
    for who, at_ms, text, expected in POSTS:
        if at_ms == 50_000 and chat.enabled:
            assert chat.set_enabled(at_ms, "chair", False) == [ChatToggled(False, "chair")]
        if at_ms == 60_000 and not chat.enabled:
            assert chat.set_enabled(at_ms, "chair", True) == [ChatToggled(True, "chair")]
        try:
            events = chat.post(at_ms, who, who.title(), chair=who == "chair", text=text)
        except ChatError as exc:
            assert exc.code == expected, (who, at_ms, text, exc.message)
            continue
        assert expected == "ok", (who, at_ms, text)
        [event] = events
        assert isinstance(event, ChatPosted)
        assert (event.message.sender, event.message.at_ms, event.message.text) == (who, at_ms, text)
        posted.append(text)
    assert [m.text for m in chat.history()] == posted
    ids = [m.id for m in chat.history()]
    assert ids == list(range(1, len(posted) + 1))


def test_rate_limit_message_says_how_long_to_wait() -> None:
    chat = Chat()
    for t in range(RATE_COUNT):
        chat.post(t * 100, "a", "A", chair=False, text=str(t))
    with pytest.raises(ChatError) as info:
        chat.post(1_000, "a", "A", chair=False, text="again")
    assert info.value.code == "rate_limited"
    assert f"{RATE_COUNT} chat messages in {RATE_WINDOW_MS // 1000} s" in info.value.message
    assert "wait 9 s" in info.value.message


def test_chairs_are_rate_limited_too() -> None:
    chat = Chat()
    for t in range(RATE_COUNT):
        chat.post(t, "chair", "Chair", chair=True, text="x")
    with pytest.raises(ChatError) as info:
        chat.post(RATE_COUNT, "chair", "Chair", chair=True, text="x")
    assert info.value.code == "rate_limited"


def test_toggling_to_the_same_state_says_nothing() -> None:
    chat = Chat()
    assert chat.set_enabled(0, "c", True) == []
    assert chat.set_enabled(0, "c", False) == [ChatToggled(False, "c")]
    assert chat.set_enabled(1, "c", False) == []


# ---- removal and bounds -----------------------------------------------------------------------


def test_remove_table() -> None:
    chat = Chat(history=3)
    for i in range(5):  # ids 1..5; 1 and 2 have aged out of the history
        chat.post(i * RATE_WINDOW_MS, "a", "A", chair=False, text=f"m{i + 1}")
    assert [m.id for m in chat.history()] == [3, 4, 5]
    cases = [(4, "ok"), (4, "refused"), (1, "refused"), (6, "refused"), (None, "bad_message")]
    for message_id, expected in cases:
        try:
            events = chat.remove(100_000, "chair", message_id)
        except ChatError as exc:
            assert exc.code == expected, (message_id, exc.message)
            continue
        assert expected == "ok"
        assert events == [ChatRemoved(4, "chair", "a")]
    assert [m.id for m in chat.history()] == [3, 5]


def test_history_and_rate_state_stay_bounded() -> None:
    chat = Chat()
    for i in range(3 * HISTORY):
        chat.post(i * RATE_WINDOW_MS, f"p{i % 7}", "P", chair=False, text="x" * MAX_CHARS)
    assert len(chat.history()) == HISTORY
    assert chat.history()[-1].id == 3 * HISTORY
    assert chat.tracked == 7
    for i in range(7):
        chat.forget(f"p{i}")
    assert chat.tracked == 0


# ---- through the meeting ----------------------------------------------------------------------


def meeting() -> Meeting:
    m = Meeting(Room("council"), now_ms=0, unix_ms=1_700_000_000_000)
    m.join(0, "chair", "Los Angeles", Role.CHAIR, "t-chair")
    m.join(0, "a", "Seoul", Role.PARTICIPANT, "t-a")
    m.join(0, "b", "Lima", Role.PARTICIPANT, "t-b")
    return m


@pytest.mark.parametrize("command", ["remove_chat", "chat_off", "chat_on"])
def test_chat_chair_actions_are_for_chairs(command: str) -> None:
    m = meeting()
    m.send_chat(1, "a", "hello")
    with pytest.raises(MeetingError) as info:
        m.chair(2, "a", command, message_id=1)
    assert info.value.code == "forbidden"
    assert [x.text for x in m.chat.history()] == ["hello"] and m.chat.enabled


def test_meeting_chat_off_remove_and_report() -> None:
    m = meeting()
    m.send_chat(1_000, "a", '=HYPERLINK("http://evil")')
    m.send_chat(2_000, "b", "see https://example.org/agenda")
    m.chair(3_000, "chair", "chat_off")
    with pytest.raises(MeetingError) as info:
        m.send_chat(4_000, "a", "may I?")
    assert info.value.code == "refused"
    m.send_chat(5_000, "chair", "only chairs now")
    m.chair(6_000, "chair", "remove_chat", message_id=1)
    with pytest.raises(MeetingError) as again:
        m.chair(6_500, "chair", "remove_chat", message_id=1)
    assert again.value.code == "refused"
    m.chair(7_000, "chair", "chat_on")
    m.send_chat(8_000, "a", "thank you")
    assert [(x.id, x.name, x.chair) for x in m.chat.history()] == [
        (2, "Lima", False),
        (3, "Los Angeles", True),
        (4, "Seoul", False),
    ]

    report = json.loads(m.report.to_json(9_000))
    chat = report["chat"]
    assert [(c["id"], c["name"], c["removed"]) for c in chat] == [
        (1, "Seoul", True),
        (2, "Lima", False),
        (3, "Los Angeles", False),
        (4, "Seoul", False),
    ]
    assert chat[0]["text"] == '=HYPERLINK("http://evil")' and chat[0]["removed_by"] == "chair"
    assert chat[0]["at"] == "2023-11-14T22:13:21.000Z"
    details = [a["detail"] for a in report["chair_actions"]]
    assert details == ["chat_off", "remove_chat 1", "chat_on"]
    assert {a["action"] for a in report["chair_actions"]} == {"moderate_chat"}
    assert [a["target"] for a in report["chair_actions"]] == [None, "a", None]

    tables = m.report.full_csv(9_000).split("\r\n\n")
    assert len(tables) == 4
    actions = list(csv.reader(io.StringIO(tables[2])))
    assert actions[0] == ["at", "actor", "actor_name", "action", "target", "target_name", "detail"]
    assert [row[6] for row in actions[1:]] == ["chat_off", "remove_chat 1", "chat_on"]
    assert actions[2][4:6] == ["a", "Seoul"]  # whose message it was
    rows = list(csv.reader(io.StringIO(tables[3])))
    assert rows[0][:6] == ["id", "at", "sender", "name", "text", "removed"]
    assert rows[1][4] == '\'=HYPERLINK("http://evil")'  # a spreadsheet does not run it
    assert [row[5] for row in rows[1:]] == ["yes", "no", "no", "no"]


def test_leaving_forgets_the_rate_limit() -> None:
    m = meeting()
    m.send_chat(0, "a", "hi")
    assert m.chat.tracked == 1
    m.leave(1, "a")
    assert m.chat.tracked == 0
    assert [x.name for x in m.chat.history()] == ["Seoul"]  # the message stays
