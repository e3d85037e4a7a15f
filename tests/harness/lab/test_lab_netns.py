"""The netns backend: namespaces up and down, reachability, capture, attribution, containment,
and interrupt safety. Needs root and ``ip netns`` (a skip is a failure in CI)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import LabError
from harness.events import NetworkFlow, ProcessStart, Transport
from harness.ingest._flows import IngestConfig
from harness.ingest.pcap import read_pcap
from harness.lab.attribution import SocketMonitor
from harness.lab.backend import LabHost, LabPlan, Service
from harness.lab.capture import TcpdumpCapture
from harness.lab.loopback import plan_addresses
from harness.lab.netns import NETNS_DIR, NetnsBackend
from harness.lab.plan import default_plan

pytestmark = pytest.mark.privileged

HERE = Path(__file__).parent

# A TCP and a UDP echo sink bound to one lab address each (never to all interfaces).
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
    data = b""
    while chunk := c.recv(65536):
        data += chunk
    head = data.split(b"|")[0]
    c.sendall(b"tcp-ack:" + head + b":" + str(len(data)).encode())
    c.close()
"""

BULK = 200_000

# A client: one TCP connection and one unconnected UDP socket, both held for a while so the
# monitor sees them (a connection that opens and closes between two polls is not seen: once
# closed, a socket leaves /proc/net/tcp even while its descriptor is open); reports its own
# ports and what came back.
CLIENT = r"""
import json, socket, sys, time
tcp_ip, udp_ip, token = sys.argv[1], sys.argv[3], sys.argv[5]
tcp_port, udp_port = int(sys.argv[2]), int(sys.argv[4])
t = socket.create_connection((tcp_ip, tcp_port), timeout=5)
time.sleep(0.3)
t.sendall(token.encode() + b"|" + b"x" * int(sys.argv[6]))
t.shutdown(socket.SHUT_WR)
tcp_reply = t.recv(2048).decode()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(token.encode(), (udp_ip, udp_port))
udp_reply, _ = u.recvfrom(2048)
time.sleep(0.4)
print(json.dumps({
    "tcp_local": t.getsockname(), "udp_local": u.getsockname(),
    "tcp_reply": tcp_reply, "udp_reply": udp_reply.decode(),
    "resolv": open("/etc/resolv.conf").read(),
}), flush=True)
"""


def _skip_unless_available() -> None:
    reason = NetnsBackend.available()
    if reason is not None:
        pytest.skip(reason)


def _run_id(tag: str) -> str:
    return f"{tag}{os.getpid():x}"[:8]


