"""Test helper (not a test): run a loopback lab (a TCP/UDP echo sink and a client bound to its
client address), attribute the client's sockets, try a capture, print one JSON line.

Usage: python loopback_child.py RUN_ID WORKDIR [OCTET]

OCTET (default 0) moves the loopback plan from 127.0.x.y to 127.OCTET.x.y, so this test does not
collide with other loopback labs running on the same machine at the same time (the default plan
uses fixed addresses and ports).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from harness.errors import LabUnavailableError
from harness.events import Transport
from harness.lab.attribution import SocketMonitor
from harness.lab.backend import LabPlan, Service
from harness.lab.loopback import LoopbackBackend
from harness.lab.plan import default_plan

SERVER = r"""
import socket, sys, threading
tcp_ip, tcp_port, udp_ip, udp_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((tcp_ip, tcp_port)); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((udp_ip, udp_port))
def udp():
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(b"udp-ack:" + data, peer)
threading.Thread(target=udp, daemon=True).start()
print("LISTENING", flush=True)
while True:
    c, _ = t.accept()
    c.sendall(b"tcp-ack:" + c.recv(2048))
    c.close()
"""

CLIENT = r"""
import json, socket, sys, time
bind, tcp_ip, udp_ip = sys.argv[1], sys.argv[2], sys.argv[4]
tcp_port, udp_port = int(sys.argv[3]), int(sys.argv[5])
time.sleep(0.2)  # let the monitor pick this process up before it opens sockets
t = socket.create_connection((tcp_ip, tcp_port), timeout=5, source_address=(bind, 0))
t.sendall(b"hello")
tcp_reply = t.recv(2048).decode()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.bind((bind, 0))
u.sendto(b"hello", (udp_ip, udp_port))
udp_reply = u.recvfrom(2048)[0].decode()
time.sleep(0.4)
print(json.dumps({"tcp_local": t.getsockname(), "udp_local": u.getsockname(),
                  "tcp_reply": tcp_reply, "udp_reply": udp_reply}), flush=True)
"""


def _wait_for_text(path: Path, text: str, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not (path.exists() and text in path.read_text()):
        if time.monotonic() > end:
            raise SystemExit(f"{path} never said {text!r}")
        time.sleep(0.01)


def shifted(plan: LabPlan, octet: int) -> LabPlan:
    """``plan`` with every 127.0.x.y address moved to 127.OCTET.x.y."""

    def move(address: str) -> str:
        return address.replace("127.0.", f"127.{octet}.", 1)

    return replace(
        plan,
        clients=tuple(replace(c, address=move(c.address)) for c in plan.clients),
        sink=replace(plan.sink, address=move(plan.sink.address)),
        endpoints=tuple(replace(e, address=move(e.address)) for e in plan.endpoints),
        resolver=move(plan.resolver),
        internal_networks=tuple(move(n) for n in plan.internal_networks),
    )


def main(argv: list[str]) -> int:
    run_id, work = argv[0], Path(argv[1])
    octet = int(argv[2]) if len(argv) > 2 else 0
    plan = shifted(default_plan(run_id, clients=1, loopback=True), octet)
    tcp, udp = plan.endpoint(Service.TCP), plan.endpoint(Service.UDP)
    out: dict[str, object] = {}
    with LoopbackBackend(plan, work) as lab:
        out["netns_of"] = lab.netns_of(plan.clients[0])
        server = lab.start(
            plan.sink,
            ["python", "-c", SERVER, tcp.address, str(tcp.ports[0]), udp.address,
             str(udp.ports[0])],
            name="sinkecho",
            log=work / "server.log",
        )  # fmt: skip
        _wait_for_text(work / "server.log", "LISTENING")
        monitor = SocketMonitor(roots=[server.pid]).start()
        try:
            with lab.capture(work / "lab.pcap"):
                out["captured"] = True
        except LabUnavailableError as exc:
            out["capture_error"] = str(exc)
        client = lab.start(
            plan.clients[0],
            ["python", "-c", CLIENT, plan.clients[0].address, tcp.address, str(tcp.ports[0]),
             udp.address, str(udp.ports[0])],
            name="rundll32.exe",
            log=work / "client.log",
        )  # fmt: skip
        monitor.watch_root(client.pid)
        code = client.wait(15)
        monitor.stop()
        report = json.loads((work / "client.log").read_text().splitlines()[-1])
        now = time.time_ns()
        (tcp_ip, tcp_port), (udp_ip, udp_port) = report["tcp_local"], report["udp_local"]
        tcp_owner = monitor.owner(Transport.TCP, tcp_ip, tcp_port, now, tolerance_ns=10**9)
        udp_owner = monitor.owner(Transport.UDP, udp_ip, udp_port, now, tolerance_ns=10**9)
        events = monitor.to_events(lambda p: "client-1", run_id)
        out.update(
            client_pid=client.pid,
            code=code,
            report=report,
            tcp_owner=None if tcp_owner is None else [tcp_owner.pid, tcp_owner.comm,
                                                      tcp_owner.image],
            udp_owner=None if udp_owner is None else [udp_owner.pid, udp_owner.comm],
            images={e.pid: e.image for e in events},
            server_pid=server.pid,
        )  # fmt: skip
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
