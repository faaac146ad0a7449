"""One slot's forwarder: which packets of which source it forwards, and their rewritten numbers.

It runs once per slot for every packet a slot could carry, so it is C (`_slot.c` here, run for
every slot of a layer by `confsfu.server._wire.fan_out`). `SlotForwarder` keeps a slot's outgoing
stream continuous while the source it carries changes: sequence numbers, timestamps, VP8
picture ids and TL0PICIDX are the source's plus offsets that change only at a source switch or
where a temporal layer is dropped; a video slot switches on the new source's keyframe; temporal
layers above `max_temporal` are dropped, going down at any frame start, going up at a TL0 or
layer-sync frame, resuming from a pause on a keyframe.
"""

from __future__ import annotations

from confsfu.forwarding._slot import SlotForwarder

__all__ = ["SlotForwarder"]
