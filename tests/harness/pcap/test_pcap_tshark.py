"""Wireshark's own verdict on a rendered mixed capture: no malformed packet, no bad checksum,
no TCP sequence-analysis complaint.

Needs ``tshark`` on PATH (Debian package ``tshark``; CI installs it). Skipped only when it is
not installed.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.events import Transport
from harness.pcap.packets import filler
from harness.pcap.render import FlowSpec, RenderedFlow, render_dns, render_flow, write_flows
from harness.pcap.writer import PcapWriter

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

T0 = 1_700_000_000_000_000_000
SEVERITY_WARNING = 0x00600000  # expert severities: chat 0x2, note 0x4, warn 0x6, error 0x8 <<20
#: Notes that still mean the rendering is wrong (sequence analysis, retransmissions …).
SUSPICIOUS = re.compile(
    r"malformed|checksum|retransmission|out-of-order|dup(licate)? ack|previous segment|"
    r"unseen|window (is )?full|zero ?window|spurious|keep-?alive|reset|overlap|lost",
    re.IGNORECASE,
)


def _client_hello(server_name: str) -> bytes:
    """A small but well-formed TLS 1.3 ClientHello record with an SNI extension."""
    name = server_name.encode()
    sni = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    versions = b"\x00\x2b\x00\x03\x02\x03\x04"
    extensions = sni + versions
    body = (
        b"\x03\x03"
        + bytes(range(32))
        + b"\x00"  # legacy version, random, no session id
        + b"\x00\x02\x13\x01"
        + b"\x01\x00"  # one cipher suite, null compression
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def _http_message(start_line: str, body_len: int) -> bytes:
    head = f"{start_line}\r\nHost: example.com\r\nContent-Length: {body_len}\r\n\r\n".encode()
    return head + filler(len(head), body_len)


def mixed_flows() -> list[RenderedFlow]:
    flows: list[RenderedFlow] = []
    port = 40000

    def add(
        transport: Transport, src: str, dst: str, dport: int, out: int, inn: int, **kw: object
    ) -> None:
        nonlocal port
        port += 1
        start = T0 + port * 7_000_000
        flows.append(
            render_flow(
                FlowSpec(
                    transport=transport,
                    src_ip=src,
                    src_port=port,
                    dst_ip=dst,
                    dst_port=dport,
                    start_ns=start,
                    end_ns=start + 2_500_000_000,
                    bytes_out=out,
                    bytes_in=inn,
                    **kw,  # type: ignore[arg-type]
                )
            )
        )

    hello = _client_hello("www.example.com")
    add(
        Transport.TCP,
        "10.0.0.5",
        "93.184.216.34",
        443,
        len(hello) + 40_000,
        6_000,
        messages_out=(hello,),
        exchanges=3,
    )
    add(Transport.TCP, "2001:db8::5", "2001:db8:1::34", 443, 1_000, 250_000)
    request = _http_message("POST /upload HTTP/1.1", 12_345)
    response = _http_message("HTTP/1.1 200 OK", 2_000)
    add(
        Transport.TCP,
        "10.0.0.5",
        "198.51.100.20",
        80,
        len(request),
        len(response),
        messages_out=(request,),
        messages_in=(response,),
    )
    add(Transport.TCP, "10.0.0.5", "198.51.100.21", 8081, 0, 0)
    add(Transport.TCP, "10.0.0.5", "198.51.100.22", 9443, 777, 0, exchanges=4)
    add(Transport.UDP, "10.0.0.5", "198.51.100.23", 51820, 9_000, 3_000, exchanges=2)
    add(Transport.UDP, "2001:db8::5", "2001:db8:1::35", 51821, 2_000, 0)
    dns_cases: list[tuple[str | int, list[object], str]] = [
        ("A", ["192.0.2.1", "192.0.2.2"], "NOERROR"),
        ("AAAA", ["2001:db8::1"], "NOERROR"),
        ("TXT", ["dGhpcyBpcyBub3QgcmVhbA", ("a", "b")], "NOERROR"),
        ("CNAME", ["edge.example.net"], "NOERROR"),
        ("MX", [(10, "mx1.example.com")], "NOERROR"),
        ("NULL", [b"\x00\x01\x02inert"], "NOERROR"),
        ("KEY", [], "NXDOMAIN"),
        (65399, [b"\xde\xad"], "NOERROR"),
    ]
    for i, (qtype, answers, rcode) in enumerate(dns_cases):
        v6 = i % 2 == 1
        flows.append(
            render_dns(
                src_ip="2001:db8::5" if v6 else "10.0.0.5",
                src_port=53000 + i,
                resolver_ip="2001:db8::53" if v6 else "10.0.0.53",
                ts_ns=T0 + i * 1_000_000,
                qname=f"q{i}.mzxw6ytboi.t.example.com",
                qtype=qtype,
                answers=answers,  # type: ignore[arg-type]
                rcode=rcode,
                edns_payload=1232 if i % 3 == 0 else None,
            )
        )
    return flows


def tshark_verdict(path: Path) -> tuple[int, list[str], set[str]]:
    """Frames tshark read, the problems it flagged, and the protocols it recognised."""
    assert TSHARK is not None
    result = subprocess.run(
        [
            TSHARK,
            "-n",
            "-r",
            str(path),
            # Checksum validation is off by default in Wireshark; turn every one on.
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            "-e",
            "frame.number",
            "-e",
            "frame.protocols",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.expert.message",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    problems = []
    protocols: set[str] = set()
    for line in lines:
        number, stack, severities, messages = ([*line.split("\t"), "", "", ""])[:4]
        protocols.update(stack.split(":"))
        for severity, message in zip(severities.split("|"), messages.split("|"), strict=False):
            if severity and (int(severity) >= SEVERITY_WARNING or SUSPICIOUS.search(message)):
                problems.append(f"frame {number} ({stack}): {message}")
    return len(lines), problems, protocols


def test_tshark_finds_nothing_wrong(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    with PcapWriter(path) as writer:
        count = write_flows(writer, mixed_flows())
    frames, problems, protocols = tshark_verdict(path)
    assert frames == count
    assert not problems, "\n".join(problems)
    # Wireshark recognised what the flows carry, so the check above really looked at them.
    assert {"eth", "ip", "ipv6", "tcp", "udp", "dns", "tls", "http"} <= protocols


def test_the_check_catches_broken_packets(tmp_path: Path) -> None:
    # Guard against a check that passes vacuously: damage one checksum and drop one segment.
    flow = render_flow(
        FlowSpec(
            transport=Transport.TCP,
            src_ip="10.0.0.5",
            src_port=40000,
            dst_ip="198.51.100.9",
            dst_port=9000,
            start_ns=T0,
            end_ns=T0 + 10**9,
            bytes_out=20_000,
            bytes_in=100,
        )
    )
    packets = list(flow.packets)
    ts, frame = packets[3]
    packets[3] = (ts, frame[:50] + bytes([frame[50] ^ 0xFF]) + frame[51:])  # TCP checksum
    del packets[6]  # a data segment
    path = tmp_path / "broken.pcap"
    with PcapWriter(path) as writer:
        writer.write_many(packets)
    _, problems, _ = tshark_verdict(path)
    text = "\n".join(problems).lower()
    assert "checksum" in text
    assert "previous segment" in text or "unseen" in text
