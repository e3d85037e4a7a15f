"""Scenario invariants over Hypothesis-drawn knobs (scenarios.strategies), one scenario per test
id. Each example generates a small office; ``max_examples`` is kept low so the module runs in
well under a minute."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import InvalidParameterError
from harness.events import DnsQuery, NetworkFlow
from harness.fields import Profile
from harness.scenario import Scenario
from harness.truth import ActorKind
from scenarios.attacks import DnsTunnels
from scenarios.encodings import decode_name, reassemble
from scenarios.office import AttackScenario, OfficeBaseline
from scenarios.strategies import SCENARIO_CLASSES, SMALL_OFFICE, params, seeds
from scenarios.world import World

_SETTINGS = settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_IDS = [c.id for c in SCENARIO_CLASSES]


def _build(scenario: Scenario, p: Any, seed: int) -> World:
    assert isinstance(scenario, AttackScenario | OfficeBaseline)
    return scenario.build(p, seed)


def _check_flows(world: World, events: Sequence[Any]) -> None:
    timeout = world.active_timeout_ns
    by_flow: dict[str, list[NetworkFlow]] = defaultdict(list)
    for e in events:
        if isinstance(e, NetworkFlow):
            by_flow[e.flow_id].append(e)
    totals = world.flow_totals
    assert set(by_flow) == set(totals)
    for flow_id, records in by_flow.items():
        first = records[0]
        out, into, p_out, p_in = totals[flow_id]
        assert sum(r.bytes_out for r in records) == out, flow_id
        assert sum(r.bytes_in for r in records) == into, flow_id
        assert sum(r.packets_out for r in records) == p_out, flow_id
        assert sum(r.packets_in for r in records) == p_in, flow_id
        assert [r.is_final for r in records] == [False] * (len(records) - 1) + [True]
        assert records[-1].ts_ns == first.end_ns
        for k, r in enumerate(records[:-1], start=1):
            assert r.ts_ns == first.start_ns + k * timeout
        for r in records:
            assert (r.start_ns, r.end_ns, r.src_port, r.dst_ip) == (
                first.start_ns,
                first.end_ns,
                first.src_port,
                first.dst_ip,
            )
            assert min(r.bytes_out, r.bytes_in, r.packets_out, r.packets_in) >= 0


def _check_truth(run: Any) -> None:
    per_actor: dict[str, int] = defaultdict(int)
    for e in run.telemetry.events:
        if isinstance(e, NetworkFlow):
            per_actor[run.truth.event_actor[e.event_id]] += e.bytes_out
    for actor in run.truth.actors:
        assert actor.bytes_total == per_actor.get(actor.actor_id, 0), actor.actor_id
        times = [t for t, _ in actor.bytes_timeline]
        sent = [b for _, b in actor.bytes_timeline]
        assert times == sorted(set(times)), actor.actor_id
        assert all(a < b for a, b in itertools.pairwise(sent)), actor.actor_id
        if actor.kind is ActorKind.MALICIOUS:
            assert actor.techniques, actor.actor_id
            assert actor.expected_analytics, actor.actor_id


def _check_tunnels(world: World) -> None:
    run = world.finish(Profile.NETWORK_ONLY)  # keeps raw-socket queries, which EDR cannot see
    names: dict[str, list[str]] = defaultdict(list)
    for e in run.telemetry.events:
        if isinstance(e, DnsQuery):
            names[run.truth.event_actor[e.event_id]].append(e.query)
    for payload in world.tunnel_payloads:
        data_names, other = [], 0
        for name in names[payload.actor_id]:
            try:
                decode_name(name, encoding=payload.encoding, domain=payload.domain)
            except InvalidParameterError:  # not a data query: a keep-alive ping
                other += 1
            else:
                data_names.append(name)
        decoded = reassemble(data_names, encoding=payload.encoding, domain=payload.domain)
        assert decoded == payload.data, payload.actor_id
        assert other == payload.pings, payload.actor_id


@pytest.mark.parametrize("cls", SCENARIO_CLASSES, ids=_IDS)
def test_invariants_over_drawn_knobs(cls: type[Scenario]) -> None:
    scenario = cls()

    @_SETTINGS
    @given(p=params(cls), seed=seeds())
    def check(p: Any, seed: int) -> None:
        world = _build(scenario, p, seed)
        env = world.env
        recorded = world.recorded_events
        # Actors never record anything outside the window, so the window cut drops nothing.
        assert all(env.start_ns <= e.ts_ns < env.end_ns for e in recorded)
        assert all(
            e.end_ns < env.end_ns and e.start_ns >= env.start_ns
            for e in recorded
            if isinstance(e, NetworkFlow)
        )
        run = world.finish(Profile.EDR)
        events = list(run.telemetry.events)
        keys = [(e.ts_ns, e.event_id) for e in events]
        assert keys == sorted(keys)
        _check_flows(world, recorded)
        _check_truth(run)
        _check_tunnels(world)
        if cls is not OfficeBaseline:
            assert run.truth.malicious

    check()


@pytest.mark.parametrize("cls", SCENARIO_CLASSES, ids=_IDS)
def test_determinism_over_drawn_knobs(cls: type[Scenario]) -> None:
    scenario = cls()

    @settings(_SETTINGS, max_examples=1)
    @given(p=params(cls), seed=st.integers(0, 2**31))
    def check(p: Any, seed: int) -> None:
        one = scenario.generate(p, seed)
        two = scenario.generate(p, seed)
        assert repr(one.telemetry.events) == repr(two.telemetry.events)
        assert repr(one.truth) == repr(two.truth)
        assert one.truth.event_actor == two.truth.event_actor
        other = scenario.generate(p, seed + 1)
        assert repr(other.telemetry.events) != repr(one.telemetry.events)

    check()


def test_iodine_pings_are_counted_apart_from_the_payload() -> None:
    scenario = DnsTunnels()
    p = scenario.params({**SMALL_OFFICE, "total_bytes": 2_000, "queries_per_s": 0.5})
    world = scenario.build(p, 7)
    iodine = next(t for t in world.tunnel_payloads if t.actor_id == "iodine-tunnel")
    assert iodine.pings > 0
    assert len(iodine.data) == 2_000
    _check_tunnels(world)
