"""scenarios.columns and the many-at-a-time World methods: the batch path must record exactly
what the one-event-at-a-time path records (same events, ids, ports, records, truth)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.events import NS_PER_S, AppProtocol, Transport
from harness.fields import Profile
from harness.truth import ActorKind
from scenarios.columns import Store, mul_div, split_flows
from scenarios.world import World, build_environment


def _world(timeout_s: int) -> World:
    env = build_environment(random.Random(1), workstations=3, baseline_days=1)
    return World("t", 1, env, active_timeout_s=timeout_s)


@given(
    st.lists(
        st.tuples(st.integers(0, 2**33), st.integers(0, 2**46), st.integers(1, 2**46)), max_size=30
    )
)
def test_mul_div_is_exact(rows: list[tuple[int, int, int]]) -> None:
    rows = [(a, min(b, c), c) for a, b, c in rows]  # b <= c, as for a share of a span
    a, b, c = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True)) if rows else (
        np.empty(0, np.int64),) * 3  # fmt: skip
    assert mul_div(a, b, c).tolist() == [x * y // z for x, y, z in rows]


_flow = st.tuples(
    st.integers(0, 2),  # workstation
    st.integers(-600, 86_400),  # start, seconds before the window end (negative: after)
    st.integers(1, 7_200),  # duration, seconds
    st.integers(0, 4_000_000_000),  # bytes out
    st.integers(0, 10**9),  # bytes in
    st.booleans(),  # UDP
)


@given(flows=st.lists(_flow, min_size=1, max_size=25), timeout_s=st.sampled_from([1, 60, 600]))
@settings(max_examples=60, deadline=None)
def test_flows_record_what_flow_records(
    flows: list[tuple[int, int, int, int, int, bool]], timeout_s: int
) -> None:
    one, many = _world(timeout_s), _world(timeout_s)
    for w in (one, many):
        w.actor("a", ActorKind.MALICIOUS, "")
    procs = {
        id(w): [w.spawn(w._actors["a"], h, w.env.start_ns, "C:\\a.exe", "a")
                for h in w.env.workstations]
        for w in (one, many)
    }  # fmt: skip
    end = one.env.end_ns
    for udp in (False, True):
        chosen = [f for f in flows if f[5] is udp and end - f[1] * NS_PER_S < end]
        kwargs = {"dst_port": 4444, "transport": Transport.UDP if udp else Transport.TCP,
                  "app": AppProtocol.UNKNOWN}  # fmt: skip
        for ws, before, dur, out, inn, _ in chosen:
            one.flow(one._actors["a"], procs[id(one)][ws], end - before * NS_PER_S,
                     dst_ip="203.0.113.9", bytes_out=out, bytes_in=inn,
                     duration_ns=dur * NS_PER_S, server_name="x.example", **kwargs)  # fmt: skip
        many.flows(
            many._actors["a"], [procs[id(many)][f[0]].index for f in chosen],
            [end - f[1] * NS_PER_S for f in chosen], dst_ip="203.0.113.9",
            bytes_out=[f[3] for f in chosen], bytes_in=[f[4] for f in chosen],
            duration_ns=[f[2] * NS_PER_S for f in chosen], server_name="x.example", **kwargs,
        )  # fmt: skip
    assert one.recorded_events == many.recorded_events
    assert one.flow_totals == many.flow_totals
    for profile in (Profile.EDR, Profile.NETWORK_ONLY):
        a, b = one.finish(profile), many.finish(profile)
        assert list(a.telemetry.events) == list(b.telemetry.events)
        assert a.truth.actors == b.truth.actors
        assert dict(a.truth.event_actor) == dict(b.truth.event_actor)


@given(
    queries=st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, 86_399), st.text("abc.", min_size=1)),
        min_size=1,
        max_size=20,
    ),
    via_api=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_dns_many_records_what_dns_records(
    queries: list[tuple[int, int, str]], via_api: bool
) -> None:
    one, many = _world(60), _world(60)
    for w in (one, many):
        actor = w.actor("a", ActorKind.MALICIOUS, "")
        procs = [w.spawn(actor, h, w.env.start_ns, "C:\\a.exe", "a") for h in w.env.workstations]
        ts = [w.env.start_ns + q[1] * NS_PER_S for q in queries]
        names = [f"{q[2]}.t.example" for q in queries]
        if w is one:
            for q, t, name in zip(queries, ts, names, strict=True):
                w.dns(actor, procs[q[0]], t, name, qtype="TXT", answers=("ok",), via_api=via_api)
        else:
            w.dns_many(actor, [procs[q[0]].index for q in queries], ts, names, qtype="TXT",
                       answers=("ok",), via_api=via_api)  # fmt: skip
    assert one.recorded_events == many.recorded_events


def test_spawn_many_records_what_spawn_records() -> None:
    one, many = _world(60), _world(60)
    hosts = one.env.workstations
    for w in (one, many):
        actor = w.actor("a", ActorKind.BENIGN, "")
        ts = [w.env.start_ns + i * NS_PER_S for i in range(len(hosts))]
        if w is one:
            for h, t in zip(hosts, ts, strict=True):
                w.spawn(actor, h, t, "C:\\b\\a.exe", "a -x", signer="S")
        else:
            w.spawn_many(actor, [w.host_index(h) for h in hosts], ts, "C:\\b\\a.exe", "a -x",
                         signer="S")  # fmt: skip
    assert one.recorded_events == many.recorded_events
    assert one.recorded_events[0].process_guid.startswith("{00000001-")


def test_split_flows_keeps_totals_and_cuts_at_the_window_end() -> None:
    ts = np.array([0, 100, 500], dtype=np.int64)
    rec = split_flows(
        ts, np.array([10, 250, 1_000]), np.array([7, 1_000, 999]), np.array([0, 5, 3]),
        udp=False, last_ns=1_000, timeout_ns=100,
    )  # fmt: skip
    assert rec.count.tolist() == [1, 3, 5]
    assert rec.end.tolist() == [10, 350, 1_000]  # the last flow is cut at the window's end
    assert rec.totals[0].tolist() == [7, 1_000, 999 * 500 // 1_000]
    for f in range(3):
        mine = rec.flow == f
        assert rec.bytes_out[mine].sum() == rec.totals[0][f]
        assert rec.final[mine].tolist() == [False] * (mine.sum() - 1) + [True]


def test_store_rejects_a_block_with_missing_or_extra_columns() -> None:
    store = Store(("n", "ts"))
    with pytest.raises(ValueError, match="differ"):
        store.block(1, n=1)
    store.block(2, n=[1, 2], ts=5)
    ((m, cols),) = store.parts()
    assert m == 2
    assert cols["n"].tolist() == [1, 2]
    assert cols["ts"] == 5
