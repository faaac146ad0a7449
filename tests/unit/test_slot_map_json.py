"""The room writes slot_map messages straight from its rows: the same text the SlotMap model
writes, and valid by the schema, whatever the rows hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from confsfu.server.live_room import SlotRow, _slot_infos, slot_map_json
from confsfu.signalling.messages import SlotMap

maybe_int = st.none() | st.integers(0, 2)
rows = st.lists(
    st.builds(
        SlotRow,
        mid=st.text(max_size=4),
        kind=st.sampled_from(["audio", "video"]),
        participant_id=st.none() | st.text(max_size=12),
        name=st.none() | st.text(max_size=40),  # any name a city types, quotes and all
        purpose=st.sampled_from(["audio", "stage", "grid"]),
        source=st.none() | st.sampled_from(["camera", "screen"]),
        spatial=maybe_int,
        temporal=maybe_int,
        reason=st.none() | st.sampled_from(["optimal", "bandwidth", "tile size"]),
        state=st.sampled_from(["empty", "waiting", "paused", "live"]),
        since_ts=st.none() | st.integers(0, 2**32 - 1),
    ),
    max_size=12,
)


@given(rows, st.integers(1, 2**40))
def test_the_json_is_what_the_model_writes(slot_rows: list[SlotRow], seq: int) -> None:
    text = slot_map_json(slot_rows, seq)
    assert text == SlotMap(slots=_slot_infos(slot_rows), seq=seq).model_dump_json()
    assert SlotMap.model_validate_json(text).slots == _slot_infos(slot_rows)
