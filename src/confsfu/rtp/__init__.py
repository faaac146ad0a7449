"""RTP and RTCP on bytes: packets, header extensions, feedback and wrap-around arithmetic."""
