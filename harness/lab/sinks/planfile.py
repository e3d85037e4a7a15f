"""The lab plan on disk: the ``--plan`` file the orchestrator writes and the sink process
reads.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from harness.errors import InputError
from harness.lab.backend import HostRole, LabHost, LabPlan, Service, ServiceEndpoint

__all__ = ["plan_from_dict", "plan_to_dict"]


def plan_to_dict(plan: LabPlan) -> dict[str, Any]:
    """A JSON-ready form of ``plan`` (the ``--plan`` file; the inverse of
    :func:`plan_from_dict`)."""

    def host(h: LabHost) -> dict[str, Any]:
        return {"name": h.name, "role": h.role.value, "address": h.address}

    return {
        "run_id": plan.run_id,
        "clients": [host(c) for c in plan.clients],
        "sink": host(plan.sink),
        "endpoints": [
            {"service": e.service.value, "address": e.address, "ports": list(e.ports)}
            for e in plan.endpoints
        ],
        "zone": plan.zone,
        "resolver": plan.resolver,
        "internal_networks": list(plan.internal_networks),
    }


def plan_from_dict(doc: Mapping[str, Any]) -> LabPlan:
    """The plan :func:`plan_to_dict` wrote; a malformed document is an :class:`InputError`."""

    def host(h: Mapping[str, Any]) -> LabHost:
        return LabHost(name=str(h["name"]), role=HostRole(h["role"]), address=str(h["address"]))

    try:
        return LabPlan(
            run_id=str(doc["run_id"]),
            clients=tuple(host(c) for c in doc["clients"]),
            sink=host(doc["sink"]),
            endpoints=tuple(
                ServiceEndpoint(
                    service=Service(e["service"]),
                    address=str(ipaddress.ip_address(e["address"])),
                    ports=tuple(int(p) for p in e["ports"]),
                )
                for e in doc["endpoints"]
            ),
            zone=str(doc["zone"]).strip(".").lower(),
            resolver=str(doc["resolver"]),
            internal_networks=tuple(str(n) for n in doc["internal_networks"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"lab plan document is malformed: {exc!r}") from exc
