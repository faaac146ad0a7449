"""The one exception type for malformed RTP, RTCP and payload wire formats."""


class ParseError(ValueError):
    """Raised for malformed wire-format input; the message says what was wrong and where."""
