"""Benchmark: synthetic event generation of the default suite, and, in the same run, pcap
writing by harness.pcap against scapy writing the same packets.

Generation: every scenario of the default suite with its default knobs, seed 0, ``edr``
profile, generated ``--repeat`` times; the best run counts. Events are those the telemetry
hands to detectors (after the profile's projection), so a raw-socket DNS query the EDR profile
drops is not counted. Both wall-clock and process CPU time are shown: on a shared machine the
CPU figure is the one that says what the code costs.

A generated run holds its events column-wise (:class:`harness.eventtable.EventTable`): every
field value is decided and stored, and the event objects are made when something first reads
them. The target is measured on that. The same table also shows the time to make every event
object afterwards (what the first reader, a detector or a writer, pays once), and the rate of
generation and object-making together.

Pcap: the workload, the harness.pcap path and the scapy path of ``bench_pcap.py`` (same
packets; scapy's file must be a byte-for-byte prefix of ours).

    python benchmarks/bench_generate.py
    python benchmarks/bench_generate.py --repeat 1 --packets 20000 --scapy-packets 3000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import bench_pcap  # benchmarks/ is on sys.path when this file runs as a script

from harness.fields import Profile
from harness.registry import SCENARIOS, SUITES

TARGET_EVENTS_PER_S = 1_000_000
TARGET_PCAP_RATIO = 100


def bench_generation(repeat: int, seed: int) -> list[tuple[str, int, float, float, float]]:
    """(scenario, events, best wall seconds, best CPU seconds, best wall seconds to make every
    event object afterwards) for each default scenario."""
    rows = []
    for scenario_id in SUITES.load("default"):
        scenario = SCENARIOS.load(scenario_id)()
        params = scenario.params({})
        best_wall = best_cpu = best_make = float("inf")
        events = 0
        for _ in range(repeat):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            run = scenario.generate(params, seed, Profile.EDR)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            make0 = time.perf_counter()
            events = len(list(run.telemetry.events))
            best_make = min(best_make, time.perf_counter() - make0)
            best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
            del run
        rows.append((scenario_id, events, best_wall, best_cpu, best_make))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--packets", type=int, default=20_000, help="packets for harness.pcap")
    parser.add_argument("--scapy-packets", type=int, default=5_000, help="bound for scapy")
    args = parser.parse_args(argv)
    out = sys.stdout.write

    rows = bench_generation(args.repeat, args.seed)
    out(f"synthetic generation: default suite, default knobs, seed {args.seed}, edr profile, ")
    out(f"best of {args.repeat}\n")
    head = ("scenario", "events", "wall s", "events/s", "cpu s", "events/s", "objects s")
    out("{:22} {:>9} {:>8} {:>11} {:>8} {:>11} {:>10}\n".format(*head))
    for name, n, wall, cpu, make in rows:
        out(f"{name:22} {n:9,} {wall:8.3f} {n / wall:11,.0f} {cpu:8.3f} {n / cpu:11,.0f} ")
        out(f"{make:10.3f}\n")
    total = sum(r[1] for r in rows)
    wall_s, cpu_s, make_s = (sum(r[i] for r in rows) for i in (2, 3, 4))
    gen_wall, gen_cpu = total / wall_s, total / cpu_s
    out(f"{'total':22} {total:9,} {wall_s:8.3f} {gen_wall:11,.0f} {cpu_s:8.3f} {gen_cpu:11,.0f} ")
    out(f"{make_s:10.3f}\n")

    specs = bench_pcap.workload(args.packets, 1)
    planned = bench_pcap.planned_in_file_order(specs)[: args.scapy_packets]
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, scapy_path = Path(tmp, "ours.pcap"), Path(tmp, "scapy.pcap")
        ours_s, ours_n = bench_pcap.best_of(
            args.repeat, lambda: bench_pcap.run_ours(specs, ours_path)
        )
        scapy_s, scapy_n = bench_pcap.run_scapy(planned, scapy_path)
        ours_bytes, scapy_bytes = ours_path.read_bytes(), scapy_path.read_bytes()
    same = ours_bytes[: len(scapy_bytes)] == scapy_bytes
    ours_rate, scapy_rate = ours_n / ours_s, scapy_n / scapy_s
    out("\nside by side\n")
    out(f"{'measure':42} {'value':>14} {'target':>14}\n")
    out(f"{'synthetic events/s (wall)':42} {gen_wall:14,.0f} {TARGET_EVENTS_PER_S:14,}\n")
    out(f"{'synthetic events/s (cpu)':42} {gen_cpu:14,.0f} {TARGET_EVENTS_PER_S:14,}\n")
    both = total / (wall_s + make_s)
    out(f"{'  with every event object made (wall)':42} {both:14,.0f}\n")
    out(f"{'harness.pcap packets/s (render + write)':42} {ours_rate:14,.0f}\n")
    out(f"{'scapy packets/s (craft + write)':42} {scapy_rate:14,.0f}\n")
    ratio = ours_rate / scapy_rate
    out(f"{'harness.pcap / scapy':42} {ratio:13,.0f}x {TARGET_PCAP_RATIO:13}x\n")
    out(f"same packets (scapy's file is a prefix of ours): {same}\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
