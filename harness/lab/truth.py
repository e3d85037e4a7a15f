"""Ground truth of an emulation: which actor each event belongs to, and each actor's truth.

An event belongs to the actor whose process tree (the pid the lab started and its
descendants) holds its process; a DNS query to the flow from the client port the DNS sink
logged for that name and time, else to the flow from the same client to the same resolver that
was open at the query's time; an anomaly to the flow of its 5-tuple. Events no actor claims are
counted per kind and reported, never silently dropped. Every
:class:`~harness.lab.spec.LabActor` becomes an :class:`~harness.truth.ActorTruth` (start: its
first launch in the attack phase, or its first launch; hosts; process instances; bytes timeline
from its attributed flows' bytes out, cut every 100 ms).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.events import (
    NS_PER_S,
    DnsQuery,
    Event,
    FileAccess,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
)
from harness.lab.attribution import ProcessInfo
from harness.lab.owners import OWNER_TOLERANCE_NS
from harness.lab.phases import Launch
from harness.lab.spec import LabActor, Phase
from harness.truth import ActorKind, ActorTruth, GroundTruth

__all__ = ["LAB_SCENARIO", "build_truth", "sink_dns_ports"]

#: The scenario name results documents give an emulated run.
LAB_SCENARIO = "lab"
#: A DNS query belongs to a flow open within this much of the query's time.
_DNS_SLACK_NS = NS_PER_S // 2


def build_truth(
    cast: Sequence[LabActor],
    launches: Sequence[Launch],
    launch_of: Mapping[tuple[int, int], Launch],
    proc_of_guid: Mapping[str, ProcessInfo],
    events: Sequence[Event],
    fine: Mapping[str, list[tuple[int, int]]],
    dns_ports: Mapping[tuple[str, str], list[tuple[int, int]]],
) -> tuple[GroundTruth, dict[str, Any]]:
    def actor_of_guid(guid: str | None) -> str | None:
        if guid is None:
            return None
        p = proc_of_guid.get(guid)
        if p is None:
            return None
        la = launch_of.get((p.pid, p.start_ticks))
        return la.actor.actor_id if la is not None else None

    event_actor: dict[str, str] = {}
    # Flows by (transport, client ip, client port, server ip, server port), and DNS flows by
    # (client ip, resolver ip), with their actor, for DNS queries and anomalies.
    flow_actor: dict[tuple[str, str, int, str, int], list[tuple[int, int, str]]] = defaultdict(list)
    dns_flows: dict[tuple[str, str], list[tuple[int, int, str]]] = defaultdict(list)
    for e in events:
        if isinstance(e, NetworkFlow):
            owner = actor_of_guid(e.process_guid)
            if owner is None:
                continue
            key = (e.transport.value, e.src_ip, e.src_port, e.dst_ip, e.dst_port)
            flow_actor[key].append((e.start_ns, e.end_ns, owner))
            dns_flows[(e.src_ip, e.dst_ip)].append((e.start_ns, e.end_ns, owner))
    for spans in dns_flows.values():
        spans.sort()
    # Flows by their client endpoint, for DNS queries whose client port a sink logged.
    by_endpoint: dict[tuple[str, int], list[tuple[int, int, str]]] = defaultdict(list)
    for (_, src_ip, src_port, _, _), spans in flow_actor.items():
        by_endpoint[(src_ip, src_port)].extend(spans)
    unattributed: Counter[str] = Counter()
    ambiguous = 0
    for e in events:
        actor: str | None = None
        if isinstance(e, ProcessStart | FileAccess | NetworkFlow):
            actor = actor_of_guid(e.process_guid)
        elif isinstance(e, DnsQuery):
            actor = actor_of_guid(e.process_guid)
            if actor is None:
                actor = _dns_by_port(dns_ports, by_endpoint, e)
            if actor is None:
                actor, ambiguous_here = _dns_actor(dns_flows.get((e.src_ip, e.resolver_ip)), e)
                ambiguous += ambiguous_here
        elif isinstance(e, ProtocolAnomaly):
            for key in (
                (e.transport.value, e.src_ip, e.src_port, e.dst_ip, e.dst_port),
                (e.transport.value, e.dst_ip, e.dst_port, e.src_ip, e.src_port),
            ):
                found = flow_actor.get(key)
                if found:
                    actor = min(found, key=lambda s: abs(s[0] - e.ts_ns))[2]
                    break
        if actor is None:
            unattributed[type(e).__name__] += 1
        else:
            event_actor[e.event_id] = actor
    # Per actor, in one pass each: its launches, its processes, its flows' bytes out (per flow
    # id, from the flow events; the capture's finer cut replaces them where there is one) and
    # its labelled events.
    launches_of: dict[str, list[Launch]] = defaultdict(list)
    for la in launches:
        launches_of[la.actor.actor_id].append(la)
    guids_of: dict[str, set[str]] = defaultdict(set)
    for g, p in proc_of_guid.items():
        if (started := launch_of.get((p.pid, p.start_ticks))) is not None:
            guids_of[started.actor.actor_id].add(g)
    coarse_of: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        if isinstance(e, NetworkFlow) and (aid := event_actor.get(e.event_id)) is not None:
            coarse_of[aid][e.flow_id].append((e.ts_ns, e.bytes_out))
    events_of = Counter(event_actor.values())
    actors: list[ActorTruth] = []
    per_actor: dict[str, dict[str, Any]] = {}
    for a in cast:
        mine = launches_of.get(a.actor_id, [])
        attack = [la.start_ns for la in mine if la.phase is Phase.ATTACK]
        start = min(attack) if attack else min((la.start_ns for la in mine), default=None)
        guids = guids_of.get(a.actor_id, set())
        coarse = coarse_of.get(a.actor_id, {})
        sent = sorted(p for fid, points in coarse.items() for p in fine.get(fid) or points)
        timeline: list[tuple[int, int]] = []
        total = 0
        for ts, size in sent:
            total += size
            timeline.append((ts, total))
        actors.append(
            ActorTruth(
                actor_id=a.actor_id,
                kind=a.kind,
                description=a.description,
                techniques=a.techniques,
                expected_analytics=a.expected_analytics if a.kind is ActorKind.MALICIOUS else (),
                trap_for=a.trap_for,
                start_ns=start,
                hosts=tuple(sorted({la.host.name for la in mine})),
                process_instances=len(guids),
                bytes_timeline=tuple(timeline),
            )
        )
        per_actor[a.actor_id] = {
            "events": events_of[a.actor_id],
            "process_instances": len(guids),
            "bytes_out": total,
        }
    truth = GroundTruth(
        scenario=LAB_SCENARIO, seed=0, actors=tuple(actors), event_actor=event_actor
    )
    return truth, {
        "labelled_events": len(event_actor),
        "unattributed_events": dict(sorted(unattributed.items())),
        "unattributed_total": sum(unattributed.values()),
        "dns_ambiguous": ambiguous,
        "actor_events": per_actor,
    }


def sink_dns_ports(
    records: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """The DNS sink's queries among the sinks' log ``records``
    (:func:`harness.lab.owners.sink_records`): per (client address, query name in lower case)
    the (time, client port) of each query, which the pcap's DNS events do not carry."""
    out: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for rec in records:
        if rec.get("event") != "dns_query":
            continue
        try:
            if rec.get("query"):
                key = (str(rec["client_ip"]), str(rec["query"]).rstrip(".").lower())
                out[key].append((int(rec["ts_ns"]), int(rec["client_port"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _dns_by_port(
    dns_ports: Mapping[tuple[str, str], list[tuple[int, int]]],
    by_endpoint: Mapping[tuple[str, int], list[tuple[int, int, str]]],
    q: DnsQuery,
) -> str | None:
    """The actor of the flow from the client port the DNS sink logged for this query."""
    seen = dns_ports.get((q.src_ip, q.query.rstrip(".").lower()))
    if not seen:
        return None
    ts, port = min(seen, key=lambda s: abs(s[0] - q.ts_ns))
    if abs(ts - q.ts_ns) > OWNER_TOLERANCE_NS:
        return None
    spans = by_endpoint.get((q.src_ip, port))
    if not spans:
        return None
    return min(spans, key=lambda s: 0 if s[0] <= q.ts_ns <= s[1] else abs(s[0] - q.ts_ns))[2]


def _dns_actor(spans: list[tuple[int, int, str]] | None, q: DnsQuery) -> tuple[str | None, int]:
    """The actor of the DNS flow open at the query's time (nearest start on ties); and 1 if
    several actors' flows were open then."""
    if not spans:
        return None, 0
    ts = q.ts_ns
    i = bisect.bisect_right(spans, (ts + _DNS_SLACK_NS, 1 << 62, "\uffff"))
    hits = [s for s in spans[:i] if s[1] + _DNS_SLACK_NS >= ts]
    if not hits:
        return None, 0
    best = min(hits, key=lambda s: abs(s[0] - ts))
    return best[2], int(len({s[2] for s in hits}) > 1)
