"""The lab backend contract: an isolated network with client hosts and a sink host, processes
started inside it, a capture of what crosses it, and a teardown that leaves nothing behind.

Three backends implement :class:`LabBackend`:

* ``netns`` (:mod:`harness.lab.netns`): Linux network namespaces joined by veth pairs; needs root.
* ``docker`` (:mod:`harness.lab.docker`): containers on a network the backend creates
  ``--internal`` with a documentation-range subnet, from images it builds locally.
* ``loopback`` (:mod:`harness.lab.loopback`): no isolation, unprivileged: everything on
  127.0.0.0/8.

The orchestrator (:mod:`harness.lab.emulate`) only talks to this interface::

    with backend:                        # up() ... down(), also on error and SIGINT
        sink = backend.start(plan.sink, argv_of_sinks, name="sinks", log=...)
        with backend.capture(pcap_path):
            proc = backend.start(plan.clients[0], actor_argv, name="rundll32.exe", log=...)
            proc.wait(timeout)

Addresses come from the documentation ranges only: clients in 192.0.2.0/24 (the "organisation"),
sink services in 198.51.100.0/24 and 203.0.113.0/24 (the "internet"); loopback maps the same
plan onto 127.0.0.0/8. Traffic never leaves the lab: sinks bind to lab addresses only.
"""

from __future__ import annotations

import abc
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType, TracebackType
from typing import ClassVar

__all__ = [
    "HostRole",
    "LabBackend",
    "LabHost",
    "LabPlan",
    "LabProcess",
    "Service",
    "ServiceEndpoint",
]


class HostRole(StrEnum):
    #: An organisation host where actors run (a workstation).
    CLIENT = "client"
    #: The "internet" side where the sinks listen.
    SINK = "sink"


class Service(StrEnum):
    """The sink services the lab offers (see :mod:`harness.lab.sinks`)."""

    #: Authoritative DNS for the lab zone (UDP and TCP 53): logs and answers tunnel queries.
    DNS = "dns"
    #: HTTPS upload sink (TLS on 443, certificate made at run time).
    HTTPS = "https"
    #: Plain HTTP (port 80) and HTTP on odd ports.
    HTTP = "http"
    #: Raw TCP sink on custom ports (accepts, reads, counts, answers a little).
    TCP = "tcp"
    #: Raw UDP sink on custom ports.
    UDP = "udp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceEndpoint:
    """Where one sink service listens."""

    service: Service
    address: str
    ports: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LabHost:
    """One host of the lab: a namespace, a container, or (loopback) a 127/8 address."""

    name: str
    role: HostRole
    #: The host's own address (clients: their source address).
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LabPlan:
    """The addresses of one lab: who is where, and which services answer on which ports."""

    run_id: str
    clients: tuple[LabHost, ...]
    sink: LabHost
    #: Every address the sink host answers on (its own and each service's).
    endpoints: tuple[ServiceEndpoint, ...]
    #: DNS zone the lab's authoritative server answers for, e.g. ``lab.example``.
    zone: str
    #: Address of the resolver the clients use (the sink's DNS service in the lab).
    resolver: str
    #: Networks the pcap reader treats as the organisation (clients' side).
    internal_networks: tuple[str, ...]

    def endpoint(self, service: Service) -> ServiceEndpoint:
        for e in self.endpoints:
            if e.service is service:
                return e
        raise KeyError(service)


class LabProcess(abc.ABC):
    """A process the lab started on one of its hosts."""

    #: Process id as the harness's own /proc sees it (for attribution).
    pid: int
    name: str
    host: LabHost

    @abc.abstractmethod
    def poll(self) -> int | None:
        """Exit status, or None while running."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; raises ``subprocess.TimeoutExpired`` on timeout."""

    @abc.abstractmethod
    def stop(self, grace_s: float = 3.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; the exit status (None if unknown)."""


class LabBackend(abc.ABC):
    """An isolated lab network. Use as a context manager: ``up()`` on entry, ``down()`` on exit,
    and SIGINT/SIGTERM during the ``with`` block run ``down()`` before the interrupt propagates.

    ``down()`` must be idempotent and must remove everything ``up()`` and ``start()`` made,
    also after a partial ``up()``: processes, namespaces, veth pairs, containers, networks.
    """

    #: Backend id: ``netns``, ``docker`` or ``loopback``.
    name: ClassVar[str]

    def __init__(self, plan: LabPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir

    @classmethod
    @abc.abstractmethod
    def available(cls) -> str | None:
        """None when the backend can run here, else the reason it cannot (one line)."""

    @abc.abstractmethod
    def up(self) -> None:
        """Create the lab; raise :class:`~harness.errors.LabUnavailableError` if it cannot."""

    @abc.abstractmethod
    def down(self) -> None:
        """Tear everything down (idempotent, best effort, never raises for missing pieces)."""

    @abc.abstractmethod
    def start(
        self,
        host: LabHost,
        argv: Sequence[str],
        *,
        name: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> LabProcess:
        """Run ``argv`` on ``host`` with the executable name ``name`` (what ``/proc/PID/comm``
        and the process image show), output to ``log``. ``argv[0]`` is the program to run: the
        string ``"python"`` stands for the harness's Python interpreter (with the harness
        importable), run under the name ``name``."""

    @abc.abstractmethod
    @contextmanager
    def capture(self, path: Path) -> Iterator[Path]:
        """Capture every packet crossing the lab network to the pcap ``path`` while the block
        runs (capture started and ready before the block's body runs, flushed after)."""

    @abc.abstractmethod
    def netns_of(self, host: LabHost) -> str | None:
        """The network namespace identity of ``host`` (``readlink /proc/PID/ns/net`` form,
        ``net:[INODE]``) for attribution, or None when it shares the harness's own namespace."""

    # -- context manager with interrupt safety ---------------------------------------------

    def __enter__(self) -> LabBackend:
        # Signal handlers can only be set from the main thread; elsewhere the caller owns them.
        in_main = threading.current_thread() is threading.main_thread()
        sigs = (signal.SIGINT, signal.SIGTERM) if in_main else ()
        self._previous = {sig: signal.getsignal(sig) for sig in sigs}

        def interrupted(signum: int, frame: FrameType | None) -> None:
            self.down()
            raise KeyboardInterrupt(f"lab interrupted by signal {signum}")

        for sig in self._previous:
            signal.signal(sig, interrupted)
        try:
            self.up()
        except BaseException:
            self.down()
            self._restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.down()
        finally:
            self._restore()

    def _restore(self) -> None:
        for sig, handler in getattr(self, "_previous", {}).items():
            signal.signal(sig, handler)
