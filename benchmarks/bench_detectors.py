"""Benchmark: the reference detectors' combined streaming throughput, next to the time it takes
merely to go over (and to read back from NDJSON) the same events, and the wall time of
``egress-harness run`` on the default suite.

For each scenario of the default suite (seed 0, default knobs, ``edr`` profile) the telemetry
is generated once, outside every clock. Then, on exactly the same events:

* ``iterate``: a Python loop that touches every event's kind and time (the floor any streaming
  consumer pays);
* ``read ndjson``: parsing the events back from their ECS NDJSON export (what a detector run
  over recorded telemetry pays to get its events), when :mod:`harness.ecs` is available;
* ``detectors``: fit on the baseline window, then every registered detector streamed over the
  detection window through :func:`harness.runner.run_detectors` (selection of each detector's
  event kinds, contract checks and the per-event clock included), the way
  ``egress-harness run`` drives them.

Throughput is events offered to the detectors (each event counted once, however many
detectors consume it) per second of fit + observe + flush. Best of ``--repeat`` runs, in wall
time, and in the process's CPU time (a pass that waited for a core, on a machine shared with
other work, costs wall time but no CPU time). The bare loop is timed again right before every
detector pass and the ratio of the two is printed: on a shared machine absolute figures move
with the load, the ratio much less.

    python benchmarks/bench_detectors.py            # detectors, bare loop, NDJSON read-back
    python benchmarks/bench_detectors.py --no-read  # without the (slow) read-back
    python benchmarks/bench_detectors.py --run      # also time `egress-harness run` (about 1 min)
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.events import Event
from harness.registry import DETECTORS, SCENARIOS, SUITES
from harness.runner import DetectorSpec, run_detectors
from harness.telemetry import Telemetry


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _iterate(events: Sequence[Event]) -> int:
    n = 0
    for e in events:
        if e.ts_ns and e.kind:
            n += 1
    return n


def _ndjson_reader() -> (
    tuple[Callable[[Sequence[Event], Path], None], Callable[[Path], Any]] | None
):
    """Writer and reader of the ECS NDJSON export, if this checkout has them."""
    try:
        ecs = importlib.import_module("harness.ecs")
    except ImportError:
        return None
    write = getattr(ecs, "write_ndjson", None)
    read = getattr(ecs, "read_ndjson", None)
    if write is None or read is None:
        return None
    return write, read


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", action="store_true", help="also time `egress-harness run`")
    ap.add_argument(
        "--no-read",
        dest="read",
        action="store_false",
        help="skip timing the NDJSON read-back (slow: about 20 s a repeat)",
    )
    args = ap.parse_args(argv)

    detectors = DETECTORS.load_all()
    specs = [DetectorSpec(detector=d) for d in detectors]
    print(f"detectors: {', '.join(d.id for d in detectors)}")
    telemetries: list[Telemetry] = []
    for sid in SUITES.load("default"):
        scenario = SCENARIOS.load(sid)()
        telemetries.append(scenario.generate(scenario.params(), args.seed).telemetry)
    events = sum(len(t.events) for t in telemetries)
    print(f"workload: default suite, seed {args.seed}, edr profile: {events:,} events")

    io = _ndjson_reader() if args.read else None
    if io is not None:
        write, read = io
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, t in enumerate(telemetries):
                path = Path(tmp) / f"{i}.ndjson"
                write(t.events, path)
                paths.append(path)

            def read_all() -> None:
                for path in paths:
                    for _ in read(path):
                        pass

            t_read = _best(read_all, args.repeat)
        read_line = f"read ndjson:  {t_read:8.3f} s = {events / t_read:12,.0f} events/s"
    elif args.read:
        read_line = "read ndjson:  (harness.ecs not available in this checkout)"
    else:
        read_line = "read ndjson:  (skipped: --no-read)"

    per_detector: dict[str, list[float]] = {}

    def detect() -> None:
        for t in telemetries:
            for run in run_detectors(t, specs):
                if run.error:
                    raise SystemExit(f"{run.detector} failed: {run.error}")
                per_detector.setdefault(run.detector, []).append(run.fit_s + run.observe_s)

    # The bare loop is timed right before each detector pass, so that each pass has a floor
    # measured under the same load (the machine is shared): the ratio of the two is the figure
    # that holds still when other work comes and goes.
    t_iter = t_det = cpu_det = float("inf")
    ratios: list[float] = []
    for _ in range(args.repeat):
        bare = _best(lambda: [_iterate(t.events) for t in telemetries], 1)
        cpu0 = time.process_time()
        det = _best(detect, 1)
        cpu_det = min(cpu_det, time.process_time() - cpu0)
        t_iter, t_det = min(t_iter, bare), min(t_det, det)
        ratios.append(det / bare)
    ratios.sort()
    print(f"iterate:      {t_iter:8.3f} s = {events / t_iter:12,.0f} events/s (bare loop)")
    print(read_line)
    print(
        f"detectors:    {t_det:8.3f} s = {events / t_det:12,.0f} events/s "
        f"(all {len(detectors)} together, fit + observe + flush; target >= 300,000)"
    )
    print(
        f"  cpu time:   {cpu_det:8.3f} s = {events / cpu_det:12,.0f} events/s (best pass in "
        "process CPU time, which waiting for a core on a loaded machine does not inflate)"
    )
    print(
        f"ratio:        detectors take {t_det / t_iter:.1f}x the time of a bare loop (best over "
        f"best; per pass: best {ratios[0]:.1f}x, median {ratios[len(ratios) // 2]:.1f}x)"
    )
    n_tel = len(telemetries)
    for name, seconds in sorted(per_detector.items(), key=lambda kv: -min(kv[1])):
        passes = [sum(seconds[i : i + n_tel]) for i in range(0, len(seconds), n_tel)]
        print(f"  {name:40s} {min(passes):7.3f} s per pass (best)")

    if args.run:
        exe = shutil.which("egress-harness")
        if exe is None:
            print("egress-harness run: not on PATH (pip install . first)")
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            done = subprocess.run(
                [exe, "run", "--quiet", "--out", tmp], capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - t0
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        print(
            f"egress-harness run (default suite, 5 seeds): {wall:.1f} s wall, {status} "
            "(target under 60 s)"
        )
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
