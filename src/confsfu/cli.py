"""The `confsfu` command: serve a deployment, mint a join token, or benchmark a deployment."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from confsfu.settings import load_settings
from confsfu.tokens import ROLES, make_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="confsfu", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", type=Path, help="YAML settings (default: the embedded demo)")
    serve.add_argument("--host", help="listen address (overrides the settings)")
    serve.add_argument("--port", type=int, help="listen port (overrides the settings)")
    serve.add_argument(
        "--workers",
        type=int,
        help="media worker processes under one front (default 1: one process serves alone)",
    )
    serve.add_argument("--worker-socket", type=Path, help=argparse.SUPPRESS)  # a front's worker
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines as key=value text or as JSON objects (default: text)",
    )

    token = sub.add_parser("token", help="print a signed join token")
    token.add_argument("--config", type=Path, help="YAML settings holding the token secret")
    token.add_argument("--room", required=True)
    token.add_argument("--name", required=True)
    token.add_argument("--role", choices=list(ROLES), default="participant")
    token.add_argument("--valid-hours", type=float, default=3.0)

    bench = sub.add_parser("bench", help="load-test a deployment with a simulated conference")
    from confsfu.bench.__main__ import add_arguments, run_from_args

    add_arguments(bench)

    args = parser.parse_args(argv)
    if args.command == "bench":
        return run_from_args(args)
    overrides = {}
    if args.command == "serve":
        given = (("host", args.host), ("port", args.port), ("workers", args.workers))
        overrides = {k: v for k, v in given if v is not None}
    settings = load_settings(args.config, **overrides)

    if args.command == "token":
        print(
            make_token(
                settings.token_secret,
                room=args.room,
                name=args.name,
                role=args.role,
                now_s=int(time.time()),
                valid_s=int(args.valid_hours * 3600),
            )
        )
        return 0

    from confsfu import allocator

    allocator.use(settings.python_allocator, sys.argv[1:] if argv is None else argv)
    from confsfu.server.logs import configure_logging
    from confsfu.server.run import serve as run_server

    configure_logging(settings.log_level, json=args.log_format == "json")
    if args.worker_socket is not None:
        run_server(settings, worker_socket=args.worker_socket)
    else:
        run_server(settings, workers=settings.workers, worker_command=_worker_command(args))
    return 0


def _worker_command(args: argparse.Namespace) -> Callable[[Path], list[str]]:
    """How the front starts a worker: this command, with its settings, on a Unix socket."""
    given = [("--config", args.config), ("--host", args.host), ("--log-format", args.log_format)]
    passed = [str(part) for flag, value in given if value is not None for part in (flag, value)]

    def command(socket: Path) -> list[str]:
        serve = [sys.executable, "-m", "confsfu.cli", "serve", *passed]
        return [*serve, "--worker-socket", str(socket)]

    return command


if __name__ == "__main__":
    sys.exit(main())
