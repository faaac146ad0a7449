"""Which allocator the server's Python objects come from, chosen before the server starts.

CPython's own small-object allocator (pymalloc) takes memory in 1 MiB arenas and gives an arena
back only when every object in it is gone. A meeting allocates hundreds of arenas' worth of
short-lived objects among a few long-lived ones (caches filled on first use, the next meeting's
records): those pin the arenas, and a server that hosted a 46-participant meeting kept about
75 MB after everyone left. With the C library's malloc a survivor pins one 4 KiB page, and
`malloc_trim` (gc_policy) returns the rest. The allocator is fixed when the interpreter starts
(PYTHONMALLOC), so `confsfu serve` re-executes itself, same pid, with it set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

ENV = "PYTHONMALLOC"
Allocator = Literal["malloc", "pymalloc"]


def reexec_plan(
    choice: Allocator, environ: Mapping[str, str], argv: Sequence[str]
) -> tuple[list[str], dict[str, str]] | None:
    """The command line and environment that run `confsfu <argv>` again on `choice`; None when
    this process already does, or when the operator set PYTHONMALLOC themselves."""
    if choice == "pymalloc" or ENV in environ:
        return None
    package_root = str(Path(__file__).resolve().parent.parent)
    paths = [package_root, *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**environ, ENV: choice, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    return [sys.executable, "-m", "confsfu.cli", *argv], env


def use(choice: Allocator, argv: Sequence[str]) -> None:
    """Replace this process by `confsfu <argv>` on `choice` (same pid), unless it already runs
    on it; returns only then."""
    plan = reexec_plan(choice, os.environ, argv)
    if plan is None:
        return
    command, env = plan
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
