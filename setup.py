"""The C parts of confsfu (everything else is declared in pyproject.toml).

confsfu.forwarding._slot is one slot's forwarder (sans-IO: which packets it forwards with which
numbers); confsfu.rtp._fast parses RTP headers and VP8 descriptors (the Python parsers beside
it stay the specification and take malformed input); confsfu._wire is the hot path around it:
the intake (SRTP open, header read, per-SSRC sequence state, straight from the socket), fan_out
over a layer's slots, header patch, SRTP protect (AES-GCM through OpenSSL's libcrypto, loaded
at run time), history and batched send; confsfu.bandwidth._counts keeps the bytes of each
simulcast layer, which the intake counts. Building them needs a C compiler and
Python's headers.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "confsfu.forwarding._slot",
            sources=["src/confsfu/forwarding/_slot.c"],
            depends=["src/confsfu/forwarding/_slot.h"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "confsfu.rtp._fast",
            sources=["src/confsfu/rtp/_fast.c"],
            depends=["src/confsfu/rtp/_scan.h"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "confsfu.bandwidth._counts",
            sources=["src/confsfu/bandwidth/_counts.c"],
            depends=["src/confsfu/bandwidth/_counts.h"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "confsfu._wire",
            sources=[
                "src/confsfu/_wire.c",
                "src/confsfu/_fanout.c",
                "src/confsfu/_seal.c",
                "src/confsfu/_intake.c",
            ],
            depends=[
                "src/confsfu/_wire.h",
                "src/confsfu/_seal.h",
                "src/confsfu/forwarding/_slot.h",
                "src/confsfu/rtp/_scan.h",
                "src/confsfu/bandwidth/_counts.h",
            ],
            libraries=["dl"],
            extra_compile_args=FLAGS,
        ),
    ]
)
