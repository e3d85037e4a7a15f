"""A whole scenario rendered as a compact capture (offloaded segments, 384-byte snapshots),
every flow of it, read back by Wireshark and by the project's own reader.

The scenario is a small ``protocol-anomalies`` office (five workstations, the fewest its attacks
need, one baseline day): every protocol, anomaly kind and Teams media call of the office is in
it, several GB of payload in a few hundred thousand records.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness.events import AnomalyKind, DnsQuery, Event, NetworkFlow, ProtocolAnomaly, Transport
from harness.fields import Profile
from harness.ingest import read_pcap
from harness.pcap.scenario import COMPACT, PcapSummary, stitch_flows, write_scenario_pcap
from harness.pcap.writer import PcapReader
from scenarios.attacks import ProtocolAnomalies

TSHARK = shutil.which("tshark")
PARAMS = {"workstations": 5, "servers": 1, "baseline_days": 1, "detection_days": 1}
SNAPLEN = 384

pytestmark = pytest.mark.slow

#: Unordered 5-tuple: (transport, {(ip, port), (ip, port)}).
Key = tuple[str, frozenset[tuple[str, int]]]


def _key(transport: str, a: str, ap: int, b: str, bp: int) -> Key:
    return transport, frozenset({(a, ap), (b, bp)})


@pytest.fixture(scope="module")
def events() -> list[Event]:
    scenario = ProtocolAnomalies()
    return list(
        scenario.generate(scenario.params(PARAMS), 0, Profile.NETWORK_ONLY).telemetry.events
    )


@pytest.fixture(scope="module")
def rendered(
    events: list[Event], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, PcapSummary]:
    path = tmp_path_factory.mktemp("compact") / "capture.pcap"
    summary = write_scenario_pcap(events, path, options=COMPACT)
    return path, summary


@pytest.fixture(scope="module")
def capture(rendered: tuple[Path, PcapSummary]) -> Path:
    return rendered[0]


def _anomalies(events: list[Event]) -> list[ProtocolAnomaly]:
    return [e for e in events if isinstance(e, ProtocolAnomaly)]


def _expected_bytes(events: list[Event]) -> dict[tuple[str, str, int, str, int], int]:
    """Payload bytes per directed 5-tuple, from the flow events."""
    out: dict[tuple[str, str, int, str, int], int] = defaultdict(int)
    for f in stitch_flows(events):
        t = f.transport.value
        out[(t, f.src_ip, f.src_port, f.dst_ip, f.dst_port)] += f.bytes_out
        out[(t, f.dst_ip, f.dst_port, f.src_ip, f.src_port)] += f.bytes_in
    return out


def test_the_whole_scenario_fits_in_a_compact_file(
    events: list[Event], rendered: tuple[Path, PcapSummary]
) -> None:
    path, summary = rendered
    payload = sum(e.bytes_out + e.bytes_in for e in events if isinstance(e, NetworkFlow))
    assert payload > 10**9  # gigabytes of traffic ...
    assert summary.file_bytes < payload / 20  # ... in a file a small fraction of that
    assert summary.flows == len(stitch_flows(events))
    assert summary.degraded_flows == 0
    with PcapReader(path) as reader:
        assert reader.header.snaplen == SNAPLEN
        records = 0
        for _, frame, orig_len in reader.records():
            assert len(frame) == min(orig_len, SNAPLEN)
            records += 1
    assert records == summary.packets


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_reads_every_frame_and_its_conversations_are_the_flows(
    events: list[Event], capture: Path
) -> None:
    assert TSHARK is not None
    fields = ("frame.number", "frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
              "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.len",
              "udp.length", "_ws.malformed")  # fmt: skip
    args = [TSHARK, "-n", "-r", str(capture), "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        args += ["-e", f]
    args += ["-z", "conv,tcp", "-z", "conv,udp"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split("\t") for line in lines if line[:1].isdigit() and "\t" in line]
    with PcapReader(capture) as reader:
        orig_lens = [orig_len for _, _, orig_len in reader.records()]
    assert [int(r[0]) for r in rows] == list(range(1, len(orig_lens) + 1))
    malformed_dns = {
        _key(a.transport.value, a.src_ip, a.src_port, a.dst_ip, a.dst_port)
        for a in _anomalies(events)
        if a.anomaly is AnomalyKind.MALFORMED_DNS
    }
    payload: dict[tuple[str, str, int, str, int], int] = defaultdict(int)
    frame_bytes: Counter[Key] = Counter()
    malformed = 0
    for row, orig_len in zip(rows, orig_lens, strict=True):
        (_, frame_len, src4, dst4, src6, dst6, tsp, tdp, usp, udp, tlen, ulen, bad) = row
        assert int(frame_len) == orig_len  # Wireshark's frame length is the real one
        src, dst = src4 or src6, dst4 or dst6
        transport = "tcp" if tsp else "udp"
        sport, dport = int(tsp or usp), int(tdp or udp)
        key = _key(transport, src, sport, dst, dport)
        # tcp.len comes from the IP total length, udp.length from the UDP header: both survive
        # the cut.
        payload[(transport, src, sport, dst, dport)] += int(tlen) if tsp else int(ulen) - 8
        frame_bytes[key] += orig_len
        if bad:
            malformed += 1
            assert key in malformed_dns, f"frame {row[0]} is malformed"
    deliberate = sum(a.anomaly is AnomalyKind.MALFORMED_DNS for a in _anomalies(events))
    assert malformed == deliberate > 0
    # Every flow's payload bytes per direction, as Wireshark counts them, are the events'.
    expected = _expected_bytes(events)
    for directed, count in expected.items():
        assert payload.get(directed, 0) == count, directed
    anomaly_keys = {
        _key(a.transport.value, a.src_ip, a.src_port, a.dst_ip, a.dst_port)
        for a in _anomalies(events)
        if a.anomaly is not AnomalyKind.PORT_PROTOCOL_MISMATCH
    }
    flow_keys = {_key(t, a, ap, b, bp) for (t, a, ap, b, bp) in expected}
    assert {_key(*k) for k in payload} == flow_keys | anomaly_keys
    # The conversation tables: one line per 5-tuple, with its frames and its bytes (the real
    # frame lengths, which tshark prints rounded to three or four digits and a unit).
    units = {"bytes": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}
    frames: Counter[Key] = Counter(k for k, _ in zip(_row_keys(rows), orig_lens, strict=True))
    seen: set[Key] = set()
    section = ""
    for line in lines:
        if line.startswith(("TCP Conversations", "UDP Conversations")):
            section = line[:3].lower()
            continue
        parts = line.split()
        if not section or len(parts) != 14 or parts[1] != "<->":
            continue
        (a, ap), (b, bp) = parts[0].rsplit(":", 1), parts[2].rsplit(":", 1)
        key = _key(section, a, int(ap), b, int(bp))
        total_frames, total_bytes, unit = int(parts[9]), int(parts[10]), units[parts[11]]
        assert total_frames == frames[key], key
        assert abs(frame_bytes[key] / unit - total_bytes) < 1, (key, parts[9:12])
        seen.add(key)
    assert seen == set(frame_bytes)


def _row_keys(rows: list[list[str]]) -> list[Key]:
    keys = []
    for _, _, src4, dst4, src6, dst6, tsp, tdp, usp, udp, *_rest in rows:
        transport = "tcp" if tsp else "udp"
        keys.append(_key(transport, src4 or src6, int(tsp or usp), dst4 or dst6, int(tdp or udp)))
    return keys


def test_the_project_reader_finds_the_flows_and_queries(events: list[Event], capture: Path) -> None:
    read = list(read_pcap(capture))
    got: dict[tuple[str, str, int, str, int], int] = defaultdict(int)
    for e in read:
        if isinstance(e, NetworkFlow):
            t = e.transport.value
            got[(t, e.src_ip, e.src_port, e.dst_ip, e.dst_port)] += e.bytes_out
            got[(t, e.dst_ip, e.dst_port, e.src_ip, e.src_port)] += e.bytes_in
    expected = _expected_bytes(events)
    anomaly_keys = {
        _key(a.transport.value, a.src_ip, a.src_port, a.dst_ip, a.dst_port)
        for a in _anomalies(events)
    }
    for directed, count in expected.items():
        if _key(*directed) in anomaly_keys:
            continue  # an anomaly's own packets share the 5-tuple of its flow
        assert got.get(directed, 0) == count, directed
    assert {_key(*k) for k in got} >= {_key(*k) for k in expected}
    # DNS: every query of the telemetry is in the capture under its name, from its client.
    wanted = Counter(
        (e.src_ip, e.query.lower().rstrip(".")) for e in events if isinstance(e, DnsQuery)
    )
    seen = Counter((e.src_ip, e.query.lower().rstrip(".")) for e in read if isinstance(e, DnsQuery))
    assert wanted - seen == Counter()
    assert any(isinstance(e, ProtocolAnomaly) for e in read)
    assert sum(1 for e in read if isinstance(e, NetworkFlow) and e.transport is Transport.UDP)
