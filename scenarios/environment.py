"""The synthetic organisation: hosts, their address plan and the time span of a recording.

Everything here is seeded and made only from the documentation address ranges and ``.example``
names. :class:`~scenarios.world.World` records what actors do in an :class:`Environment`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.events import NS_PER_S

__all__ = [
    "DOMAIN",
    "EPOCH_NS",
    "MAX_SERVERS",
    "MAX_WORKSTATIONS",
    "NS_PER_DAY",
    "Environment",
    "Host",
    "build_environment",
]

NS_PER_DAY = 86_400 * NS_PER_S
#: 2026-11-02 00:00:00 UTC, a Monday: synthetic time starts here.
EPOCH_NS = 1_793_577_600 * NS_PER_S
#: Address plan limits: workstations on 192.0.2.100-249 (.250 is the printer), servers on
#: 192.0.2.20-99.
MAX_WORKSTATIONS = 150
MAX_SERVERS = 80

#: The organisation's DNS domain: every host is ``<name>.corp.example``.
DOMAIN = "corp.example"


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A machine: ``role`` is resolver, server or workstation; ``services`` says what a server
    provides (``dns``, ``directory``, ``file``, ``backup``, ``proxy``, ``app``)."""

    name: str
    ip: str
    role: str
    user: str
    services: tuple[str, ...] = ()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Hosts, the shared services and the time plan of one synthetic organisation.

    Address plan (documentation ranges only): the organisation is 192.0.2.0/24 (resolver and
    domain controller .10, servers from .20, workstations from .100, printer .250); outside
    services are spread over 198.51.100.0/24 and 203.0.113.0/24 by a hash of their name."""

    hosts: tuple[Host, ...]
    resolver_ip: str
    start_ns: int
    baseline_until_ns: int
    end_ns: int

    def with_service(self, service: str) -> tuple[Host, ...]:
        """Hosts that provide ``service`` (e.g. ``proxy``, ``file``)."""
        return tuple(h for h in self.hosts if service in h.services)

    @property
    def workstations(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.role == "workstation")

    def days(self, *, detection: bool | None = None) -> range:
        """Day indices (0-based from ``start_ns``): all, only baseline or only detection days."""
        first = 0
        split = (self.baseline_until_ns - self.start_ns) // NS_PER_DAY
        last = (self.end_ns - self.start_ns) // NS_PER_DAY
        if detection is None:
            return range(first, last)
        return range(split, last) if detection else range(first, split)


def build_environment(
    rng: random.Random,
    *,
    workstations: int = 20,
    servers: int = 2,
    baseline_days: int = 3,
    detection_days: int = 1,
) -> Environment:
    """An organisation on 192.0.2.0/24 with a resolver, servers and named workstations.

    The first server is the file and backup server; the second, if there is one, the web
    proxy; any further ones are application servers."""
    first_names = (
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "ivan",
        "judy",
        "mallory",
        "niaj",
        "olivia",
        "peggy",
        "rupert",
        "sybil",
        "trent",
        "victor",
        "walter",
        "yolanda",
    )
    hosts: list[Host] = [
        Host(
            name="dc01",
            ip="192.0.2.10",
            role="resolver",
            user="SYSTEM",
            services=("dns", "directory"),
        )
    ]
    for i in range(servers):
        services = (("file", "backup"), ("proxy",))[i] if i < 2 else ("app",)
        hosts.append(
            Host(
                name=f"srv{i + 1:02d}",
                ip=f"192.0.2.{20 + i}",
                role="server",
                user="SYSTEM",
                services=services,
            )
        )
    for i in range(workstations):
        user = f"{first_names[i % len(first_names)]}{i // len(first_names) or ''}"
        hosts.append(
            Host(name=f"ws{i + 1:03d}", ip=f"192.0.2.{100 + i}", role="workstation", user=user)
        )
    rng.shuffle(hosts[1 + servers :])  # which user sits where does not matter, but is seeded
    start = EPOCH_NS
    return Environment(
        hosts=tuple(hosts),
        resolver_ip="192.0.2.10",
        start_ns=start,
        baseline_until_ns=start + baseline_days * NS_PER_DAY,
        end_ns=start + (baseline_days + detection_days) * NS_PER_DAY,
    )
