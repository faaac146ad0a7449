"""Issue 19: whatever a publisher sends, no SRTP index of a subscriber's downlink protects two
different packets. A slot forwarder and a sealer together, over any sequence of packets
(jumps, wraps, repeats with other content, packets never forwarded) and switches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from confsfu.forwarding._slot import SlotForwarder
from confsfu.rtp.packet import build_rtp, parse_rtp
from confsfu.server import _wire
from confsfu.server.srtp_keys import gcm_rtp_keys

from .arrivals import Arrivals
from .test_seal import srtp_index

SSRC = 0xCAFE

events = st.lists(
    st.one_of(
        st.tuples(
            st.just("packet"),
            st.sampled_from(["a", "b"]),  # which source
            st.sampled_from([1, 2]),  # which SSRC of it (a second one: a restart or a trick)
            st.one_of(
                st.integers(1, 3),
                st.sampled_from([0, 0, -1, -2]),  # the same number again, or a late one
                st.integers(-40, 40),
                st.sampled_from([4096, 4097, 30_000, 32_768, 40_000, 65_535, -5000]),
            ),
            st.booleans(),  # forwarded (False: padding-only, counted but not sent on)
            st.integers(0, 2),  # which content
        ),
        st.tuples(st.just("switch"), st.sampled_from(["a", "b"])),
    ),
    min_size=2,
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(events=events, initial_seq=st.integers(0, 65_535))
def test_no_index_protects_two_different_packets(
    events: list[tuple[object, ...]], initial_seq: int
) -> None:
    keys = gcm_rtp_keys(bytes(range(16)), bytes(range(12)))
    sealer = _wire.Sealer(keys.key, keys.salt)
    slot = SlotForwarder(is_video=False, clock_rate=48_000, initial_seq=initial_seq, initial_ts=0)
    slot.assign(0, "a")
    arrive = Arrivals()
    seqs: dict[tuple[str, int], int] = {}
    highest, sealed = 0, dict[int, bytes]()
    now = 0
    for event in events:
        now += 20
        if event[0] == "switch":
            slot.assign(now, str(event[1]))
            continue
        _, source, ssrc, step, forwarded, content = event
        key = (str(source), int(str(ssrc)))
        seq = seqs[key] = (seqs.get(key, 1000 * key[1]) + int(str(step))) % 65_536
        pkt = parse_rtp(
            build_rtp(payload_type=111, sequence_number=seq, timestamp=0, ssrc=key[1], payload=b"")
        )
        inbound = arrive(key[0], pkt)
        if not forwarded:
            continue  # the intake counted and unwrapped it; no slot saw it
        decision = slot.forward(now, inbound)
        if decision is None:
            continue
        out_seq, out_ts, _, _ = decision
        body = f"{source}:{ssrc}:{seq}:{content}".encode()
        plain = build_rtp(
            payload_type=111, sequence_number=out_seq, timestamp=out_ts, ssrc=SSRC, payload=body
        )
        index = srtp_index(highest, out_seq)
        if sealer.seal(plain) is not None:
            assert sealed.setdefault(index, plain) == plain, f"index {index} protected twice"
            highest = max(highest, index)
