"""Simulated participants: pre-encoded media and loopback peers for tests and benchmarks."""
