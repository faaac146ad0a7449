"""Feedback: what a subscriber's RTCP asks for, and the reports owed to publishers."""

from __future__ import annotations

import dataclasses

from confsfu.forwarding.feedback import (
    EstimateReported,
    KeyframeWanted,
    LossReported,
    RetransmitWanted,
    keyframe_request,
    publisher_report,
    subscriber_asks,
    translated_sender_report,
    upstream_nack,
)
from confsfu.rtp import rtcp

BLOCK = rtcp.ReportBlock(ssrc=5, fraction_lost=64, packets_lost=3, highest_sequence=9, jitter=1,
                         lsr=0, dlsr=0)  # fmt: skip


def test_each_kind_of_feedback_becomes_one_ask_in_order() -> None:
    packets = [
        rtcp.PictureLossIndication(sender_ssrc=1, media_ssrc=10),
        rtcp.FullIntraRequest(sender_ssrc=1, entries=((11, 1), (12, 2))),
        rtcp.ReceiverReport(ssrc=1, reports=(BLOCK, dataclasses.replace(BLOCK, fraction_lost=128))),
        rtcp.ReceiverReport(ssrc=1, reports=()),  # nothing to say
        rtcp.Remb(sender_ssrc=1, bitrate_bps=300_000, ssrcs=(10,)),
        rtcp.Nack(sender_ssrc=1, media_ssrc=10, lost=(4, 5)),
    ]
    assert subscriber_asks(packets) == [
        KeyframeWanted(10),
        KeyframeWanted(11),
        KeyframeWanted(12),
        LossReported((BLOCK, dataclasses.replace(BLOCK, fraction_lost=128))),
        EstimateReported(300_000),
        RetransmitWanted(10, (4, 5)),
    ]


def test_the_reports_owed_to_a_publisher_parse_back() -> None:
    assert publisher_report(7, [], (1,), 10) is None
    report = publisher_report(7, [BLOCK] * 40, (5, 6), 8_000_000)
    assert report is not None
    rr, remb = rtcp.parse_rtcp(report)
    assert isinstance(rr, rtcp.ReceiverReport) and len(rr.reports) == 31
    assert isinstance(remb, rtcp.Remb) and remb.ssrcs == (5, 6)
    [only_rr] = rtcp.parse_rtcp(publisher_report(7, [BLOCK], (), 1) or b"")
    assert isinstance(only_rr, rtcp.ReceiverReport)
    assert keyframe_request(7, []) is None
    plis = rtcp.parse_rtcp(keyframe_request(7, [1, 2]) or b"")
    assert [p.media_ssrc for p in plis if isinstance(p, rtcp.PictureLossIndication)] == [1, 2]
    [nack] = rtcp.parse_rtcp(upstream_nack(7, 3, [100, 101]))
    assert isinstance(nack, rtcp.Nack) and nack.lost == (100, 101)
    sr = rtcp.SenderReport(ssrc=3, ntp_timestamp=1 << 40, rtp_timestamp=9, packet_count=1,
                           octet_count=2, reports=())  # fmt: skip
    [out] = rtcp.parse_rtcp(translated_sender_report(sr, 99, 1234, 50, 6000))
    assert isinstance(out, rtcp.SenderReport)
    assert (out.ssrc, out.rtp_timestamp, out.packet_count, out.octet_count) == (99, 1234, 50, 6000)
    assert out.ntp_timestamp == sr.ntp_timestamp
