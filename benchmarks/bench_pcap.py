"""Benchmark: harness.pcap against scapy, rendering and writing the same packets in one run.

A deterministic workload of flows (TCP transfers of varied sizes, DNS exchanges, UDP streams;
IPv4, so scapy needs only ``scapy.layers.inet``/``scapy.layers.l2``) is planned once. Then:

* harness.pcap: ``render_flow`` for every flow (plan + frame building + checksums), a time-ordered
  merge, and ``PcapWriter``: the whole path, timed end to end.
* scapy: the first ``--scapy-packets`` packets of the same merged sequence, each crafted as
  ``Ether()/IP()/TCP()/Raw()`` (or UDP) from the planned header fields and written with
  ``scapy.utils.PcapWriter``. Planning is done before its clock starts, so the ratio printed is
  a conservative one.

Both files use the same snapshot length, so scapy's file must be a byte-for-byte prefix of
ours; the script checks that, which proves the two sides wrote the same packets.

    python benchmarks/bench_pcap.py --packets 20000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter as ScapyPcapWriter

from harness.events import Transport
from harness.pcap.packets import mac_for_ip
from harness.pcap.render import (
    FlowSpec,
    PlannedPacket,
    dns_flow,
    merge_flows,
    plan_flow,
    render_flow,
)
from harness.pcap.writer import PcapWriter

#: Same snapshot length as scapy's default, so that the two files can be compared byte for byte.
SNAPLEN = 65_535
_T0 = 1_700_000_000_000_000_000  # a fixed epoch: no wall clock in the workload


def workload(min_packets: int, seed: int) -> list[FlowSpec]:
    """Flows from a seeded mix until their packets reach ``min_packets``."""
    rng = random.Random(seed)
    specs: list[FlowSpec] = []
    total = 0
    i = 0
    while total < min_packets:
        start = _T0 + i * 3_000_000
        # Documentation ranges only (RFC 5737): clients on 192.0.2.0/24, servers outside.
        src = f"192.0.2.{1 + i % 250}"
        kind = rng.random()
        spec: FlowSpec
        if kind < 0.2:
            spec = dns_flow(
                src_ip=src,
                src_port=1024 + i % 60_000,
                resolver_ip="198.51.100.53",
                ts_ns=start,
                qname=f"h{i}.corp.example",
                qtype="A",
                answers=[f"192.0.2.{i % 250 + 1}"],
            )
        elif kind < 0.3:
            spec = FlowSpec(
                transport=Transport.UDP,
                src_ip=src,
                src_port=1024 + i % 60_000,
                dst_ip="198.51.100.7",
                dst_port=4500,
                start_ns=start,
                end_ns=start + rng.randrange(1, 5_000_000_000),
                bytes_out=rng.randrange(0, 20_000),
                bytes_in=rng.randrange(0, 20_000),
                exchanges=rng.randrange(1, 5),
            )
        else:
            spec = FlowSpec(
                transport=Transport.TCP,
                src_ip=src,
                src_port=1024 + i % 60_000,
                dst_ip=f"203.0.113.{1 + i % 250}",
                dst_port=443,
                start_ns=start,
                end_ns=start + rng.randrange(1, 30_000_000_000),
                bytes_out=int(rng.paretovariate(1.2) * 2_000),
                bytes_in=int(rng.paretovariate(1.2) * 8_000),
                exchanges=rng.randrange(1, 4),
            )
        specs.append(spec)
        total += len(plan_flow(spec))
        i += 1
    return specs


def run_ours(specs: list[FlowSpec], path: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    rendered = [render_flow(s) for s in specs]
    with PcapWriter(path, snaplen=SNAPLEN) as writer:
        writer.write_many(merge_flows(rendered))
    return time.perf_counter() - t0, writer.packets_written


def _scapy_packet(spec: FlowSpec, p: PlannedPacket) -> Any:
    src, dst, sport, dport = spec.src_ip, spec.dst_ip, spec.src_port, spec.dst_port
    if not p.outbound:
        src, dst, sport, dport = dst, src, dport, sport
    pkt = Ether(src=_mac(src), dst=_mac(dst)) / IP(
        src=src, dst=dst, id=p.ip_id, flags="DF", ttl=p.ttl
    )
    if spec.transport == Transport.TCP:
        options = (
            [
                ("MSS", int.from_bytes(p.options[2:4], "big")),
                ("NOP", None),
                ("NOP", None),
                ("SAckOK", b""),
            ]
            if p.options
            else []
        )
        pkt = pkt / TCP(
            sport=sport,
            dport=dport,
            seq=p.seq,
            ack=p.ack,
            flags=p.flags,
            window=p.window,
            options=options,
        )
    else:
        pkt = pkt / UDP(sport=sport, dport=dport)
    if p.payload:
        pkt = pkt / Raw(load=p.payload)
    return pkt


def _mac(ip: str) -> str:
    return ":".join(f"{b:02x}" for b in mac_for_ip(ip))


def planned_in_file_order(specs: list[FlowSpec]) -> list[tuple[FlowSpec, PlannedPacket]]:
    """Every planned packet in the order ``merge_flows`` writes them (stable by timestamp)."""
    rows = [(p.ts_ns, spec, p) for spec in specs for p in plan_flow(spec)]
    rows.sort(key=lambda row: row[0])
    return [(spec, p) for _, spec, p in rows]


def run_scapy(rows: list[tuple[FlowSpec, PlannedPacket]], path: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    writer = ScapyPcapWriter(str(path), linktype=1, nano=True, snaplen=SNAPLEN)
    writer.write_header(None)  # write_packet, unlike write, does not emit the file header
    for spec, p in rows:
        sec, nsec = divmod(p.ts_ns, 1_000_000_000)
        writer.write_packet(_scapy_packet(spec, p), sec=sec, usec=nsec)
    writer.close()
    return time.perf_counter() - t0, len(rows)


def best_of(repeat: int, fn: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    results = [fn() for _ in range(repeat)]
    return min(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20_000, help="packets for harness.pcap")
    parser.add_argument("--scapy-packets", type=int, default=5_000, help="bound for scapy")
    parser.add_argument("--repeat", type=int, default=3, help="runs of our side; best counts")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    out = sys.stdout.write

    specs = workload(args.packets, args.seed)
    rows = planned_in_file_order(specs)[: args.scapy_packets]
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, scapy_path = Path(tmp, "ours.pcap"), Path(tmp, "scapy.pcap")
        ours_s, ours_n = best_of(args.repeat, lambda: run_ours(specs, ours_path))
        scapy_s, scapy_n = run_scapy(rows, scapy_path)
        ours_bytes, scapy_bytes = ours_path.read_bytes(), scapy_path.read_bytes()
    same = ours_bytes[: len(scapy_bytes)] == scapy_bytes
    ours_rate, scapy_rate = ours_n / ours_s, scapy_n / scapy_s
    out(f"workload: {len(specs)} flows, {ours_n} packets, {len(ours_bytes)} bytes of pcap\n")
    out(
        f"harness.pcap: {ours_n} packets in {ours_s:.3f} s = {ours_rate:,.0f} packets/s "
        f"(render + checksums + write, best of {args.repeat})\n"
    )
    out(
        f"scapy:        {scapy_n} packets in {scapy_s:.3f} s = {scapy_rate:,.0f} packets/s "
        "(craft + write; planning excluded)\n"
    )
    out(f"ratio:        {ours_rate / scapy_rate:.0f}x\n")
    out(f"same bytes:   scapy's {scapy_n}-packet file is a prefix of ours: {same}\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
