"""Who is speaking, from RTP audio levels alone: the loudest few and the dominant speaker."""

from __future__ import annotations

from dataclasses import dataclass

SILENT_DBOV = 127  # the audio-level extension's value for digital silence
# Speaking times of participants who left, kept for the report: beyond this many, the shortest
# is forgotten (someone joining and leaving over and over cannot grow the detector).
MAX_FORMER_TALKERS = 1_000


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    """Tuning; the defaults follow Jitsi's and LiveKit's orders of magnitude.

    A packet counts as speech if its voice flag is set (when `use_voice_flag`) and its level is
    louder than `silence_dbov`. Its weight is its duration times the dB above that floor, so a
    loud cough weighs less than a few seconds of plain speech.
    """

    bucket_ms: int = 100  # time resolution of the per-talker history
    window_ms: int = 1500  # dominant speaker: compare talkers over this long
    recent_ms: int = 500  # ranked(): rank talkers over this long
    # lately(): who spoke within this long, though not recently; a talker heard in an audio
    # slot keeps it that long after their last speech (a pause for breath, a stalled network or
    # server) rather than handing it to an equal newcomer.
    lately_ms: int = 1500
    silence_dbov: int = 70  # levels of -70 dBov and quieter are silence
    use_voice_flag: bool = True  # False for senders that never set the V bit
    min_speech_ms: int = 700  # a challenger must have spoken this long within the window
    switch_ratio: float = 1.5  # ... and weigh this many times the dominant speaker's weight
    min_hold_ms: int = 2000  # a dominant speaker keeps the stage at least this long
    decision_interval_ms: int = 300  # how often the shell should call update()
    frame_ms: int = 20  # assumed packet duration when the gap to the previous one is unknown
    max_frame_ms: int = 120  # a longer gap is a pause (DTX), not one packet's duration

    def __post_init__(self) -> None:
        positive = ("bucket_ms", "window_ms", "recent_ms", "decision_interval_ms", "frame_ms")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"SpeakerConfig.{name} must be positive")
        if self.window_ms % self.bucket_ms or self.recent_ms % self.bucket_ms:
            raise ValueError("SpeakerConfig window_ms and recent_ms must be multiples of bucket_ms")
        if self.recent_ms > self.window_ms:
            raise ValueError("SpeakerConfig.recent_ms must not exceed window_ms")
        lately = self.lately_ms
        if not self.recent_ms <= lately <= self.window_ms or lately % self.bucket_ms:
            raise ValueError("SpeakerConfig.lately_ms must be in recent_ms..window_ms, in buckets")
        if not 0 < self.silence_dbov <= SILENT_DBOV:
            raise ValueError(f"SpeakerConfig.silence_dbov must be in 1..{SILENT_DBOV}")
        if not 0 <= self.min_speech_ms <= self.window_ms:
            raise ValueError("SpeakerConfig.min_speech_ms must be in 0..window_ms")
        if self.min_hold_ms < 0:
            raise ValueError("SpeakerConfig.min_hold_ms must not be negative")
        if self.switch_ratio < 1:
            raise ValueError("SpeakerConfig.switch_ratio must be at least 1")
        if self.max_frame_ms < self.frame_ms:
            raise ValueError("SpeakerConfig.max_frame_ms must be at least frame_ms")


@dataclass(frozen=True, slots=True)
class DominantSpeakerChanged:
    pid: str | None  # None only when the dominant speaker left and nobody qualifies


class _Talker:
    """One participant's recent speech, in a ring of time buckets."""

    __slots__ = ("bucket", "last_ms", "speaking_ms", "voiced", "weight")

    def __init__(self, buckets: int, bucket: int) -> None:
        self.bucket = bucket  # absolute index (now_ms // bucket_ms) of the newest bucket
        self.last_ms: int | None = None  # arrival of the previous packet, voiced or not
        self.speaking_ms = 0
        self.weight = [0] * buckets  # sum of duration_ms * dB above the silence floor
        self.voiced = [0] * buckets  # sum of voiced duration_ms


