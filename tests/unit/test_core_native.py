"""The sans-IO rule for the C: native code outside server/ includes no socket, event-loop, clock,
thread, dynamic-loading or crypto header, calls no such function and imports no such Python
module, and does not reach into server/ (the twin of test_core_imports.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import confsfu

from .test_core_imports import FORBIDDEN as FORBIDDEN_MODULES

ROOT = Path(confsfu.__file__).resolve().parent
SHELL = ROOT / "server"

# System headers a core may not include: IO, clocks, threads, signals, loading, randomness.
FORBIDDEN_HEADERS = frozenset(
    {"time.h", "unistd.h", "fcntl.h", "poll.h", "netdb.h", "errno.h", "stdio.h", "signal.h",
     "pthread.h", "dlfcn.h", "threads.h", "ifaddrs.h"}
)  # fmt: skip
FORBIDDEN_HEADER_DIRS = ("sys/", "netinet/", "arpa/", "net/", "linux/", "openssl/", "srtp")
# Functions that read a clock, touch a descriptor or draw randomness.
FORBIDDEN_CALLS = frozenset(
    {"clock_gettime", "gettimeofday", "time", "clock", "socket", "bind", "connect", "sendto",
     "sendmsg", "send", "recvfrom", "recvmsg", "recv", "read", "write", "open", "close", "dup",
     "select", "poll", "epoll_create1", "epoll_ctl", "epoll_wait", "fcntl", "getsockopt",
     "setsockopt", "rand", "random", "getrandom", "dlopen", "dlsym", "PyOS_AfterFork_Child",
     "PyErr_SetFromErrno"}
)  # fmt: skip


def native_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".c", ".h"))


def core_files() -> list[Path]:
    return [p for p in native_files(ROOT) if SHELL not in p.parents]


def without_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    return re.sub(r"//[^\n]*", " ", source)


def violations(source: str) -> list[str]:
    """What in this C source breaks the rule, each as a short phrase."""
    code = without_comments(source)
    found: list[str] = []
    for system, header in re.findall(r'#\s*include\s*([<"])([^>"]+)[>"]', code):
        name = header.removeprefix("../")
        if system == "<" and (name in FORBIDDEN_HEADERS or name.startswith(FORBIDDEN_HEADER_DIRS)):
            found.append(f"includes <{name}>")
        if name.startswith("server/") or "/server/" in header:
            found.append(f'includes "{header}" (the IO shell)')
    strings = re.sub(r'"(?:\\.|[^"\\])*"', '""', code)  # calls are looked for outside strings
    for call in re.findall(r"(?<![\w.>])([A-Za-z_]\w*)\s*\(", strings):
        if call in FORBIDDEN_CALLS:
            found.append(f"calls {call}()")
    for module in re.findall(r'PyImport_Import\w*\(\s*"([\w.]+)"', code):
        top = module.split(".")[0]
        if top in FORBIDDEN_MODULES or module.startswith("confsfu.server"):
            found.append(f"imports {module}")
    return found


def test_the_native_cores_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in core_files()}
    for expected in (
        "forwarding/_slot.c",
        "forwarding/_reception.c",
        "rtp/_fast.c",
        "rtp/_scan.h",
        "bandwidth/_counts.c",
    ):
        assert expected in names
    assert not any(name.startswith("server/") for name in names)


def test_the_io_lives_under_server() -> None:
    """The shell's C is found where the rule expects it (else the rule would check nothing)."""
    shell = {p.name for p in native_files(SHELL)}
    assert {"_wire.c", "_route.c", "_tap.c", "_intake.c", "_seal.c", "_fanout.c"} <= shell
    assert violations((SHELL / "_tap.c").read_text())  # sockets, epoll and the clock: IO
    assert not [p for p in native_files(ROOT) if p.parent == ROOT]  # none left at the top


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_native_code_is_sans_io(path: Path) -> None:
    bad = violations(path.read_text())
    assert not bad, f"{path.relative_to(ROOT)} {', '.join(bad)} (core C is sans-IO)"


def test_the_checker_catches_every_kind_of_io() -> None:
    source = (
        "#include <sys/socket.h>\n"
        "#include<time.h>\n"
        "#include <netinet/in.h>\n"
        '#include "server/_wire.h"\n'
        '#include "../server/_seal.h"\n'
        "static long long now(void) { struct timespec t; clock_gettime(1, &t); return 0; }\n"
        "static void f(int fd) { recvfrom (fd, 0, 0, 0, 0, 0); close(fd); }\n"
        'static void g(void) { PyImport_ImportModule("asyncio"); }\n'
        'static void h(void) { PyImport_ImportModule("confsfu.server.media"); }\n'
    )
    found = violations(source)
    assert found == [
        "includes <sys/socket.h>",
        "includes <time.h>",
        "includes <netinet/in.h>",
        'includes "server/_wire.h" (the IO shell)',
        'includes "../server/_seal.h" (the IO shell)',
        "calls clock_gettime()",
        "calls recvfrom()",
        "calls close()",
        "imports asyncio",
        "imports confsfu.server.media",
    ]


def test_the_checker_lets_pure_code_be() -> None:
    source = (
        "/* reads the socket's packets: the comment may say so */\n"
        "#include <Python.h>\n"
        "#include <stdint.h>\n"
        '#include "bandwidth/_counts.h"\n'
        'static const char *doc = "send(packet): not a call";\n'
        "static int decide(Slot *s) { return s->time + slot_time(s) + s->close; }\n"
        'static void i(void) { PyImport_ImportModule("confsfu.bandwidth._counts"); }\n'
    )
    assert violations(source) == []
