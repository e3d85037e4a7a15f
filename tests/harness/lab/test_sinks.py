"""The sink process: every service answers on its own 127.0.x.y address (no privileges: ports
above 1024), binds nowhere else, survives garbage, and writes logs the Zeek reader reads."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from requests.adapters import HTTPAdapter

from harness.events import DnsQuery, NetworkFlow
from harness.ingest.zeek import ZeekConfig, read_zeek
from harness.lab.backend import HostRole, LabHost, LabPlan, Service, ServiceEndpoint
from harness.lab.certs import make_certs
from harness.lab.sinks import OwnerLookup, answer_dns, plan_from_dict, plan_to_dict
from harness.pcap import dnswire

RUN_ID = "snk7"
CLIENT = "127.0.2.101"


def _free_port(address: str, kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _plan() -> LabPlan:
    dns, https, http, tcp, udp = (
        "127.0.113.53",
        "127.0.113.10",
        "127.0.100.80",
        "127.0.100.20",
        "127.0.100.21",
    )
    dns_port = _free_port(dns, socket.SOCK_DGRAM)
    return LabPlan(
        run_id=RUN_ID,
        clients=(LabHost(name="client-1", role=HostRole.CLIENT, address=CLIENT),),
        sink=LabHost(name="sink", role=HostRole.SINK, address="127.0.113.1"),
        endpoints=(
            ServiceEndpoint(service=Service.DNS, address=dns, ports=(dns_port,)),
            ServiceEndpoint(
                service=Service.HTTPS, address=https, ports=(_free_port(https, socket.SOCK_STREAM),)
            ),
            ServiceEndpoint(
                service=Service.HTTP,
                address=http,
                ports=(
                    _free_port(http, socket.SOCK_STREAM),
                    _free_port(http, socket.SOCK_STREAM),
                ),
            ),
            ServiceEndpoint(
                service=Service.TCP, address=tcp, ports=(_free_port(tcp, socket.SOCK_STREAM),)
            ),
            ServiceEndpoint(
                service=Service.UDP, address=udp, ports=(_free_port(udp, socket.SOCK_DGRAM),)
            ),
        ),
        zone="lab.example",
        resolver=dns,
        internal_networks=("127.0.2.0/24",),
    )


@dataclass
class Running:
    plan: LabPlan
    proc: subprocess.Popen[str]
    workdir: Path
    ready: list[dict[str, object]]

    def port(self, service: Service, i: int = 0) -> int:
        return self.plan.endpoint(service).ports[i]

    def address(self, service: Service) -> str:
        return self.plan.endpoint(service).address


@pytest.fixture(scope="module")
def sinks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("sinks")
    plan = _plan()
    (workdir / "plan.json").write_text(json.dumps(plan_to_dict(plan)))
    make_certs(plan, workdir / "certs")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.lab.sinks", "--plan", str(workdir / "plan.json"),
         "--certs", str(workdir / "certs"), "--log", str(workdir / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        pytest.fail(
            f"sinks did not get ready: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        )
    running = Running(plan=plan, proc=proc, workdir=workdir, ready=json.loads(line[6:]))
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class _Bound(HTTPAdapter):
    """Requests from the lab client's address (so the sink logs it as the local end)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (CLIENT, 0)
        super().init_poolmanager(*args, **kwargs)


def _udp_dns(r: Running, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((CLIENT, 0))
        s.settimeout(3)
        s.sendto(payload, (r.address(Service.DNS), r.port(Service.DNS)))
        data, _ = s.recvfrom(65_535)
        return data


def test_plan_round_trips() -> None:
    plan = _plan()
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan


def test_every_socket_is_bound_to_its_own_lab_address(sinks: Running) -> None:
    expected = {
        (e.address, port) for e in sinks.plan.endpoints for port in e.ports
    }  # fmt: skip
    bound = psutil.Process(sinks.proc.pid).net_connections(kind="inet")
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in bound
        if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM
    }
    assert listening == expected
    assert not any(ip in ("0.0.0.0", "::") for ip, _ in listening)
    # DNS on UDP and TCP, every other port once: what READY announced.
    assert len(sinks.ready) == len(expected) + 1


def test_dns_answers_in_zone_names_and_tunnel_types(sinks: Running) -> None:
    plan = sinks.plan
    a = dnswire.parse_message(_udp_dns(sinks, dnswire.build_query("cdn.lab.example", "A", txid=1)))
    assert a.rcode == 0
    assert a.flags & 0x0400
    assert dnswire.record_value(a.answers[0]) == plan.endpoint(Service.HTTPS).address
    svc = dnswire.parse_message(
        _udp_dns(sinks, dnswire.build_query("tcp.lab.example", "A", txid=2))
    )
    assert dnswire.record_value(svc.answers[0]) == plan.endpoint(Service.TCP).address
    for qtype in ("TXT", "NULL", "CNAME", "MX"):
        name = f"aGVsbG8.{RUN_ID}.t.lab.example"
        m = dnswire.parse_message(_udp_dns(sinks, dnswire.build_query(name, qtype, txid=3)))
        assert m.rcode == 0, qtype
        assert len(m.answers) == 1, qtype
        assert m.answers[0].rtype == dnswire.qtype_code(qtype)
        assert len(m.answers[0].rdata) > 30, qtype  # downstream data rides in the answer
    nx = dnswire.parse_message(_udp_dns(sinks, dnswire.build_query("www.other.example", txid=4)))
    assert dnswire.rcode_name(nx.rcode) == "NXDOMAIN"
    assert not nx.answers


