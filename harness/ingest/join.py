"""The endpoint-network join: process identity from endpoint connection events onto flow records.

No single sensor gives both byte counts and process identity: Sysmon event 3
(:class:`~harness.events.NetworkConnection`) names the process and the 5-tuple but has no bytes;
Zeek or NetFlow (:class:`~harness.events.NetworkFlow` with ``process_guid=None``) have the bytes
but no process. :func:`join` streams a time-ordered mix of both (plus any other events) and
yields the events a detector consumes:

* A flow record without process whose transport and 5-tuple equal a connection's, in either
  orientation (the key is the Community ID, :func:`harness.ecs.community_id`), and whose start
  lies within ``window_s`` of the connection's time, gets the connection's ``process_guid`` and
  its ``host`` (the endpoint's name). When an ephemeral port was reused, several connections
  share the key: the one nearest in time to the flow's start wins, and a connection attributes
  one flow only. All records of a flow (interim and final, same ``flow_id``) get the attribution
  its first record got.
* Connection events are consumed, never passed on.
* A DNS query without process (Zeek's ``dns.log``) whose host is the address of a known endpoint
  and whose name equals a resolver-API query with process (Sysmon 22) of that endpoint within
  ``window_s`` is merged with it into one event: the network sensor's data (resolver, answers,
  sizes) with the endpoint's process and the endpoint event's id. Without this, every resolver-API
  query would reach the detectors twice.
* Flow records and DNS queries that stay without process, but whose ``host`` is an address an
  endpoint used in its connections, get that endpoint's name as ``host``.
* Everything else passes through unchanged.

The output stays in event-time order: every event is held for ``window_s`` of event time (a flow
record may need a connection reported up to ``window_s`` after the flow's start), so buffering is
bounded by the events of one window. Connections wait for their flow record at most
``connection_ttl_s`` (flow records from Zeek come at the end of the connection) and are then
dropped and counted unmatched. Loopback connections are never indexed: no network sensor sees
them.

Assumptions: no NAT between the endpoints and the network sensor (the sensor sees the endpoint's
own addresses and ports) and no address reuse between endpoints within the time a mapping is
used (DHCP churn is followed, as the latest connection from an address wins); endpoint and sensor
clocks agree to within ``window_s``.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from harness.ecs import community_id
from harness.errors import InvalidParameterError
from harness.events import NS_PER_S, DnsQuery, Event, NetworkConnection, NetworkFlow
from harness.telemetry import evolve

__all__ = ["DEFAULT_CONNECTION_TTL_S", "DEFAULT_WINDOW_S", "JoinStats", "Joiner", "join"]

#: Endpoint and sensor clocks and the sensor's notion of a flow's start agree within this.
DEFAULT_WINDOW_S = 5.0
#: How long a connection event waits for its flow record (Zeek logs a connection at its end).
DEFAULT_CONNECTION_TTL_S = 6 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinStats:
    """What a join saw and attributed.

    ``flows`` counts distinct flows (``flow_id``) that came without process;
    ``flows_attributed`` those of them that got one. Flows that already had a process
    (``flows_with_process``) are passed through and not counted in the rate.
    """

    flows: int
    flows_attributed: int
    flow_records: int
    flows_with_process: int
    connections: int
    connections_matched: int
    connections_unmatched: int
    connections_loopback: int
    dns_merged: int
    hosts_named: int

    @property
    def attribution_rate(self) -> float | None:
        """Share of flows without process that the join attributed; ``None`` without flows."""
        return self.flows_attributed / self.flows if self.flows else None


@dataclass(slots=True)
class _Conn:
    ts_ns: int
    event: NetworkConnection
    used: bool = False


@lru_cache(maxsize=65_536)
def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Joiner:
    """Iterator over the joined events of ``events`` (see the module docstring); :attr:`stats`
    is complete once the iterator is exhausted."""

    def __init__(
        self,
        events: Iterable[Event],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        connection_ttl_s: float = DEFAULT_CONNECTION_TTL_S,
    ) -> None:
        if not window_s >= 0:
            raise InvalidParameterError("join window_s", window_s, "zero or more seconds")
        if not connection_ttl_s >= window_s:
            raise InvalidParameterError(
                "join connection_ttl_s", connection_ttl_s, f"at least window_s ({window_s})"
            )
        self._source = iter(events)
        self._window = int(window_s * NS_PER_S)
        self._ttl = int(connection_ttl_s * NS_PER_S)
        self._pending: list[tuple[int, int, Event]] = []
        self._seq = 0
        self._conns: dict[str, list[_Conn]] = defaultdict(list)
        self._conn_queue: deque[tuple[str, _Conn]] = deque()
        self._decided: dict[str, tuple[str, str] | None] = {}
        self._addr_host: dict[str, str] = {}
        self._host_addrs: dict[str, set[str]] = defaultdict(set)
        # Pending DNS queries by (endpoint name, name) with process and (address, name) without.
        self._api_dns: dict[tuple[str, str], list[DnsQuery]] = defaultdict(list)
        self._net_dns: dict[tuple[str, str], list[DnsQuery]] = defaultdict(list)
        self._consumed: set[str] = set()
        self._counts = dict.fromkeys(JoinStats.__dataclass_fields__, 0)
        self._iter = self._run()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._iter)

    @property
    def stats(self) -> JoinStats:
        return JoinStats(**self._counts)

    # -- the stream ------------------------------------------------------------------------

    def _run(self) -> Iterator[Event]:
        pending = self._pending
        window = self._window
        now = None
        for event in self._source:
            if now is None or event.ts_ns > now:
                now = event.ts_ns
            if isinstance(event, NetworkConnection):
                self._add_connection(event)
            else:
                self._seq += 1
                heapq.heappush(pending, (event.ts_ns, self._seq, event))
                if isinstance(event, DnsQuery):
                    self._index_dns(event)
            while pending and pending[0][0] <= now - window:
                out = self._release(heapq.heappop(pending)[2])
                if out is not None:
                    yield out
            self._expire(now)
        while pending:
            out = self._release(heapq.heappop(pending)[2])
            if out is not None:
                yield out
        self._expire(None)

    def _add_connection(self, conn: NetworkConnection) -> None:
        self._counts["connections"] += 1
        if _is_loopback(conn.src_ip) and _is_loopback(conn.dst_ip):
            self._counts["connections_loopback"] += 1
            return
        local = conn.src_ip if conn.initiated else conn.dst_ip
        old = self._addr_host.get(local)
        if old != conn.host:
            if old is not None:
                self._host_addrs[old].discard(local)
            self._addr_host[local] = conn.host
            self._host_addrs[conn.host].add(local)
        key = community_id(conn.transport, conn.src_ip, conn.src_port, conn.dst_ip, conn.dst_port)
        entry = _Conn(ts_ns=conn.ts_ns, event=conn)
        self._conns[key].append(entry)
        self._conn_queue.append((key, entry))

    def _expire(self, now: int | None) -> None:
        queue = self._conn_queue
        while queue and (now is None or queue[0][1].ts_ns < now - self._ttl):
            key, entry = queue.popleft()
            if not entry.used:
                self._counts["connections_unmatched"] += 1
            bucket = self._conns.get(key)
            if bucket is not None:
                if entry in bucket:
                    bucket.remove(entry)
                if not bucket:
                    del self._conns[key]

    # -- one event leaves the buffer ---------------------------------------------------------

    def _release(self, event: Event) -> Event | None:
        if isinstance(event, NetworkFlow):
            return self._flow(event)
        if isinstance(event, DnsQuery):
            return self._dns(event)
        return event

    def _flow(self, flow: NetworkFlow) -> NetworkFlow:
        counts = self._counts
        if flow.process_guid is not None:
            counts["flows_with_process"] += 1
            return flow
        counts["flow_records"] += 1
        if flow.flow_id in self._decided:
            decision = self._decided[flow.flow_id]
        else:
            counts["flows"] += 1
            decision = self._match(flow)
            if decision is not None:
                counts["flows_attributed"] += 1
        if flow.is_final:
            self._decided.pop(flow.flow_id, None)
        else:
            self._decided[flow.flow_id] = decision
        if decision is not None:
            return evolve(flow, process_guid=decision[0], host=decision[1])
        name = self._addr_host.get(flow.host)
        if name is not None:
            counts["hosts_named"] += 1
            return evolve(flow, host=name)
        return flow

    def _match(self, flow: NetworkFlow) -> tuple[str, str] | None:
        key = community_id(flow.transport, flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port)
        bucket = self._conns.get(key)
        if not bucket:
            return None
        best: _Conn | None = None
        for entry in bucket:
            gap = abs(entry.ts_ns - flow.start_ns)
            if (not entry.used and gap <= self._window) and (
                best is None or gap < abs(best.ts_ns - flow.start_ns)
            ):
                best = entry
        if best is None:
            return None
        best.used = True
        bucket.remove(best)
        self._counts["connections_matched"] += 1
        return best.event.process_guid, best.event.host

    # -- DNS: one event per query --------------------------------------------------------------

    def _index_dns(self, q: DnsQuery) -> None:
        name = q.query.casefold()
        if q.process_guid is not None:
            self._api_dns[(q.host, name)].append(q)
        else:
            self._net_dns[(q.host, name)].append(q)

    @staticmethod
    def _unindex(index: dict[tuple[str, str], list[DnsQuery]], q: DnsQuery) -> None:
        key = (q.host, q.query.casefold())
        bucket = index.get(key)
        if bucket is not None:
            if q in bucket:
                bucket.remove(q)
            if not bucket:
                del index[key]

    def _twin(
        self, index: dict[tuple[str, str], list[DnsQuery]], hosts: Iterable[str], q: DnsQuery
    ) -> DnsQuery | None:
        name = q.query.casefold()
        best: DnsQuery | None = None
        for host in hosts:
            for other in index.get((host, name), ()):
                gap = abs(other.ts_ns - q.ts_ns)
                if other.event_id in self._consumed or gap > self._window:
                    continue
                if best is None or gap < abs(best.ts_ns - q.ts_ns):
                    best = other
        return best

    def _dns(self, q: DnsQuery) -> DnsQuery | None:
        if q.process_guid is not None:
            self._unindex(self._api_dns, q)
            if q.event_id in self._consumed:
                self._consumed.discard(q.event_id)
                return None
            net = self._twin(self._net_dns, sorted(self._host_addrs.get(q.host, ())), q)
            if net is None:
                return q
            self._consumed.add(net.event_id)
            self._counts["dns_merged"] += 1
            return evolve(net, event_id=q.event_id, ts_ns=q.ts_ns, host=q.host,
                           process_guid=q.process_guid)  # fmt: skip
        self._unindex(self._net_dns, q)
        if q.event_id in self._consumed:
            self._consumed.discard(q.event_id)
            return None
        name = self._addr_host.get(q.host)
        if name is None:
            return q
        api = self._twin(self._api_dns, (name,), q)
        if api is None:
            self._counts["hosts_named"] += 1
            return evolve(q, host=name)
        self._consumed.add(api.event_id)
        self._counts["dns_merged"] += 1
        return evolve(q, event_id=api.event_id, host=name, process_guid=api.process_guid)


def join(
    events: Iterable[Event],
    *,
    window_s: float = DEFAULT_WINDOW_S,
    connection_ttl_s: float = DEFAULT_CONNECTION_TTL_S,
) -> Joiner:
    """Join endpoint connections to flow records (see the module docstring). Returns the
    iterator; its :attr:`Joiner.stats` is complete once it is exhausted."""
    return Joiner(events, window_s=window_s, connection_ttl_s=connection_ttl_s)
