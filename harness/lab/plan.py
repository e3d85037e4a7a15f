"""The default lab plan: which addresses the clients, the sink host and each sink service use.

Two shapes of the same plan:

* the isolated plan (``netns``, ``docker``): clients ``client-1..n`` at ``192.0.2.101``,
  ``192.0.2.102``, ... (the "organisation", ``192.0.2.0/24``); the sink host at ``203.0.113.1``
  with its services on ``203.0.113.0/24`` and ``198.51.100.0/24`` (the "internet");
* the loopback plan: the same layout mapped onto ``127.0.0.0/8`` (``192.0.2.x`` ->
  ``127.0.2.x``, ``198.51.100.x`` -> ``127.0.100.x``, ``203.0.113.x`` -> ``127.0.113.x``), so
  nothing needs privileges and nothing can leave the machine.

Service layout (isolated plan):

=========  ================  ====================
service    address           ports
=========  ================  ====================
DNS        203.0.113.53      53 (UDP and TCP)
HTTPS      203.0.113.10      443
HTTP       198.51.100.80     80, 8080
TCP        198.51.100.20     4444, 8443, 9001
UDP        198.51.100.21     9999, 5000
=========  ================  ====================

The clients' resolver is the lab's DNS service; the lab zone is ``lab.example``. The loopback plan
keeps the well-known ports: binding 53, 80 and 443 on 127/8 needs root or CAP_NET_BIND_SERVICE
(or ``net.ipv4.ip_unprivileged_port_start`` lowered), which the sinks must check.
"""

from __future__ import annotations

import ipaddress
import re

from harness.errors import InvalidParameterError
from harness.lab.backend import HostRole, LabHost, LabPlan, Service, ServiceEndpoint

__all__ = [
    "MAX_CLIENTS",
    "RUN_ID_RE",
    "ZONE",
    "default_plan",
    "plan_addresses",
    "sink_addresses",
    "sink_networks",
    "validate_run_id",
]

#: Run ids are short so that derived interface names (``eh-<id>-c12``) fit the kernel's 15
#: characters.
RUN_ID_RE = re.compile(r"[a-z0-9]{1,8}")
#: Client addresses are ``.101`` upwards in one /24.
MAX_CLIENTS = 99
ZONE = "lab.example"

_CLIENT_BASE = 101
_SINK_HOST = "203.0.113.1"
_ENDPOINTS: tuple[tuple[Service, str, tuple[int, ...]], ...] = (
    (Service.DNS, "203.0.113.53", (53,)),
    (Service.HTTPS, "203.0.113.10", (443,)),
    (Service.HTTP, "198.51.100.80", (80, 8080)),
    (Service.TCP, "198.51.100.20", (4444, 8443, 9001)),
    (Service.UDP, "198.51.100.21", (9999, 5000)),
)
# Documentation prefix -> loopback prefix (first three octets).
_LOOPBACK_MAP = {
    "192.0.2.": "127.0.2.",
    "198.51.100.": "127.0.100.",
    "203.0.113.": "127.0.113.",
}


def validate_run_id(run_id: str) -> str:
    """``run_id`` if it is 1 to 8 characters of ``[a-z0-9]``, else
    :class:`InvalidParameterError`."""
    if not isinstance(run_id, str) or RUN_ID_RE.fullmatch(run_id) is None:
        raise InvalidParameterError("run id", run_id, "1 to 8 characters of [a-z0-9]")
    return run_id


def _map(address: str, loopback: bool) -> str:
    if not loopback:
        return address
    for prefix, target in _LOOPBACK_MAP.items():
        if address.startswith(prefix):
            return target + address[len(prefix) :]
    raise AssertionError(f"address {address!r} is outside the documentation ranges")


def default_plan(run_id: str, clients: int = 2, *, loopback: bool = False) -> LabPlan:
    """The lab plan for run ``run_id`` with ``clients`` client hosts (1 to :data:`MAX_CLIENTS`);
    ``loopback=True`` maps it onto ``127.0.0.0/8``."""
    validate_run_id(run_id)
    if isinstance(clients, bool) or not isinstance(clients, int) or not 1 <= clients <= MAX_CLIENTS:
        raise InvalidParameterError("client count", clients, f"an integer 1..{MAX_CLIENTS}")
    hosts = tuple(
        LabHost(
            name=f"client-{i}",
            role=HostRole.CLIENT,
            address=_map(f"192.0.2.{_CLIENT_BASE + i - 1}", loopback),
        )
        for i in range(1, clients + 1)
    )
    endpoints = tuple(
        ServiceEndpoint(service=service, address=_map(address, loopback), ports=ports)
        for service, address, ports in _ENDPOINTS
    )
    return LabPlan(
        run_id=run_id,
        clients=hosts,
        sink=LabHost(name="sink", role=HostRole.SINK, address=_map(_SINK_HOST, loopback)),
        endpoints=endpoints,
        zone=ZONE,
        resolver=_map("203.0.113.53", loopback),
        internal_networks=("127.0.2.0/24",) if loopback else ("192.0.2.0/24",),
    )


def sink_addresses(plan: LabPlan) -> tuple[str, ...]:
    """Every address the sink host answers on: its own, then each service's (no duplicates,
    plan order)."""
    seen = dict.fromkeys([plan.sink.address, *(e.address for e in plan.endpoints)])
    return tuple(seen)


def sink_networks(plan: LabPlan) -> tuple[str, ...]:
    """The /24 of each of :func:`sink_addresses` (no duplicates, plan order): what a client
    routes on-link to reach the sinks."""
    nets = (str(ipaddress.ip_network(f"{a}/24", strict=False)) for a in sink_addresses(plan))
    return tuple(dict.fromkeys(nets))


def plan_addresses(plan: LabPlan) -> tuple[str, ...]:
    """Every address of the plan: the clients', then the sink's and its services'."""
    return tuple(dict.fromkeys([*(c.address for c in plan.clients), *sink_addresses(plan)]))
