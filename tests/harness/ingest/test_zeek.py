"""Zeek log reader: real Zeek 6 TSV and JSON layouts, gzip and rotation, uid and DNS naming,
time order, damaged input (wrong header, truncated line, wrong field count, bad numbers), and
Hypothesis fuzzing of both formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import InputError
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
from harness.ingest.zeek import ZeekConfig, ZeekInputError, ZeekReader, read_zeek

# -- Zeek 6 headers, as Zeek writes them ------------------------------------------------------


def _names(*parts: str) -> list[str]:
    return " ".join(parts).split()


_PREAMBLE = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
CONN_FIELDS = _names(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
    "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes "
    "resp_pkts resp_ip_bytes tunnel_parents"
)
CONN_TYPES = _names(
    "time string addr port addr port enum string interval count count string bool bool count "
    "string count count count count set[string]"
)
DNS_FIELDS = _names(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass "
    "qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected"
)
DNS_TYPES = _names(
    "time string addr port addr port enum count interval string count string count string "
    "count string bool bool bool bool count vector[string] vector[interval] bool"
)
HTTP_FIELDS = _names(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth method host uri referrer "
    "version user_agent origin request_body_len response_body_len status_code status_msg "
    "info_code info_msg tags username password proxied orig_fuids orig_filenames "
    "orig_mime_types resp_fuids resp_filenames resp_mime_types"
)
HTTP_TYPES = _names(
    "time string addr port addr port count string string string string string string string "
    "count count count string count string set[enum] string string set[string] vector[string] "
    "vector[string] vector[string] vector[string] vector[string] vector[string]"
)
SSL_FIELDS = _names(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p version cipher curve server_name resumed "
    "last_alert next_protocol established ssl_history cert_chain_fps client_cert_chain_fps "
    "sni_matches_cert"
)
SSL_TYPES = _names(
    "time string addr port addr port string string string string bool string string bool "
    "string vector[string] vector[string] bool"
)
LAYOUTS = {
    "conn": (CONN_FIELDS, CONN_TYPES),
    "dns": (DNS_FIELDS, DNS_TYPES),
    "http": (HTTP_FIELDS, HTTP_TYPES),
    "ssl": (SSL_FIELDS, SSL_TYPES),
}
T0 = 1_793_577_600.0
S = 1_000_000_000


def tsv(log: str, rows: list[dict[str, str]], *, close: bool = True) -> str:
    fields, types = LAYOUTS[log]
    out = [
        _PREAMBLE + f"#path\t{log}\n#open\t2026-11-02-00-00-00\n",
        "#fields\t" + "\t".join(fields) + "\n",
        "#types\t" + "\t".join(types) + "\n",
    ]
    for row in rows:
        out.append("\t".join(row.get(f, "-") for f in fields) + "\n")
    if close:
        out.append("#close\t2026-11-02-01-00-00\n")
    return "".join(out)


def conn_row(
    ts: float, uid: str, orig: str, sport: int, resp: str, dport: int, **kw: str
) -> dict[str, str]:
    row = {
        "ts": f"{ts:.6f}",
        "uid": uid,
        "id.orig_h": orig,
        "id.orig_p": str(sport),
        "id.resp_h": resp,
        "id.resp_p": str(dport),
        "proto": "tcp",
        "service": "ssl",
        "duration": "2.500000",
        "orig_bytes": "1200",
        "resp_bytes": "5400",
        "conn_state": "SF",
        "local_orig": "T",
        "local_resp": "F",
        "missed_bytes": "0",
        "history": "ShADadFf",
        "orig_pkts": "12",
        "orig_ip_bytes": "1680",
        "resp_pkts": "10",
        "resp_ip_bytes": "5800",
        "tunnel_parents": "(empty)",
    }
    row.update(kw)
    return row


def dns_row(ts: float, uid: str, orig: str, query: str, answers: str, **kw: str) -> dict[str, str]:
    row = {
        "ts": f"{ts:.6f}",
        "uid": uid,
        "id.orig_h": orig,
        "id.orig_p": "53211",
        "id.resp_h": "192.0.2.10",
        "id.resp_p": "53",
        "proto": "udp",
        "trans_id": "4242",
        "rtt": "0.001200",
        "query": query,
        "qclass": "1",
        "qclass_name": "C_INTERNET",
        "qtype": "1",
        "qtype_name": "A",
        "rcode": "0",
        "rcode_name": "NOERROR",
        "AA": "F",
        "TC": "F",
        "RD": "T",
        "RA": "T",
        "Z": "0",
        "answers": answers,
        "TTLs": "300.000000",
        "rejected": "F",
    }
    row.update(kw)
    return row


def write(path: Path, text: str, *, gz: bool = False) -> Path:
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read(*paths: Path, **kw: object) -> tuple[list[Event], ZeekReader]:
    reader = ZeekReader(list(paths), **kw)  # type: ignore[arg-type]
    return list(reader), reader


def flows(events: list[Event]) -> list[NetworkFlow]:
    return [e for e in events if isinstance(e, NetworkFlow)]


# -- the happy path --------------------------------------------------------------------------


@pytest.fixture
def office(tmp_path: Path) -> list[Path]:
    conn = tsv(
        "conn",
        [
            conn_row(T0 + 1, "CAbc1", "192.0.2.100", 49152, "198.51.100.7", 443),
            conn_row(T0 + 2, "CAbc2", "192.0.2.101", 49153, "203.0.113.9", 80, service="http",
                     duration="0.400000", orig_bytes="300", resp_bytes="90000"),
            conn_row(T0 + 3, "CAbc3", "192.0.2.100", 53211, "192.0.2.10", 53, proto="udp",
                     service="dns", duration="0.001200", orig_bytes="40", resp_bytes="56",
                     local_resp="T", history="Dd", orig_pkts="1", resp_pkts="1"),
            conn_row(T0 + 4, "CAbc4", "192.0.2.102", 49999, "203.0.113.50", 8443,
                     service="-", duration="-", orig_bytes="-", resp_bytes="-", history="S",
                     conn_state="S0"),
            conn_row(T0 + 5, "CAbc5", "192.0.2.100", 0, "198.51.100.1", 8, proto="icmp"),
            conn_row(T0 + 9, "CAbc6", "198.51.100.66", 50000, "192.0.2.20", 445,
                     service="gssapi,smb,krb", local_orig="F", local_resp="T"),
        ],
    )  # fmt: skip
    ssl = tsv(
        "ssl",
        [
            {"ts": f"{T0 + 1.1:.6f}", "uid": "CAbc1", "id.orig_h": "192.0.2.100",
             "id.orig_p": "49152", "id.resp_h": "198.51.100.7", "id.resp_p": "443",
             "version": "TLSv13", "cipher": "TLS_AES_128_GCM_SHA256", "curve": "x25519",
             "server_name": "updates.vendor.example", "resumed": "F", "established": "T",
             "ssl_history": "CsiI", "cert_chain_fps": "(empty)",
             "client_cert_chain_fps": "(empty)", "sni_matches_cert": "T"},
        ],
    )  # fmt: skip
    http = tsv(
        "http",
        [
            {"ts": f"{T0 + 2.1:.6f}", "uid": "CAbc2", "id.orig_h": "192.0.2.101",
             "id.orig_p": "49153", "id.resp_h": "203.0.113.9", "id.resp_p": "80",
             "trans_depth": "1", "method": "GET", "host": "cdn.files.example:80",
             "uri": "/a\\x09b", "version": "1.1", "user_agent": "curl/8.5.0",
             "request_body_len": "0", "response_body_len": "90000", "status_code": "200",
             "status_msg": "OK", "tags": "(empty)", "resp_fuids": "FhX1"},
        ],
    )  # fmt: skip
    dns = tsv(
        "dns",
        [
            dns_row(T0 + 0.5, "CAbc0", "192.0.2.102", "portal.partner.example",
                    "portal-lb.partner.example,203.0.113.50"),
            dns_row(T0 + 3, "CAbc3", "192.0.2.100", "tab\\x09name.example", "(empty)",
                    rcode="3", rcode_name="NXDOMAIN"),
            dns_row(T0 + 6, "CAbc7", "192.0.2.101", "lost.example", "-", rcode="-",
                    rcode_name="-", rtt="-", qtype="16", qtype_name="TXT"),
        ],
    )  # fmt: skip
    return [
        write(tmp_path / "conn.log", conn),
        write(tmp_path / "ssl.log", ssl),
        write(tmp_path / "http.log.gz", http, gz=True),
        write(tmp_path / "dns.log", dns),
    ]


def test_tsv_logs_become_flows_and_dns_in_time_order(office: list[Path]) -> None:
    events, reader = read(*office)
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    by_uid = {f.flow_id: f for f in flows(events)}
    tls = by_uid["zeek:CAbc1"]
    assert tls.transport is Transport.TCP
    assert (tls.src_ip, tls.src_port, tls.dst_ip, tls.dst_port) == (
        "192.0.2.100", 49152, "198.51.100.7", 443,
    )  # fmt: skip
    assert tls.start_ns == int(T0 + 1) * S
    assert tls.end_ns == tls.start_ns + 2_500_000_000 == tls.ts_ns
    assert (tls.bytes_out, tls.bytes_in, tls.packets_out, tls.packets_in) == (1200, 5400, 12, 10)
    assert tls.app_protocol is AppProtocol.TLS
    assert tls.server_name == "updates.vendor.example"
    assert tls.direction is Direction.OUTBOUND
    assert tls.host == "192.0.2.100"
    assert tls.process_guid is None
    assert tls.is_final
    web = by_uid["zeek:CAbc2"]
    assert web.app_protocol is AppProtocol.HTTP
    assert web.server_name == "cdn.files.example"  # http.log host, port removed, from a .gz
    dns_flow = by_uid["zeek:CAbc3"]
    assert dns_flow.transport is Transport.UDP
    assert dns_flow.app_protocol is AppProtocol.DNS
    assert dns_flow.direction is Direction.INTERNAL
    # No SNI, no Host: the name comes from the DNS answer that resolved the address before.
    attempt = by_uid["zeek:CAbc4"]
    assert attempt.server_name == "portal.partner.example"
    assert attempt.app_protocol is AppProtocol.UNKNOWN
    assert (attempt.bytes_out, attempt.bytes_in, attempt.end_ns) == (0, 0, attempt.start_ns)
    smb = by_uid["zeek:CAbc6"]
    assert smb.app_protocol is AppProtocol.SMB
    assert smb.direction is Direction.INBOUND
    assert smb.host == "192.0.2.20"
    stats = reader.stats
    assert stats.records == {"conn": 5, "ssl": 1, "http": 1, "dns": 3}
    assert stats.ignored == {"icmp connection": 1}
    assert stats.skipped == 0
    assert stats.server_names == {"ssl": 1, "http": 1, "dns": 1}
    assert len({e.event_id for e in events}) == len(events)


def test_dns_records_become_queries_with_estimated_sizes(office: list[Path]) -> None:
    events, _ = read(*office)
    queries = {e.query: e for e in events if isinstance(e, DnsQuery)}
    q = queries["portal.partner.example"]
    assert q.answers == ("portal-lb.partner.example", "203.0.113.50")
    assert (q.qtype, q.rcode, q.process_guid, q.host) == ("A", "NOERROR", None, "192.0.2.102")
    assert q.resolver_ip == "192.0.2.10"
    assert q.query_bytes == 12 + len(q.query) + 2 + 4 + 11
    assert q.response_bytes == q.query_bytes + (12 + len("portal-lb.partner.example") + 2) + 16
    assert queries["tab\tname.example"].rcode == "NXDOMAIN"  # \x09 unescaped
    lost = queries["lost.example"]
    assert (lost.rcode, lost.qtype, lost.answers, lost.response_bytes) == (
        "NOANSWER", "TXT", (), 0,
    )  # fmt: skip


def test_json_logs_read_like_tsv(tmp_path: Path) -> None:
    conn = [
        {"ts": T0 + 1, "uid": "Cj1", "id.orig_h": "192.0.2.100", "id.orig_p": 49152,
         "id.resp_h": "198.51.100.7", "id.resp_p": 443, "proto": "tcp", "service": "ssl,quic",
         "duration": 1.25, "orig_bytes": 10, "resp_bytes": 20, "conn_state": "SF",
         "local_orig": True, "local_resp": False, "missed_bytes": 0, "history": "ShADadFf",
         "orig_pkts": 3, "orig_ip_bytes": 130, "resp_pkts": 4, "resp_ip_bytes": 180},
        # ISO timestamps (LogAscii::json_timestamps = JSON::TS_ISO8601), nested id object.
        {"ts": "2026-11-02T00:00:05.500000Z", "uid": "Cj2",
         "id": {"orig_h": "192.0.2.101", "orig_p": 50000, "resp_h": "203.0.113.9",
                "resp_p": 80}, "proto": "tcp", "duration": 0.5, "orig_bytes": 1,
         "resp_bytes": 2, "orig_pkts": 1, "resp_pkts": 1},
    ]  # fmt: skip
    ssl = [
        {"ts": T0 + 1.01, "uid": "Cj1", "id.orig_h": "192.0.2.100", "id.orig_p": 49152,
         "id.resp_h": "198.51.100.7", "id.resp_p": 443, "server_name": "Api.Example."}
    ]  # fmt: skip
    p_conn = write(tmp_path / "conn.00:00:00-01:00:00.log",
                   "\n".join(json.dumps(d) for d in conn) + "\n")  # fmt: skip
    p_ssl = write(tmp_path / "ssl.json.gz", json.dumps(ssl[0]) + "\n", gz=True)
    events, reader = read(p_conn, p_ssl)
    got = {f.flow_id: f for f in flows(events)}
    assert got["zeek:Cj1"].app_protocol is AppProtocol.QUIC
    assert got["zeek:Cj1"].server_name == "api.example"
    assert got["zeek:Cj1"].end_ns == int(T0 + 1) * S + 1_250_000_000
    second = got["zeek:Cj2"]
    assert second.start_ns == (int(T0) + 5) * S + 500_000_000
    assert second.src_ip == "192.0.2.101"
    assert second.direction is Direction.OUTBOUND  # from the address plan: no local_* fields
    assert reader.stats.records == {"conn": 2, "ssl": 1}


def test_rotated_logs_merge_in_time_order(tmp_path: Path) -> None:
    first = tsv("conn", [conn_row(T0 + i * 10, f"Ca{i}", "192.0.2.100", 40000 + i,
                                  "198.51.100.7", 443) for i in range(0, 30, 2)])  # fmt: skip
    second = tsv("conn", [conn_row(T0 + i * 10, f"Cb{i}", "192.0.2.101", 40000 + i,
                                   "198.51.100.8", 443) for i in range(1, 30, 2)])  # fmt: skip
    # Zeek writes a connection when it ends: a long one comes after shorter, later ones.
    late = conn_row(T0 + 5, "Clong", "192.0.2.102", 41000, "198.51.100.9", 22,
                    duration="200.000000", service="ssh")  # fmt: skip
    second = second.replace("#close", "\t".join(late.get(f, "-") for f in CONN_FIELDS)
                            + "\n#close")  # fmt: skip
    a = write(tmp_path / "conn.00:00:00-00:05:00.log.gz", first, gz=True)
    b = write(tmp_path / "conn.00:05:00-00:10:00.log", second)
    events, reader = read(a, b)
    assert len(events) == 31
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert reader.stats.late == 0
    # Records later than the reorder window are still delivered, and counted.
    events, reader = read(a, b, config=ZeekConfig(reorder_window_s=1))
    assert len(events) == 31
    assert reader.stats.late >= 1


def test_no_handshake_only_for_data_answered_by_reset(tmp_path: Path) -> None:
    rows = [
        conn_row(T0, "C0", "192.0.2.100", 40000, "198.51.100.7", 443),
        # Midstream traffic the peer acknowledges: Zeek's OTH, normal, not reported.
        conn_row(T0 + 120, "C1", "192.0.2.100", 40001, "198.51.100.7", 443, history="DadA",
                 conn_state="OTH"),
        # Data without a handshake, answered only by a reset: reported.
        conn_row(T0 + 130, "C2", "192.0.2.100", 40002, "198.51.100.7", 443, history="Dr",
                 conn_state="OTH", service="-"),
        # The same pattern right at the start of the logs: a connection already running.
        conn_row(T0 + 1, "C3", "192.0.2.100", 40003, "198.51.100.7", 443, history="Dr",
                 conn_state="OTH"),
    ]  # fmt: skip
    events, _ = read(write(tmp_path / "conn.log", tsv("conn", rows)))
    anomalies = [e for e in events if isinstance(e, ProtocolAnomaly)]
    assert len(anomalies) == 1
    assert anomalies[0].anomaly is AnomalyKind.NO_HANDSHAKE
    assert anomalies[0].src_port == 40002
    assert "Dr" in anomalies[0].detail
    events, _ = read(tmp_path / "conn.log", config=ZeekConfig(anomalies=False))
    assert not [e for e in events if isinstance(e, ProtocolAnomaly)]


# -- damaged input ----------------------------------------------------------------------------


def test_not_a_zeek_log_raises_at_once(tmp_path: Path) -> None:
    bad = write(tmp_path / "conn.log", "hello,world\n1,2\n")
    with pytest.raises(ZeekInputError, match=r"conn.log.*line 1.*not a Zeek log"):
        read_zeek([bad])
    with pytest.raises(InputError, match="cannot open"):
        read_zeek([tmp_path / "missing.log"])
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))
    with pytest.raises(ZeekInputError):
        read_zeek([pcap])


def test_damaged_records_are_skipped_counted_and_named(tmp_path: Path) -> None:
    good = conn_row(T0, "Cg", "192.0.2.100", 40000, "198.51.100.7", 443)
    line = "\t".join(good.get(f, "-") for f in CONN_FIELDS)
    text = tsv("conn", [good], close=False)
    text += line.replace("\t1200\t", "\t12x0\t", 1) + "\n"  # a bad count
    text += line.replace("192.0.2.100", "192.0.2.300", 1) + "\n"  # a bad address
    text += "\t".join(line.split("\t")[:-2]) + "\n"  # wrong field count
    text += line.replace(f"{T0:.6f}", "yesterday", 1) + "\n"  # a bad time
    text += line.replace("\tCg\t", "\tCh\t", 1) + "\n"  # good
    text += line[:40]  # truncated last line
    warnings: list[ZeekInputError] = []
    path = write(tmp_path / "conn.log", text)
    reader = read_zeek([path], on_warning=warnings.append)
    events = list(reader)
    assert {f.flow_id for f in flows(events)} == {"zeek:Cg", "zeek:Ch"}
    stats = reader.stats
    assert stats.reasons == {"bad value": 3, "wrong field count": 1, "truncated line": 1}
    assert stats.skipped == 5
    assert stats.warnings == len(warnings) == 5
    lines = sorted(w.line for w in warnings if w.line is not None)
    assert lines == [10, 11, 12, 13, 15]
    assert any("'12x0'" in str(w) and "orig_bytes" in str(w) for w in warnings)
    assert all(str(path) in str(w) for w in warnings)


def test_wrong_header_skips_until_next_header(tmp_path: Path) -> None:
    row = conn_row(T0, "C1", "192.0.2.100", 40000, "198.51.100.7", 443)
    broken = tsv("conn", [row, row]).replace("\tid.resp_p\t", "\tid.resp_port\t", 1)
    fixed = tsv("conn", [conn_row(T0 + 9, "C2", "192.0.2.100", 40001, "198.51.100.7", 443)])
    mistyped = tsv("conn", [row]).replace("\tset[string]\n", "\n", 1)
    reader = read_zeek([write(tmp_path / "conn.log", broken + fixed + mistyped)])
    events = list(reader)
    assert [f.flow_id for f in flows(events)] == ["zeek:C2"]
    assert reader.stats.reasons == {"wrong header": 2, "no usable header": 3}
    messages = [str(w) for w in reader.warnings]
    assert any("line 7" in m and "lacks id.resp_p" in m for m in messages)
    assert any("#types names 20 types for 21 #fields" in m for m in messages)


def test_damaged_gzip_and_bad_json_continue(tmp_path: Path) -> None:
    rows = [conn_row(T0 + i, f"C{i}", "192.0.2.100", 40000 + i, "198.51.100.7", 443)
            for i in range(2000)]  # fmt: skip
    blob = gzip.compress(tsv("conn", rows).encode())
    damaged = write(tmp_path / "conn.a.log", "")
    damaged.write_bytes(blob[: len(blob) // 2])
    lines = [
        json.dumps({"ts": T0, "uid": "J1", "id.orig_h": "192.0.2.100", "id.orig_p": 1,
                    "id.resp_h": "198.51.100.7", "id.resp_p": 443, "proto": "tcp"}),
        "[1, 2]",
        '{"ts": "soon", "uid": "J2", "id.orig_h": "192.0.2.100", "id.orig_p": 1, '
        '"id.resp_h": "198.51.100.7", "id.resp_p": 443, "proto": "tcp"}',
        '{"ts": 1793577600.0, "uid": "J3", "id.orig_h"',
    ]  # fmt: skip
    js = write(tmp_path / "conn.b.log", "\n".join(lines))
    reader = read_zeek([damaged, js])
    events = list(reader)
    assert 0 < len(flows(events)) < 2001
    reasons = reader.stats.reasons
    assert reasons["damaged compression"] == 1
    assert reasons["bad JSON"] == 1
    assert reasons["bad value"] == 1
    assert reasons["truncated line"] == 1


def test_other_zeek_logs_are_ignored_with_a_warning(tmp_path: Path) -> None:
    weird = _PREAMBLE + "#path\tweird\n#fields\tts\tname\n#types\ttime\tstring\n1.0\tx\n"
    reader = read_zeek([write(tmp_path / "weird.log", weird)])
    assert list(reader) == []
    assert reader.stats.ignored_files == (str(tmp_path / "weird.log"),)
    assert "weird" in str(reader.warnings[0])


# -- fuzzing ---------------------------------------------------------------------------------

_SEED_TSV = tsv(
    "conn",
    [conn_row(T0 + i, f"C{i}", "192.0.2.100", 40000 + i, "198.51.100.7", 443) for i in range(3)],
) + tsv("dns", [dns_row(T0, "Cd", "192.0.2.100", "a.example", "198.51.100.7")])
_SEED_JSON = "\n".join(
    json.dumps({"ts": T0 + i, "uid": f"C{i}", "id.orig_h": "192.0.2.100", "id.orig_p": 4000 + i,
                "id.resp_h": "198.51.100.7", "id.resp_p": 443, "proto": "tcp",
                "duration": 0.5, "orig_bytes": 5, "resp_bytes": 6, "history": "Dr"})
    for i in range(3)
)  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from((_SEED_TSV, _SEED_JSON))).encode())
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.sampled_from(b'\t\n#-,.{}"0123456789x\\:T(ez\x00\xff'))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=12))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        else:
            del data[pos:]
    if draw(st.booleans()):
        data = bytearray(gzip.compress(bytes(data)))
        if draw(st.booleans()):
            del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_mutated())
def test_fuzzed_logs_never_raise_anything_but_input_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "conn.log"
    path.write_bytes(data)
    try:
        reader = read_zeek([path])
    except ZeekInputError:
        return
    events = list(reader)
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert reader.stats.records.get("conn", 0) + reader.stats.records.get("dns", 0) >= len(
        [e for e in events if not isinstance(e, ProtocolAnomaly)]
    )
