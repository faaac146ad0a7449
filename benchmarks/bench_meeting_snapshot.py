"""What a meeting snapshot costs the worker's loop (capture + encode, at most 4 a second per
changing room) and a room's next home (parse + restore, once), for a typical meeting and the
fullest one the bounds allow (issue 23).

.venv/bin/python benchmarks/bench_meeting_snapshot.py

A typical meeting: 46 people, 200 chat messages of 80 characters, 30 grants with time limits,
30 mutes, raised hands. The fullest: 101 people with 64-character names and 200-character
tokens, 3,000 chat messages of 1,000 four-byte characters, 2,500 grants. CPU time, best of 20.

`capture+encode` is the worker's steady state: with the room's SnapshotCache, one new chat
message and one new grant since the last snapshot, to UTF-8 bytes (capture_bytes); `cold` is a
capture without the cache (the room's first snapshot) and its encoding as text (capture_json).
"""

from __future__ import annotations

import time

from confsfu.conference import chat
from confsfu.conference.meeting import Meeting
from confsfu.conference.permissions import Role
from confsfu.conference.room import Room
from confsfu.conference.snapshot import SnapshotCache, capture_bytes, capture_json, restore

UNIX = 1_700_000_000_000
RUNS = 20


def typical() -> Meeting:
    m = Meeting(Room("council"), now_ms=0, unix_ms=UNIX, scheduled_minutes=70)
    m.chat = chat.Chat(rate_count=10**6)
    m.join(0, "chair", "Chair", Role.CHAIR, "t-chair")
    for i in range(45):
        m.join(1, f"p{i}", f"Participant {i}", Role.PARTICIPANT, f"tok-{i:032d}")
    t = 2
    for i in range(200):
        text = "a chat message of about eighty characters, as people write them in a meeting."
        m.send_chat(t, f"p{i % 45}", text)
        t += 1
    for i in range(30):
        m.chair(t, "chair", "grant_floor", target=f"p{i}", limit_s=120)
        m.chair(t + 1, "chair", "mute", target=f"p{i}", kind="audio")
        hand = f"p{i + 10}"
        if hand not in m.floor.hands and m.floor.holder != hand:
            m.raise_hand(t + 2, hand)
        t += 3
    return m


def fullest() -> Meeting:
    m = Meeting(Room("council", max_participants=1000), now_ms=0, unix_ms=UNIX)
    m.chat = chat.Chat(rate_count=10**6)
    m.join(0, "chair", "C" * 64, Role.CHAIR, "t-chair")
    for i in range(100):
        m.join(1, f"p{i}", "N" * 64, Role.PARTICIPANT, f"t-{i}" + "x" * 200)
    t = 2
    for i in range(3000):
        m.send_chat(t, f"p{i % 100}", "\U0001f600" * chat.MAX_CHARS)
        t += 1
    for i in range(2500):
        m.chair(t, "chair", "grant_floor", target=f"p{i % 100}")
        t += 1
    return m


def main() -> None:
    for name, meeting in (("typical", typical()), ("fullest", fullest())):
        capture_s = cold_s = restore_s = float("inf")
        cache = SnapshotCache()
        capture_bytes(meeting, cache)
        t = 10**5
        data = b""
        said = meeting.chat.history()[-1].text  # typical or fullest, as the others
        for _ in range(RUNS):
            meeting.send_chat(t, "p1", said)
            meeting.chair(t + 1, "chair", "grant_floor", target="p2")
            t += 2
            started = time.process_time()
            data = capture_bytes(meeting, cache)
            capture_s = min(capture_s, time.process_time() - started)
            started = time.process_time()
            text = capture_json(meeting)
            cold_s = min(cold_s, time.process_time() - started)
            started = time.process_time()
            restore(text, room="council", now_ms=10**6, unix_ms=UNIX + 10**6, max_participants=1000)
            restore_s = min(restore_s, time.process_time() - started)
        print(
            f"{name}: {len(data)} bytes; capture+encode {capture_s * 1000:.2f} ms"
            f" (cold {cold_s * 1000:.2f} ms), parse+restore {restore_s * 1000:.2f} ms"
            f" (CPU time, best of {RUNS})"
        )


if __name__ == "__main__":
    main()
