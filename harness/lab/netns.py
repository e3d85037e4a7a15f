"""The ``netns`` lab backend: Linux network namespaces joined by veth pairs (needs root).

Topology for run ``ID`` (every name carries the prefix ``eh-ID-``)::

    netns eh-ID-c1                     netns eh-ID-s (the "internet")
    +------------------------+         +--------------------------------------------+
    | eh-ID-c1  192.0.2.101  |--veth---| eh-ID-s1 --+                               |
    +------------------------+         |            |-- bridge eh-ID-br             |
    netns eh-ID-c2                     |            |   203.0.113.1/32, the sink   |
    +------------------------+         |            |   services' /32s, route to   |
    | eh-ID-c2  192.0.2.102  |--veth---| eh-ID-s2 --+   192.0.2.0/24                |
    +------------------------+         +--------------------------------------------+

* One namespace per client and one sink namespace. Each client has one veth pair whose client
  end carries its address (a /24 in ``192.0.2.0/24``) and whose other end is a port of a bridge
  inside the sink namespace. Both ends are created directly inside their namespaces, so nothing
  ever appears in the host's own namespace and deleting the namespaces deletes the veths.
* The sink host's and every service's address sit as /32s on the bridge; the sink namespace
  routes the clients' network to the bridge. A client routes only the /24s of the sink addresses
  to its veth (on-link): no default route, so any other destination is unreachable at once.
* Checksum and segmentation offloads (tx checksum, scatter-gather, TSO, GSO, GRO) are off on
  every lab link, so the capture holds MTU-sized packets with real checksums, as on a wire.
* IPv6 is disabled in every lab namespace, so captures hold only the lab's IPv4 traffic (no
  link-local multicast chatter).
* ``/etc/netns/eh-ID-cN/resolv.conf`` names the lab resolver, which ``ip netns exec`` mounts
  over ``/etc/resolv.conf``, so libc resolution in a client uses the lab's DNS sink.
* Processes start through ``ip netns exec NS``, which execs the program: the pid the harness
  sees is the program's own. The capture is tcpdump on the bridge inside the sink namespace, so
  it sees everything the clients exchange with the sinks (Ethernet frames).

Nothing is routed between the lab and the host: the namespaces have no link to the host's
namespace at all. ``down()`` stops every process the backend started, kills whatever is still
inside its namespaces, deletes the namespaces (and with them the veths and the bridge) and the
``/etc/netns`` directories; it is idempotent and safe after a partial ``up()``.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import functools
import ipaddress
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import LabError, LabUnavailableError
from harness.lab.backend import LabHost, LabPlan
from harness.lab.local import CaptureTarget, LocalProcessLab
from harness.lab.plan import sink_addresses, sink_networks, validate_run_id

__all__ = ["NETNS_DIR", "NetnsBackend", "remove_run"]

#: Where ``ip netns`` keeps per-namespace files it mounts over ``/etc``.
NETNS_DIR = Path("/etc/netns")
_RUN_NETNS = Path("/run/netns")
_IP_TIMEOUT_S = 10.0
_CLONE_NEWNET = 0x40000000
_SIOCETHTOOL = 0x8946
#: ethtool "set" commands turned off on every lab link: tx checksum, scatter-gather, TSO, GSO,
#: GRO. Without this, veths hand 64 KiB super-segments and unfinished checksums to the capture.
_ETHTOOL_OFF = (0x17, 0x19, 0x1F, 0x24, 0x2C)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(  # noqa: S603 - fixed iproute2 sub-commands, lab names only
            ["ip", *args],  # noqa: S607 - iproute2 from PATH
            capture_output=True,
            text=True,
            timeout=_IP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"ip {' '.join(args)} failed: {exc}") from exc
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {done.stderr.strip() or done.returncode}")
    return done


def _namespaces() -> set[str]:
    done = _ip("netns", "list", check=False)
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def _ns_pids(ns: str) -> list[int]:
    done = _ip("netns", "pids", ns, check=False)
    return [int(tok) for tok in done.stdout.split() if tok.isdigit()]


def _kill_ns_processes(ns: str, deadline_s: float = 3.0) -> None:
    """SIGKILL everything inside ``ns`` until it is empty (or ``deadline_s`` passed)."""
    end = time.monotonic() + deadline_s
    while True:
        pids = _ns_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > end:
            return
        time.sleep(0.02)


def _delete_links(prefix: str) -> None:
    """Delete links named ``prefix*`` in the host's own namespace (leftovers of a broken run)."""
    done = _ip("-o", "link", "show", check=False)
    for line in done.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@", 1)[0]
        if name.startswith(prefix):
            _ip("link", "del", name, check=False)


