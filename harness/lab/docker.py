"""The ``docker`` lab backend: one container per client and one sink container on a bridge network
the backend creates ``internal`` with a documentation-range subnet, from the image
:mod:`harness.lab.image` builds locally.

Network layout (run id ``R``)::

    network eh-R-net   bridge eh-R   internal   subnet = plan.internal_networks[0] (192.0.2.0/24)
      eh-R-c1  192.0.2.101 ... one container per client, at the plan's address
      eh-R-s   192.0.2.254 (its attachment address) + every sink address of the plan as /32s

A Docker bridge network has exactly one IPv4 subnet, while the plan puts the sinks in
203.0.113.0/24 and 198.51.100.0/24. So the sink container is attached to the one lab network and
the backend adds the plan's sink addresses to its interface, and gives each client an on-link
route to the sink ranges (both with ``nsenter`` into the container's network namespace from the
host: the image has no ``ip`` and the containers get no extra capabilities). Client and sink then
talk across the one bridge, which is where the capture runs.

Docker filters bridged packets with iptables (``br_netfilter``): on an internal network it drops
every packet entering the bridge with a destination outside the subnet and every packet leaving it
with a source outside the subnet, which would drop all client-to-sink traffic. The backend
therefore inserts one rule into ``DOCKER-USER`` (the chain Docker reserves for its users)::

    -i eh-R -o eh-R -j ACCEPT      (comment eh-R)

It accepts only packets that enter *and* leave the lab bridge, i.e. stay between lab containers;
anything else still meets Docker's internal-network drops, and the containers have no default
route. ``down()`` deletes the rule. The bridge itself carries no IPv4 address on the host
(``com.docker.network.bridge.inhibit_ipv4``): the host gets no route into the lab subnet, which
may be the very documentation range of the host's own LAN.

Never the default bridge: containers are created with ``network=eh-R-net`` only (their
``network_mode`` is that network), no published ports. Each container runs one sleeping Python
as its main process, with the work directory bind-mounted at its own path (logs, audit files,
certificates keep their host paths) and ``/etc/resolv.conf`` replaced by one naming
``plan.resolver`` (Docker's embedded DNS at 127.0.0.11 is never asked). IPv6 is switched off
inside the containers so that the capture holds only the lab's IPv4 traffic.

Every container shares the host's pid namespace (``pid_mode=host``; the network namespaces stay
separate): the sinks name the owner of each client socket from ``/proc`` as it connects
(:class:`harness.lab.sinks.OwnerLookup`, which attributes sockets too short-lived for the polling
monitor, such as resolver lookups), and the programs' own file-read audits carry the pids the
harness's monitor sees (an Atomic test's program is a grandchild of the runner the lab started:
a container-local pid could not be matched to it). Removing a container that shares the host's
pid namespace still kills every process in it (the runtime kills the container's whole cgroup).

Programs run through ``docker exec``: a small launcher in the container symlinks the program
under the requested executable name in ``<workdir>/bin`` (where the netns backend puts its names
too, so process images read the same on both backends), redirects output to the log file,
starts a new session and execs it, so the pid ``exec_inspect`` reports (a host pid:
the engine runs in the host's pid namespace) is the program's own and ``/proc/PID/comm`` shows
the name. Only one docker lab can be up per engine at a time (Docker refuses two networks with
the same subnet).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import InvalidParameterError, LabError, LabUnavailableError
from harness.lab.backend import HostRole, LabBackend, LabHost, LabPlan, LabProcess
from harness.lab.capture import TcpdumpCapture
from harness.lab.image import LABEL, docker_sdk, ensure_image, interpreter_path
from harness.lab.launch import COMM_LEN, PYTHON, signal_group, validate_name
from harness.lab.plan import sink_addresses, sink_networks

__all__ = [
    "API_VERSION",
    "NO_ENGINE",
    "SINK_ATTACH_HOST",
    "DockerBackend",
    "DockerLabProcess",
    "docker_sdk",
]

#: Docker Engine API version the backend speaks (engine 20.10; newer engines accept it).
API_VERSION = "1.41"
NO_ENGINE = "no Docker engine running: start dockerd, or use --backend netns"
#: Host number of the sink container's own attachment address in the lab subnet.
SINK_ATTACH_HOST = 254
_DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_RUN_LABEL = f"{LABEL}.run"
# The main process of every container: sleeps, and reaps any child it gets (in the host's pid
# namespace orphans go to the runtime's shim, a subreaper; this keeps the container to one
# process where docker-init would add a second to every client's process list).
_INIT = """
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(1)
"""
# Runs inside the container: name link, output to the log, own session, exec the program.
_LAUNCHER = """
import os, sys
names, name, log, program, *args = sys.argv[1:]
link = os.path.join(names, name)
os.makedirs(os.path.dirname(link), exist_ok=True)
if not os.path.islink(link) or os.readlink(link) != program:
    tmp = os.path.join(os.path.dirname(link), "." + os.path.basename(link) + "." + str(os.getpid()))
    os.symlink(program, tmp)
    os.replace(tmp, link)
