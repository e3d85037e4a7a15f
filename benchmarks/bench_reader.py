"""Benchmark: harness.ingest's pcap reader against tshark and scapy on the same capture.

A deterministic capture of at least ``--packets`` packets is rendered with harness.pcap (the
workload of ``bench_pcap.py``: TCP/443 transfers with heavy-tailed sizes, DNS exchanges, UDP
streams, all interleaved in time). Then, side by side in one run:

* this reader (fast path), events fully materialised: flows, DNS queries, anomalies;
* ``tshark -r F -T fields`` extracting time, addresses, ports, frame length and DNS query name;
* scapy's ``PcapReader`` dissecting every packet (on the first ``--scapy-packets`` packets:
  scapy is slow, so its rate is measured on a prefix; the rate, not the total, is compared).

Each of the three is run ``--repeat`` times and its best time counts, so that a burst of load
on a shared machine does not tilt the ratios either way.

With ``--big`` a capture of at least ``--big-gb`` GB is written to ``/tmp``, read once with peak
RSS measured in a child process (``resource.getrusage``), and deleted afterwards.

    python benchmarks/bench_reader.py --packets 60000
    python benchmarks/bench_reader.py --packets 60000 --big
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pcap import workload

from harness.ingest import PcapEventReader
from harness.pcap.render import merge_flows, render_flow
from harness.pcap.writer import PcapWriter

TSHARK_FIELDS = [
    "frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.srcport",
    "udp.dstport", "frame.len", "dns.qry.name",
]  # fmt: skip


def make_capture(path: Path, packets: int, seed: int) -> int:
    specs = workload(packets, seed)
    with PcapWriter(path) as writer:
        writer.write_many(merge_flows(render_flow(s) for s in specs))
    return writer.packets_written


def run_ours(path: Path) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    reader = PcapEventReader(path)
    events = sum(1 for _ in reader)
    return time.perf_counter() - t0, reader.stats.records, events


def run_tshark(path: Path) -> tuple[float, int]:
    tshark = shutil.which("tshark")
    if tshark is None:
        return float("nan"), 0
    cmd = [tshark, "-n", "-r", str(path), "-T", "fields"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return time.perf_counter() - t0, out.count(b"\n")


def run_scapy(path: Path, limit: int) -> tuple[float, int]:
    # Only the layers a capture of this kind needs; never scapy.all.
    import scapy.layers.dns
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401
    from scapy.utils import PcapReader

    t0 = time.perf_counter()
    n = 0
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            pkt.time  # noqa: B018 - touch the fields the others extract
            n += 1
            if n >= limit:
                break
    return time.perf_counter() - t0, n


def big_run(gb: float, seed: int) -> None:
    out = sys.stdout.write
    path = Path(tempfile.gettempdir(), f"bench_reader_big_{os.getpid()}.pcap")
    try:
        target = int(gb * (1 << 30))
        t0 = time.perf_counter()
        chunk = 0
        with PcapWriter(path) as writer:
            while writer.bytes_written < target:
                specs = workload(50_000, seed + chunk)
                shift = chunk * 40_000_000_000  # later chunks later in time: 40 s apart
                flows = [render_flow(s) for s in specs]
                writer.write_many((ts + shift, f) for ts, f in merge_flows(flows))
                chunk += 1
        size = path.stat().st_size
        out(f"big capture: {writer.packets_written} packets, {size / 1e9:.2f} GB "
            f"(written in {time.perf_counter() - t0:.0f} s)\n")  # fmt: skip
        code = (
            "import resource,sys,time\n"
            "from harness.ingest import PcapEventReader\n"
            "t=time.perf_counter(); r=PcapEventReader(sys.argv[1]); n=sum(1 for _ in r)\n"
            "dt=time.perf_counter()-t\n"
            "print(r.stats.records, n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, check=True, text=True
        )
        records, events, secs, rss_kb = res.stdout.split()
        out(
            f"big read: {records} packets, {events} events in {float(secs):.1f} s = "
            f"{int(records) / float(secs):,.0f} packets/s; peak RSS {int(rss_kb) / 1024:.0f} MB\n"
        )
    finally:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--packets", type=int, default=60_000)
    parser.add_argument("--scapy-packets", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each reader; best counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big", action="store_true", help="also read a >= 1 GB capture")
    parser.add_argument("--big-gb", type=float, default=1.05)
    args = parser.parse_args(argv)
    out = sys.stdout.write
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "bench.pcap")
        n = make_capture(path, args.packets, args.seed)
        out(f"capture: {n} packets, {path.stat().st_size / 1e6:.1f} MB\n")
        ours = min(run_ours(path) for _ in range(args.repeat))
        ts_s, ts_n = min(run_tshark(path) for _ in range(args.repeat))
        sc_s, sc_n = min(run_scapy(path, args.scapy_packets) for _ in range(args.repeat))
    ours_rate = ours[1] / ours[0]
    ts_rate = ts_n / ts_s if ts_n else float("nan")
    sc_rate = sc_n / sc_s
    out(f"harness.ingest: {ours[1]} packets -> {ours[2]} events in {ours[0]:.3f} s = "
        f"{ours_rate:,.0f} packets/s (best of {args.repeat})\n")  # fmt: skip
    out(f"tshark -T fields: {ts_n} packets in {ts_s:.3f} s = {ts_rate:,.0f} packets/s "
        f"(best of {args.repeat})\n")  # fmt: skip
    out(f"scapy PcapReader: {sc_n} packets in {sc_s:.3f} s = {sc_rate:,.0f} packets/s "
        f"(best of {args.repeat})\n")  # fmt: skip
    out(f"ratio vs tshark: {ours_rate / ts_rate:.1f}x (target 10x); "
        f"vs scapy: {ours_rate / sc_rate:.1f}x (target 100x)\n")  # fmt: skip
    out(f"this process peak RSS: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB\n")  # fmt: skip
    if args.big:
        big_run(args.big_gb, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
