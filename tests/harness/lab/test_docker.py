"""The docker lab backend: a locally built image, an internal network on a documentation subnet,
client and sink containers that reach each other and nothing else, processes under chosen
executable names, a capture of the lab bridge, and a teardown that leaves nothing behind."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import LabUnavailableError
from harness.lab.backend import Service
from harness.lab.capture import TcpdumpCapture
from harness.lab.docker import API_VERSION, NO_ENGINE, DockerBackend
from harness.lab.image import IMAGE_REPOSITORY, LABEL, docker_sdk, ensure_image_report
from harness.lab.plan import default_plan, sink_addresses

pytestmark = pytest.mark.privileged

_DOC = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
_DOC_BPF = "net 192.0.2.0/24 or net 198.51.100.0/24 or net 203.0.113.0/24"


def _engine() -> Any:
    reason = DockerBackend.available()
    if reason is not None:
        pytest.skip(f"docker backend unavailable: {reason}")
    return docker_sdk().from_env(version=API_VERSION, timeout=120)


def _leftovers(client: Any, run_id: str) -> list[str]:
    prefix = f"eh-{run_id}-"
    names = [c.name for c in client.containers.list(all=True) if c.name.startswith(prefix)]
    names += [n.name for n in client.networks.list() if n.name.startswith(prefix)]
    names += [n for n in os.listdir("/sys/class/net") if n == f"eh-{run_id}"]
    rules = subprocess.run(
        ["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True, check=False
    ).stdout
    names += [line for line in rules.splitlines() if f"eh-{run_id}" in line]
    return names


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    c = _engine()
    yield c
    c.close()


@pytest.fixture(scope="module")
def image(client: Any) -> str:
    report = ensure_image_report(client)
    return report.tag


@pytest.fixture(scope="class")
def lab(
    client: Any, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerBackend]:
    plan = default_plan("dkt1", clients=2)
    backend = DockerBackend(plan, tmp_path_factory.mktemp("docker-lab"))
    with backend:
        yield backend
    assert _leftovers(client, plan.run_id) == []


# -- image -------------------------------------------------------------------------------------


def test_image_is_local_scratch_build_and_cached(client: Any, image: str) -> None:
    again = ensure_image_report(client)
    assert again.tag == image
    assert not again.built, "a second ensure_image must be a cache hit"
    assert again.seconds < 10.0
    assert image.startswith(f"{IMAGE_REPOSITORY}:")
    attrs = client.images.get(image).attrs
    assert attrs["Config"]["Labels"][LABEL] == "lab"
    runtime = client.images.get(again.runtime_tag).attrs
    # FROM scratch: the runtime image is one layer, the lab image adds the project's files.
    assert len(runtime["RootFS"]["Layers"]) == 1
    assert len(attrs["RootFS"]["Layers"]) == 2
    assert again.size_bytes > 0


def test_failed_image_build_is_lab_unavailable(tmp_path: Path) -> None:
    errors = docker_sdk().errors

    class Images:
        def get(self, tag: str) -> None:
            # The runtime image "exists": only the small project layer is (not) built.
            if ":rt-" not in tag:
                raise errors.ImageNotFound(f"no {tag}")

        def build(self, **kwargs: Any) -> None:
            raise errors.BuildError("COPY failed: no space left on device", build_log=[])

    class Client:
        images = Images()

    with pytest.raises(LabUnavailableError, match="cannot build the docker lab image"):
        ensure_image_report(Client())


# -- a running lab -------------------------------------------------------------------------

# -- traffic, capture, names, containment ------------------------------------------------------

_TCP_SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{addr}", {port})); s.listen(); s.settimeout(20)
c, peer = s.accept(); data = c.recv(100); c.sendall(b"tcp-ok " + data); c.close()
print("tcp from", peer[0], data.decode(), flush=True)
"""
_UDP_SERVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("{addr}", {port})); s.settimeout(20)
data, peer = s.recvfrom(100); s.sendto(b"udp-ok " + data, peer)
print("udp from", peer[0], data.decode(), flush=True)
"""
_OWNER_SERVER = """
import json, socket
from harness.lab.sinks import OwnerLookup
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{addr}", {port})); s.listen(); s.settimeout(20)
c, peer = s.accept()
print(json.dumps(OwnerLookup(set({clients})).lookup("tcp", peer[0], peer[1])), flush=True)
c.close()
"""
_HOLDER = """
import socket, time
t = socket.create_connection(("{addr}", {port}), timeout=10)
time.sleep(30)
"""
_CLIENT = """
import socket, sys, time
t = socket.create_connection(("{tcp}", {tcp_port}), timeout=10); t.sendall(b"{marker}")
print(t.recv(100).decode(), flush=True); t.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(10)
u.sendto(b"{marker}", ("{udp}", {udp_port})); print(u.recvfrom(100)[0].decode(), flush=True)
time.sleep(float(sys.argv[1]))
"""


def _pcap_packets(path: Path) -> Iterator[tuple[int, bytes]]:
    """(link type, packet) of a classic pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        yield linktype, data[off + 16 : off + 16 + incl]
        off += 16 + incl


