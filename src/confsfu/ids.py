"""The media plane's identities: what a participant publishes (`SourceId`) and one simulcast
layer of it (`LayerKey`), as interned values, with the few kinds they are made of.

Both are interned: one object per value, so equality is identity and hashing is the object's
address. The C hot path compares keys by identity and finds a layer's slots in a dict without
calling Python. `str()` is for logs and JSON only; nothing parses it back.
"""

from __future__ import annotations

import weakref
from typing import Any, Final, Literal, final

Kind = Literal["audio", "video"]
Purpose = Literal["camera", "screen"]  # which publish connection: the camera (and mic) or a screen
SlotPurpose = Literal["audio", "stage", "grid"]  # what a subscriber's slot is for
MAX_SPATIAL_LAYERS: Final = 3  # simulcast layers a source may have (rids per m-line)

_sources: weakref.WeakValueDictionary[tuple[str, str, str, int], SourceId]
_sources = weakref.WeakValueDictionary()
_layers: weakref.WeakValueDictionary[tuple[SourceId, int], LayerKey]
_layers = weakref.WeakValueDictionary()


@final
class SourceId:
    """One source a participant publishes: its microphone, camera or screen (`index` numbers a
    second one of the same kind on one connection, which browsers do not send)."""

    __slots__ = ("__weakref__", "index", "kind", "participant", "purpose")
    participant: str
    purpose: Purpose
    kind: Kind
    index: int

    def __new__(cls, participant: str, purpose: Purpose, kind: Kind, index: int = 0) -> SourceId:
        key = (participant, purpose, kind, index)
        found = _sources.get(key)
        if found is not None:
            return found
        if purpose not in ("camera", "screen") or kind not in ("audio", "video") or index < 0:
            raise ValueError(f"not a source: {key!r}")
        self = object.__new__(cls)
        for name, value in zip(("participant", "purpose", "kind", "index"), key, strict=True):
            object.__setattr__(self, name, value)
        _sources[key] = self
        return self

    @classmethod
    def camera(cls, participant: str, kind: Kind) -> SourceId:
        return cls(participant, "camera", kind)

    @classmethod
    def screen(cls, participant: str) -> SourceId:
        return cls(participant, "screen", "video")

    def layer(self, spatial: int) -> LayerKey:
        return LayerKey(self, spatial)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a SourceId is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (SourceId, (self.participant, self.purpose, self.kind, self.index))

    def __str__(self) -> str:
        name: str = self.kind if self.purpose == "camera" else "screen"
        if self.purpose == "screen" and self.kind == "audio":
            name = "screen-audio"
        return f"{self.participant}/{name}{self.index + 1 if self.index else ''}"

    def __repr__(self) -> str:
        return f"SourceId({str(self)!r})"


@final
class LayerKey:
    """One simulcast layer of a source (`spatial` 0 for a source without simulcast): what a
    slot's forwarder carries and what the incoming packets of one SSRC are."""

    __slots__ = ("__weakref__", "source", "spatial")
    source: SourceId
    spatial: int

    def __new__(cls, source: SourceId, spatial: int) -> LayerKey:
        key = (source, spatial)
        found = _layers.get(key)
        if found is not None:
            return found
        if not isinstance(source, SourceId) or not 0 <= spatial < MAX_SPATIAL_LAYERS:
            raise ValueError(f"not a layer: {key!r}")
        self = object.__new__(cls)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "spatial", spatial)
        _layers[key] = self
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a LayerKey is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (LayerKey, (self.source, self.spatial))

    def __str__(self) -> str:
        return f"{self.source}#{self.spatial}"

    def __repr__(self) -> str:
        return f"LayerKey({str(self)!r})"
