"""Keeps Python's full garbage collections off the media path.

A full (generation 2) collection walks every tracked object: with 46 participants' aiortc
objects that is 60-220 ms during which the event loop reads no socket, and joins trigger one
about every second (each join adds long-lived objects). So once a participant's subscribe
connection is answered, what survives a young collection is frozen (`gc.freeze`): full
collections no longer walk it. Closing any connection unfreezes everything, so that its cycles
can be collected.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """A participant has joined: collect the young garbage, freeze what survives."""
    gc.collect(1)
    gc.freeze()


def release() -> None:
    """A connection was closed: let the collector see (and free) everything again."""
    gc.unfreeze()
