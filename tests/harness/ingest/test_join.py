"""The endpoint-network join: 5-tuple and time matching, port reuse, buffering and order, DNS
merging; the ``sysmon+zeek`` rendering of a synthetic scenario joined back against its ``edr``
rendering; the runner and the CLI on the joined telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cli import cli
from harness.errors import InvalidParameterError
from harness.events import (
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    FileAccess,
    NetworkConnection,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
    Transport,
)
from harness.fields import PROFILE_FIELDS, Field, Profile
from harness.ingest.join import join
from harness.ingest.zeek import read_zeek
from harness.registry import DETECTORS
from harness.runner import DetectorSpec, Outcome, run_detectors
from harness.scenario import ScenarioRun
from harness.telemetry import origin_event_id, project, sort_events
from scenarios.attacks import QuietProcessExfil
from tests.conftest import SMALL
from tests.harness.ingest.test_zeek import T0, conn_row, tsv

S = 1_000_000_000
BASE = 1_793_577_600 * S


def flow(
    eid: str, start_s: float, *, sport: int = 49_152, dur_s: float = 1.0, **kw: Any
) -> NetworkFlow:
    start = BASE + int(start_s * S)
    values: dict[str, Any] = {
        "event_id": eid,
        "ts_ns": start + int(dur_s * S),
        "flow_id": f"f-{eid}",
        "host": "192.0.2.100",
        "process_guid": None,
        "transport": Transport.TCP,
        "src_ip": "192.0.2.100",
        "src_port": sport,
        "dst_ip": "198.51.100.7",
        "dst_port": 443,
        "direction": Direction.OUTBOUND,
        "app_protocol": AppProtocol.TLS,
        "start_ns": start,
        "end_ns": start + int(dur_s * S),
        "bytes_out": 100,
        "bytes_in": 200,
        "packets_out": 3,
        "packets_in": 4,
    }
    values.update(kw)
    return NetworkFlow(**values)


def conn(eid: str, ts_s: float, guid: str, *, sport: int = 49_152, **kw: Any) -> NetworkConnection:
    values: dict[str, Any] = {
        "event_id": eid,
        "ts_ns": BASE + int(ts_s * S),
        "host": "ws001",
        "process_guid": guid,
        "transport": Transport.TCP,
        "src_ip": "192.0.2.100",
        "src_port": sport,
        "dst_ip": "198.51.100.7",
        "dst_port": 443,
        "direction": Direction.OUTBOUND,
    }
    values.update(kw)
    return NetworkConnection(**values)


def run_join(events: list[Event], **kw: Any) -> tuple[list[Event], Any]:
    joiner = join(sort_events(events), **kw)
    return list(joiner), joiner.stats


def test_flow_gets_the_process_and_host_of_its_connection_in_either_orientation() -> None:
    reverse = conn("c2", 10, "{B}", src_ip="198.51.100.7", src_port=443, dst_ip="192.0.2.100",
                   dst_port=50_000, initiated=False, direction=Direction.INBOUND)  # fmt: skip
    events: list[Event] = [
        conn("c1", 0.2, "{A}"),
        flow("f1", 0.0),
        reverse,
        flow("f2", 10.5, sport=50_000),
        flow("f3", 20, sport=50_001),  # no connection
        flow("f4", 30, sport=50_002, dst_port=80, transport=Transport.UDP),
        conn("c4", 30, "{C}", sport=50_002, dst_port=80),  # TCP connection: not a UDP flow
    ]
    out, stats = run_join(events)
    got = {e.event_id: e for e in out}
    assert not any(isinstance(e, NetworkConnection) for e in out)
    assert (got["f1"].process_guid, got["f1"].host) == ("{A}", "ws001")  # type: ignore[union-attr]
    assert got["f2"].process_guid == "{B}"  # type: ignore[union-attr]
    assert got["f3"].process_guid is None  # type: ignore[union-attr]
    assert got["f3"].host == "ws001"  # the address is ws001's, learned from its connections
    assert got["f4"].process_guid is None  # type: ignore[union-attr]
    assert (stats.flows, stats.flows_attributed, stats.connections) == (4, 2, 3)
    assert stats.attribution_rate == 0.5
    assert stats.connections_unmatched == 1


def test_ephemeral_port_reuse_picks_the_nearest_connection() -> None:
    events: list[Event] = [
        conn("c1", 0, "{OLD}"),
        conn("c2", 3.0, "{NEW}"),
        flow("f1", 0.1, dur_s=0.5),
        flow("f2", 3.2, dur_s=0.5),
    ]
    out, stats = run_join(events)
    got = {e.event_id: e for e in out}
    assert got["f1"].process_guid == "{OLD}"  # type: ignore[union-attr]
    assert got["f2"].process_guid == "{NEW}"  # type: ignore[union-attr]
    assert stats.connections_matched == 2


def test_window_bounds_the_match_and_a_late_connection_still_counts() -> None:
    events: list[Event] = [
        flow("f1", 0.0, dur_s=0.01),
        conn("c1", 4.0, "{LATE}"),  # reported after the flow record, within the window
        flow("f2", 100, sport=50_000, dur_s=0.01),
        conn("c2", 107, "{TOO-LATE}", sport=50_000),
    ]
    out, stats = run_join(events, window_s=5)
    got = {e.event_id: e for e in out}
    assert got["f1"].process_guid == "{LATE}"  # type: ignore[union-attr]
    assert got["f2"].process_guid is None  # type: ignore[union-attr]
    assert [e.ts_ns for e in out] == sorted(e.ts_ns for e in out)
    assert stats.connections_unmatched == 1


def test_interim_records_share_the_first_records_attribution() -> None:
    first = flow("r1", 0, dur_s=60, is_final=False)
    last = flow("r2", 0, dur_s=90, ts_ns=BASE + 90 * S, flow_id=first.flow_id)
    out, stats = run_join([conn("c", 0, "{P}"), first, last])
    assert [e.process_guid for e in out] == ["{P}", "{P}"]  # type: ignore[union-attr]
    assert (stats.flows, stats.flow_records, stats.flows_attributed) == (1, 2, 1)


def test_other_events_pass_and_loopback_connections_are_not_indexed() -> None:
    start = ProcessStart(event_id="p", ts_ns=BASE, host="ws001", process_guid="{P}", pid=4,
                         image="C:\\a.exe", name="a.exe", command_line="a", parent_guid=None,
                         user="u")  # fmt: skip
    loop = conn("c", 1, "{P}", src_ip="127.0.0.1", dst_ip="127.0.0.1")
    out, stats = run_join([start, loop, flow("f", 2)])
    assert out[0] == start
    assert stats.connections_loopback == 1
    assert stats.connections_unmatched == 0


def test_resolver_api_query_and_its_network_copy_become_one_event() -> None:
    def q(eid: str, ts_s: float, host: str, guid: str | None, **kw: Any) -> DnsQuery:
        values: dict[str, Any] = {
            "event_id": eid, "ts_ns": BASE + int(ts_s * S), "host": host, "process_guid": guid,
            "src_ip": "192.0.2.100", "resolver_ip": "192.0.2.10", "query": "a.example",
            "qtype": "A", "rcode": "NOERROR", "answers": ("198.51.100.7",), "query_bytes": 38,
            "response_bytes": 54,
        }  # fmt: skip
        values.update(kw)
        return DnsQuery(**values)

    api = q("s22", 0.01, "ws001", "{P}", src_ip="", resolver_ip="", answers=(), query_bytes=0)
    net = q("z1", 0.0, "192.0.2.100", None, query="A.EXAMPLE")
    raw = q("z2", 5.0, "192.0.2.100", None, query="tunnel.bad.example")
    dnscache = conn("c", 0.0, "{SVC}", sport=53_000, dst_ip="192.0.2.10", dst_port=53,
                    transport=Transport.UDP, direction=Direction.INTERNAL)  # fmt: skip
    out, stats = run_join([dnscache, net, api, raw])
    queries = [e for e in out if isinstance(e, DnsQuery)]
    assert len(queries) == 2
    merged, tunnel = queries
    assert (merged.event_id, merged.process_guid, merged.host) == ("s22", "{P}", "ws001")
    assert (merged.resolver_ip, merged.answers, merged.query_bytes) == (
        "192.0.2.10",
        ("198.51.100.7",),
        38,
    )  # fmt: skip  (the network sensor's data, the endpoint's process)
    assert (tunnel.process_guid, tunnel.host) == (None, "ws001")
    assert stats.dns_merged == 1


def test_zeek_logs_join_with_endpoint_connections(tmp_path: Path) -> None:
    rows = [conn_row(T0 + i, f"C{i}", "192.0.2.100", 50_000 + i, "198.51.100.7", 443)
            for i in range(5)]  # fmt: skip
    path = tmp_path / "conn.log"
    path.write_text(tsv("conn", rows))
    zeek = list(read_zeek([path]))
    base_s = T0 - BASE / S
    sysmon: list[Event] = [
        conn(f"s{i}", base_s + i + 0.3, f"{{G{i}}}", sport=50_000 + i) for i in range(4)
    ]
    out, stats = run_join([*zeek, *sysmon])
    got = [e for e in out if isinstance(e, NetworkFlow)]
    assert [f.process_guid for f in got] == ["{G0}", "{G1}", "{G2}", "{G3}", None]
    assert {f.host for f in got} == {"ws001"}
    assert stats.attribution_rate == 0.8


def test_join_rejects_a_negative_window() -> None:
    with pytest.raises(InvalidParameterError, match="window_s"):
        join([], window_s=-1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0, 30), st.floats(0, 3), st.booleans()),
        max_size=30,
    )
)
def test_join_properties(draws: list[tuple[int, float, float, bool]]) -> None:
    events: list[Event] = []
    for i, (port, t, skew, has_conn) in enumerate(draws):
        events.append(flow(f"f{i}", t, sport=50_000 + port, dur_s=0.5))
        if has_conn:
            events.append(conn(f"c{i}", t + skew, f"{{P{i}}}", sport=50_000 + port))
    out, stats = run_join(events, window_s=2)
    assert [e.ts_ns for e in out] == sorted(e.ts_ns for e in out)
    assert not any(isinstance(e, NetworkConnection) for e in out)
    assert len(out) == len(draws)
    guids = [e.process_guid for e in out if isinstance(e, NetworkFlow) and e.process_guid]
    assert len(guids) == len(set(guids)) == stats.flows_attributed  # a connection: one flow
    assert stats.connections_matched + stats.connections_unmatched == stats.connections


# -- the sysmon+zeek profile of a synthetic scenario ------------------------------------------


@pytest.fixture(scope="module")
def runs() -> dict[Profile, ScenarioRun]:
    scenario = QuietProcessExfil()
    params = scenario.params(SMALL)
    return {p: scenario.generate(params, 3, p) for p in (Profile.EDR, Profile.SYSMON_ZEEK)}


def test_split_views_have_what_each_sensor_sees(runs: dict[Profile, ScenarioRun]) -> None:
    edr = runs[Profile.EDR].telemetry.events
    split = project(edr, Profile.SYSMON_ZEEK)
    assert not any(isinstance(e, FileAccess | ProtocolAnomaly) for e in split)
    flows = [e for e in split if isinstance(e, NetworkFlow)]
    conns = [e for e in split if isinstance(e, NetworkConnection)]
    assert all(f.process_guid is None and f.host == f.src_ip for f in flows)
    assert len(conns) == len({f.flow_id for f in flows})
    by_id = {e.event_id: e for e in edr}
    for c in conns:
        first = by_id[origin_event_id(c.event_id)]
        assert isinstance(first, NetworkFlow)
        assert (c.ts_ns, c.process_guid, c.src_port) == (
            first.start_ns, first.process_guid, first.src_port,
        )  # fmt: skip
    api = [e for e in split if isinstance(e, DnsQuery) and e.process_guid is not None]
    net = [e for e in split if isinstance(e, DnsQuery) and e.process_guid is None]
    assert len(net) >= len(api) > 0
    assert split == sort_events(split)


def test_join_restores_the_edr_attribution(runs: dict[Profile, ScenarioRun]) -> None:
    edr = runs[Profile.EDR].telemetry.events
    joiner = join(project(edr, Profile.SYSMON_ZEEK))
    joined = {e.event_id: e for e in joiner}
    edr_flows = [e for e in edr if isinstance(e, NetworkFlow)]
    right = sum(
        1
        for f in edr_flows
        if (j := joined.get(f.event_id)) is not None
        and isinstance(j, NetworkFlow)
        and (j.process_guid, j.host) == (f.process_guid, f.host)
    )
    assert right / len(edr_flows) >= 0.99
    assert joiner.stats.attribution_rate is not None
    assert joiner.stats.attribution_rate >= 0.99
    # The resolver-API queries come back once each, with process.
    edr_dns = {e.event_id: e for e in edr if isinstance(e, DnsQuery)}
    joined_api = {k: e for k, e in joined.items() if isinstance(e, DnsQuery) and e.process_guid}
    assert joined_api == edr_dns


def test_generated_sysmon_zeek_telemetry_is_joined_and_booked(
    runs: dict[Profile, ScenarioRun],
) -> None:
    run = runs[Profile.SYSMON_ZEEK]
    edr = runs[Profile.EDR]
    assert run.telemetry.fields == PROFILE_FIELDS[Profile.SYSMON_ZEEK]
    assert Field.FLOW_PROCESS in run.telemetry.fields
    assert Field.FILE_READ not in run.telemetry.fields
    events = run.telemetry.events
    assert not any(isinstance(e, NetworkConnection | FileAccess) for e in events)
    assert all(e.event_id in run.truth.event_actor for e in events)
    edr_actor = edr.truth.event_actor
    for e in events:
        assert run.truth.event_actor[e.event_id] == edr_actor.get(
            e.event_id, run.truth.event_actor[origin_event_id(e.event_id)]
        )
    edr_flows = {e.event_id: e for e in edr.telemetry.events if isinstance(e, NetworkFlow)}
    flows = [e for e in events if isinstance(e, NetworkFlow)]
    same = sum(1 for f in flows if f.process_guid == edr_flows[f.event_id].process_guid)
    assert same / len(flows) >= 0.99


def test_runner_reports_an0988_not_evaluable_and_runs_the_others(
    runs: dict[Profile, ScenarioRun],
) -> None:
    specs = tuple(DetectorSpec(detector=cls) for cls in DETECTORS.load_all())
    results = {r.analytic: r for r in run_detectors(runs[Profile.SYSMON_ZEEK].telemetry, specs)}
    assert results["AN0988"].outcome is Outcome.NOT_EVALUABLE
    assert results["AN0988"].missing_fields == (Field.FILE_READ,)
    others = [r for a, r in results.items() if a != "AN0988"]
    assert len(others) == 4
    assert all(r.outcome is Outcome.OK for r in others), [r.error for r in others]
    assert all(r.events_observed > 0 for r in others)


def test_cli_runs_the_sysmon_zeek_profile(tmp_path: Path) -> None:
    sid = "quiet-process-exfil"
    args = ["run", "--scenario", sid, "--seeds", "1", "--profile", "sysmon+zeek",
            "--workers", "1", "--out", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    for knob, value in SMALL.items():
        args += ["--param", f"{sid}.{knob}={value}"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "results.json").read_text()
    assert '"sysmon+zeek"' in text