def _wait_for(pred, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _netns_names() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def _pcap_records(path: Path) -> list[bytes]:
    """The raw packets of a pcap file (any link type)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        out.append(data[off + 16 : off + 16 + incl])
        off += 16 + incl
    return out


@dataclass
class Traffic:
    backend: NetnsBackend
    plan: LabPlan
    client_pid: int
    report: dict  # type: ignore[type-arg]
    lab_pcap: Path
    root_pcap: Path
    monitor: SocketMonitor
    image: Path
    token: str
    foreign_lab_before: bool


def _foreign_lab_present(own_prefix: str) -> bool:
    """Another lab (e.g. a docker lab of a concurrent test) has plan addresses in the root
    namespace: then doc-range packets in a root capture may be its, not ours."""
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    plan = default_plan("x")
    return any(f" {a}/" in addrs for a in plan_addresses(plan)) or any(
        name.startswith("eh-") and not name.startswith(own_prefix)
        for name in _netns_names().split()
    )


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    _skip_unless_available()
    work = tmp_path_factory.mktemp("netns")
    plan = default_plan(_run_id("n"), clients=2)
    backend = NetnsBackend(plan, work)
    token = f"eh-token-{plan.run_id}"
    tcp, udp = plan.endpoint(Service.TCP), plan.endpoint(Service.UDP)
    with backend:
        foreign = _foreign_lab_present(backend.prefix)
        server_log = work / "server.log"
        backend.start(
            plan.sink,
            [
                "python",
                "-c",
                SERVER,
                tcp.address,
                str(tcp.ports[0]),
                udp.address,
                str(udp.ports[0]),
            ],
            name="sinkecho",
            log=server_log,
        )
        _wait_for(lambda: server_log.exists() and "LISTENING" in server_log.read_text())
        netns = [backend.netns_of(c) for c in plan.clients]
        monitor = SocketMonitor(netns=[n for n in netns if n is not None]).start()
        root_filter = " or ".join(f"host {a}" for a in plan_addresses(plan))
        root_cap = TcpdumpCapture(
            work / "root.pcap", interface="any", bpf=root_filter, log=work / "root-tcpdump.log"
        )
        root_cap.start()
        try:
            with backend.capture(work / "lab.pcap"):
                client_log = work / "client.log"
                proc = backend.start(
                    plan.clients[0],
                    ["python", "-c", CLIENT, tcp.address, str(tcp.ports[0]), udp.address,
                     str(udp.ports[0]), token, str(BULK)],
                    name="rundll32.exe",
                    log=client_log,
                )  # fmt: skip
                assert proc.wait(15) == 0, client_log.read_text()
        finally:
            root_cap.stop()
            monitor.stop()
        report = json.loads(client_log.read_text().splitlines()[-1])
        yield Traffic(
            backend=backend,
            plan=plan,
            client_pid=proc.pid,
            report=report,
            lab_pcap=work / "lab.pcap",
            root_pcap=work / "root.pcap",
            monitor=monitor,
            image=work / "bin" / "rundll32.exe",
            token=token,
            foreign_lab_before=foreign,
        )


def test_topology_while_up(traffic: Traffic) -> None:
    b, plan = traffic.backend, traffic.plan
    names = _netns_names()
    for ns in b.namespaces():
        assert ns in names
    assert b.namespaces()[0] == f"eh-{plan.run_id}-s"
    # Both veth ends live inside the lab namespaces: the host's namespace has no lab link.
    assert b.prefix not in _root_links()
    inside = subprocess.run(
        ["ip", "-n", b.namespace(plan.clients[0]), "-o", "addr"], capture_output=True, text=True
    ).stdout
    assert "192.0.2.101/24" in inside
    resolv = (NETNS_DIR / b.namespace(plan.clients[0]) / "resolv.conf").read_text()
    assert "nameserver 203.0.113.53" in resolv
    ids = {b.netns_of(h) for h in (plan.sink, *plan.clients)}
    assert len(ids) == 3
    assert os.readlink("/proc/self/ns/net") not in ids


def test_start_execs_in_the_namespace_keeping_the_pid(traffic: Traffic, tmp_path: Path) -> None:
    b, client = traffic.backend, traffic.plan.clients[1]
    proc = b.start(client, ["sleep", "30"], name="notepad.exe", log=tmp_path / "sleep.log")
    try:
        _wait_for(lambda: Path(f"/proc/{proc.pid}/comm").read_text().strip() == "notepad.exe")
        assert os.readlink(f"/proc/{proc.pid}/ns/net") == b.netns_of(client)
        pids = subprocess.run(
            ["ip", "netns", "pids", b.namespace(client)], capture_output=True, text=True
        ).stdout.split()
        assert str(proc.pid) in pids
    finally:
        proc.stop(grace_s=1.0)
    assert proc.poll() is not None


def test_client_reaches_tcp_and_udp_sinks_and_uses_the_lab_resolver(traffic: Traffic) -> None:
    r = traffic.report
    assert r["tcp_reply"] == f"tcp-ack:{traffic.token}:{len(traffic.token) + 1 + BULK}"
    assert r["udp_reply"] == "udp-ack:" + traffic.token
    assert r["tcp_local"][0] == "192.0.2.101"
    assert r["udp_local"][0] == "0.0.0.0"  # unconnected, never bound explicitly
    assert "nameserver 203.0.113.53" in r["resolv"]


def _flows(traffic: Traffic) -> list[NetworkFlow]:
    config = IngestConfig(internal_networks=traffic.plan.internal_networks)
    return [e for e in read_pcap(traffic.lab_pcap, config=config) if isinstance(e, NetworkFlow)]


def test_capture_records_the_lab_traffic(traffic: Traffic) -> None:
    flows = _flows(traffic)
    tcp = [f for f in flows if f.transport is Transport.TCP and f.dst_port == 4444]
    udp = [f for f in flows if f.transport is Transport.UDP and f.dst_port == 9999]
    assert len(tcp) == 1, flows
    assert len(udp) == 1, flows
    assert (tcp[0].src_ip, tcp[0].src_port) == ("192.0.2.101", traffic.report["tcp_local"][1])
    assert tcp[0].dst_ip == "198.51.100.20"
    assert (udp[0].src_ip, udp[0].src_port) == ("192.0.2.101", traffic.report["udp_local"][1])
    assert udp[0].dst_ip == "198.51.100.21"
    sent = len(traffic.token) + 1 + BULK
    assert tcp[0].bytes_out >= sent
    assert tcp[0].bytes_in >= len(traffic.report["tcp_reply"])
    assert any(traffic.token.encode() in p for p in _pcap_records(traffic.lab_pcap))
    (cap,) = traffic.backend.finished_captures
    assert cap.dropped == 0
    assert cap.captured == len(_pcap_records(traffic.lab_pcap))
    # Offloads are off: every frame fits the Ethernet MTU, as on a wire (the bulk upload
    # would otherwise show as a few 64 KiB super-segments).
    frames = _pcap_records(traffic.lab_pcap)
    assert max(map(len, frames)) <= 1514
    assert sum(len(f) > 1400 for f in frames) >= BULK // 1500


def test_attribution_names_the_client_process(traffic: Traffic) -> None:
    flows = _flows(traffic)
    mon = traffic.monitor
    for f in flows:
        if f.src_ip != "192.0.2.101":
            continue
        owner = mon.owner(f.transport, f.src_ip, f.src_port, f.start_ns)
        assert owner is not None, f
        assert owner.pid == traffic.client_pid
        assert owner.comm == "rundll32.exe"
        assert owner.image == str(traffic.image)
        assert owner.netns == traffic.backend.netns_of(traffic.plan.clients[0])
    udp = [s for s in mon.sockets() if s.transport is Transport.UDP and s.pid == traffic.client_pid]
    assert [(s.local_ip, s.remote_ip, s.remote_port) for s in udp] == [("0.0.0.0", "0.0.0.0", 0)]
    events = mon.to_events(lambda p: "client-1", traffic.plan.run_id)
    mine = [e for e in events if e.pid == traffic.client_pid]
    assert len(mine) == 1
    assert isinstance(mine[0], ProcessStart)
    assert mine[0].image == str(traffic.image)
    assert mine[0].name == "rundll32.exe"
    assert mine[0].command_line.startswith(str(traffic.image) + " -c ")
    # Deterministic identity: the same monitor yields the same GUIDs.
    again = mon.to_events(lambda p: "client-1", traffic.plan.run_id)
    assert [e.process_guid for e in again] == [e.process_guid for e in events]


def test_containment_nothing_reaches_the_host_namespace(traffic: Traffic) -> None:
    """A root-namespace ``tcpdump -i any`` filtered to the lab's addresses saw none of the
    traffic the lab capture shows. The host's own eth0 may sit in 192.0.2.0/24 here, so the
    filter names the plan's addresses, not whole ranges."""
    lab_packets = _pcap_records(traffic.lab_pcap)
    assert len(lab_packets) >= 8
    root_packets = _pcap_records(traffic.root_pcap)
    ours = [p for p in root_packets if traffic.token.encode() in p or _is_ours(p, traffic)]
    assert ours == []
    if not traffic.foreign_lab_before and not _foreign_lab_present(traffic.backend.prefix):
        assert root_packets == []


def _is_ours(packet: bytes, traffic: Traffic) -> bool:
    """Whether ``packet`` carries one of this run's flows (IPv4 addresses then ports)."""
    r = traffic.report
    client = bytes([192, 0, 2, 101])
    for sink, sport, dport in (
        (bytes([198, 51, 100, 20]), r["tcp_local"][1], 4444),
        (bytes([198, 51, 100, 21]), r["udp_local"][1], 9999),
    ):
        out = client + sink + struct.pack(">HH", sport, dport)
        back = sink + client + struct.pack(">HH", dport, sport)
        if out in packet or back in packet:
            return True
    return False


def test_poll_cost_for_twenty_processes(traffic: Traffic, tmp_path: Path) -> None:
    b, client = traffic.backend, traffic.plan.clients[1]
    procs = [
        b.start(client, ["sleep", "30"], name=f"w{i}.exe", log=tmp_path / f"{i}.log")
        for i in range(20)
    ]
    try:
        ns = b.netns_of(client)
        assert ns is not None
        mon = SocketMonitor(netns=[ns])
        _wait_for(lambda: all(p.pid in {i.pid for i in _poll(mon)} for p in procs))
        mon.polls = mon.poll_ns_total = mon.poll_cpu_ns_total = 0
        for _ in range(30):
            mon.poll()
        wall_ms = mon.poll_ns_total / mon.polls / 1e6
        cpu_ms = mon.poll_cpu_ns_total / mon.polls / 1e6
        assert len([p for p in mon.processes() if p.comm.startswith("w")]) == 20
        # A poll must fit in its interval even on a busy machine, and cost a few ms of CPU.
        assert wall_ms < mon.interval_s * 1000, wall_ms
        assert cpu_ms < 5.0, cpu_ms
    finally:
        for p in procs:
            p.stop(grace_s=1.0)


def _poll(mon: SocketMonitor) -> list:  # type: ignore[type-arg]
    mon.poll()
    return mon.processes()


# Forks a grandchild into a session of its own (out of reach of the process-group kill), prints
# its pid and exits: only the namespace sweep of down() can find it.
ESCAPE = r"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    os._exit(0)
os.wait()
"""


def test_down_leaves_nothing_behind(traffic: Traffic, tmp_path: Path) -> None:
    b = traffic.backend
    ns = b.namespace(traffic.plan.clients[1])
    b.start(traffic.plan.clients[1], ["python", "-c", ESCAPE], name="escape", log=tmp_path / "e")
    escaped: list[str] = []

    def found() -> bool:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        escaped[:] = [p for p in pids.stdout.split() if _comm(int(p)) == "escape"]
        return len(escaped) == 1

    _wait_for(found)
    (stray,) = escaped
    assert os.getsid(int(stray)) == int(stray)  # a session (and process group) of its own
    b.down()
    b.down()  # idempotent
    assert b.prefix not in _netns_names()
    assert b.prefix not in _root_links()
    assert not list(NETNS_DIR.glob(f"{b.prefix}*"))
    assert not Path(f"/proc/{traffic.client_pid}").exists() or _zombie(traffic.client_pid)
    _wait_for(lambda: _zombie(int(stray)), timeout_s=5.0)
    with pytest.raises(LabError, match="not up"):
        b.start(traffic.plan.clients[0], ["sleep", "1"], name="x", log=Path("/dev/null"))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def test_partial_up_is_torn_down(tmp_path: Path) -> None:
    _skip_unless_available()
    plan = default_plan(_run_id("p"), clients=2)
    # The second client's address is outside the internal networks: up() fails half-way,
    # after the sink and the first client namespaces exist.
    broken = LabPlan(
        run_id=plan.run_id,
        clients=(plan.clients[0], LabHost(name="client-2", role=plan.clients[1].role,
                                          address="198.51.100.7")),
        sink=plan.sink,
        endpoints=plan.endpoints,
        zone=plan.zone,
        resolver=plan.resolver,
        internal_networks=plan.internal_networks,
    )  # fmt: skip
    backend = NetnsBackend(broken, tmp_path)
    with pytest.raises(LabError, match="outside the internal networks"), backend:
        pass
    prefix = f"eh-{plan.run_id}-"
    assert prefix not in _netns_names()
    assert prefix not in _root_links()
    assert not list(NETNS_DIR.glob(f"{prefix}*"))


def test_sigint_tears_the_lab_down(tmp_path: Path) -> None:
    _skip_unless_available()
    run_id = _run_id("i")
    child = subprocess.Popen(
        [sys.executable, str(HERE / "netns_sigint_child.py"), run_id, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("READY "), (line, child.stderr.read() if child.stderr else "")
        sleeper = int(line.split()[1])
        assert Path(f"/proc/{sleeper}").exists()
        assert f"eh-{run_id}-c1" in _netns_names()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert f"lab {run_id} torn down" in lines[0]
    prefix = f"eh-{run_id}-"
    assert prefix not in _netns_names()
    assert prefix not in _root_links()
    assert not list(NETNS_DIR.glob(f"{prefix}*"))
    _wait_for(lambda: _zombie(sleeper), timeout_s=5.0)