def _ipv4(linktype: int, pkt: bytes) -> tuple[int | None, bytes] | None:
    """(interface index or None, IPv4 header+payload) for Ethernet and Linux SLL2 captures."""
    if linktype == 1 and pkt[12:14] == b"\x08\x00":
        return None, pkt[14:]
    if linktype == 276 and pkt[0:2] == b"\x08\x00":  # LINUX_SLL2: protocol, _, ifindex
        return struct.unpack(">I", pkt[4:8])[0], pkt[20:]
    return None


def _addresses(ip: bytes) -> tuple[str, str]:
    return str(ipaddress.ip_address(ip[12:16])), str(ipaddress.ip_address(ip[16:20]))


def _interfaces() -> dict[int, tuple[str, str | None]]:
    """ifindex -> (name, master) of the host's interfaces now."""
    out = {}
    for name in os.listdir("/sys/class/net"):
        base = Path("/sys/class/net") / name
        index = int((base / "ifindex").read_text())
        master = (
            os.path.basename(os.readlink(base / "master")) if (base / "master").exists() else None
        )
        out[index] = (name, master)
    return out


@pytest.fixture(scope="class")
def traffic(lab: DockerBackend, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One exchange: TCP and UDP servers in the sink, a client named rundll32.exe talking to
    both, captured on the lab bridge and, for containment, on every host interface."""
    plan = lab.plan
    tcp, udp = plan.endpoint(Service.TCP), plan.endpoint(Service.UDP)
    work = lab.workdir
    outside = tmp_path_factory.mktemp("outside") / "any.pcap"
    servers = [
        lab.start(
            plan.sink,
            ["python", "-c", code.format(addr=e.address, port=e.ports[0])],
            name=name,
            log=work / f"{name}.log",
        )
        for code, e, name in ((_TCP_SERVER, tcp, "tcp-sink"), (_UDP_SERVER, udp, "udp-sink"))
    ]
    time.sleep(0.5)  # the servers bind
    marker = f"eh-{plan.run_id}-probe"
    any_cap = TcpdumpCapture(outside, interface="any", log=work / "any.log", bpf=_DOC_BPF)
    any_cap.start()
    try:
        with lab.capture(work / "lab.pcap") as pcap:
            client = lab.start(
                plan.clients[0],
                [
                    "python",
                    "-c",
                    _CLIENT.format(
                        tcp=tcp.address,
                        tcp_port=tcp.ports[0],
                        udp=udp.address,
                        udp_port=udp.ports[0],
                        marker=marker,
                    ),
                    "30",
                ],
                name="rundll32.exe",
                log=work / "client.log",
            )
            comm = Path(f"/proc/{client.pid}/comm").read_text().strip()
            cmdline = Path(f"/proc/{client.pid}/cmdline").read_bytes().split(b"\0")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "udp-ok" not in (work / "client.log").read_text():
                time.sleep(0.05)
            interfaces = _interfaces()
            stopped = client.stop(grace_s=2.0)
            codes = [s.wait(10) for s in servers]
    finally:
        any_cap.stop()
    return {
        "pcap": pcap,
        "outside": outside,
        "interfaces": interfaces,
        "comm": comm,
        "cmdline": cmdline,
        "pid": client.pid,
        "stopped": stopped,
        "server_codes": codes,
        "marker": marker,
        "client_log": (work / "client.log").read_text(),
        "server_logs": [(work / f"{n}.log").read_text() for n in ("tcp-sink", "udp-sink")],
    }


class TestRunningLab:
    """One lab up for the whole class (one docker lab per engine at a time: the tests after
    the class bring up their own once this one is down)."""

    def test_network_is_internal_documentation_subnet_never_default_bridge(
        self, client: Any, lab: DockerBackend
    ) -> None:
        net = client.networks.get(lab.network_name).attrs
        assert net["Internal"] is True
        assert net["Driver"] == "bridge"
        subnets = [ipaddress.ip_network(c["Subnet"]) for c in net["IPAM"]["Config"]]
        assert subnets
        assert all(any(s.subnet_of(d) for d in _DOC) for s in subnets)  # type: ignore[arg-type]
        assert net["Options"]["com.docker.network.bridge.name"] == lab.bridge
        containers = client.containers.list(all=True, filters={"name": f"eh-{lab.plan.run_id}-"})
        assert len(containers) == 1 + len(lab.plan.clients)
        default_bridge = client.networks.get("bridge").attrs["Containers"] or {}
        for c in containers:
            c.reload()
            assert set(c.attrs["NetworkSettings"]["Networks"]) == {lab.network_name}
            assert c.attrs["HostConfig"]["NetworkMode"] == lab.network_name
            assert not c.attrs["HostConfig"]["PortBindings"]
            assert c.id not in default_bridge
        addresses = {
            c.name: c.attrs["NetworkSettings"]["Networks"][lab.network_name]["IPAddress"]
            for c in containers
        }
        for host in lab.plan.clients:
            assert addresses[lab.container_name(host)] == host.address

    def test_host_gets_no_address_or_route_into_the_lab(self, lab: DockerBackend) -> None:
        """The lab subnet may be the host's own LAN (192.0.2.0/24 here): the bridge must carry
        no host address and the host no route through it."""
        shown = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "dev", lab.bridge],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert " inet " not in shown
        routes = subprocess.run(
            ["ip", "-4", "route", "show", "table", "all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"dev {lab.bridge}" not in routes

    def test_clients_resolve_through_the_lab_resolver(self, lab: DockerBackend) -> None:
        for host in lab.plan.clients:
            pid = lab._pids[host.name]
            resolv = Path(f"/proc/{pid}/root/etc/resolv.conf").read_text()
            assert f"nameserver {lab.plan.resolver}" in resolv
            assert "127.0.0.11" not in resolv
        assert lab.netns_of(lab.plan.clients[0]) != lab.netns_of(lab.plan.sink)
        assert lab.netns_of(lab.plan.sink) != os.readlink("/proc/self/ns/net")

    def test_sink_names_the_client_process_of_a_connection(self, lab: DockerBackend) -> None:
        """The sinks' owner lookup (harness.lab.sinks.OwnerLookup) runs in the sink container
        and must see the client containers' processes: it names the client's host pid."""
        plan, work = lab.plan, lab.workdir
        tcp = plan.endpoint(Service.TCP)
        port = tcp.ports[1]
        server = lab.start(
            plan.sink,
            [
                "python",
                "-c",
                _OWNER_SERVER.format(
                    addr=tcp.address, port=port, clients=[h.address for h in plan.clients]
                ),
            ],
            name="owner-sink",
            log=work / "owner-sink.log",
        )
        time.sleep(0.5)
        client = lab.start(
            plan.clients[1],
            ["python", "-c", _HOLDER.format(addr=tcp.address, port=port)],
            name="OneDrive.exe",
            log=work / "holder.log",
        )
        assert server.wait(20) == 0, (work / "owner-sink.log").read_text()
        client.stop(grace_s=1.0)
        found = json.loads((work / "owner-sink.log").read_text().splitlines()[-1])
        assert found is not None, "the sink could not see the client's socket owner"
        assert found["pid"] == client.pid
        assert found["comm"] == "OneDrive.exe"
        assert found["netns"] == lab.netns_of(plan.clients[1])

    def test_orphans_are_reaped_and_an_idle_client_runs_one_process(
        self, lab: DockerBackend
    ) -> None:
        host = lab.plan.clients[1]
        ns = lab.netns_of(host)
        parent = lab.start(
            host,
            ["python", "-c", "import os, time\nif os.fork() == 0:\n    time.sleep(0.3)"],
            name="orphaner",
            log=lab.workdir / "orphaner.log",
        )
        assert parent.wait(10) == 0
        time.sleep(1.5)  # the orphan exits and must be reaped
        states = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{pid}/ns/net") != ns:
                    continue
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            states.append(stat[stat.rfind(")") + 2])
        assert states == ["S"], f"processes in {host.name}: {states}"

    def test_client_reaches_tcp_and_udp_sinks_on_sink_addresses(
        self, lab: DockerBackend, traffic: dict[str, Any]
    ) -> None:
        marker, client = traffic["marker"], lab.plan.clients[0].address
        assert f"tcp-ok {marker}" in traffic["client_log"]
        assert f"udp-ok {marker}" in traffic["client_log"]
        assert traffic["server_codes"] == [0, 0]
        assert f"tcp from {client} {marker}" in traffic["server_logs"][0]
        assert f"udp from {client} {marker}" in traffic["server_logs"][1]

    def test_capture_on_the_lab_bridge_shows_the_traffic(
        self, lab: DockerBackend, traffic: dict[str, Any]
    ) -> None:
        plan = lab.plan
        tcp, udp = plan.endpoint(Service.TCP), plan.endpoint(Service.UDP)
        client = plan.clients[0].address
        flows: dict[tuple[str, str, int], int] = {}
        payloads = b""
        for linktype, pkt in _pcap_packets(traffic["pcap"]):
            got = _ipv4(linktype, pkt)
            if got is None:
                continue
            _, ip = got
            src, dst = _addresses(ip)
            key = (src, dst, ip[9])
            flows[key] = flows.get(key, 0) + 1
            payloads += ip
        assert flows.get((client, tcp.address, 6), 0) >= 3  # handshake, data, close
        assert flows.get((tcp.address, client, 6), 0) >= 2
        assert flows.get((client, udp.address, 17)) == 1
        assert flows.get((udp.address, client, 17)) == 1
        assert traffic["marker"].encode() in payloads
        lab_addresses = {h.address for h in plan.clients} | set(sink_addresses(plan))
        assert {a for k in flows for a in k[:2]} <= lab_addresses

    def test_process_runs_under_the_chosen_executable_name(self, traffic: dict[str, Any]) -> None:
        assert traffic["comm"] == "rundll32.exe"
        assert traffic["cmdline"][0].endswith(b"/rundll32.exe")
        assert traffic["stopped"] is not None  # stop() ended the 30 s sleep
        assert not Path(f"/proc/{traffic['pid']}").exists()

    def test_containment_no_lab_traffic_on_other_host_interfaces(
        self, lab: DockerBackend, traffic: dict[str, Any]
    ) -> None:
        interfaces = traffic["interfaces"]
        ours = {i for i, (name, master) in interfaces.items() if lab.bridge in (name, master)}
        seen_inside = 0
        leaked: list[str] = []
        for linktype, pkt in _pcap_packets(traffic["outside"]):
            got = _ipv4(linktype, pkt)
            if got is None:
                continue
            index, ip = got
            if index in ours:
                seen_inside += 1
                continue
            name, master = interfaces.get(index or -1, (f"ifindex {index}", None))
            if name.startswith("eh-") or (master or "").startswith("eh-"):
                continue  # another lab's bridge or port (other lab tests may run beside this one)
            src, dst = _addresses(ip)
            leaked.append(f"{name}: {src} > {dst}")
        # The same capture saw the lab's packets on the lab bridge and its ports (so it works) ...
        assert seen_inside >= 8
        # ... and none on eth0, docker0, lo or any other interface of the host.
        assert leaked == []


# -- teardown ----------------------------------------------------------------------------------


def test_up_down_leaves_nothing_and_down_is_idempotent(
    client: Any, image: str, tmp_path: Path
) -> None:
    plan = default_plan("dkt2", clients=1)
    backend = DockerBackend(plan, tmp_path)
    with backend:
        assert _leftovers(client, plan.run_id)
        in_sink = backend.start(
            plan.sink,
            ["python", "-c", "import time; time.sleep(60)"],
            name="snk",
            log=tmp_path / "s",
        )
        proc = backend.start(
            plan.clients[0],
            ["python", "-c", "import time; time.sleep(60)"],
            name="svc",
            log=tmp_path / "l",
        )
    assert _leftovers(client, plan.run_id) == []
    assert not Path(f"/proc/{proc.pid}").exists()
    assert not Path(f"/proc/{in_sink.pid}").exists()
    backend.down()  # again: nothing to do, no error


def test_down_after_partial_up(client: Any, image: str, tmp_path: Path) -> None:
    plan = default_plan("dkt3", clients=1)
    backend = DockerBackend(plan, tmp_path)
    backend._client = docker_sdk().from_env(version=API_VERSION)
    backend.image = image
    backend._create_network()
    backend._allow_lab_bridge()
    assert _leftovers(client, plan.run_id)
    backend.down()
    assert _leftovers(client, plan.run_id) == []


def test_no_engine_is_lab_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    assert DockerBackend.available() == NO_ENGINE
    backend = DockerBackend(default_plan("dkt4"), tmp_path)
    with pytest.raises(LabUnavailableError, match="no Docker engine running"), backend:
        pass


_INTERRUPTED = """
import sys, time
from pathlib import Path
from harness.lab.docker import DockerBackend
from harness.lab.plan import default_plan

plan = default_plan(sys.argv[1], clients=2)
backend = DockerBackend(plan, Path(sys.argv[2]))
with backend:
    proc = backend.start(plan.clients[1], ["python", "-c", "import time; time.sleep(120)"],
                         name="backup.exe", log=Path(sys.argv[2]) / "b.log")
    print("READY", proc.pid, flush=True)
    time.sleep(120)
"""


def test_sigint_during_a_docker_lab_leaves_nothing(client: Any, image: str, tmp_path: Path) -> None:
    run_id = "dkt5"
    child = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            textwrap.dedent(_INTERRUPTED),
            run_id,
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith("READY"):
                child.kill()
                pytest.fail(f"lab script did not come up: {child.communicate()[1]}")
            pid = int(line.split()[1])
            assert Path(f"/proc/{pid}").exists()
            assert _leftovers(client, run_id)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
    assert _leftovers(client, run_id) == []
    assert not Path(f"/proc/{pid}").exists()