def _in_netns(ns: str, fn: Callable[[], None]) -> None:
    """Run ``fn`` on a short-lived thread that has joined the namespace ``ns`` (setns affects
    only the calling thread; the harness's other threads stay where they are)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(_RUN_NETNS / ns, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{ns}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _offloads_off(interfaces: Sequence[str]) -> None:
    """Turn off checksum and segmentation offloads (in the calling thread's namespace), so the
    capture sees MTU-sized packets with real checksums, as on a wire."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in interfaces:
            for cmd in _ETHTOOL_OFF:
                value = array.array("I", [cmd, 0])
                ifreq = struct.pack("16sP16x", name.encode(), value.buffer_info()[0])
                with contextlib.suppress(OSError):
                    fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, ifreq)


def _remove_namespace(ns: str) -> None:
    _kill_ns_processes(ns)
    _ip("netns", "del", ns, check=False)
    shutil.rmtree(NETNS_DIR / ns, ignore_errors=True)


def remove_run(run_id: str) -> None:
    """Remove whatever a netns lab of run ``run_id`` left behind (namespaces ``eh-ID-*``, their
    processes, links named ``eh-ID-*`` in the host namespace, ``/etc/netns/eh-ID-*``): the
    clean-up for a harness that was killed without running ``down()``."""
    validate_run_id(run_id)
    prefix = f"eh-{run_id}-"
    for ns in sorted(_namespaces()):
        if ns.startswith(prefix):
            _remove_namespace(ns)
    _delete_links(prefix)
    if NETNS_DIR.is_dir():
        for d in NETNS_DIR.iterdir():
            if d.name.startswith(prefix):
                shutil.rmtree(d, ignore_errors=True)


