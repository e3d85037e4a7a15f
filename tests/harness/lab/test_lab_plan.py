"""The default lab plan: documentation-range (or loopback) addresses only, validated run ids."""

from __future__ import annotations

import ipaddress

import pytest

from harness.errors import InvalidParameterError
from harness.lab.backend import HostRole, Service
from harness.lab.plan import default_plan, sink_addresses

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def _addresses(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        *(c.address for c in plan.clients),
        plan.sink.address,
        plan.resolver,
        *(e.address for e in plan.endpoints),
    ]


def test_isolated_plan_uses_documentation_ranges_only() -> None:
    plan = default_plan("ab12", clients=3)
    for address in _addresses(plan):
        assert any(ipaddress.ip_address(address) in net for net in DOC_NETS), address
    assert [c.address for c in plan.clients] == ["192.0.2.101", "192.0.2.102", "192.0.2.103"]
    assert [c.name for c in plan.clients] == ["client-1", "client-2", "client-3"]
    assert all(c.role is HostRole.CLIENT for c in plan.clients)
    assert plan.sink.role is HostRole.SINK
    assert plan.sink.address == "203.0.113.1"
    # Clients are the organisation; every sink address is outside it.
    internal = [ipaddress.ip_network(n) for n in plan.internal_networks]
    assert plan.internal_networks == ("192.0.2.0/24",)
    assert all(any(ipaddress.ip_address(c.address) in n for n in internal) for c in plan.clients)
    for address in sink_addresses(plan):
        assert not any(ipaddress.ip_address(address) in n for n in internal), address


def test_services_and_resolver() -> None:
    plan = default_plan("x")
    assert {e.service for e in plan.endpoints} == set(Service)
    assert plan.endpoint(Service.DNS).ports == (53,)
    assert plan.endpoint(Service.HTTPS).address == "203.0.113.10"
    assert plan.endpoint(Service.HTTP).ports == (80, 8080)
    assert plan.endpoint(Service.TCP).ports == (4444, 8443, 9001)
    assert plan.endpoint(Service.UDP).ports == (9999, 5000)
    assert plan.resolver == plan.endpoint(Service.DNS).address
    assert plan.zone == "lab.example"
    assert len(set(sink_addresses(plan))) == len(sink_addresses(plan)) == 6


def test_loopback_plan_maps_onto_127_keeping_the_shape() -> None:
    iso, lo = default_plan("r1"), default_plan("r1", loopback=True)
    for address in _addresses(lo):
        assert ipaddress.ip_address(address).is_loopback, address
    assert [c.address for c in lo.clients] == ["127.0.2.101", "127.0.2.102"]
    assert lo.sink.address == "127.0.113.1"
    assert lo.internal_networks == ("127.0.2.0/24",)
    for a, b in zip(iso.endpoints, lo.endpoints, strict=True):
        assert a.service is b.service
        assert a.ports == b.ports
        assert a.address.split(".")[-1] == b.address.split(".")[-1]
    assert lo.endpoint(Service.TCP).address == "127.0.100.20"
    assert lo.resolver == "127.0.113.53"


@pytest.mark.parametrize("bad", ["", "AB", "a-b", "abcdefghi", "é1", 7])
def test_bad_run_ids_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="run id"):
        default_plan(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, 100, -1, True])
def test_bad_client_counts_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="client count"):
        default_plan("ok", clients=bad)  # type: ignore[arg-type]
