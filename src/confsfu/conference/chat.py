"""Room chat: text messages over the signalling connection, with limits a participant cannot
talk past, and the chair's switch and eraser.

Sans-IO: every method takes `now_ms` (the shell's monotonic clock) and returns what happened or
raises ChatError with a protocol error code, changing nothing. Nothing a participant sends grows
this state without bound: the history keeps the last `history` messages, the rate limiter one
short window of times per participant present (forgotten when they leave).
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass

MAX_CHARS = 1_000  # a message's text, after cleaning
MAX_RAW_CHARS = 4_000  # what the protocol accepts before cleaning (control characters and all)
HISTORY = 200  # messages kept for late joiners
RATE_COUNT = 5  # at most this many messages ...
RATE_WINDOW_MS = 10_000  # ... in this long, per participant

# Characters that change how the text around them is shown, not what it says: bidirectional
# embeddings, overrides and isolates ("Trojan Source"), and the deprecated format controls.
_INVISIBLE_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
)
_LINE_BREAKS = re.compile(r"\r\n|[\r\u2028\u2029\x0b\x0c\x85]")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")  # three or more line breaks: two


class ChatError(ValueError):
    """A chat request was refused; `code` is the protocol error code, `reason` why in one word
    (`empty`, `too_long`, `chat_off`, `too_many`, `message_gone`). Nothing was changed."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


def clean_text(raw: object) -> str:
    """The text as it is shown and kept: line breaks made `\\n`, tabs kept, every other control
    character, lone surrogate and bidirectional control removed, runs of blank lines made one,
    spaces around it stripped. Never raises; anything but a string is empty text."""
    if not isinstance(raw, str):
        return ""
    text = _LINE_BREAKS.sub("\n", raw)
    kept = []
    for ch in text:
        if ch in "\n\t":
            kept.append(ch)
            continue
        if ch in _INVISIBLE_CONTROLS:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):  # control characters, lone surrogates
            continue
        kept.append(ch)
    text = _BLANK_LINES.sub("\n\n", "".join(kept))
    return text.strip()


def check_text(raw: object, max_chars: int = MAX_CHARS) -> str:
    """`clean_text(raw)`, or ChatError (`bad_message`) when that is empty or too long."""
    text = clean_text(raw)
    if not text:
        raise ChatError("bad_message", "a chat message needs some text", "empty")
    if len(text) > max_chars:
        too_long = f"a chat message may have at most {max_chars} characters, not {len(text)}"
        raise ChatError("bad_message", too_long, "too_long")
    return text


# ---- records and events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One posted message; `name` and `chair` as the sender was when posting."""

    id: int  # 1, 2, ... per room
    at_ms: int
    sender: str  # participant id
    name: str
    chair: bool
    text: str


@dataclass(frozen=True, slots=True)
class ChatPosted:
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class ChatRemoved:
    message_id: int
    by: str  # the chair who removed it
    sender: str  # who had posted it


@dataclass(frozen=True, slots=True)
class ChatToggled:
    enabled: bool  # for participants; chairs may always post
    by: str


ChatEvent = ChatPosted | ChatRemoved | ChatToggled


# ---- the core -----------------------------------------------------------------------------------


class Chat:
    """One room's chat: who may post now, the recent history, the chair's actions."""

    def __init__(
        self,
        *,
        max_chars: int = MAX_CHARS,
        history: int = HISTORY,
        rate_count: int = RATE_COUNT,
        rate_window_ms: int = RATE_WINDOW_MS,
        enabled: bool = True,
    ) -> None:
        if max_chars < 1 or history < 1 or rate_count < 1 or rate_window_ms < 1:
            raise ValueError("chat limits must be positive")
        self.max_chars = max_chars
        self.rate_count = rate_count
        self.rate_window_ms = rate_window_ms
        self._enabled = enabled
        self._history: deque[ChatMessage] = deque(maxlen=history)
        self._recent: dict[str, deque[int]] = {}  # pid -> times of its last posts
        self._next_id = 1

    @property
    def enabled(self) -> bool:
        """Whether participants may post (chairs always may)."""
        return self._enabled

    def history(self) -> list[ChatMessage]:
        """The last messages not removed, oldest first."""
        return list(self._history)

    def post(
        self, now_ms: int, sender: str, name: str, *, chair: bool, text: object
    ) -> list[ChatEvent]:
        """Post `text` for `sender`; refused while chat is off (participants), when the text is
        empty or too long after cleaning, or beyond the rate (`rate_limited`)."""
        if not chair and not self._enabled:
            raise ChatError("refused", "the chair has turned chat off", "chat_off")
        clean = check_text(text, self.max_chars)
        recent = self._recent.get(sender)
        if recent is not None:
            while recent and now_ms - recent[0] >= self.rate_window_ms:
                recent.popleft()
            if len(recent) >= self.rate_count:
                wait_ms = self.rate_window_ms - (now_ms - recent[0])
                raise ChatError(
                    "rate_limited",
                    f"at most {self.rate_count} chat messages in {self.rate_window_ms // 1000} s;"
                    f" wait {max(1, -(-wait_ms // 1000))} s",
                    "too_many",
                )
        else:
            recent = self._recent[sender] = deque(maxlen=self.rate_count)
        recent.append(now_ms)
        message = ChatMessage(self._next_id, now_ms, sender, name, chair, clean)
        self._next_id += 1
        self._history.append(message)
        return [ChatPosted(message)]

    def remove(self, now_ms: int, by: str, message_id: int | None) -> list[ChatEvent]:
        """The chair removes a message from the history (and from everyone's page)."""
        if message_id is None:
            raise ChatError("bad_message", "remove_chat needs a message_id")
        for i, message in enumerate(self._history):
            if message.id == message_id:
                del self._history[i]
                return [ChatRemoved(message_id, by, message.sender)]
        if 1 <= message_id < self._next_id:
            raise ChatError(
                "refused",
                f"chat message {message_id} was already removed or is too old",
                "message_gone",
            )
        raise ChatError("refused", f"there is no chat message {message_id}", "message_gone")

    def set_enabled(self, now_ms: int, by: str, enabled: bool) -> list[ChatEvent]:
        """Turn chat on or off for participants; no event when it already was."""
        if self._enabled == enabled:
            return []
        self._enabled = enabled
        return [ChatToggled(enabled, by)]

    def forget(self, pid: str) -> None:
        """`pid` left: its rate limit goes (its messages stay)."""
        self._recent.pop(pid, None)

    @property
    def tracked(self) -> int:
        """How many participants the rate limiter holds times for (a test's bound)."""
        return len(self._recent)
