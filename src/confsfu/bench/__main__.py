"""Command line of the benchmark: `python -m confsfu.bench SCENARIO` (also `confsfu bench`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from confsfu.bench.scenario import MAX_DURATION_S, ScenarioError, load_scenario, parse_assignment
from confsfu.bench.spread import SPREADS, parse_urls

MAX_SERVER_WORKERS = 64
MAX_SPILL = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench options, shared with `confsfu bench`."""
    parser.add_argument("scenario", help="mayors, fanout, mesh, or a path to a scenario YAML")
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        help="ws(s)://host:port/ws of a deployment (default: start one); several (repeated or"
        " comma-separated): the participants are spread over them (--spread)",
    )
    parser.add_argument(
        "--spread",
        choices=SPREADS,
        default="participants",
        help="over several --url: 'participants' (each room's dealt round robin, the default)"
        " or 'rooms' (each room whole on one URL, round robin)",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        metavar="N",
        help="the server the benchmark starts runs `confsfu serve --workers N` (a front and N"
        " worker processes); see also --set rooms=R",
    )
    parser.add_argument(
        "--server-spill",
        type=int,
        metavar="N",
        help="with --server-workers: a room's home worker takes N connections, the next go to"
        " relay members (the server's worker_max_connections; 0, the default, keeps a room on"
        " one worker)",
    )
    parser.add_argument("--token-secret", help="the deployment's token secret, to mint tokens")
    parser.add_argument("--token-file", type=Path, help="join tokens, one a line")
    parser.add_argument("--room", help="the room to join (default: the scenario's, 'bench')")
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="with --url: a server process on this machine (a front: with its workers), for CPU;"
        " may be repeated (loopback URLs' processes are found from their /healthz)",
    )
    parser.add_argument("--duration", type=float, help="measuring window in seconds")
    parser.add_argument("--participants", type=int, help="scale the scenario to N participants")
    parser.add_argument("--workers", type=int, help="worker processes")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a field"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        choices=range(20),
        metavar="0..19",
        help="the workers' CPU priority (nice, default 10): below the server's, so that on one"
        " machine the load generator does not keep the server from its sockets",
    )
    parser.add_argument(
        "--no-idle-workers",
        dest="idle_workers",
        action="store_false",
        help="run the workers as ordinary processes, not under Linux's SCHED_IDLE (where any"
        " other runnable process, the server included, goes before them)",
    )
    parser.add_argument("--out", type=Path, help="output directory (default bench-results/...)")
    parser.add_argument("--quiet", action="store_true", help="no live progress line")


def run_from_args(args: argparse.Namespace) -> int:
    try:
        from confsfu.bench.runner import BenchOptions, run
    except ImportError as exc:  # av and psutil come with the bench extra
        print(
            f"confsfu bench: {exc.name or exc} is missing: pip install 'confsfu[bench]'",
            file=sys.stderr,
        )
        return 2

    try:
        urls = parse_urls(args.url)
        if args.server_workers is not None and urls:
            raise ScenarioError("--server-workers is for the server the benchmark starts: no --url")
        if args.server_workers is not None and not 1 <= args.server_workers <= MAX_SERVER_WORKERS:
            raise ScenarioError(f"--server-workers must be 1 to {MAX_SERVER_WORKERS}")
        if args.server_spill is not None and (args.server_workers or 1) < 2:
            raise ScenarioError("--server-spill needs --server-workers 2 or more")
        if args.server_spill is not None and not 0 <= args.server_spill <= MAX_SPILL:
            raise ScenarioError(f"--server-spill must be 0 to {MAX_SPILL}")
        if args.server_pid and not urls:
            raise ScenarioError("--server-pid goes with --url")
        if any(pid <= 0 for pid in args.server_pid):
            raise ScenarioError("--server-pid must be a process id")
        scenario = load_scenario(args.scenario)
        values = dict(parse_assignment(a) for a in args.set)
        if args.room:
            values["room"] = args.room
        if args.workers:
            values["workers"] = args.workers
        if args.duration is not None:
            if not 1 <= args.duration <= MAX_DURATION_S:
                raise ScenarioError(f"--duration must be 1 to {MAX_DURATION_S} seconds")
            values["duration_s"] = args.duration
        if values:
            scenario = scenario.with_values(**values)
        if args.participants:
            scenario = scenario.scaled(args.participants)
        tokens: tuple[str, ...] = ()
        if args.token_file:
            lines = args.token_file.read_text().split()
            tokens = tuple(line.strip() for line in lines if line.strip())
        if (args.token_secret or tokens) and not urls:
            raise ScenarioError("--token-secret and --token-file go with --url")
    except (ScenarioError, OSError) as exc:
        print(f"confsfu bench: {exc}", file=sys.stderr)
        return 2
    options = BenchOptions(
        scenario=scenario,
        urls=urls,
        token_secret=args.token_secret,
        tokens=tokens,
        server_pids=tuple(args.server_pid),
        server_workers=args.server_workers or 1,
        server_spill=args.server_spill or 0,
        spread=args.spread,
        out_dir=args.out,
        progress=not args.quiet,
        idle_workers=args.idle_workers,
        **({} if args.worker_nice is None else {"worker_nice": args.worker_nice}),
    )
    try:
        run(options)
    except ScenarioError as exc:
        print(f"confsfu bench: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m confsfu.bench", description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