out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.dup2(out, 1)
os.dup2(out, 2)
try:
    os.setsid()
except PermissionError:
    pass  # already a process group leader (as docker exec starts it): killpg works as is
os.execv(link, [link, *args])
"""


def _probe_unix_socket() -> None:
    """Fail early when the engine's Unix socket does not answer: the SDK's own failed connect
    leaves its socket open."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        try:
            sock.connect(path)
        except OSError as exc:
            raise LabUnavailableError(f"{NO_ENGINE} ({path}: {exc.strerror or exc})") from exc


def _client(timeout_s: int = 120) -> Any:
    """A client of the engine named by the environment (``DOCKER_HOST``), pinged; else
    :class:`LabUnavailableError`."""
    _probe_unix_socket()
    docker = docker_sdk()
    try:
        # A fixed API version: "auto" asks the engine while constructing the client and, when
        # there is none, leaks the half-made client's socket.
        client = docker.from_env(version=API_VERSION, timeout=timeout_s)
    except docker.errors.DockerException as exc:
        raise LabUnavailableError(f"{NO_ENGINE} ({exc})") from exc
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        client.close()
        raise LabUnavailableError(f"{NO_ENGINE} ({exc})") from exc
    return client


class DockerLabProcess(LabProcess):
    """A program started with ``docker exec`` in a lab container."""

    def __init__(self, api: Any, exec_id: str, *, pid: int, name: str, host: LabHost) -> None:
        self._api = api
        self.exec_id = exec_id
        self.pid = pid
        self.name = name
        self.host = host
        self._code: int | None = None

    def poll(self) -> int | None:
        if self._code is None:
            docker = docker_sdk()
            try:
                info = self._api.exec_inspect(self.exec_id)
            except docker.errors.NotFound:
                # The container (and its exec record) is gone: so is the process.
                self._code = -signal.SIGKILL
                return self._code
            if not info.get("Running") and info.get("ExitCode") is not None:
                self._code = int(info["ExitCode"])
        return self._code

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.name, timeout or 0.0)
            time.sleep(0.05)
        return code

    def stop(self, grace_s: float = 3.0) -> int | None:
        if self.poll() is not None:
            return self._code
        # The launcher made the program a session (and group) leader; its pid is a host pid,
        # and so is the group id.
        signal_group(self.pid, signal.SIGTERM)
        try:
            return self.wait(grace_s)
        except subprocess.TimeoutExpired:
            signal_group(self.pid, signal.SIGKILL)
        try:
            return self.wait(grace_s)
        except subprocess.TimeoutExpired:
            return None

    def __repr__(self) -> str:
        return f"DockerLabProcess(pid={self.pid}, name={self.name!r}, host={self.host.name!r})"


