"""ECS NDJSON: published Community ID vectors, exact round trips of every event kind, errors."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.ecs import (
    EcsFormatError,
    community_id,
    dumps_event,
    format_timestamp,
    from_ecs,
    loads_event,
    parse_timestamp,
    read_ndjson,
    to_ecs,
    write_ndjson,
)
from harness.events import (
    AnomalyKind,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    FileAccess,
    FileOperation,
    NetworkConnection,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
    Transport,
)

# -- Community ID -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "src", "sport", "dst", "dport", "expected"),
    [
        # The examples of the Community ID specification (corelight/community-id-spec).
        (Transport.TCP, "128.232.110.120", 34855, "66.35.250.204", 80,
         "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        (Transport.TCP, "66.35.250.204", 80, "128.232.110.120", 34855,
         "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        (Transport.UDP, "192.168.1.52", 54585, "8.8.8.8", 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
        (Transport.TCP, "fe80::200:86ff:fe05:80da", 1, "fe80::260:97ff:fe07:69ea", 2,
         "1:JETlgBm4LXP5CwobPGu4IYZF5Hs="),
    ],
)  # fmt: skip
def test_community_id_matches_published_vectors(
    transport: Transport, src: str, sport: int, dst: str, dport: int, expected: str
) -> None:
    assert community_id(transport, src, sport, dst, dport) == expected


def test_community_id_seed() -> None:
    got = community_id(Transport.TCP, "128.232.110.120", 34855, "66.35.250.204", 80, seed=1)
    assert got == "1:3V71V58M3Ksw/yuFALMcW0LAHvc="


# -- strategies ---------------------------------------------------------------------------------

_text = st.text(max_size=40)
_ts = st.integers(min_value=0, max_value=(1 << 32) * 1_000_000_000 - 1)
_ip = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
_port = st.integers(0, 65_535)
_count = st.integers(0, 1 << 40)
_eid = st.from_regex(r"e[0-9]{1,8}", fullmatch=True)


@st.composite
def _flows(draw: st.DrawFn) -> NetworkFlow:
    v6 = draw(st.booleans())
    ip = st.ip_addresses(v=6 if v6 else 4).map(str)
    start = draw(_ts)
    return NetworkFlow(
        event_id=draw(_eid),
        ts_ns=draw(_ts),
        flow_id=draw(_text),
        host=draw(_text),
        process_guid=draw(st.none() | _text),
        transport=draw(st.sampled_from(Transport)),
        src_ip=draw(ip),
        src_port=draw(_port),
        dst_ip=draw(ip),
        dst_port=draw(_port),
        direction=draw(st.sampled_from(Direction)),
        app_protocol=draw(st.sampled_from(AppProtocol)),
        start_ns=start,
        end_ns=draw(st.integers(start, start + 10**12)),
        bytes_out=draw(_count),
        bytes_in=draw(_count),
        packets_out=draw(_count),
        packets_in=draw(_count),
        is_final=draw(st.booleans()),
        server_name=draw(st.none() | _text),
    )


@st.composite
def _anomalies(draw: st.DrawFn) -> ProtocolAnomaly:
    ip = st.ip_addresses(v=draw(st.sampled_from((4, 6)))).map(str)
    return ProtocolAnomaly(
        event_id=draw(_eid),
        ts_ns=draw(_ts),
        host=draw(st.none() | _text),
        transport=draw(st.sampled_from(Transport)),
        src_ip=draw(ip),
        src_port=draw(_port),
        dst_ip=draw(ip),
        dst_port=draw(_port),
        anomaly=draw(st.sampled_from(AnomalyKind)),
        detail=draw(_text),
        app_protocol=draw(st.sampled_from(AppProtocol)),
    )


@st.composite
def _connections(draw: st.DrawFn) -> NetworkConnection:
    ip = st.ip_addresses(v=draw(st.sampled_from((4, 6)))).map(str)
    return NetworkConnection(
        event_id=draw(_eid),
        ts_ns=draw(_ts),
        host=draw(_text),
        process_guid=draw(_text),
        transport=draw(st.sampled_from(Transport)),
        src_ip=draw(ip),
        src_port=draw(_port),
        dst_ip=draw(ip),
        dst_port=draw(_port),
        direction=draw(st.sampled_from(Direction)),
        initiated=draw(st.booleans()),
    )


_events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        ProcessStart,
        event_id=_eid,
        ts_ns=_ts,
        host=_text,
        process_guid=_text,
        pid=st.integers(0, 1 << 31),
        image=_text,
        name=_text,
        command_line=_text,
        parent_guid=st.none() | _text,
        user=_text,
        signer=st.none() | _text,
    ),
    st.builds(
        FileAccess,
        event_id=_eid,
        ts_ns=_ts,
        host=_text,
        process_guid=_text,
        path=_text,
        operation=st.sampled_from(FileOperation),
        bytes=_count,
    ),
    _flows(),
    st.builds(
        DnsQuery,
        event_id=_eid,
        ts_ns=_ts,
        host=_text,
        process_guid=st.none() | _text,
        src_ip=_ip,
        resolver_ip=_ip,
        query=_text,
        qtype=st.sampled_from(("A", "AAAA", "TXT", "NULL", "CNAME", "TYPE65399")),
        rcode=st.sampled_from(("NOERROR", "NXDOMAIN", "SERVFAIL")),
        answers=st.lists(_text, max_size=3).map(tuple),
        query_bytes=_count,
        response_bytes=_count,
    ),
    _anomalies(),
    _connections(),
)


@settings(max_examples=300, deadline=None)
@given(_events)
def test_every_event_round_trips_exactly(event: Event) -> None:
    line = dumps_event(event)
    assert "\n" not in line
    assert loads_event(line) == event
    assert from_ecs(to_ecs(event)) == event


@settings(max_examples=50, deadline=None)
@given(st.lists(_events, max_size=8))
def test_ndjson_file_round_trips_and_is_canonical(events: list[Event]) -> None:
    out = io.StringIO()
    assert write_ndjson(events, out) == len(events)
    text = out.getvalue()
    assert list(read_ndjson(io.StringIO(text))) == events
    again = io.StringIO()
    write_ndjson(events, again)
    assert again.getvalue() == text


@given(_ts)
def test_timestamps_round_trip(ts_ns: int) -> None:
    text = format_timestamp(ts_ns)
    assert text.endswith("Z")
    assert len(text.split(".")[1]) == 10  # nine digits and the Z
    assert parse_timestamp(text) == ts_ns


def test_flow_document_uses_ecs_names() -> None:
    flow = NetworkFlow(
        event_id="e7",
        ts_ns=1_793_577_600_123_456_789,
        flow_id="f7",
        host="ws001",
        process_guid="{G}",
        transport=Transport.TCP,
        src_ip="192.0.2.100",
        src_port=49152,
        dst_ip="203.0.113.5",
        dst_port=443,
        direction=Direction.OUTBOUND,
        app_protocol=AppProtocol.TLS,
        start_ns=1_793_577_599_000_000_000,
        end_ns=1_793_577_600_123_456_789,
        bytes_out=1200,
        bytes_in=5000,
        packets_out=5,
        packets_in=6,
        server_name="cdn.example",
    )
    doc = to_ecs(flow)
    assert doc["@timestamp"] == "2026-11-02T00:00:00.123456789Z"
    assert doc["event"]["category"] == ["network"]
    assert doc["event"]["type"] == ["connection", "end"]
    assert doc["source"] == {"ip": "192.0.2.100", "port": 49152, "bytes": 1200, "packets": 5}
    assert doc["destination"]["bytes"] == 5000
    assert doc["network"]["transport"] == "tcp"
    assert doc["network"]["protocol"] == "tls"
    assert doc["network"]["direction"] == "outbound"
    assert doc["network"]["bytes"] == 6200
    assert doc["network"]["community_id"] == community_id(
        Transport.TCP, "192.0.2.100", 49152, "203.0.113.5", 443
    )
    assert doc["tls"]["client"]["server_name"] == "cdn.example"
    assert doc["process"]["entity_id"] == "{G}"
    assert doc["egress_harness"]["flow_id"] == "f7"


def test_connection_document_uses_ecs_names() -> None:
    conn = NetworkConnection(
        event_id="e9",
        ts_ns=1_793_577_600_000_000_000,
        host="ws001",
        process_guid="{P}",
        transport=Transport.TCP,
        src_ip="192.0.2.100",
        src_port=49_152,
        dst_ip="198.51.100.7",
        dst_port=443,
        direction=Direction.OUTBOUND,
        initiated=False,
    )
    doc = to_ecs(conn)
    assert doc["event"]["category"] == ["network"]
    assert doc["event"]["type"] == ["connection", "start"]
    assert doc["process"] == {"entity_id": "{P}"}
    assert doc["network"]["community_id"] == community_id(
        Transport.TCP, "192.0.2.100", 49_152, "198.51.100.7", 443
    )
    assert doc["egress_harness"]["initiated"] is False
    assert "bytes" not in doc["source"]
    assert "bytes" not in doc["destination"]
    assert from_ecs(doc) == conn


def test_dns_document_uses_ecs_names() -> None:
    query = DnsQuery(
        event_id="e9",
        ts_ns=5,
        host="ws002",
        process_guid=None,
        src_ip="192.0.2.101",
        resolver_ip="192.0.2.10",
        query="abc.t.example",
        qtype="TXT",
        rcode="NOERROR",
        answers=("ack",),
        query_bytes=42,
        response_bytes=60,
    )
    doc = to_ecs(query)
    assert doc["dns"]["question"] == {"name": "abc.t.example", "type": "TXT"}
    assert doc["dns"]["response_code"] == "NOERROR"
    assert doc["dns"]["answers"] == [{"data": "ack", "type": "TXT"}]
    assert "process" not in doc  # no process identity for a raw-socket query


def test_bad_lines_name_the_line_and_the_field() -> None:
    good = dumps_event(
        FileAccess(
            event_id="e1",
            ts_ns=1,
            host="h",
            process_guid="g",
            path="C:\\x",
            operation=FileOperation.READ,
            bytes=3,
        )
    )
    doc = json.loads(good)
    del doc["file"]
    text = good + "\n\n" + json.dumps(doc) + "\n"
    with pytest.raises(EcsFormatError, match=r":3: .*'file\.path'"):
        list(read_ndjson(io.StringIO(text)))
    with pytest.raises(EcsFormatError, match="not JSON"):
        loads_event("{nope")
    with pytest.raises(EcsFormatError, match="@timestamp"):
        parse_timestamp("2026-11-02 00:00:00")
