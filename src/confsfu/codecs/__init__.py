"""RTP payload formats the SFU inspects without decoding: VP8 payload descriptors, Opus TOC."""
