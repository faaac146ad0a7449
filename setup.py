"""The C part of confsfu (everything else is declared in pyproject.toml).

confsfu._wire is the per-subscriber send side of the hot path: header patch, SRTP protect and
batched send. Building it needs a C compiler and Python's headers.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "confsfu._wire",
            sources=["src/confsfu/_wire.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
