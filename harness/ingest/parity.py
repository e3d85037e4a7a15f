"""Map events read back from a rendered capture onto the synthetic run they were rendered from.

A scenario rendered to a pcap (:func:`harness.pcap.scenario.write_scenario_pcap`) and read back
(:func:`harness.ingest.read_pcap`) yields new events with new ids (``pcap:<n>``). To score the
detectors on them against the scenario's ground truth, :func:`map_readback` finds for each read
event the synthetic event it came from:

* a :class:`~harness.events.NetworkFlow` maps (by its ``flow_id``'s first record) to the
  synthetic flow with the same transport and 5-tuple, in either orientation, whose time span
  contains its start within ``tolerance_ns``; failing that, to a synthetic protocol anomaly on
  that 5-tuple near that time (the packets crafted for an anomaly form a flow of their own);
* a :class:`~harness.events.DnsQuery` maps by client address, query name (case and trailing dot
  ignored), query type and time within ``tolerance_ns``, nearest first, each synthetic query at
  most once; failing that, to the synthetic flow from the client to the query's server whose
  span contains it (DNS on a port a synthetic run records as a flow only, such as a tunnel on
  5353: the capture carries its messages, so the reader reports them), counted apart in
  :attr:`ReadbackMap.queries_via_flow`;
* a :class:`~harness.events.ProtocolAnomaly` maps to the synthetic anomaly on the same 5-tuple
  (either orientation) nearest in time within ``tolerance_ns``, preferring the same kind;
  failing that, to the synthetic flow on that 5-tuple (the packets that look anomalous are that
  flow's), counted apart in :attr:`ReadbackMap.anomalies_via_flow`.

:func:`readback_truth` then books every mapped read event to the actor of its synthetic origin.
Read events that map to nothing belong to no actor (an alert citing only those is a false
alert); :attr:`ReadbackMap.unmatched` lists them so that a caller can show them.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from harness.errors import InvalidParameterError
from harness.events import NS_PER_S, DnsQuery, Event, NetworkFlow, ProtocolAnomaly, Transport
from harness.truth import GroundTruth

__all__ = ["DEFAULT_TOLERANCE_NS", "ReadbackMap", "map_readback", "readback_truth"]

#: Clock slack between a synthetic event and its rendering: the renderer spaces a flow's
#: packets over its span and the reader times flows from their first packet.
DEFAULT_TOLERANCE_NS = 2 * NS_PER_S

_Endpoint = tuple[str, int]
_Key = tuple[Transport, _Endpoint, _Endpoint]


def _key(transport: Transport, src: _Endpoint, dst: _Endpoint) -> _Key:
    """The 5-tuple with its endpoints in a fixed order, so both orientations give one key."""
    return (transport, src, dst) if src <= dst else (transport, dst, src)


def _norm_name(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Span:
    start_ns: int
    end_ns: int
    event_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadbackMap:
    """Read event id to the id of the synthetic event it was rendered from."""

    origin: dict[str, str] = field(repr=False)
    #: Read events (flows, DNS queries, anomalies) that map to no synthetic event, by kind.
    unmatched: dict[str, tuple[str, ...]]
    #: Read anomalies booked to the synthetic flow on their 5-tuple, not to a synthetic anomaly.
    anomalies_via_flow: int
    #: Read flows booked to a synthetic anomaly (packets crafted for it), not to a flow.
    flows_via_anomaly: int
    #: Read DNS queries booked to the synthetic flow that carried them, not to a query.
    queries_via_flow: int


class _FlowIndex:
    """Synthetic flows (stitched by ``flow_id``) by 5-tuple key, in start order."""

    def __init__(self, events: Iterable[Event]) -> None:
        # flow_id -> [start, end, first record's id] and its 5-tuple key
        bounds: dict[str, tuple[int, int, str]] = {}
        keys: dict[str, _Key] = {}
        for e in events:
            if not isinstance(e, NetworkFlow):
                continue
            seen = bounds.get(e.flow_id)
            end = max(e.end_ns, e.ts_ns)
            if seen is None:
                bounds[e.flow_id] = (e.start_ns, end, e.event_id)
                keys[e.flow_id] = _key(e.transport, (e.src_ip, e.src_port), (e.dst_ip, e.dst_port))
            else:
                bounds[e.flow_id] = (min(seen[0], e.start_ns), max(seen[1], end), seen[2])
        self._by_key: dict[_Key, list[_Span]] = defaultdict(list)
        #: By (originator, responder) address, either way round, any transport and ports.
        self._by_pair: dict[tuple[str, str], list[_Span]] = defaultdict(list)
        for flow_id, (start, end, eid) in bounds.items():
            span = _Span(start_ns=start, end_ns=end, event_id=eid)
            key = keys[flow_id]
            self._by_key[key].append(span)
            self._by_pair[(key[1][0], key[2][0])].append(span)
            self._by_pair[(key[2][0], key[1][0])].append(span)
        for index in (self._by_key, self._by_pair):
            for items in index.values():
                items.sort(key=lambda s: (s.start_ns, s.event_id))

    def find(self, key: _Key, ts_ns: int, tolerance_ns: int) -> str | None:
        """The flow on ``key`` whose span contains ``ts_ns`` (within the tolerance); of several,
        the one whose start is nearest."""
        return self._nearest(self._by_key.get(key, ()), ts_ns, tolerance_ns)

    def between(self, a: str, b: str, ts_ns: int, tolerance_ns: int) -> str | None:
        """Like :meth:`find` for any flow between addresses ``a`` and ``b``."""
        return self._nearest(self._by_pair.get((a, b), ()), ts_ns, tolerance_ns)

    @staticmethod
    def _nearest(spans: Sequence[_Span], ts_ns: int, tolerance_ns: int) -> str | None:
        best: tuple[int, str] | None = None
        for s in spans:
            if s.start_ns - tolerance_ns > ts_ns:
                break
            if ts_ns <= s.end_ns + tolerance_ns:
                gap = abs(ts_ns - s.start_ns)
                if best is None or gap < best[0]:
                    best = (gap, s.event_id)
        return None if best is None else best[1]


class _AnomalyIndex:
    def __init__(self, events: Iterable[Event]) -> None:
        self._by_key: dict[_Key, list[ProtocolAnomaly]] = defaultdict(list)
        for e in events:
            if isinstance(e, ProtocolAnomaly):
                key = _key(e.transport, (e.src_ip, e.src_port), (e.dst_ip, e.dst_port))
                self._by_key[key].append(e)

    def find(
        self, key: _Key, ts_ns: int, tolerance_ns: int, kind: object | None = None
    ) -> str | None:
        best: tuple[int, int, str] | None = None
        for a in self._by_key.get(key, ()):
            gap = abs(a.ts_ns - ts_ns)
            if gap > tolerance_ns:
                continue
            rank = (0 if kind is None or a.anomaly == kind else 1, gap, a.event_id)
            if best is None or rank < best:
                best = rank
        return None if best is None else best[2]


def map_readback(
    read: Sequence[Event],
    synthetic: Sequence[Event],
    *,
    tolerance_ns: int = DEFAULT_TOLERANCE_NS,
) -> ReadbackMap:
    """Map each read flow, DNS query and anomaly to its synthetic origin (module docstring)."""
    if tolerance_ns < 0:
        raise InvalidParameterError("tolerance_ns", tolerance_ns, "zero or more nanoseconds")
    flows = _FlowIndex(synthetic)
    anomalies = _AnomalyIndex(synthetic)
    dns: dict[tuple[str, str, str], list[DnsQuery]] = defaultdict(list)
    for e in synthetic:
        if isinstance(e, DnsQuery):
            dns[(e.src_ip, _norm_name(e.query), e.qtype)].append(e)
    dns_times = {k: [q.ts_ns for q in sorted(v, key=lambda q: q.ts_ns)] for k, v in dns.items()}
    dns_sorted = {k: sorted(v, key=lambda q: q.ts_ns) for k, v in dns.items()}
    used_dns: set[str] = set()

    read_flow_start: dict[str, int] = {}
    for e in read:
        if isinstance(e, NetworkFlow):
            prev = read_flow_start.get(e.flow_id)
            read_flow_start[e.flow_id] = e.start_ns if prev is None else min(prev, e.start_ns)

    origin: dict[str, str] = {}
    unmatched: dict[str, list[str]] = defaultdict(list)
    via_flow = via_anomaly = query_via_flow = 0
    for e in read:
        found: str | None = None
        if isinstance(e, NetworkFlow):
            key = _key(e.transport, (e.src_ip, e.src_port), (e.dst_ip, e.dst_port))
            start = read_flow_start[e.flow_id]
            found = flows.find(key, start, tolerance_ns)
            if found is None:
                found = anomalies.find(key, start, tolerance_ns)
                via_anomaly += found is not None
        elif isinstance(e, DnsQuery):
            dkey = (e.src_ip, _norm_name(e.query), e.qtype)
            times = dns_times.get(dkey, [])
            queries = dns_sorted.get(dkey, [])
            lo = bisect.bisect_left(times, e.ts_ns - tolerance_ns)
            hi = bisect.bisect_right(times, e.ts_ns + tolerance_ns)
            candidates = [q for q in queries[lo:hi] if q.event_id not in used_dns]
            if candidates:
                q = min(candidates, key=lambda c: (abs(c.ts_ns - e.ts_ns), c.event_id))
                used_dns.add(q.event_id)
                found = q.event_id
            else:
                found = flows.between(e.src_ip, e.resolver_ip, e.ts_ns, tolerance_ns)
                query_via_flow += found is not None
        elif isinstance(e, ProtocolAnomaly):
            key = _key(e.transport, (e.src_ip, e.src_port), (e.dst_ip, e.dst_port))
            found = anomalies.find(key, e.ts_ns, tolerance_ns, e.anomaly)
            if found is None:
                found = flows.find(key, e.ts_ns, tolerance_ns)
                via_flow += found is not None
        else:
            continue
        if found is None:
            unmatched[e.kind.value].append(e.event_id)
        else:
            origin[e.event_id] = found
    return ReadbackMap(
        origin=origin,
        unmatched={k: tuple(v) for k, v in sorted(unmatched.items())},
        anomalies_via_flow=via_flow,
        flows_via_anomaly=via_anomaly,
        queries_via_flow=query_via_flow,
    )


def readback_truth(truth: GroundTruth, mapping: ReadbackMap) -> GroundTruth:
    """``truth`` with its event-to-actor map over the read events: each read event is booked
    to the actor of its synthetic origin; unmapped read events to none."""
    actors = truth.event_actor
    booked = {
        read_id: actors[origin] for read_id, origin in mapping.origin.items() if origin in actors
    }
    return replace(truth, event_actor=booked)