def test_dns_garbage_gets_formerr_and_the_server_keeps_answering(sinks: Running) -> None:
    bad = _udp_dns(sinks, b"\x12\x34\x01\x00garbage that is not dns")
    assert bad[:2] == b"\x12\x34"
    assert int.from_bytes(bad[2:4], "big") & 0x800F == 0x8001  # a response, FORMERR
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00", (sinks.address(Service.DNS), sinks.port(Service.DNS)))
    ok = dnswire.parse_message(_udp_dns(sinks, dnswire.build_query("lab.example", "NS", txid=5)))
    assert ok.rcode == 0
    assert dnswire.record_value(ok.answers[0]) == "ns.lab.example"
    assert answer_dns(b"", sinks.plan).response is None
    assert answer_dns(dnswire.build_query("lab.example", txid=6), sinks.plan).rcode == 0


def test_dns_over_tcp(sinks: Running) -> None:
    query = dnswire.build_query("http.lab.example", "A", txid=7)
    with socket.create_connection(
        (sinks.address(Service.DNS), sinks.port(Service.DNS)), timeout=3, source_address=(CLIENT, 0)
    ) as s:
        s.sendall(len(query).to_bytes(2, "big") + query)
        data = b""
        while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
            data += s.recv(4096)
    m = dnswire.parse_message(data[2:])
    assert dnswire.record_value(m.answers[0]) == sinks.address(Service.HTTP)


def test_https_upload_and_download_with_the_run_ca(sinks: Running) -> None:
    url = f"https://{sinks.address(Service.HTTPS)}:{sinks.port(Service.HTTPS)}"
    ca = str(sinks.workdir / "certs" / "ca.pem")
    with requests.Session() as session:
        session.mount("https://", _Bound())
        up = session.post(f"{url}/up", data=b"z" * 70_000, verify=ca, headers={"X-Lab-Run": RUN_ID})
        assert up.status_code == 200
        assert up.json() == {"received": 70_000}
        down = session.get(f"{url}/file?size=12345", verify=ca)
        assert down.status_code == 200
        assert len(down.content) == 12_345
    ctx = ssl.create_default_context(cafile=ca)
    with (
        socket.create_connection(
            (sinks.address(Service.HTTPS), sinks.port(Service.HTTPS)), timeout=3
        ) as raw,
        ctx.wrap_socket(raw, server_hostname="upload.lab.example") as tls,
    ):
        assert tls.version() is not None  # the wildcard name verifies too


def test_plain_http_on_both_ports_and_chunked_put(sinks: Running) -> None:
    for i in range(2):
        url = f"http://{sinks.address(Service.HTTP)}:{sinks.port(Service.HTTP, i)}/x"
        r = requests.put(url, data=iter([b"a" * 1000, b"b" * 24]), headers={"X-Lab-Run": RUN_ID})
        assert r.status_code == 200
        assert r.json() == {"received": 1024}
    bad = requests.get(f"http://{sinks.address(Service.HTTP)}:{sinks.port(Service.HTTP)}/?size=x")
    assert bad.status_code == 400


def test_raw_tcp_and_udp_sinks(sinks: Running) -> None:
    with socket.create_connection(
        (sinks.address(Service.TCP), sinks.port(Service.TCP)), timeout=5, source_address=(CLIENT, 0)
    ) as s:
        s.sendall(f"eh-run={RUN_ID}\n".encode() + b"q" * 5000)
        assert s.recv(100).startswith(b"ACK ")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(100) == b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind((CLIENT, 0))
        u.settimeout(3)
        u.sendto(b"datagram", (sinks.address(Service.UDP), sinks.port(Service.UDP)))
        assert u.recvfrom(100)[0] == b"ok"


def test_sigterm_flushes_logs_the_zeek_reader_reads(sinks: Running) -> None:
    # Runs last in this module: it stops the shared sink process.
    sinks.proc.send_signal(signal.SIGTERM)
    assert sinks.proc.wait(timeout=10) == 0
    logs = sinks.workdir / "logs"
    reader = read_zeek(
        [logs / "conn.log", logs / "dns.log"],
        config=ZeekConfig(internal_networks=sinks.plan.internal_networks),
    )
    events = list(reader)
    assert reader.stats.skipped == 0
    flows = [e for e in events if isinstance(e, NetworkFlow)]
    queries = [e for e in events if isinstance(e, DnsQuery)]
    services = {(f.dst_ip, f.dst_port, f.app_protocol.value) for f in flows}
    assert (sinks.address(Service.HTTPS), sinks.port(Service.HTTPS), "tls") in services
    assert (sinks.address(Service.HTTP), sinks.port(Service.HTTP), "http") in services
    assert (sinks.address(Service.DNS), sinks.port(Service.DNS), "dns") in services
    upload = max(
        (f for f in flows if f.dst_port == sinks.port(Service.HTTPS)), key=lambda f: f.bytes_out
    )
    assert upload.bytes_out > 70_000
    assert upload.direction.value == "outbound"
    assert upload.host == CLIENT
    assert {q.query for q in queries} >= {"cdn.lab.example", f"aGVsbG8.{RUN_ID}.t.lab.example"}
    records = [json.loads(line) for line in (logs / "sinks.jsonl").read_text().splitlines()]
    seen = {(r["event"], r["service"]) for r in records if r.get("run_id") == RUN_ID}
    assert {("dns_query", "dns"), ("http_request", "https"), ("connection", "tcp")} <= seen
    # The sink looked up which process held each client socket: this test's own.
    if OwnerLookup.usable():
        mine = [r for r in records if r["event"] == "connection" and r["client_ip"] == CLIENT]
        assert mine
        assert all(r["owner"] is not None and r["owner"]["pid"] == os.getpid() for r in mine)
    # No traffic the test did not send was logged: every client is on the loopback network.
    assert all(str(r.get("client_ip", "127.")).startswith("127.") for r in records)
