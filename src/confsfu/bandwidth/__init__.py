"""Bandwidth: downlink estimators, per-layer bitrate meters and the layer allocator (sans-IO)."""