class DockerBackend(LabBackend):
    """Containers on an internal Docker network (see the module docstring)."""

    name = "docker"

    def __init__(self, plan: LabPlan, workdir: Path) -> None:
        super().__init__(plan, workdir.resolve())
        rid = plan.run_id
        self.network_name = f"eh-{rid}-net"
        #: The lab network's bridge interface in the host's namespace (at most 15 characters).
        self.bridge = f"eh-{rid}"
        self.subnet = self._subnet(plan)
        self.image: str | None = None
        self._client: Any = None
        self._containers: dict[str, str] = {}  # host name -> container name
        self._pids: dict[str, int] = {}  # host name -> its container's main process (host pid)
        self._captures: list[TcpdumpCapture] = []

    # -- naming ------------------------------------------------------------------------------

    @staticmethod
    def _subnet(plan: LabPlan) -> ipaddress.IPv4Network:
        for text in plan.internal_networks:
            net = ipaddress.ip_network(text)
            if isinstance(net, ipaddress.IPv4Network) and any(
                net.subnet_of(d) for d in _DOCUMENTATION if isinstance(d, ipaddress.IPv4Network)
            ):
                return net
        raise InvalidParameterError(
            "lab internal networks",
            plan.internal_networks,
            "an IPv4 subnet inside 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24",
        )

    def container_name(self, host: LabHost) -> str:
        rid = self.plan.run_id
        if host.role is HostRole.SINK:
            return f"eh-{rid}-s"
        index = self.plan.clients.index(host) + 1
        return f"eh-{rid}-c{index}"

    @property
    def sink_attach_address(self) -> str:
        return str(self.subnet.network_address + SINK_ATTACH_HOST)

    # -- availability ------------------------------------------------------------------------

    @classmethod
    def available(cls) -> str | None:
        try:
            _client(timeout_s=10).close()
        except LabUnavailableError:
            return NO_ENGINE
        if os.geteuid() != 0:
            return "the docker backend needs root (nsenter and tcpdump on the lab bridge)"
        for tool in ("nsenter", "ip", "tcpdump"):
            if shutil.which(tool) is None:
                return f"the docker backend needs {tool} on PATH"
        return None

    # -- up ----------------------------------------------------------------------------------

    def up(self) -> None:
        reason = self.available()
        if reason is not None:
            raise LabUnavailableError(reason)
        self._check_addresses()
        self._client = _client()
        self.image = ensure_image(self._client)
        self.workdir.mkdir(parents=True, exist_ok=True)
        resolv = self.workdir / "resolv.conf"
        resolv.write_text(f"nameserver {self.plan.resolver}\noptions timeout:2 attempts:2\n")
        errors = docker_sdk().errors
        try:
            self._create_network()
            self._quiet_bridge()
            self._allow_lab_bridge()
            self._create_container(self.plan.sink, self.sink_attach_address, resolv)
            for host in self.plan.clients:
                self._create_container(host, host.address, resolv)
        except errors.DockerException as exc:
            raise LabError(f"cannot bring up docker lab {self.plan.run_id}: {exc}") from exc
        self._configure_addresses()

    def _check_addresses(self) -> None:
        for host in self.plan.clients:
            if ipaddress.ip_address(host.address) not in self.subnet:
                raise InvalidParameterError(
                    f"address of {host.name}", host.address, f"an address in {self.subnet}"
                )
        taken = {h.address for h in self.plan.clients}
        if self.sink_attach_address in taken:
            raise InvalidParameterError(
                "client address", self.sink_attach_address, "not the sink's attachment address"
            )
        for address in sink_addresses(self.plan):
            if not any(ipaddress.ip_address(address) in d for d in _DOCUMENTATION):
                raise InvalidParameterError(
                    "sink address", address, "an address in a documentation range"
                )

    def _create_network(self) -> None:
        docker = docker_sdk()
        ipam = docker.types.IPAMConfig(
            driver="default", pool_configs=[docker.types.IPAMPool(subnet=str(self.subnet))]
        )
        try:
            self._client.networks.create(
                self.network_name,
                driver="bridge",
                internal=True,
                ipam=ipam,
                check_duplicate=True,
                enable_ipv6=False,
                options={
                    "com.docker.network.bridge.name": self.bridge,
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                    # No address on the host's side of the bridge: the lab subnet gets no route
                    # in the host's namespace, so it can never shadow the host's own network
                    # (a machine whose LAN is itself 192.0.2.0/24, gateway .1, keeps it).
                    "com.docker.network.bridge.inhibit_ipv4": "true",
                },
                labels={LABEL: "network", _RUN_LABEL: self.plan.run_id},
            )
        except docker.errors.APIError as exc:
            others = [
                n.name
                for n in self._client.networks.list(filters={"label": LABEL})
                if n.name != self.network_name
            ]
            hint = (
                f" (another lab holds the subnet: {', '.join(others)}; one docker lab per engine"
                " at a time, `docker network rm` it if its run is gone)"
                if others
                else ""
            )
            raise LabError(
                f"cannot create the docker lab network {self.network_name} on {self.subnet}: "
                f"{exc.explanation or exc}{hint}"
            ) from exc

    def _quiet_bridge(self) -> None:
        # The bridge's own IPv6 link-local address would send MLD reports into every capture.
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6").write_text("1\n")

    def _iptables_rule(self) -> list[str]:
        return [
            "DOCKER-USER",
            "-i",
            self.bridge,
            "-o",
            self.bridge,
            "-m",
            "comment",
            "--comment",
            self.bridge,
            "-j",
            "ACCEPT",
        ]

    def _allow_lab_bridge(self) -> None:
        iptables = shutil.which("iptables")
        if iptables is None:
            return  # no iptables: Docker cannot have installed its drops either
        probe = subprocess.run(  # noqa: S603 - fixed tool and arguments
            [iptables, "-w", "-n", "-L", "DOCKER-USER"], capture_output=True, check=False
        )
        if probe.returncode != 0:
            return  # the engine runs without iptables: nothing drops bridged lab traffic
        rule = self._iptables_rule()
        done = subprocess.run(  # noqa: S603 - fixed tool, our own bridge name
            [iptables, "-w", "-I", *rule], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LabError(
                f"cannot allow traffic within the lab bridge {self.bridge}: {done.stderr.strip()}"
            )

    def _create_container(self, host: LabHost, address: str, resolv: Path) -> None:
        name = self.container_name(host)
        self._containers[host.name] = name
        api = self._client.api
        networking = {self.network_name: api.create_endpoint_config(ipv4_address=address)}
        workdir = str(self.workdir)
        container = self._client.containers.create(
            self.image,
            [interpreter_path(), "-c", _INIT],
            name=name,
            hostname=host.name,
            detach=True,
            network=self.network_name,
            networking_config=networking,
            volumes={
                workdir: {"bind": workdir, "mode": "rw"},
                str(resolv): {"bind": "/etc/resolv.conf", "mode": "ro"},
            },
            sysctls={
                "net.ipv6.conf.all.disable_ipv6": "1",
                "net.ipv6.conf.default.disable_ipv6": "1",
            },
            labels={LABEL: host.role.value, _RUN_LABEL: self.plan.run_id},
            working_dir=workdir,
            # Process ids as the harness sees them, in every container (module docstring).
            pid_mode="host",
        )
        container.start()
        container.reload()
        networks = set(container.attrs["NetworkSettings"]["Networks"])
        if networks != {self.network_name}:
            raise LabError(
                f"container {name} is on {sorted(networks)}, not only {self.network_name}"
            )
        pid = int(container.attrs["State"]["Pid"])
        if pid <= 0:
            raise LabError(f"container {name} did not start: {container.attrs['State']}")
        self._pids[host.name] = pid

    def _nsenter(self, host: LabHost, *args: str) -> None:
        pid = self._pids[host.name]
        argv = ["nsenter", "-t", str(pid), "-n", "ip", *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed: {done.stderr.strip()}")

    def _configure_addresses(self) -> None:
        sink = self.plan.sink
        for address in sink_addresses(self.plan):
            self._nsenter(sink, "addr", "add", f"{address}/32", "dev", "eth0")
        # The lab subnet is on-link already (the containers' attachment).
        ranges = [net for net in sink_networks(self.plan) if net != str(self.subnet)]
        for host in self.plan.clients:
            for net_text in ranges:
                self._nsenter(host, "route", "add", net_text, "dev", "eth0")

    # -- processes ---------------------------------------------------------------------------

    def start(
        self,
        host: LabHost,
        argv: Sequence[str],
        *,
        name: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> LabProcess:
        validate_name(name)
        if not argv:
            raise InvalidParameterError("argv", list(argv), "a program and its arguments")
        container = self._containers.get(host.name)
        if container is None or self._client is None:
            raise LabError(f"host {host.name!r} is not up in docker lab {self.plan.run_id}")
        log = log.resolve()
        if not log.is_relative_to(self.workdir):
            raise InvalidParameterError("log", str(log), f"a path under {self.workdir}")
        log.parent.mkdir(parents=True, exist_ok=True)
        program = interpreter_path() if argv[0] == PYTHON else argv[0]
        environment = {"PYTHONUNBUFFERED": "1", **(env or {})}
        api = self._client.api
        names = self.workdir / "bin"
        names.mkdir(parents=True, exist_ok=True)
        cmd = [interpreter_path(), "-c", _LAUNCHER, str(names), name, str(log), program, *argv[1:]]
        try:
            exec_id = api.exec_create(
                container, cmd, environment=environment, workdir=str(self.workdir)
            )["Id"]
            api.exec_start(exec_id, detach=True)
        except docker_sdk().errors.DockerException as exc:
            raise LabError(f"cannot start {name!r} on {host.name} ({container}): {exc}") from exc
        pid = self._exec_pid(api, exec_id, name)
        return DockerLabProcess(api, exec_id, pid=pid, name=name, host=host)

    @staticmethod
    def _exec_pid(api: Any, exec_id: str, name: str, timeout_s: float = 15.0) -> int:
        """The host pid of the exec'd program, once the launcher has exec'd it (its
        ``/proc/PID/comm`` is ``name``)."""
        want = name.rsplit("/", 1)[-1][:COMM_LEN]
        deadline = time.monotonic() + timeout_s
        pid = 0
        while time.monotonic() < deadline:
            info = api.exec_inspect(exec_id)
            pid = int(info.get("Pid") or 0)
            if pid > 0:
                try:
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    comm = ""
                if comm == want:
                    return pid
            if not info.get("Running") and info.get("ExitCode") is not None:
                # Exited already (a very short program, or the launcher failed).
                return pid
            time.sleep(0.02)
        raise LabError(f"docker exec of {name!r} did not start within {timeout_s:g} s")

    # -- capture -----------------------------------------------------------------------------

    @contextmanager
    def capture(self, path: Path) -> Iterator[Path]:
        cap = TcpdumpCapture(path, interface=self.bridge, log=path.with_suffix(".tcpdump.log"))
        self._captures.append(cap)
        cap.start()
        try:
            yield path
        except BaseException:
            cap.abort()
            raise
        else:
            cap.stop()
        finally:
            self._captures.remove(cap)

    def netns_of(self, host: LabHost) -> str | None:
        pid = self._pids.get(host.name)
        if pid is None:
            raise LabError(f"host {host.name!r} is not up in docker lab {self.plan.run_id}")
        return os.readlink(f"/proc/{pid}/ns/net")

    # -- down --------------------------------------------------------------------------------

    def down(self) -> None:
        """Remove the containers (their processes with them), the iptables rule and the
        network; missing pieces are fine, anything that stays is a :class:`LabError` after
        everything else has been tried."""
        for cap in list(self._captures):
            cap.abort()
        failures: list[str] = []
        client: Any
        try:
            # A fresh client: down() may run from a signal handler that interrupted a call.
            client = _client(timeout_s=60)
        except LabUnavailableError:
            client = None  # no engine: it holds nothing of this lab any more
        if client is not None:
            self._remove(client, "container", self._container_names(client), failures)
        self._disallow_lab_bridge()
        if client is not None:
            self._remove(client, "network", self._network_names(client), failures)
            client.close()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._pids.clear()
        self._containers.clear()
        if failures:
            raise LabError(f"docker lab {self.plan.run_id} left behind: {'; '.join(failures)}")

    def _container_names(self, client: Any) -> list[str]:
        rid = self.plan.run_id
        names = set(self._containers.values())
        names.update(self.container_name(h) for h in (self.plan.sink, *self.plan.clients))
        with contextlib.suppress(docker_sdk().errors.APIError):
            found = client.containers.list(all=True, filters={"label": f"{_RUN_LABEL}={rid}"})
            names.update(c.name for c in found)
        return sorted(names)

    def _network_names(self, client: Any) -> list[str]:
        names = {self.network_name}
        with contextlib.suppress(docker_sdk().errors.APIError):
            found = client.networks.list(filters={"label": f"{_RUN_LABEL}={self.plan.run_id}"})
            names.update(n.name for n in found)
        return sorted(names)

    @staticmethod
    def _remove(client: Any, kind: str, names: list[str], failures: list[str]) -> None:
        errors = docker_sdk().errors
        for name in names:
            try:
                if kind == "container":
                    client.api.remove_container(name, force=True, v=True)
                else:
                    client.api.remove_network(name)
            except errors.NotFound:
                continue
            except errors.APIError as exc:
                failures.append(f"{kind} {name} ({exc.explanation or exc})")

    def _disallow_lab_bridge(self) -> None:
        iptables = shutil.which("iptables")
        if iptables is None:
            return
        rule = self._iptables_rule()
        for _ in range(8):  # every copy of it (a repeated up() would have added several)
            done = subprocess.run(  # noqa: S603 - fixed tool, our own bridge name
                [iptables, "-w", "-D", *rule], capture_output=True, check=False
            )
            if done.returncode != 0:
                break
