"""The operator's benchmark: a simulated conference of loopback participants against a server."""
