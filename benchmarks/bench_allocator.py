"""Times the layer allocator: allocate() for every subscriber of a room, with and without
building the demands.

Rooms are synthetic but shaped like the meeting: every subscriber sees one stage video, maybe
one screen share and a page of thumbnails out of the room's published camera tracks, on
downlinks between 150 kbps and 5 Mbps.

    .venv/bin/python benchmarks/bench_allocator.py --subscribers 46 1000 --tracks 45 --repeats 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confsfu.bandwidth.allocator import Demand, Priority, allocate

# Cumulative bitrates of a VP8 L1T3 simulcast camera (rows q/h/f, columns TID 0..2), in bps.
CAMERA_BPS = np.array(
    [[60e3, 90e3, 120e3], [200e3, 300e3, 400e3], [700e3, 1050e3, 1400e3]], dtype=np.float64
)


@dataclass
class Room:
    budgets: npt.NDArray[np.int64]  # (S,)
    bitrates: npt.NDArray[np.float64]  # (T, 3, 3)
    priorities: npt.NDArray[np.int64]  # (S, T)
    max_layers: npt.NDArray[np.int64]  # (S, T, 2)
    visible: npt.NDArray[np.bool_]  # (S, T)

    def demands(self, sub: int) -> list[Demand]:
        return [
            Demand(
                f"track-{t}",
                Priority(int(self.priorities[sub, t])),
                int(self.max_layers[sub, t, 0]),
                int(self.max_layers[sub, t, 1]),
                self.bitrates[t],
            )
            for t in np.flatnonzero(self.visible[sub])
        ]


def make_room(subscribers: int, tracks: int, page: int, seed: int) -> Room:
    rng = np.random.default_rng(seed)
    bitrates = CAMERA_BPS * rng.uniform(0.6, 1.4, size=(tracks, 1, 1))
    bitrates[rng.random(tracks) < 0.1, 2] = 0.0  # some publishers' uplinks dropped 720p
    stage, screen = 0, 1 if tracks > 1 else 0
    priorities = np.zeros((subscribers, tracks), dtype=np.int64)
    max_layers = np.zeros((subscribers, tracks, 2), dtype=np.int64)
    max_layers[..., 1] = 1  # thumbnails: 180p at 15 fps
    visible = np.zeros((subscribers, tracks), dtype=bool)
    for sub in range(subscribers):
        shown = rng.choice(tracks, size=min(page, tracks), replace=False)
        visible[sub, shown] = True
    visible[:, stage] = True
    priorities[:, stage] = Priority.STAGE
    max_layers[:, stage] = (2, 2)
    if screen != stage:
        visible[:, screen] = True
        priorities[:, screen] = Priority.SCREEN
        max_layers[:, screen] = (2, 1)
    budgets = np.exp(rng.uniform(np.log(150e3), np.log(5e6), size=subscribers)).astype(np.int64)
    return Room(budgets, bitrates, priorities, max_layers, visible)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best-of-`repeats` wall and CPU seconds of one call."""
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[46, 1000])
    parser.add_argument("--tracks", type=int, default=45, help="published camera tracks")
    parser.add_argument("--page", type=int, default=9, help="thumbnails a subscriber sees")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    header = (
        f"{'subs':>5} {'tracks':>6} {'visible':>7}  {'method':<30}"
        f"{'wall ms':>9} {'cpu ms':>9} {'us/sub':>9}"
    )
    print(header)
    print("-" * len(header))
    for subscribers in args.subscribers:
        room = make_room(subscribers, args.tracks, args.page, args.seed)
        demands = [room.demands(sub) for sub in range(subscribers)]
        budgets = [int(b) for b in room.budgets]
        visible = room.visible.sum(axis=1).mean()

        def scalar(demands: list[list[Demand]] = demands, budgets: list[int] = budgets) -> None:
            for budget, subs_demands in zip(budgets, demands, strict=True):
                allocate(budget, subs_demands)

        def building(room: Room = room, budgets: list[int] = budgets) -> None:
            for sub, budget in enumerate(budgets):
                allocate(budget, room.demands(sub))

        for name, fn in (
            ("allocate() x subscribers", scalar),
            ("Demand() + allocate() x subs", building),
        ):
            wall, cpu = timed(fn, args.repeats)
            print(
                f"{subscribers:>5} {args.tracks:>6} {visible:>7.1f}  {name:<30}"
                f"{wall * 1e3:>9.2f} {cpu * 1e3:>9.2f} {wall * 1e6 / subscribers:>9.1f}"
            )


if __name__ == "__main__":
    main()
