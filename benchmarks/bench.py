"""The operator's benchmark from a checkout: `python benchmarks/bench.py mayors`."""

from __future__ import annotations

import sys

from confsfu.bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
