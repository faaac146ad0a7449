"""The meeting report: attendance, floor grants, speaking time, chair actions; JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confsfu.conference.floor import FloorControl
from confsfu.conference.permissions import Action, Role
from confsfu.conference.report import MeetingReport, ReportError
from confsfu.conference.speakers import SpeakerDetector

MIN = 60_000
START_UNIX_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
T0 = 5_000  # the shell's monotonic clock at the start


def meeting() -> MeetingReport:
    """Chair, presenter and a delegate; one delegate leaves and comes back; 70 minutes."""
    r = MeetingReport("council", now_ms=T0, unix_ms=START_UNIX_MS)
    floor = FloorControl()
    r.joined(T0, "c", "Chair", Role.CHAIR)
    r.joined(T0 + 1_000, "p", "Presenter", Role.PARTICIPANT)
    r.joined(T0 + 2_000, "d", "Delegate, Lyon", Role.PARTICIPANT)
    for e in floor.raise_hand(T0 + MIN, "d"):
        r.on_floor_event(T0 + MIN, e)
    r.chair_action(T0 + 2 * MIN, "c", Action.GRANT_FLOOR, "d", "2 min")
    for e in floor.grant(T0 + 2 * MIN, "d", 2 * MIN):
        r.on_floor_event(T0 + 2 * MIN, e)
    for e in floor.on_timer(T0 + 4 * MIN):
        r.on_floor_event(T0 + 4 * MIN, e)
    for e in floor.grant(T0 + 5 * MIN, "p", None):
        r.on_floor_event(T0 + 5 * MIN, e)
    for e in floor.grant(T0 + 5 * MIN + 500, "p", MIN):  # same holder, new limit
        r.on_floor_event(T0 + 5 * MIN + 500, e)
    for e in floor.grant(T0 + 10 * MIN, "d", None):  # replaces p
        r.on_floor_event(T0 + 10 * MIN, e)
    r.left(T0 + 11 * MIN, "d")
    for e in floor.participant_left(T0 + 11 * MIN, "d"):
        r.on_floor_event(T0 + 11 * MIN, e)
    r.joined(T0 + 20 * MIN, "d", "Delegate, Lyon", Role.PARTICIPANT)
    r.chair_action(T0 + 45 * MIN, "c", Action.EXTEND_MEETING, None, "+25 min")
    r.set_speaking_ms({"c": 90_000, "p": 600_000, "d": 45_500})
    r.ended(T0 + 70 * MIN)
    return r


def test_attendees() -> None:
    by_id = {s.pid: s for s in meeting().attendees()}
    c, p, d = by_id["c"], by_id["p"], by_id["d"]
    assert (c.role, c.present_ms, c.floor_ms, c.speaking_ms) == (Role.CHAIR, 70 * MIN, 0, 90_000)
    assert p.present_ms == 70 * MIN - 1_000
    assert p.floor_ms == 5 * MIN  # one continuous grant despite the new limit
    assert d.joined_ms == T0 + 2_000 and d.left_ms == T0 + 70 * MIN
    assert d.present_ms == (11 * MIN - 2_000) + 50 * MIN
    assert d.floor_ms == 2 * MIN + 1 * MIN
    assert d.speaking_ms == 45_500


def test_json() -> None:
    doc = json.loads(meeting().to_json())
    assert doc["room"] == "council"
    assert doc["started"] == "2025-11-24T16:00:00.000Z"
    assert doc["ended"] == "2025-11-24T17:10:00.000Z"
    d = next(x for x in doc["participants"] if x["id"] == "d")
    assert d["name"] == "Delegate, Lyon"
    assert d["joined"] == "2025-11-24T16:00:02.000Z"
    assert d["sessions"] == [
        {"joined": "2025-11-24T16:00:02.000Z", "left": "2025-11-24T16:11:00.000Z"},
        {"joined": "2025-11-24T16:20:00.000Z", "left": "2025-11-24T17:10:00.000Z"},
    ]
    grants = [(g["holder"], g["duration_ms"], g["ended_by"]) for g in doc["floor_grants"]]
    assert grants == [
        ("d", 2 * MIN, "expired"),
        ("p", 5 * MIN, "replaced"),
        ("d", 1 * MIN, "left"),
    ]
    assert doc["floor_grants"][0]["start"] == "2025-11-24T16:02:00.000Z"
    assert doc["chair_actions"] == [
        {
            "at": "2025-11-24T16:02:00.000Z",
            "actor": "c",
            "actor_name": "Chair",
            "action": "grant_floor",
            "target": "d",
            "detail": "2 min",
        },
        {
            "at": "2025-11-24T16:45:00.000Z",
            "actor": "c",
            "actor_name": "Chair",
            "action": "extend_meeting",
            "target": None,
            "detail": "+25 min",
        },
    ]


def test_csv() -> None:
    text = meeting().to_csv()
    assert text.startswith("id,name,role,joined,left,present,floor,speaking\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == ["c", "p", "d"]
    d = rows[2]
    assert d["name"] == "Delegate, Lyon"  # the comma survives quoting
    assert (d["present"], d["floor"], d["speaking"]) == ("1:00:58", "0:03:00", "0:00:45")
    assert rows[0]["present"] == "1:10:00"
    assert rows[0]["left"] == "2025-11-24T17:10:00.000Z"


def test_grants_csv() -> None:
    rows = list(csv.reader(io.StringIO(meeting().grants_to_csv())))
    assert rows[0] == ["holder", "name", "start", "end", "duration", "ended_by"]
    assert rows[1] == [
        "d",
        "Delegate, Lyon",
        "2025-11-24T16:02:00.000Z",
        "2025-11-24T16:04:00.000Z",
        "0:02:00",
        "expired",
    ]
    assert [r[5] for r in rows[1:]] == ["expired", "replaced", "left"]


def test_mid_meeting_download_measures_open_intervals_to_now() -> None:
    r = MeetingReport("r", now_ms=0, unix_ms=START_UNIX_MS)
    r.joined(0, "a", "A", Role.PARTICIPANT)
    floor = FloorControl()
    for e in floor.grant(MIN, "a"):
        r.on_floor_event(MIN, e)
    doc = json.loads(r.to_json(now_ms=3 * MIN))
    a = doc["participants"][0]
    assert (a["left"], a["present_ms"], a["floor_ms"]) == (None, 3 * MIN, 2 * MIN)
    assert doc["ended"] is None and doc["floor_grants"][0]["end"] is None
    rows = list(csv.DictReader(io.StringIO(r.to_csv(now_ms=3 * MIN))))
    assert rows[0]["left"] == "" and rows[0]["floor"] == "0:02:00"
    # without now_ms: as of the last recorded moment
    assert json.loads(r.to_json())["participants"][0]["present_ms"] == MIN  # the grant
    r.ended(4 * MIN)
    assert json.loads(r.to_json())["floor_grants"][0]["ended_by"] == "meeting ended"


def test_speaking_time_from_the_detector() -> None:
    det = SpeakerDetector()
    for t in range(0, 1_000, 20):
        det.on_audio_level(t, "a", 30, True)
    det.remove("a")  # left: the time spoken is kept
    r = MeetingReport("r", now_ms=0, unix_ms=START_UNIX_MS)
    r.joined(0, "a", "A", Role.PARTICIPANT)
    r.set_speaking_ms(det.speaking_totals())
    assert r.attendees(1_000)[0].speaking_ms == 1_000


def test_csv_formula_injection_is_defused() -> None:
    r = MeetingReport("r", now_ms=0, unix_ms=START_UNIX_MS)
    r.joined(0, "x", '=HYPERLINK("http://evil")', Role.PARTICIPANT)
    r.joined(0, "y", "-2+3", Role.PARTICIPANT)
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert rows[0]["name"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["name"] == "'-2+3"
    assert json.loads(r.to_json())["participants"][0]["name"] == '=HYPERLINK("http://evil")'


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.joined(1, "a", "A", Role.PARTICIPANT),  # twice without leaving
        lambda r: r.left(1, "ghost"),
        lambda r: (r.left(1, "a"), r.left(2, "a")),
    ],
)
def test_contradictions_are_refused(call: object) -> None:
    r = MeetingReport("r", now_ms=0, unix_ms=START_UNIX_MS)
    r.joined(0, "a", "A", Role.PARTICIPANT)
    with pytest.raises(ReportError):
        call(r)  # type: ignore[operator]


def test_floor_end_without_grant_is_refused() -> None:
    r = MeetingReport("r", now_ms=0, unix_ms=START_UNIX_MS)
    floor = FloorControl()
    floor.grant(0, "a")
    with pytest.raises(ReportError):
        r.on_floor_event(1, floor.revoke(1)[0])
    assert json.loads(r.to_json())["floor_grants"] == []


def test_iso_times() -> None:
    r = MeetingReport("r", now_ms=1_000, unix_ms=0)
    assert r.iso(1_000) == "1970-01-01T00:00:00.000Z"
    assert r.iso(1_000 + 86_400_000 + 1) == "1970-01-02T00:00:00.001Z"


@given(st.text(max_size=30), st.text(max_size=30))
def test_any_name_round_trips_through_json_and_csv(room: str, name: str) -> None:
    r = MeetingReport(room, now_ms=0, unix_ms=START_UNIX_MS)
    r.joined(0, "a", name, Role.PARTICIPANT)
    assert json.loads(r.to_json())["participants"][0]["name"] == name
    assert json.loads(r.to_json())["room"] == room
    rows = list(csv.reader(io.StringIO(r.to_csv(), newline="")))
    cell = rows[1][1]
    assert cell == name or (cell == "'" + name and name[:1] in "=+-@\t\r")


def test_what_comings_and_goings_grow_is_bounded_and_totals_survive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from confsfu.conference import report as module
    from confsfu.conference.floor import FloorGranted, FloorRevoked, RevokeReason

    monkeypatch.setattr(module, "MAX_ATTENDEE_RECORDS", 4)
    monkeypatch.setattr(module, "MAX_SESSIONS_PER_ATTENDEE", 3)
    monkeypatch.setattr(module, "MAX_GRANT_RECORDS", 2)
    monkeypatch.setattr(module, "MAX_ACTION_RECORDS", 2)
    r = MeetingReport("council", now_ms=0, unix_ms=START_UNIX_MS)
    r.joined(0, "c", "Chair", Role.CHAIR)
    r.joined(0, "m", "Mayor who left early", Role.PARTICIPANT)
    r.left(10 * MIN, "m")
    # A participant comes and goes ten times, a minute each time.
    for k in range(10):
        r.joined((20 + 2 * k) * MIN, "x", "Churn", Role.PARTICIPANT)
        r.left((21 + 2 * k) * MIN, "x")
    # Three one-visit participants who stay a second: the list is full at four.
    for k, pid in enumerate("def"):
        r.joined(50 * MIN + k, pid, pid.upper(), Role.PARTICIPANT)
        r.left(50 * MIN + k + 1_000, pid)
    # Three grants to c, a minute each, and three chair actions.
    for k in range(3):
        r.on_floor_event((55 + k) * MIN, FloorGranted("c", None))
        r.on_floor_event((56 + k) * MIN - 1, FloorRevoked("c", RevokeReason.REVOKED))
        r.chair_action((55 + k) * MIN, "c", Action.EXTEND_MEETING, None, f"+{k}")
    r.set_speaking_ms({"c": 1, "gone": 2})
    r.ended(60 * MIN)
    report = json.loads(r.to_json())
    people = {p["id"]: p for p in report["participants"]}
    # The list holds four: the mayor who left early stays; the shortest visits went.
    assert len(people) == 4 and {"c", "m", "x"} <= set(people)
    assert report["participants_omitted"] == 2
    assert people["m"]["present_ms"] == 10 * MIN
    # Churn: three sessions listed, seven folded, all ten minutes counted from the first join.
    assert len(people["x"]["sessions"]) == 3 and people["x"]["sessions_omitted"] == 7
    assert people["x"]["present_ms"] == 10 * MIN
    assert people["x"]["joined"] == r.iso(20 * MIN)
    # Two grants listed; the floor time of all three kept.
    assert len(report["floor_grants"]) == 2 and report["floor_grants_omitted"] == 1
    assert people["c"]["floor_ms"] == 3 * (MIN - 1)
    assert [a["detail"] for a in report["chair_actions"]] == ["+1", "+2"]
    assert report["chair_actions_omitted"] == 1
    assert "gone" not in json.dumps(report)  # speaking time only of listed participants


def test_the_speaker_detector_keeps_a_bounded_number_of_former_talkers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from confsfu.conference import speakers

    monkeypatch.setattr(speakers, "MAX_FORMER_TALKERS", 3)
    detector = SpeakerDetector()
    for k in range(6):
        pid = f"p{k}"
        start = k * 10_000
        for t in range(0, 1_000 * (k + 1), 20):  # p5 speaks longest
            detector.on_audio_level(start + t, pid, 10, True)
        detector.remove(pid)
    totals = detector.speaking_totals()
    assert set(totals) == {"p3", "p4", "p5"}  # the three who spoke longest
    assert totals["p5"] > totals["p4"] > totals["p3"] > 0
