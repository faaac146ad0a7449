"""The C parts of confsfu (everything else is declared in pyproject.toml), laid out like the
Python: the sans-IO cores next to the Python they speed up, the IO under server/.

confsfu.forwarding._slot is one slot's forwarder (which packets it forwards with which
numbers; _source_packet.c reads its input, _offsets.h keeps its numbering's offsets);
confsfu.forwarding._reception is one incoming SSRC's receive statistics (sequence state, loss,
NACKs owed, picture ids); confsfu.rtp._fast parses RTP headers and VP8 descriptors
(the Python parsers beside it stay the specification and take malformed input);
confsfu.bandwidth._counts keeps the bytes of each simulcast layer. None of them touches a
socket, a clock or a cipher (tests/unit/test_core_imports.py holds them to it).

confsfu.server._wire is the hot path's IO around them: the intake and its taps (SRTP open,
header read, straight from the socket; the pump's epoll; the clock), fan_out over a layer's
slots, header patch, SRTP protect (AES-GCM through OpenSSL's libcrypto, loaded at run time),
history and batched send. Building them needs a C compiler and Python's headers.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
INCLUDE = ["src/confsfu"]  # headers are named from the package: "forwarding/_slot.h"


def extension(name: str, sources: list[str], depends: list[str], **more: list[str]) -> Extension:
    def path(p: str) -> str:
        return f"src/confsfu/{p}"

    return Extension(
        name,
        sources=[path(s) for s in sources],
        depends=[path(d) for d in depends],
        include_dirs=INCLUDE,
        extra_compile_args=FLAGS,
        **more,
    )


setup(
    ext_modules=[
        extension(
            "confsfu.forwarding._slot",
            ["forwarding/_slot.c", "forwarding/_source_packet.c"],
            ["forwarding/_slot.h", "forwarding/_source_packet.h", "forwarding/_offsets.h"],
        ),
        extension(
            "confsfu.forwarding._reception",
            ["forwarding/_reception.c"],
            ["forwarding/_reception.h", "bandwidth/_counts.h"],
        ),
        extension("confsfu.rtp._fast", ["rtp/_fast.c"], ["rtp/_scan.h"]),
        extension("confsfu.bandwidth._counts", ["bandwidth/_counts.c"], ["bandwidth/_counts.h"]),
        extension(
            "confsfu.server._wire",
            [
                "server/_wire.c",
                "server/_route.c",
                "server/_fanout.c",
                "server/_seal.c",
                "server/_intake.c",
                "server/_intake_type.c",
                "server/_tap.c",
            ],
            [
                "server/_wire.h",
                "server/_route.h",
                "server/_seal.h",
                "server/_intake.h",
                "server/_intake_type.h",
                "codecs/_opus.h",
                "forwarding/_slot.h",
                "forwarding/_reception.h",
                "rtp/_scan.h",
                "bandwidth/_counts.h",
            ],
            libraries=["dl"],
        ),
    ]
)
