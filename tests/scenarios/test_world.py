from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.events import NS_PER_S, DnsQuery, NetworkFlow, ProcessStart
from harness.fields import Profile
from harness.truth import ActorKind
from scenarios.https_exfil import HttpsExfil
from scenarios.world import World, build_environment
from tests.conftest import SMALL


def _world(seed: int = 0, timeout_s: int = 60) -> World:
    env = build_environment(random.Random(seed), workstations=3, baseline_days=1)
    return World("t", seed, env, active_timeout_s=timeout_s)


@given(
    bytes_out=st.integers(0, 10**9),
    bytes_in=st.integers(0, 10**9),
    duration_s=st.integers(1, 3_600),
    timeout_s=st.integers(1, 600),
)
@settings(max_examples=60)
def test_flow_records_add_up_to_the_flow(
    bytes_out: int, bytes_in: int, duration_s: int, timeout_s: int
) -> None:
    world = _world(timeout_s=timeout_s)
    actor = world.actor("a", ActorKind.BENIGN, "")
    host = world.env.workstations[0]
    proc = world.spawn(actor, host, world.env.baseline_until_ns, "C:\\x.exe", "x")
    world.flow(
        actor,
        proc,
        world.env.baseline_until_ns + NS_PER_S,
        dst_ip="198.51.100.7",
        dst_port=443,
        bytes_out=bytes_out,
        bytes_in=bytes_in,
        duration_ns=duration_s * NS_PER_S,
    )
    run = world.finish(Profile.EDR)
    records = [e for e in run.telemetry.events if isinstance(e, NetworkFlow)]
    assert sum(r.bytes_out for r in records) == bytes_out
    assert sum(r.bytes_in for r in records) == bytes_in
    assert [r.is_final for r in records].count(True) == 1
    assert records[-1].is_final
    assert len(records) == -(-duration_s // timeout_s)
    assert all(r.bytes_out >= 0 and r.packets_out >= 0 for r in records)
    assert run.truth.actor("a").bytes_total == bytes_out


def test_truth_bytes_equal_the_bytes_of_the_actors_flows() -> None:
    s = HttpsExfil()
    run = s.generate(s.params(SMALL), 3)
    per_actor: dict[str, int] = defaultdict(int)
    for e in run.telemetry.events:
        if isinstance(e, NetworkFlow):
            per_actor[run.truth.event_actor[e.event_id]] += e.bytes_out
    for actor in run.truth.actors:
        assert actor.bytes_total == per_actor.get(actor.actor_id, 0), actor.actor_id
    malicious = {a.actor_id for a in run.truth.malicious}
    assert malicious == {"unseen-uploader", "disguised-browser"}
    for a in run.truth.malicious:
        assert a.bytes_total >= s.params(SMALL).total_bytes
        assert a.start_ns is not None
        assert a.start_ns >= run.telemetry.baseline_until_ns


def test_api_dns_goes_through_the_dns_client_service_raw_dns_does_not() -> None:
    world = _world()
    actor = world.actor("a", ActorKind.MALICIOUS, "", expected=())
    host = world.env.workstations[0]
    proc = world.spawn(actor, host, world.env.baseline_until_ns, "C:\\t.exe", "t")
    t = world.env.baseline_until_ns + NS_PER_S
    world.dns(actor, proc, t, "a.example")
    world.dns(actor, proc, t + NS_PER_S, "b.example", via_api=False)
    full = world.finish(Profile.EDR).telemetry.events
    dns = [e for e in full if isinstance(e, DnsQuery)]
    assert [d.query for d in dns] == ["a.example"]  # an EDR sees only the API query
    assert dns[0].process_guid == proc.guid
    flows = [e for e in full if isinstance(e, NetworkFlow) and e.dst_port == 53]
    assert flows[0].process_guid != proc.guid  # sent by svchost (Dnscache)
    assert flows[1].process_guid == proc.guid  # the tool's own socket


def test_network_only_profile_strips_process_identity() -> None:
    s = HttpsExfil()
    run = s.generate(s.params(SMALL), 0, Profile.NETWORK_ONLY)
    kinds = {type(e) for e in run.telemetry.events}
    assert ProcessStart not in kinds
    assert all(getattr(e, "process_guid", None) is None for e in run.telemetry.events)
    assert any(isinstance(e, DnsQuery) for e in run.telemetry.events)


def test_documentation_addresses_only() -> None:
    s = HttpsExfil()
    run = s.generate(s.params(SMALL), 1)
    prefixes = ("192.0.2.", "198.51.100.", "203.0.113.")
    for e in run.telemetry.events:
        if isinstance(e, NetworkFlow):
            assert e.src_ip.startswith(prefixes)
            assert e.dst_ip.startswith(prefixes)
