"""Typed signalling messages, the protocol version, and the per-connection reducer."""
