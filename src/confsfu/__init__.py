"""confsfu: a WebRTC selective forwarding unit for conferences, built on aiortc."""

__version__ = "0.1.0"
