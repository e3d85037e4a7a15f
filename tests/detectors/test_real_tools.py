"""The reference detectors against the real DNS tunnelling tools, not our models of them.

iodine and dns2tcp (Debian packages) run as themselves inside a ``netns`` lab: the server
(``iodined``, ``dns2tcpd``) on the lab's DNS address, the client on a lab workstation, and a
small file crosses the tunnel. The capture of the lab link goes through ``egress-harness
evaluate`` with no baseline, as a user's own short capture would: AN1225 must flag the client
and the tunnel domain within 60 s of the tunnel's first query, and nothing else may alert.

These need root, network namespaces and the two packages: CI installs them (``.ci/run``) and a
skip there is a failure.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.cli import main
from harness.events import NS_PER_S
from harness.lab.netns import NetnsBackend
from harness.lab.plan import default_plan

pytestmark = pytest.mark.privileged

ZONE = "t.tunnel.example"
#: The tunnel's own network (inside the tun devices, between our two namespaces).
TUNNEL_SERVER, TUNNEL_CLIENT = "198.51.100.193", "198.51.100.194"
PAYLOAD_BYTES = 60_000

_RECEIVER = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept(); n = 0
while chunk := c.recv(65536): n += len(chunk)
print(n, flush=True)
"""
_SENDER = """
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
s.sendall(os.urandom(int(sys.argv[3]))); s.shutdown(socket.SHUT_WR); s.recv(1)
"""


def _needs(*tools: str) -> None:
    reason = NetnsBackend.available()
    if reason is not None:
        pytest.skip(reason)
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages iodine, dns2tcp)")


def _wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def _tunnel_run(
    tmp_path: Path,
    server: Sequence[str],
    client: Sequence[str],
    *,
    names: tuple[str, str],
    ready: object,
    target: tuple[str, int, str, int],
) -> Path:
    """Run one tool's server and client in a fresh lab, push PAYLOAD_BYTES through the tunnel,
    and return the capture. ``target`` is (receiver address, port in the sink namespace, sender
    destination address, port in the client namespace)."""
    plan = default_plan("rt" + secrets.token_hex(3), clients=1)
    backend = NetnsBackend(plan, tmp_path / "lab")
    pcap = tmp_path / "tunnel.pcap"
    workstation = plan.clients[0]
    with backend, backend.capture(pcap):
        backend.start(plan.sink, server, name=names[0], log=tmp_path / "server.log")
        time.sleep(0.5)
        backend.start(workstation, client, name=names[1], log=tmp_path / "client.log")
        _wait_for(lambda: ready(backend), 30, f"{names[1]} to set up its tunnel")  # type: ignore[operator]
        recv_ip, recv_port, send_ip, send_port = target
        receiver = backend.start(
            plan.sink,
            ["python", "-c", _RECEIVER, recv_ip, str(recv_port)],
            name="receiver",
            log=tmp_path / "receiver.log",
        )
        time.sleep(0.5)
        sender = backend.start(
            workstation,
            ["python", "-c", _SENDER, send_ip, str(send_port), str(PAYLOAD_BYTES)],
            name="sender",
            log=tmp_path / "sender.log",
        )
        receiver.wait(timeout=90)
        sender.stop()
    received = (tmp_path / "receiver.log").read_text().split()
    assert received == [str(PAYLOAD_BYTES)], f"the tunnel did not carry the file: {received}"
    return pcap


def _evaluate(pcap: Path, out: Path) -> list[dict[str, object]]:
    assert main(["evaluate", str(pcap), "--out", str(out)]) == 0
    lines = (out / "alerts.ndjson").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _first_tunnel_query_ns(pcap: Path) -> int:
    """Time of the first DNS query to the tunnel zone, per tshark (an independent reader)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            "-Y",
            f'dns.qry.name contains "{ZONE}"',
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(float(out[0]) * NS_PER_S)


def _assert_tunnel_flagged(pcap: Path, alerts: list[dict[str, object]]) -> None:
    assert alerts, "no alert at all on a real DNS tunnel"
    kinds = {str(a["analytic"]) for a in alerts}
    assert kinds == {"AN1225"}, f"unexpected analytics alerted: {kinds}"
    first = min(alerts, key=lambda a: int(a["ts_ns"]))  # type: ignore[call-overload]
    entity = first["entity"]
    assert isinstance(entity, dict)
    assert entity["src_ip"] == "192.0.2.101"
    assert str(entity["domain"]).endswith("tunnel.example")
    latency_s = (int(first["ts_ns"]) - _first_tunnel_query_ns(pcap)) / NS_PER_S  # type: ignore[call-overload]
    assert 0 <= latency_s <= 60, f"flagged {latency_s:.1f} s after the tunnel's first query"


def _tun_up(address: str) -> object:
    def ready(backend: NetnsBackend) -> bool:
        ns = backend.namespace(backend.plan.clients[0])
        shown = subprocess.run(
            ["ip", "-n", ns, "-4", "addr"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return address in shown

    return ready


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="iodine-auto"),
        pytest.param(["-T", "TXT", "-O", "base64"], id="iodine-txt-base64"),
        pytest.param(["-T", "CNAME", "-O", "base32"], id="iodine-cname-base32"),
    ],
)
def test_real_iodine_tunnel_is_flagged(tmp_path: Path, options: list[str]) -> None:
    _needs("iodine", "iodined")
    plan_resolver = "203.0.113.53"
    pcap = _tunnel_run(
        tmp_path,
        ["iodined", "-f", "-c", "-P", "labpass", "-l", plan_resolver, f"{TUNNEL_SERVER}/27", ZONE],
        # -r: no raw-UDP shortcut, so the data really goes as DNS, as through a resolver.
        ["iodine", "-f", "-r", "-P", "labpass", *options, plan_resolver, ZONE],
        names=("iodined", "iodine"),
        ready=_tun_up(TUNNEL_CLIENT),
        target=(TUNNEL_SERVER, 9000, TUNNEL_SERVER, 9000),
    )
    _assert_tunnel_flagged(pcap, _evaluate(pcap, tmp_path / "eval"))


def test_real_dns2tcp_tunnel_is_flagged(tmp_path: Path) -> None:
    _needs("dns2tcpc", "dns2tcpd")
    conf = tmp_path / "dns2tcpd.conf"
    conf.write_text(
        "listen = 203.0.113.53\nport = 53\nuser = nobody\nchroot = /tmp\n"
        f"domain = {ZONE}\nresources = sink:127.0.0.1:9001\n"
    )

    def listening(backend: NetnsBackend) -> bool:
        return "Listening" in (tmp_path / "client.log").read_text(errors="replace")

    pcap = _tunnel_run(
        tmp_path,
        ["dns2tcpd", "-F", "-f", str(conf)],
        ["dns2tcpc", "-z", ZONE, "-r", "sink", "-l", "4444", "203.0.113.53"],
        names=("dns2tcpd", "dns2tcpc"),
        ready=listening,
        target=("127.0.0.1", 9001, "127.0.0.1", 4444),
    )
    _assert_tunnel_flagged(pcap, _evaluate(pcap, tmp_path / "eval"))