class NetnsBackend(LocalProcessLab):
    """Network namespaces joined by veth pairs to a bridge in the sink namespace (see the
    module docstring)."""

    name = "netns"

    def __init__(self, plan: LabPlan, workdir: Path) -> None:
        super().__init__(plan, workdir)
        validate_run_id(plan.run_id)
        if len(plan.clients) > 99:
            raise LabError(f"netns lab supports up to 99 clients, plan has {len(plan.clients)}")
        self.prefix = f"eh-{plan.run_id}-"
        #: Namespaces this backend created (registered before creation, for down()).
        self._created: list[str] = []

    # -- names ---------------------------------------------------------------------------

    def namespace(self, host: LabHost) -> str:
        """The namespace of ``host``: ``eh-ID-cN`` for client N, ``eh-ID-s`` for the sink."""
        if host == self.plan.sink:
            return f"{self.prefix}s"
        for i, client in enumerate(self.plan.clients, start=1):
            if client == host:
                return f"{self.prefix}c{i}"
        raise LabError(f"host {host.name!r} is not part of lab {self.plan.run_id!r}")

    @property
    def bridge(self) -> str:
        """The bridge inside the sink namespace (the capture interface)."""
        return f"{self.prefix}br"

    def namespaces(self) -> list[str]:
        """Every namespace of this lab, sink first."""
        return [self.namespace(self.plan.sink), *map(self.namespace, self.plan.clients)]

    # -- LabBackend -----------------------------------------------------------------------

    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return "the netns backend needs root (use --backend loopback unprivileged)"
        for tool in ("ip", "tcpdump"):
            if shutil.which(tool) is None:
                return f"{tool} not found on PATH (install iproute2 and tcpdump)"
        probe = f"eh-probe{os.getpid()}"
        done = _ip("netns", "add", probe, check=False)
        _ip("netns", "del", probe, check=False)
        if done.returncode != 0:
            return f"cannot create network namespaces: {done.stderr.strip()}"
        return None

    def up(self) -> None:
        reason = self.available()
        if reason is not None:
            raise LabUnavailableError(reason)
        existing = _namespaces() & set(self.namespaces())
        if existing:
            raise LabError(
                f"namespaces {sorted(existing)} already exist: another lab with run id "
                f"{self.plan.run_id!r} is running or was left behind "
                f"(remove with harness.lab.netns.remove_run({self.plan.run_id!r}))"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        sink_ns = self.namespace(self.plan.sink)
        self._add_namespace(sink_ns)
        br = self.bridge
        _ip("-n", sink_ns, "link", "add", br, "type", "bridge")
        _ip("-n", sink_ns, "link", "set", br, "up")
        for address in sink_addresses(self.plan):
            _ip("-n", sink_ns, "addr", "add", f"{address}/32", "dev", br)
        for net in self.plan.internal_networks:
            _ip("-n", sink_ns, "route", "add", net, "dev", br)
        sink_nets = sink_networks(self.plan)
        for i, client in enumerate(self.plan.clients, start=1):
            ns = self.namespace(client)
            self._add_namespace(ns)
            c_end, s_end = f"{self.prefix}c{i}", f"{self.prefix}s{i}"
            # Both ends are born inside their namespaces: nothing appears in the host's.
            _ip(
                "link", "add", c_end, "netns", ns, "type", "veth",
                "peer", "name", s_end, "netns", sink_ns,
            )  # fmt: skip
            _ip("-n", sink_ns, "link", "set", s_end, "master", br)
            _ip("-n", sink_ns, "link", "set", s_end, "up")
            client_net = self._client_network(client.address)
            prefixlen = client_net.prefixlen
            _ip("-n", ns, "addr", "add", f"{client.address}/{prefixlen}", "dev", c_end)
            _ip("-n", ns, "link", "set", c_end, "up")
            for sink_net in sink_nets:
                _ip("-n", ns, "route", "add", sink_net, "dev", c_end)
            _in_netns(ns, functools.partial(_offloads_off, [c_end]))
            etc = NETNS_DIR / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(
                f"# egress-harness lab {self.plan.run_id}\nnameserver {self.plan.resolver}\n"
                f"search {self.plan.zone}\noptions timeout:1 attempts:1\n"
            )
        ports = [br, *(f"{self.prefix}s{i}" for i in range(1, len(self.plan.clients) + 1))]
        _in_netns(sink_ns, functools.partial(_offloads_off, ports))
        self._is_up = True

    def _client_network(self, address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        for net in self.plan.internal_networks:
            network = ipaddress.ip_network(net)
            if ipaddress.ip_address(address) in network:
                return network
        raise LabError(
            f"client address {address} is outside the internal networks "
            f"{list(self.plan.internal_networks)}"
        )

    def _add_namespace(self, ns: str) -> None:
        # Registered first: an interrupt between here and the command still gets it removed.
        self._created.append(ns)
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        # IPv4 only: no IPv6 link-local chatter (MLD, router solicitations) in the capture.
        _ip(
            "netns", "exec", ns, "sysctl", "-q", "-w",
            "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
            check=False,
        )  # fmt: skip

    def down(self) -> None:
        self._stop_started()
        if self._created:
            for ns in reversed(self._created):
                _remove_namespace(ns)
            # Veths are born inside the namespaces, so none should be here; be sure anyway.
            _delete_links(self.prefix)
        self._created.clear()
        self._is_up = False

    def _host_prefix(self, host: LabHost) -> Sequence[str]:
        return ("ip", "netns", "exec", self.namespace(host))

    def _capture_target(self) -> CaptureTarget:
        sink_ns = self.namespace(self.plan.sink)
        return CaptureTarget(interface=self.bridge, prefix=("ip", "netns", "exec", sink_ns))

    def netns_of(self, host: LabHost) -> str | None:
        ns = self.namespace(host)
        try:
            inode = (_RUN_NETNS / ns).stat().st_ino
        except OSError as exc:
            raise LabError(f"namespace {ns} of host {host.name!r} does not exist") from exc
        return f"net:[{inode}]"
