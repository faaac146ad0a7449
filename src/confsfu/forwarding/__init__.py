"""Per-subscription forwarding: forward or drop, rewrite values, keyframe gating, loss recovery."""
