"""An emulation's telemetry: the network events of the capture (or of the sinks' Zeek-style logs
when the backend cannot capture), endpoint events from the socket monitor and the actors' audit
files, joined like real Sysmon + Zeek data.

:func:`build_telemetry` reads the capture through :class:`harness.ingest.pcap.PcapEventReader`
with the plan's internal networks (flows, DNS, anomalies, no process identity), or the sinks'
``conn.log``/``dns.log`` through :func:`harness.ingest.zeek.read_zeek`. Endpoint events:
:class:`~harness.events.ProcessStart` from the monitor, one
:class:`~harness.events.NetworkConnection` per flow whose local endpoint the monitor attributes
(what Sysmon event 3 gives; a socket the monitor missed is taken from :mod:`harness.lab.owners`;
the report counts each way), and :class:`~harness.events.FileAccess` from the actors' audit
files. The two sides are joined by :func:`harness.ingest.join.join`, except on the loopback
backend, whose connections the join never indexes: there the monitor's attribution is applied to
the flows directly and the report says so. Hosts are the client names (``client-1``, ...). The
ground truth is built on the way (:func:`harness.lab.truth.build_truth`).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import LabError
from harness.events import (
    NS_PER_S,
    Direction,
    Event,
    FileAccess,
    FileOperation,
    NetworkConnection,
    NetworkFlow,
)
from harness.fields import Field
from harness.lab.attribution import ProcessInfo, SocketMonitor
from harness.lab.backend import LabPlan
from harness.lab.owners import (
    OWNER_TOLERANCE_NS,
    hinted_process,
    owner_hints,
    sink_records,
    sole_process,
)
from harness.lab.phases import LabRun, Launch
from harness.lab.spec import LabActor, Phase
from harness.lab.truth import build_truth, sink_dns_ports
from harness.telemetry import Telemetry, evolve, sort_events
from harness.truth import GroundTruth

__all__ = ["build_telemetry"]


def _network_events(
    plan: LabPlan, captured: bool, pcap: Path, sink_logs: Path
) -> tuple[list[Event], dict[str, list[tuple[int, int]]], dict[str, Any]]:
    """The network events, per flow id its bytes out cut every 100 ms (pcap only), and a note
    on the source."""
    if captured:
        from harness.ingest.pcap import IngestConfig, PcapEventReader

        reader = PcapEventReader(
            pcap, config=IngestConfig(internal_networks=plan.internal_networks)
        )
        events = list(reader)
        st = reader.stats
        # Ground truth's bytes timeline: the same flows cut every 100 ms (same flow ids).
        fine: dict[str, list[tuple[int, int]]] = defaultdict(list)
        fine_config = IngestConfig(internal_networks=plan.internal_networks, active_timeout_s=0.1)
        for e in PcapEventReader(pcap, config=fine_config):
            if isinstance(e, NetworkFlow):
                fine[e.flow_id].append((e.ts_ns, e.bytes_out))
        return (
            events,
            dict(fine),
            {
                "source": "pcap",
                "path": pcap.name,
                "records": st.records,
                "flows": st.flows,
                "events": dict(st.events),
                "skipped_records": st.skipped_records,
                "warnings": st.warnings,
            },
        )
    from harness.ingest.zeek import ZeekConfig, read_zeek

    zr = read_zeek(
        [sink_logs / "conn.log", sink_logs / "dns.log"],
        config=ZeekConfig(internal_networks=plan.internal_networks),
    )
    events = [evolve(e, event_id=f"zeek:{i}") for i, e in enumerate(zr)]
    return events, {}, {"source": "sink zeek logs", "path": "sinks/", "events": len(events)}


def _file_events(
    launches: Sequence[Launch],
    guid_of_pid: Callable[[int, int], str | None],
    host_name: Callable[[Launch], str],
    tree_of: Callable[[Launch], set[int]],
) -> tuple[list[Event], int]:
    """FileAccess events from the actors' audit files (JSON lines a program appends its own
    file reads to); lines without a known process are counted."""
    out: list[Event] = []
    orphans = 0
    for launch in launches:
        try:
            lines = launch.audit.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        tree = tree_of(launch)
        for n, line in enumerate(lines):
            try:
                rec = json.loads(line)
                ts = int(rec.get("ts_ns") or int(float(rec["ts"]) * NS_PER_S))
                pid = int(rec.get("pid") or launch.proc.pid)
                path = str(rec["path"])
                size = int(rec.get("bytes", 0))
                op = FileOperation(str(rec.get("operation", rec.get("op", "read"))))
            except (ValueError, KeyError, TypeError):
                orphans += 1
                continue
            if pid not in tree:
                # A pid from another pid namespace (a container): the launch's own process.
                pid = launch.proc.pid
            guid = guid_of_pid(pid, ts)
            if guid is None:
                orphans += 1
                continue
            out.append(
                FileAccess(
                    event_id=f"lab-file:{launch.actor.actor_id}:{launch.phase.value}:{n}",
                    ts_ns=ts, host=host_name(launch), process_guid=guid, path=path,
                    operation=op, bytes=size,
                )
            )  # fmt: skip
    return out, orphans


def build_telemetry(
    plan: LabPlan,
    lab: LabRun,
    monitor: SocketMonitor,
    backend_name: str,
    captured: bool,
    pcap: Path,
    sink_logs: Path,
    cast: Sequence[LabActor],
) -> tuple[Telemetry, GroundTruth, dict[str, Any]]:
    from harness.ingest.join import join

    launches = lab.launches
    client_by_addr = {c.address: c for c in plan.clients}
    ns_of_client = lab.netns
    client_of_ns = {ns: name for name, ns in ns_of_client.items() if ns is not None}
    # Process trees: pid -> launch (the root the lab started and its descendants).
    procs = monitor.processes()
    launch_of: dict[tuple[int, int], Launch] = {}
    for launch in launches:
        tree = {launch.proc.pid} | monitor.descendants(launch.proc.pid)
        for p in procs:
            if (
                p.pid in tree
                and p.start_ns >= launch.start_ns - NS_PER_S
                and (launch.end_ns is None or p.start_ns <= launch.end_ns)
            ):
                launch_of.setdefault((p.pid, p.start_ticks), launch)

    def host_of(p: ProcessInfo) -> str:
        name = client_of_ns.get(p.netns)
        if name is not None:
            return name
        la = launch_of.get((p.pid, p.start_ticks))
        return la.host.name if la is not None else "unknown"

    starts = monitor.to_events(host_of, plan.run_id)
    proc_of_guid: dict[str, ProcessInfo] = {}
    by_pid: dict[int, list[tuple[int, str]]] = defaultdict(list)
    # The monitor is stopped: processes() is the same list as above, in start order, so each
    # pid's entries are in start order (one process per pid and start).
    for p, ev in zip(procs, starts, strict=True):
        proc_of_guid[ev.process_guid] = p
        by_pid[p.pid].append((p.start_ns, ev.process_guid))

    def guid_of_pid(pid: int, ts: int) -> str | None:
        """The last process with ``pid`` started by ``ts`` (give or take a second)."""
        for start, guid in reversed(by_pid.get(pid, ())):
            if start <= ts + NS_PER_S:
                return guid
        return None

    def guid_of(p: ProcessInfo) -> str | None:
        return guid_of_pid(p.pid, p.start_ns)

    net, fine, net_info = _network_events(plan, captured, pcap, sink_logs)
    trees: dict[int, set[int]] = defaultdict(set)
    for (pid, _), la in launch_of.items():
        trees[id(la)].add(pid)
    files, file_orphans = _file_events(
        launches, guid_of_pid, lambda la: la.host.name, lambda la: trees[id(la)] | {la.proc.pid}
    )
    # Sysmon-3-like connection events for every flow the monitor attributes.
    conns: list[NetworkConnection] = []
    direct: dict[str, tuple[str, str]] = {}
    by_sole = by_sink = 0
    sink_log_records = sink_records(sink_logs / "sinks.jsonl")
    hints = owner_hints(sink_log_records)
    procs_by_key = {(p.pid, p.start_ticks): p for p in procs}
    seen_flows: set[str] = set()
    for e in net:
        if not isinstance(e, NetworkFlow) or e.flow_id in seen_flows:
            continue
        seen_flows.add(e.flow_id)
        inbound = e.direction is Direction.INBOUND
        local_ip, local_port = (e.dst_ip, e.dst_port) if inbound else (e.src_ip, e.src_port)
        client = client_by_addr.get(local_ip)
        if client is None:
            continue
        owner = monitor.owner(
            e.transport, local_ip, local_port, e.start_ns, netns=ns_of_client[client.name],
            tolerance_ns=OWNER_TOLERANCE_NS,
        )  # fmt: skip
        guid = guid_of(owner) if owner is not None else None
        if guid is None:
            hinted = hinted_process(hints, e, procs_by_key)
            guid = guid_of(hinted) if hinted is not None else None
            by_sink += guid is not None
        if guid is None:
            sole = sole_process(monitor, launch_of, client.name, ns_of_client[client.name], e)
            guid = guid_of(sole) if sole is not None else None
            if guid is None:
                continue
            by_sole += 1
        direct[e.flow_id] = (guid, client.name)
        conns.append(
            NetworkConnection(
                event_id=f"lab-conn:{len(conns)}", ts_ns=e.start_ns, host=client.name,
                process_guid=guid, transport=e.transport, src_ip=e.src_ip, src_port=e.src_port,
                dst_ip=e.dst_ip, dst_port=e.dst_port, direction=e.direction,
                initiated=not inbound,
            )
        )  # fmt: skip
    loopback = any(_is_loopback(c.address) for c in plan.clients)
    mixed = sort_events([*net, *conns, *starts, *files])
    if loopback:
        events: list[Event] = []
        for e in mixed:
            if isinstance(e, NetworkConnection):
                continue
            if isinstance(e, NetworkFlow) and e.flow_id in direct:
                guid, host = direct[e.flow_id]
                e = evolve(e, process_guid=guid, host=host)
            events.append(e)
        flows_total = len(seen_flows)
        join_doc: dict[str, Any] = {
            "performed": False,
            "note": "loopback lab: harness.ingest.join never indexes loopback connections (no "
            "network sensor sees them), so the monitor's attribution was applied to the flows "
            "directly",
            "flows": flows_total,
            "flows_attributed": len(direct),
            "attribution_rate": len(direct) / flows_total if flows_total else None,
            "connections": len(conns),
            "connections_by_sole_process": by_sole,
            "connections_by_sink_lookup": by_sink,
        }
    else:
        joiner = join(mixed)
        events = list(joiner)
        st = joiner.stats
        join_doc = {
            "performed": True,
            "note": None,
            "flows": st.flows,
            "flows_attributed": st.flows_attributed,
            "attribution_rate": st.attribution_rate,
            "connections": st.connections,
            "connections_matched": st.connections_matched,
            "connections_unmatched": st.connections_unmatched,
            "dns_merged": st.dns_merged,
            "hosts_named": st.hosts_named,
            "connections_by_sole_process": by_sole,
            "connections_by_sink_lookup": by_sink,
        }
    # Name the remaining hosts (DNS queries, anomalies, unattributed flows) by client.
    named: list[Event] = []
    for e in events:
        if e.host is not None and e.host in client_by_addr:
            e = evolve(e, host=client_by_addr[e.host].name)
        named.append(e)
    events = sort_events(named)
    if not events:
        raise LabError(
            f"the emulation recorded no events at all (see {lab.sink_log} and the actor logs)"
        )
    dns_ports = sink_dns_ports(sink_log_records)
    truth, truth_doc = build_truth(cast, launches, launch_of, proc_of_guid, events, fine, dns_ports)
    fields = {Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL, Field.DNS_QUERY, Field.PROCESS,
              Field.FILE_READ}  # fmt: skip
    if captured:
        fields.add(Field.PACKETS)
    if any(isinstance(e, NetworkFlow) and e.process_guid is not None for e in events):
        fields.add(Field.FLOW_PROCESS)
    baseline = lab.phase_bounds.get(Phase.BASELINE)
    attack = lab.phase_bounds[Phase.ATTACK]
    start = min(events[0].ts_ns, baseline[0] if baseline else attack[0])
    end = max(events[-1].ts_ns, attack[1])
    telemetry = Telemetry(
        profile=f"lab-{backend_name}",
        fields=frozenset(fields),
        hosts=tuple(c.name for c in plan.clients),
        start_ns=start,
        baseline_until_ns=attack[0],
        end_ns=end,
        events=events,
    )
    kinds = Counter(type(e).__name__ for e in events)
    info = {
        "launch_of": launch_of,
        "doc": {
            "network": net_info,
            "join": join_doc,
            "attribution_rate": join_doc["attribution_rate"],
            "events": dict(sorted(kinds.items())),
            "file_audit_unmatched": file_orphans,
            "monitor": {
                "polls": monitor.polls,
                "mean_poll_ms": monitor.poll_ns_total / monitor.polls / 1e6
                if monitor.polls
                else None,
                "processes": len(procs),
                "sockets": len(monitor.sockets()),
            },
            "telemetry": {
                "fields": sorted(f.value for f in fields),
                "hosts": list(telemetry.hosts),
                "start_ns": start,
                "baseline_until_ns": attack[0],
                "end_ns": end,
                "baseline_events": len(telemetry.baseline),
                "detection_events": len(telemetry.detection),
            },
            **truth_doc,
        },
    }
    return telemetry, truth, info


def _is_loopback(address: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address).is_loopback