class SpeakerDetector:
    """Audio levels in (one call per packet), speaker decisions out (a few calls per second)."""

    def __init__(self, config: SpeakerConfig | None = None) -> None:
        c = config or SpeakerConfig()
        self.config = c
        self._bucket_ms = c.bucket_ms
        self._n = c.window_ms // c.bucket_ms
        self._recent_n = c.recent_ms // c.bucket_ms
        self._lately_n = c.lately_ms // c.bucket_ms
        self._floor = c.silence_dbov
        self._ignore_flag = not c.use_voice_flag
        self._frame_ms = c.frame_ms
        self._max_frame_ms = c.max_frame_ms
        self._talkers: dict[str, _Talker] = {}
        self._spoken_before_ms: dict[str, int] = {}  # speaking time of removed talkers
        self._dominant: str | None = None
        self._dominant_since_ms = 0  # when the dominant speaker took over
        self._reported: str | None = None
        self._next_decision_ms = 0

    @property
    def quiet_from(self) -> int:
        """Packets at this level or quieter without the voice flag need not be reported: they
        count for nothing. (Their arrival only dates the next packet's start, and after a gap
        longer than `max_frame_ms` a packet counts as one `frame_ms` anyway: the same unless a
        sender's frames are longer than `frame_ms`.)"""
        return self._floor

    # ---- hot path -------------------------------------------------------------------------

    def on_audio_level(self, now_ms: int, pid: str, level_dbov: int, voice: bool) -> None:
        """One audio packet's level (0 loudest .. 127 silent) and voice flag. O(1)."""
        t = self._talkers.get(pid)
        if t is None:
            if not self._talkers:
                self._next_decision_ms = now_ms + self.config.decision_interval_ms
            t = self._talkers[pid] = _Talker(self._n, now_ms // self._bucket_ms)
        last_ms = t.last_ms
        t.last_ms = now_ms
        if level_dbov >= self._floor or not (voice or self._ignore_flag):
            return
        dt = self._frame_ms if last_ms is None else now_ms - last_ms
        if dt <= 0 or dt > self._max_frame_ms:
            dt = self._frame_ms
        bucket = now_ms // self._bucket_ms
        if bucket > t.bucket:
            self._advance(t, bucket)
        i = t.bucket % self._n
        t.weight[i] += dt * (self._floor - level_dbov)
        t.voiced[i] += dt
        t.speaking_ms += dt

    def _advance(self, t: _Talker, bucket: int) -> None:
        """Move `t`'s newest bucket to `bucket`, clearing the buckets skipped over."""
        n = self._n
        steps = bucket - t.bucket
        if steps >= n:
            t.weight[:] = [0] * n
            t.voiced[:] = [0] * n
        else:
            for b in range(t.bucket + 1, bucket + 1):
                t.weight[b % n] = 0
                t.voiced[b % n] = 0
        t.bucket = bucket

    # ---- decisions ------------------------------------------------------------------------

    def _sums(self, t: _Talker, now_ms: int, buckets: int) -> tuple[int, int]:
        """(weight, voiced_ms) over the newest `buckets` buckets as of `now_ms`."""
        bucket = now_ms // self._bucket_ms
        if bucket > t.bucket:
            self._advance(t, bucket)
        n = self._n
        weight = voiced = 0
        for k in range(buckets):
            i = (t.bucket - k) % n
            weight += t.weight[i]
            voiced += t.voiced[i]
        return weight, voiced

    def ranked(self, now_ms: int) -> list[str]:
        """Everyone with recent speech, loudest first (ties by id)."""
        scored: list[tuple[int, str]] = []
        for pid, t in self._talkers.items():
            weight, _ = self._sums(t, now_ms, self._recent_n)
            if weight > 0:
                scored.append((-weight, pid))
        scored.sort()
        return [pid for _, pid in scored]

    def lately(self, now_ms: int) -> list[str]:
        """Whoever spoke within `lately_ms` but not within `recent_ms` (so not in ranked()),
        loudest first (ties by id): `ranked() + lately()` is everyone a heard slot may keep."""
        scored: list[tuple[int, str]] = []
        for pid, t in self._talkers.items():
            weight, _ = self._sums(t, now_ms, self._lately_n)
            if weight > 0 and self._sums(t, now_ms, self._recent_n)[0] == 0:
                scored.append((-weight, pid))
        scored.sort()
        return [pid for _, pid in scored]

    def _decide(self, now_ms: int) -> str | None:
        """Re-evaluate the dominant speaker with hysteresis: a challenger must have spoken for
        `min_speech_ms` within the window and outweigh the dominant one by `switch_ratio`, and
        the dominant one has held the stage for `min_hold_ms` (three open microphones would
        otherwise pass it around every few hundred milliseconds)."""
        c = self.config
        if self._dominant is not None and now_ms - self._dominant_since_ms < c.min_hold_ms:
            self._next_decision_ms = now_ms + c.decision_interval_ms
            return self._dominant
        scores = {pid: self._sums(t, now_ms, self._n) for pid, t in self._talkers.items()}
        best: str | None = None
        best_weight = 0
        for pid, (weight, voiced) in scores.items():
            if pid == self._dominant or voiced < c.min_speech_ms or weight <= 0:
                continue
            if weight > best_weight or (weight == best_weight and best is not None and pid < best):
                best, best_weight = pid, weight
        if best is not None:
            if self._dominant is None:
                self._dominant, self._dominant_since_ms = best, now_ms
            else:
                dominant_weight = scores.get(self._dominant, (0, 0))[0]
                if best_weight > c.switch_ratio * dominant_weight:
                    self._dominant, self._dominant_since_ms = best, now_ms
        self._next_decision_ms = now_ms + c.decision_interval_ms
        return self._dominant

    def dominant(self, now_ms: int) -> str | None:
        """The dominant speaker as of `now_ms`; it keeps the stage while silent until replaced."""
        return self._decide(now_ms)

    def update(self, now_ms: int) -> list[DominantSpeakerChanged]:
        """Decide, and report a change of dominant speaker since the last report."""
        dominant = self._decide(now_ms)
        if dominant == self._reported:
            return []
        self._reported = dominant
        return [DominantSpeakerChanged(dominant)]

    def next_deadline_ms(self) -> int | None:
        """When the shell should next call update(); None while there is nothing to decide."""
        if not self._talkers and self._dominant == self._reported:
            return None
        return self._next_decision_ms

    # ---- bookkeeping ----------------------------------------------------------------------

    def speaking_ms(self, pid: str) -> int:
        """Accumulated speaking time of `pid`, kept after remove() for the meeting report."""
        t = self._talkers.get(pid)
        return self._spoken_before_ms.get(pid, 0) + (t.speaking_ms if t is not None else 0)

    def speaking_totals(self) -> dict[str, int]:
        pids = set(self._spoken_before_ms) | set(self._talkers)
        return {pid: self.speaking_ms(pid) for pid in sorted(pids)}

    def remove(self, pid: str) -> None:
        """`pid` left: forget its history, keep its speaking time.

        The shell should also stop feeding levels of a chair-muted participant (they are not
        forwarded, so they must not take the stage) and may remove them.
        """
        t = self._talkers.pop(pid, None)
        if t is not None:
            self._spoken_before_ms[pid] = self._spoken_before_ms.get(pid, 0) + t.speaking_ms
            if len(self._spoken_before_ms) > MAX_FORMER_TALKERS:
                spoken = self._spoken_before_ms
                del spoken[min(spoken, key=spoken.__getitem__)]
        if pid == self._dominant:
            self._dominant = None

    @property
    def talkers(self) -> tuple[str, ...]:
        return tuple(self._talkers)
