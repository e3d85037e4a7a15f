"""The pcap rendering of a scenario: byte invariant, DNS/TLS/HTTP payloads, anomalies, and
Wireshark's verdict on the whole capture, taken on the wire and compact.

The office's bulk flows (media, updates, backups) run to gigabytes even in a small office, so
the captures under test keep every flow of at most 1 MB plus every DNS and anomaly event of a
small ``protocol-anomalies`` run: every protocol, port mismatch and anomaly kind is in it. (A
whole scenario, compact, is in ``test_pcap_compact.py``.) Three captures of the same events:
on the wire (:data:`FULL`), compact with whole frames (offloaded segments, every byte stored,
so Wireshark can verify the checksums computed without building the payloads) and compact
(:data:`COMPACT`, the same frames cut to 384 bytes).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import InvalidParameterError
from harness.events import (
    AnomalyKind,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    NetworkFlow,
    ProtocolAnomaly,
    Transport,
)
from harness.fields import Profile
from harness.pcap.dnswire import parse_message, qtype_name
from harness.pcap.scenario import (
    COMPACT,
    FULL,
    CaptureOptions,
    estimate_capture_bytes,
    flow_messages,
    pcap_conversations,
    render_stitched,
    stitch_flows,
    write_scenario_pcap,
)
from harness.pcap.writer import PcapReader, PcapWriter, iter_pcap
from scenarios.attacks import ProtocolAnomalies

TSHARK = shutil.which("tshark")
PARAMS = {
    "workstations": 5,
    "servers": 1,
    "baseline_days": 1,
    "detection_days": 1,
    "browsing_sessions_per_day": 2.0,
}
FLOW_LIMIT = 1_000_000
SEVERITY_WARNING = 0x00600000
T0 = 1_793_577_600_000_000_000


def _events(seed: int) -> list[Event]:
    scenario = ProtocolAnomalies()
    run = scenario.generate(scenario.params(PARAMS), seed, Profile.NETWORK_ONLY)
    totals: dict[str, int] = defaultdict(int)
    for e in run.telemetry.events:
        if isinstance(e, NetworkFlow):
            totals[e.flow_id] += e.bytes_out + e.bytes_in
    return [
        e
        for e in run.telemetry.events
        if not isinstance(e, NetworkFlow) or totals[e.flow_id] <= FLOW_LIMIT
    ]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return _events(0)


#: Compact segments, every byte stored: what COMPACT cuts to its snapshot length.
COMPACT_WHOLE = CaptureOptions(snaplen=None)
CAPTURES = {"wire": FULL, "compact_whole": COMPACT_WHOLE, "compact": COMPACT}


def _write(events: list[Event], path: Path, options: CaptureOptions) -> Path:
    summary = write_scenario_pcap(events, path, options=options)
    assert summary.packets > 5_000
    assert summary.degraded_flows == 0
    assert summary.file_bytes == path.stat().st_size
    return path


@pytest.fixture(scope="module")
def captures(events: list[Event], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pcap")
    return {name: _write(events, folder / f"{name}.pcap", o) for name, o in CAPTURES.items()}


@pytest.fixture(scope="module")
def capture(captures: dict[str, Path]) -> Path:
    """The capture on the wire."""
    return captures["wire"]


def _records(source: Path | io.BytesIO) -> list[tuple[int, bytes, int]]:
    with PcapReader(source) as reader:
        return list(reader.records())


def _anomalies(events: Sequence[Event]) -> list[ProtocolAnomaly]:
    return [e for e in events if isinstance(e, ProtocolAnomaly)]


def _tuple_key(transport: Transport, a: str, ap: int, b: str, bp: int) -> frozenset[object]:
    return frozenset({(transport.value, a, ap), (transport.value, b, bp)})


# -- byte invariant ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CAPTURES))
def test_every_flow_is_in_the_capture_with_its_exact_bytes(
    events: list[Event], captures: dict[str, Path], name: str
) -> None:
    convs = pcap_conversations(captures[name])
    flows = stitch_flows(events)
    for f in flows:
        conv = convs.pop((f.transport, f.src_ip, f.src_port, f.dst_ip, f.dst_port))
        assert (conv.bytes_out, conv.bytes_in) == (f.bytes_out, f.bytes_in), f
    # What is left are the anomalies' own packets, and nothing else.
    extra = {_tuple_key(k[0], k[1], k[2], k[3], k[4]) for k in convs}
    anomaly_keys = {
        _tuple_key(a.transport, a.src_ip, a.src_port, a.dst_ip, a.dst_port)
        for a in _anomalies(events)
        if a.anomaly is not AnomalyKind.PORT_PROTOCOL_MISMATCH
    }
    assert extra == anomaly_keys
    mismatches = [a for a in _anomalies(events) if a.anomaly is AnomalyKind.PORT_PROTOCOL_MISMATCH]
    assert mismatches
    flow_keys = {_tuple_key(f.transport, f.src_ip, f.src_port, f.dst_ip, f.dst_port) for f in flows}
    for a in mismatches:  # a port/protocol mismatch is rendered by its flow
        assert _tuple_key(a.transport, a.src_ip, a.src_port, a.dst_ip, a.dst_port) in flow_keys


def test_interim_records_are_stitched_into_one_connection() -> None:
    common = {
        "host": "ws001",
        "process_guid": None,
        "transport": Transport.TCP,
        "src_ip": "192.0.2.100",
        "src_port": 50_000,
        "dst_ip": "203.0.113.7",
        "dst_port": 443,
        "direction": Direction.OUTBOUND,
        "app_protocol": AppProtocol.TLS,
        "start_ns": T0,
        "end_ns": T0 + 150 * 10**9,
        "packets_out": 0,
        "packets_in": 0,
        "server_name": "sync.example",
    }
    records = [
        NetworkFlow(event_id="e1", ts_ns=T0 + 60 * 10**9, flow_id="f1", bytes_out=400_000,
                    bytes_in=9_000, is_final=False, **common),  # type: ignore[arg-type]
        NetworkFlow(event_id="e2", ts_ns=T0 + 120 * 10**9, flow_id="f1", bytes_out=400_000,
                    bytes_in=9_000, is_final=False, **common),  # type: ignore[arg-type]
        NetworkFlow(event_id="e3", ts_ns=T0 + 150 * 10**9, flow_id="f1", bytes_out=200_001,
                    bytes_in=4_500, is_final=True, **common),  # type: ignore[arg-type]
    ]  # fmt: skip
    (flow,) = stitch_flows(records)
    assert (flow.bytes_out, flow.bytes_in, flow.records) == (1_000_001, 22_500, 3)
    out = io.BytesIO()
    write_scenario_pcap(records, out, options=FULL)
    out.seek(0)
    (conv,) = pcap_conversations(out).values()
    assert (conv.bytes_out, conv.bytes_in) == (1_000_001, 22_500)
    out.seek(0)
    frames = list(iter_pcap(out))
    assert frames[0][0] == T0
    assert frames[-1][0] == T0 + 150 * 10**9
    assert frames[0][1][47] == 0x02  # SYN first, FIN/ACK teardown at the end
    assert frames[-3][1][47] == 0x11


_APPS = {
    Transport.TCP: (AppProtocol.TLS, AppProtocol.HTTP, AppProtocol.SMB, AppProtocol.UNKNOWN),
    Transport.UDP: (AppProtocol.DNS, AppProtocol.RTP, AppProtocol.UNKNOWN),
}


@st.composite
def _flow(draw: st.DrawFn) -> NetworkFlow:
    transport = draw(st.sampled_from(Transport))
    v6 = draw(st.booleans())
    dur = draw(st.integers(1, 10**10))
    return NetworkFlow(
        event_id="e1",
        ts_ns=T0 + dur,
        flow_id="f1",
        host="h",
        process_guid=None,
        transport=transport,
        src_ip="2001:db8::5" if v6 else "192.0.2.5",
        src_port=draw(st.integers(1024, 65_535)),
        dst_ip="2001:db8:1::9" if v6 else "198.51.100.9",
        dst_port=draw(st.sampled_from((53, 80, 443, 445, 3478, 5353, 8443))),
        direction=Direction.OUTBOUND,
        app_protocol=draw(st.sampled_from(_APPS[transport])),
        start_ns=T0,
        end_ns=T0 + dur,
        bytes_out=draw(st.integers(0, 60_000)),
        bytes_in=draw(st.integers(0, 60_000)),
        packets_out=0,
        packets_in=0,
        is_final=draw(st.booleans()),
        server_name=draw(st.sampled_from((None, "a.example", "very-long-name.cdn.example"))),
    )


#: Capture options under test: wire, compact, and small segments cut short (many boundaries).
_OPTIONS = {
    "wire": FULL,
    "compact": COMPACT,
    "small": CaptureOptions(max_segment=3_000, snaplen=100, udp_bulk_datagram=2_000),
}


def _render(flow: NetworkFlow, options: CaptureOptions) -> list[tuple[int, bytes, int]]:
    (stitched,) = stitch_flows([flow])
    messages, _ = flow_messages(stitched, options=options)
    return list(render_stitched(stitched, messages, options=options))


def _pcap(records: list[tuple[int, bytes, int]], options: CaptureOptions) -> io.BytesIO:
    out = io.BytesIO()
    with PcapWriter(out, snaplen=options.file_snaplen) as writer:
        writer.write_records(records)
    out.seek(0)
    return out


@pytest.mark.parametrize("name", list(_OPTIONS))
@settings(max_examples=60, deadline=None)
@given(flow=_flow())
def test_flow_bytes_equal_the_sum_of_its_packets(flow: NetworkFlow, name: str) -> None:
    options = _OPTIONS[name]
    records = _render(flow, options)
    assert [t for t, _, _ in records] == sorted(t for t, _, _ in records)
    assert records[0][0] == flow.start_ns
    for _, captured, orig_len in records:
        assert len(captured) <= min(orig_len, options.snaplen or orig_len)
    (conv,) = pcap_conversations(_pcap(records, options)).values()
    assert (conv.src_ip, conv.src_port) == (flow.src_ip, flow.src_port)
    assert (conv.bytes_out, conv.bytes_in) == (flow.bytes_out, flow.bytes_in)


@settings(max_examples=60, deadline=None)
@given(flow=_flow(), segment=st.integers(1, 65_495), snaplen=st.integers(1, 400))
def test_cut_frames_are_prefixes_of_whole_ones(
    flow: NetworkFlow, segment: int, snaplen: int
) -> None:
    """Headers (lengths, checksums) do not depend on how much of the payload is built."""
    whole = _render(flow, CaptureOptions(max_segment=segment, snaplen=None))
    cut = _render(flow, CaptureOptions(max_segment=segment, snaplen=snaplen))
    assert len(whole) == len(cut)
    for (t1, full, length), (t2, part, orig_len) in zip(whole, cut, strict=True):
        assert (t1, length) == (t2, orig_len) == (t2, len(full))
        # The builder keeps the headers whole; the writer cuts them to the snapshot length.
        assert full.startswith(part)
        assert len(part) >= min(snaplen, len(full))


def test_segments_and_windows_of_a_compact_connection() -> None:
    flow = NetworkFlow(
        event_id="e1", ts_ns=T0 + 10**9, flow_id="f1", host="h", process_guid=None,
        transport=Transport.TCP, src_ip="192.0.2.5", src_port=50_000, dst_ip="198.51.100.9",
        dst_port=443, direction=Direction.OUTBOUND, app_protocol=AppProtocol.TLS, start_ns=T0,
        end_ns=T0 + 10**9, bytes_out=1_000_000, bytes_in=3_000, packets_out=0, packets_in=0,
        is_final=True, server_name="a.example",
    )  # fmt: skip
    records = _render(flow, COMPACT)
    syn = records[0][1]
    assert syn[47] == 0x02
    # MSS 1460 (the wire's), SACK permitted, window scale 7.
    assert syn[54:66] == b"\x02\x04\x05\xb4\x01\x01\x04\x02\x01\x03\x03\x07"
    lengths = [orig - 34 - (frame[46] >> 4) * 4 for _, frame, orig in records]
    assert max(lengths) == 65_000
    assert sum(lengths) == 1_003_000
    assert all(len(frame) <= 384 for _, frame, _ in records)
    # After the handshake every window is 16,384 << 7 = 2 MiB: two segments fit in flight.
    assert {int.from_bytes(f[48:50], "big") for _, f, _ in records[2:]} == {16_384}


def test_capture_options_are_validated() -> None:
    for bad in ({"max_segment": 0}, {"max_segment": 65_496}, {"snaplen": -1},
                {"udp_bulk_datagram": 100}, {"udp_bulk_datagram": 65_508}):  # fmt: skip
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            CaptureOptions(**bad)  # type: ignore[arg-type]
    assert CaptureOptions(snaplen=0).file_snaplen == CaptureOptions(snaplen=None).file_snaplen


# -- compact captures ----------------------------------------------------------------------------


def test_compact_capture_is_the_whole_one_cut_to_its_snapshot_length(
    captures: dict[str, Path],
) -> None:
    with PcapReader(captures["compact"]) as reader:
        assert reader.header.snaplen == 384
        cut = list(reader.records())
    with PcapReader(captures["compact_whole"]) as reader:
        assert reader.header.snaplen == 262_144
        whole = list(reader.records())
    assert len(cut) == len(whole)
    truncated = 0
    for (t1, full, length), (t2, part, orig_len) in zip(whole, cut, strict=True):
        assert (t1, length) == (t2, orig_len)
        assert len(full) == length
        assert part == full[:384]
        truncated += orig_len > 384
    assert truncated > 1_000
    # Offloaded TCP segments beyond the wire MSS, and coalesced media datagrams.
    assert max(length for _, _, length in whole) > 10_000
    assert len(whole) < len(_records(captures["wire"]))


def test_estimate_is_generous_but_not_wild(events: list[Event], captures: dict[str, Path]) -> None:
    for name, options in CAPTURES.items():
        size = captures[name].stat().st_size
        estimate = estimate_capture_bytes(events, options=options)
        assert size <= estimate <= 3 * size, name


# -- payloads ------------------------------------------------------------------------------------


def test_dns_flows_carry_the_queries_and_answers(events: list[Event], capture: Path) -> None:
    queries = {(e.src_ip, e.query, e.qtype) for e in events if isinstance(e, DnsQuery)}
    answered: set[tuple[str, str, str]] = set()
    for _, frame in iter_pcap(capture):
        # IPv4 UDP from port 53 to a client port: the responses of the DNS flows.
        if frame[23] != 17 or int.from_bytes(frame[34:36], "big") not in (53, 5353):
            continue
        if int.from_bytes(frame[36:38], "big") in (53, 5353):
            continue  # the malformed-DNS anomalies go from port 53 to port 53
        message = parse_message(frame[42:])
        assert message.is_response
        (question,) = message.questions
        client = ".".join(str(b) for b in frame[30:34])
        answered.add((client, question.name, qtype_name(question.qtype)))
    assert queries <= answered


def _tshark_fields(path: Path, fields: Sequence[str], *extra: str) -> list[list[str]]:
    assert TSHARK is not None
    args = [TSHARK, "-n", "-r", str(path), *extra, "-T", "fields", "-E", "separator=\t"]
    args += ["-E", "occurrence=a", "-E", "aggregator=|"]
    for f in fields:
        args += ["-e", f]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return [
        [*line.split("\t"), *[""] * len(fields)][: len(fields)]
        for line in result.stdout.splitlines()
    ]


needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


@needs_tshark
@pytest.mark.parametrize("name", list(CAPTURES))
def test_tshark_reads_everything_and_flags_only_the_deliberate_packets(
    events: list[Event], captures: dict[str, Path], name: str
) -> None:
    capture = captures[name]
    rows = _tshark_fields(
        capture,
        (
            "frame.number", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.srcport",
            "udp.dstport", "tcp.len", "udp.length", "_ws.malformed", "_ws.expert.severity",
            "_ws.expert.message", "tls.handshake.extensions_server_name", "http.host",
            "frame.len", "frame.cap_len",
        ),
        "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
        "-o", "udp.check_checksum:TRUE",
    )  # fmt: skip
    assert len(rows) == sum(1 for _ in iter_pcap(capture))
    anomalies = _anomalies(events)
    malformed_dns = {
        _tuple_key(a.transport, a.src_ip, a.src_port, a.dst_ip, a.dst_port)
        for a in anomalies
        if a.anomaly is AnomalyKind.MALFORMED_DNS
    }
    deliberate = {
        _tuple_key(a.transport, a.src_ip, a.src_port, a.dst_ip, a.dst_port) for a in anomalies
    }
    flows = {(f.src_ip, f.src_port, f.dst_ip, f.dst_port): f for f in stitch_flows(events)}
    payload: dict[tuple[str, int, str, int], int] = defaultdict(int)
    malformed_frames = 0
    snis: dict[tuple[str, int, str, int], str] = {}
    first_cut: dict[tuple[str, int, str, int], bool] = {}
    for (number, src, dst, tsp, tdp, usp, udp, tlen, ulen, malformed, sev, msg, sni,
         host, frame_len, cap_len) in rows:  # fmt: skip
        tcp = bool(tsp)
        transport = Transport.TCP if tcp else Transport.UDP
        sport, dport = int(tsp or usp), int(tdp or udp)
        key = _tuple_key(transport, src, sport, dst, dport)
        payload[(src, sport, dst, dport)] += int(tlen) if tcp else int(ulen) - 8
        if tcp and int(tlen):
            first_cut.setdefault((src, sport, dst, dport), frame_len != cap_len)
        if malformed:
            malformed_frames += 1
            assert key in malformed_dns, f"frame {number} is malformed: {msg}"
        severities = [int(s) for s in sev.split("|") if s]
        if any(s >= SEVERITY_WARNING for s in severities):
            assert key in deliberate, f"frame {number}: {msg}"
        if sni:
            snis[(src, sport, dst, dport)] = sni
        if host:
            snis[(src, sport, dst, dport)] = host
    assert malformed_frames == sum(a.anomaly is AnomalyKind.MALFORMED_DNS for a in anomalies)
    # Bytes per direction, as Wireshark counts them, match the flow events.
    for (a, ap, b, bp), f in flows.items():
        assert payload[(a, ap, b, bp)] == f.bytes_out, f
        assert payload.get((b, bp, a, ap), 0) == f.bytes_in, f
    # The ClientHello carries the SNI and the HTTP request the Host of the flow, where the
    # capture kept the whole record: Wireshark dissects no TLS handshake cut short.
    named = [
        f
        for f in flows.values()
        if f.server_name
        and f.app_protocol in (AppProtocol.TLS, AppProtocol.HTTP)
        and f.dst_port in (443, 80)
        and not first_cut.get((f.src_ip, f.src_port, f.dst_ip, f.dst_port), True)
    ]
    assert len(named) > 100
    for f in named:
        assert snis.get((f.src_ip, f.src_port, f.dst_ip, f.dst_port)) == f.server_name, f
    for key, sni in snis.items():  # and no name is cut short or misplaced
        flow = flows.get(key)
        assert flow is None or flow.server_name in (sni, None), (flow, sni)


# -- determinism ---------------------------------------------------------------------------------


def _digest(events: list[Event], options: CaptureOptions) -> str:
    out = io.BytesIO()
    write_scenario_pcap(events, out, options=options)
    return hashlib.sha256(out.getvalue()).hexdigest()


@pytest.mark.parametrize("name", ["wire", "compact"])
def test_same_seed_same_bytes_other_seed_other_bytes(
    events: list[Event], captures: dict[str, Path], name: str
) -> None:
    first = hashlib.sha256(captures[name].read_bytes()).hexdigest()
    assert _digest(_events(0), CAPTURES[name]) == first
    assert _digest(_events(1), CAPTURES[name]) != first
