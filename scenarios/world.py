"""The synthetic world: an environment of hosts plus a recorder that turns actor behaviour into
events and ground truth at the same time.

Actors never build events by hand. They call :class:`World`: one event per call (``spawn``,
``read_file``, ``flow``, ``dns``, ``anomaly``) or many per call (``spawn_many``, ``reads``,
``flows``, ``dns_many``), with the same meaning; the world numbers events, splits long flows
into active-timeout records, sends resolver-API DNS through the host's DNS client service as
Windows does, and books every event and every byte to the actor that caused it. It records
column-wise (:mod:`scenarios.columns`), so a background actor can draw days of activity for
every host at once. :meth:`World.finish` (:mod:`scenarios.render`) cuts the events to the window,
sorts and renders them under a telemetry profile (for ``sysmon+zeek``: the split Sysmon and Zeek
views, joined by :func:`harness.ingest.join.join`) and hands back telemetry and ground truth
separately.

Flow byte counts are transport payload bytes per direction (as Zeek's ``orig_bytes`` and
``resp_bytes``); DNS flows carry the DNS message sizes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.analytics import AnalyticId, TechniqueId
from harness.events import NS_PER_S, AnomalyKind, AppProtocol, Direction, Event, Transport
from harness.fields import Field, Profile
from harness.scenario import ScenarioRun
from harness.truth import ActorKind
from scenarios import render
from scenarios.columns import (
    ANOMALY,
    DNS,
    FILE,
    FLOW,
    PROCESS,
    FlowRecords,
    Int64s,
    Store,
    as_objects,
    process_guid,
    split_flows,
)
from scenarios.environment import (
    DOMAIN,
    EPOCH_NS,
    MAX_SERVERS,
    MAX_WORKSTATIONS,
    NS_PER_DAY,
    Environment,
    Host,
    build_environment,
)

__all__ = [
    "DNS_FLOW_NS",
    "DOMAIN",
    "EPOCH_NS",
    "MAX_SERVERS",
    "MAX_WORKSTATIONS",
    "NS_PER_DAY",
    "Actor",
    "Environment",
    "Host",
    "Proc",
    "TunnelPayload",
    "World",
    "build_environment",
    "dns_query_bytes",
    "packets",
]

_MSS = 1460
#: Duration of a DNS exchange's UDP flow.
DNS_FLOW_NS = 2_000_000
_INTERNAL_NET = ipaddress.ip_network("192.0.2.0/24")


@lru_cache(maxsize=65_536)
def _direction(dst_ip: str) -> Direction:
    """Internal when the destination is in the organisation's range (cached: a third of the
    generation time went into parsing the same few hundred addresses again)."""
    internal = ipaddress.ip_address(dst_ip) in _INTERNAL_NET
    return Direction.INTERNAL if internal else Direction.OUTBOUND


@dataclass(slots=True)
class Actor:
    """A handle for one actor; :class:`World` books events and bytes against it."""

    actor_id: str
    kind: ActorKind
    description: str
    techniques: tuple[TechniqueId, ...] = ()
    expected_analytics: tuple[AnalyticId, ...] = ()
    trap_for: tuple[AnalyticId, ...] = ()
    observable_with: frozenset[Field] = frozenset()
    hosts: set[str] = field(default_factory=set)
    #: Index among the world's actors (the ``actor`` column of its events).
    code: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelPayload:
    """What a DNS tunnel actor carried in its query names: the bytes, and how they were encoded.

    Kept by :class:`World` beside the events (not in the ground truth handed to scoring) so that
    a property test can decode the names back and compare."""

    actor_id: str
    encoding: str
    domain: str
    data: bytes
    #: Keep-alive queries sent besides the data queries (they carry no payload).
    pings: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Proc:
    """A running process: where it runs and how to cite it."""

    guid: str
    host: Host
    name: str
    image: str
    #: Index in the world's process table (the ``proc`` column of its events).
    index: int = -1


class World:
    """Records what actors do, column-wise, and books each event to its actor.

    Two ways in, with the same meaning: one event per call (``spawn``, ``read_file``, ``flow``,
    ``dns``, ``anomaly``), for actors whose every step depends on the last (tunnels, beacons),
    and many per call (``spawn_many``, ``reads``, ``flows``, ``dns_many``), for background
    actors that draw a whole span of activity at once with NumPy."""

    def __init__(
        self, scenario: str, seed: int, env: Environment, *, active_timeout_s: int = 60
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = env
        self.active_timeout_ns = active_timeout_s * NS_PER_S
        self._stores = {
            kind: Store(names)
            for kind, names in (
                ("process", PROCESS), ("file", FILE), ("flow", FLOW), ("dns", DNS),
                ("anomaly", ANOMALY),
            )
        }  # fmt: skip
        self._actors: dict[str, Actor] = {}
        self._n = 0
        self._hosts: list[Host] = []
        self._host_index: dict[str, int] = {}
        self._ports: list[int] = []
        for h in env.hosts:
            self.host_index(h)
        self._proc_actor: list[int] = []
        self._proc_host: list[int] = []
        self._dnscache: dict[int, Proc] = {}
        self._payloads: list[TunnelPayload] = []
        self._flow_totals: dict[int, tuple[int, int, int, int]] = {}
        self._flow_total_blocks: list[tuple[Int64s, ...]] = []
        self._system = self.actor(
            "windows-system",
            ActorKind.BENIGN,
            "Operating-system services present on every host (DNS client service).",
        )
        for h in env.hosts:  # the DNS client service runs from boot on every host
            self.dnscache(h)

    # -- inspection (tests) ---------------------------------------------------------------

    @property
    def recorded_events(self) -> tuple[Event, ...]:
        """Every event recorded so far, in recording order, before the window cut of
        :meth:`finish` (for tests: actors must never record events outside the window)."""
        return tuple(render.recorded(self))

    @property
    def tunnel_payloads(self) -> tuple[TunnelPayload, ...]:
        return tuple(self._payloads)

    @property
    def flow_totals(self) -> dict[str, tuple[int, int, int, int]]:
        """Flow id to the flow's (bytes out, bytes in, packets out, packets in), as recorded
        (after the cut at the window end): what its export records must add up to."""
        out = {f"f{n}": t for n, t in self._flow_totals.items()}
        for first, *totals in self._flow_total_blocks:
            for n, *t in zip(first.tolist(), *(c.tolist() for c in totals), strict=True):
                out[f"f{n}"] = (t[0], t[1], t[2], t[3])
        return out

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Every host the world knows, by index (the environment's first)."""
        return tuple(self._hosts)

    def note_tunnel_payload(
        self, actor: Actor, encoding: str, domain: str, data: bytes, *, pings: int = 0
    ) -> None:
        """Record the bytes a DNS tunnel actor put into its query names."""
        self._payloads.append(
            TunnelPayload(
                actor_id=actor.actor_id, encoding=encoding, domain=domain, data=data, pings=pings
            )
        )

    # -- actors, hosts and processes --------------------------------------------------------

    def actor(
        self,
        actor_id: str,
        kind: ActorKind,
        description: str,
        *,
        techniques: Sequence[TechniqueId] = (),
        expected: Sequence[AnalyticId] = (),
        trap_for: Sequence[AnalyticId] = (),
        observable_with: Iterable[Field] = (),
    ) -> Actor:
        if actor_id in self._actors:
            raise ValueError(f"actor {actor_id!r} declared twice")
        a = Actor(
            actor_id=actor_id,
            kind=kind,
            description=description,
            techniques=tuple(techniques),
            expected_analytics=tuple(expected),
            trap_for=tuple(trap_for),
            observable_with=frozenset(observable_with),
            code=len(self._actors),
        )
        self._actors[actor_id] = a
        return a

    def host_index(self, host: Host) -> int:
        """The index of ``host`` in :attr:`hosts` (added if the world has not seen it)."""
        i = self._host_index.get(host.name)
        if i is None:
            i = self._host_index[host.name] = len(self._hosts)
            self._hosts.append(host)
            self._ports.append(49_152)
        return i

    def _take(self, count: int) -> int:
        """Reserve ``count`` event numbers; returns the first."""
        first = self._n + 1
        self._n += count
        return first

    def spawn(
        self,
        actor: Actor,
        host: Host,
        ts_ns: int,
        image: str,
        command_line: str,
        *,
        parent: Proc | None = None,
        user: str | None = None,
        signer: str | None = None,
    ) -> Proc:
        hi = self.host_index(host)
        index = len(self._proc_host)
        guid = process_guid(index + 1, self.seed, host.ip)
        name = image.rsplit("\\", 1)[-1]
        self._proc_actor.append(actor.code)
        self._proc_host.append(hi)
        actor.hosts.add(host.name)
        self._stores["process"].rows.append(
            (self._take(1), actor.code, ts_ns, hi, index, 4 * (1000 + (index + 1) % 15_000),
             image, name, command_line, parent.index if parent else -1, user or host.user,
             signer)
        )  # fmt: skip
        return Proc(guid=guid, host=host, name=name, image=image, index=index)

    def spawn_many(
        self,
        actor: Actor,
        hosts: npt.ArrayLike,
        ts_ns: npt.ArrayLike,
        image: str | Sequence[str],
        command_line: str | Sequence[str],
        *,
        user: str | None = None,
        signer: str | Sequence[str] | None = None,
    ) -> Int64s:
        """One process per (host index, time); returns their process indices, for
        :meth:`flows`, :meth:`dns_many` and :meth:`reads`. ``image``, ``command_line`` and
        ``signer`` are one for all or one per process; ``user`` defaults to the host's."""
        host_idx = np.asarray(hosts, dtype=np.int64)
        ts = np.asarray(ts_ns, dtype=np.int64)
        m = len(host_idx)
        first_proc = len(self._proc_host)
        procs = np.arange(first_proc, first_proc + m, dtype=np.int64)
        hl = host_idx.tolist()
        self._proc_actor.extend([actor.code] * m)
        self._proc_host.extend(hl)
        actor.hosts.update(self._hosts[h].name for h in set(hl))
        names: Any = (
            image.rsplit("\\", 1)[-1]
            if isinstance(image, str)
            else [i.rsplit("\\", 1)[-1] for i in image]
        )
        users = user if user is not None else [self._hosts[h].user for h in hl]
        self._stores["process"].block(
            m, n=np.arange(self._take(m), self._n + 1), actor=actor.code, ts=ts, host=host_idx,
            proc=procs, pid=4 * (1000 + (procs + 1) % 15_000), image=image, name=names,
            command_line=command_line, parent=-1, user=users, signer=signer,
        )  # fmt: skip
        return procs

    def proc_host_array(self) -> Int64s:
        """The host index of every process, by process number."""
        return np.asarray(self._proc_host, dtype=np.int64)

    def proc_hosts(self, procs: npt.ArrayLike) -> Int64s:
        """The host index of each process index."""
        return np.asarray(self._proc_host, dtype=np.int64)[np.asarray(procs, dtype=np.int64)]

    def dnscache(self, host: Host) -> Proc:
        """The host's DNS client service, which sends resolver-API queries on Windows."""
        hi = self.host_index(host)
        proc = self._dnscache.get(hi)
        if proc is None:
            proc = self.spawn(
                self._system,
                host,
                self.env.start_ns,
                r"C:\Windows\System32\svchost.exe",
                r"C:\Windows\system32\svchost.exe -k NetworkService -p -s Dnscache",
                user="NETWORK SERVICE",
                signer="Microsoft Windows",
            )
            self._dnscache[hi] = proc
        return proc

    # -- activity, one event per call -------------------------------------------------------

    def read_file(self, actor: Actor, proc: Proc, ts_ns: int, path: str, nbytes: int) -> None:
        self._stores["file"].rows.append(
            (self._take(1), actor.code, ts_ns, self._host_index[proc.host.name], proc.index,
             path, nbytes)
        )  # fmt: skip

    def _ephemeral_port(self, hi: int) -> int:
        port = self._ports[hi]
        self._ports[hi] = 49_152 + (port - 49_152 + 1) % 16_384
        return port

    def flow(
        self,
        actor: Actor,
        proc: Proc,
        ts_ns: int,
        *,
        dst_ip: str,
        dst_port: int,
        bytes_out: int,
        bytes_in: int,
        duration_ns: int = NS_PER_S,
        transport: Transport = Transport.TCP,
        app: AppProtocol = AppProtocol.TLS,
        server_name: str | None = None,
        src_port: int | None = None,
    ) -> str:
        """One flow, reported in active-timeout records; returns its flow id.

        A flow still open at the end of the recording window is reported as the sensor's flush
        at shutdown would: cut at the last nanosecond of the window, with the bytes pro rata."""
        host = proc.host
        hi = self._host_index[host.name]
        sport = src_port if src_port is not None else self._ephemeral_port(hi)
        end_ns = ts_ns + max(duration_ns, 1)
        last_ns = self.env.end_ns - 1
        if end_ns > last_ns and ts_ns < last_ns:
            kept, span = last_ns - ts_ns, end_ns - ts_ns
            bytes_out, bytes_in = bytes_out * kept // span, bytes_in * kept // span
            end_ns = last_ns
        pkts_out = packets(bytes_out, transport, originator=True)
        pkts_in = packets(bytes_in, transport, originator=False)
        direction = _direction(dst_ip)
        actor.hosts.add(host.name)
        timeout = self.active_timeout_ns
        span = end_ns - ts_ns
        count = -(-span // timeout)
        first = self._take(count)
        self._flow_totals[first] = (bytes_out, bytes_in, pkts_out, pkts_in)
        rows = self._stores["flow"].rows
        code, guid = actor.code, proc.index
        if count == 1:  # the common case: one final record with the flow's totals
            rows.append(
                (first, code, end_ns, first, hi, guid, transport, sport, dst_ip, dst_port,
                 direction, app, ts_ns, end_ns, bytes_out, bytes_in, pkts_out, pkts_in, True,
                 server_name)
            )  # fmt: skip
            return f"f{first}"
        sent = recv = po = pi = 0
        for k in range(1, count + 1):
            last = k == count
            t = end_ns if last else ts_ns + k * timeout
            # Spread counts pro rata over the intervals; the last record takes the remainder so
            # the records of a flow always add up to the flow's totals exactly.
            frac = k * timeout
            b_out = bytes_out - sent if last else bytes_out * frac // span - sent
            b_in = bytes_in - recv if last else bytes_in * frac // span - recv
            p_out = pkts_out - po if last else pkts_out * frac // span - po
            p_in = pkts_in - pi if last else pkts_in * frac // span - pi
            sent, recv, po, pi = sent + b_out, recv + b_in, po + p_out, pi + p_in
            rows.append(
                (first + k - 1, code, t, first, hi, guid, transport, sport, dst_ip, dst_port,
                 direction, app, ts_ns, end_ns, b_out, b_in, p_out, p_in, last, server_name)
            )  # fmt: skip
        return f"f{first}"

    def dns(
        self,
        actor: Actor,
        proc: Proc,
        ts_ns: int,
        query: str,
        *,
        qtype: str = "A",
        answers: Sequence[str] = (),
        rcode: str = "NOERROR",
        response_bytes: int | None = None,
        via_api: bool = True,
        resolver_ip: str | None = None,
    ) -> None:
        """A DNS lookup. Through the resolver API the query is attributed to the calling process
        (Sysmon 22) but sent by the DNS client service; from a raw socket it has no process
        attribution and the UDP/53 flow belongs to the tool itself."""
        resolver = resolver_ip or self.env.resolver_ip
        query_bytes = dns_query_bytes(query)
        if response_bytes is None:
            response_bytes = query_bytes + _answer_bytes(tuple(answers))
        sender = self.dnscache(proc.host) if via_api else proc
        self._stores["dns"].rows.append(
            (self._take(1), actor.code, ts_ns, self._host_index[proc.host.name],
             proc.index if via_api else -1, resolver, query, qtype, rcode, tuple(answers),
             query_bytes, response_bytes)
        )  # fmt: skip
        self.flow(
            actor,
            sender,
            ts_ns,
            dst_ip=resolver,
            dst_port=53,
            bytes_out=query_bytes,
            bytes_in=response_bytes,
            duration_ns=DNS_FLOW_NS,
            transport=Transport.UDP,
            app=AppProtocol.DNS,
        )

    def anomaly(
        self,
        actor: Actor,
        ts_ns: int,
        *,
        host: Host | None,
        src: tuple[str, int],
        dst: tuple[str, int],
        kind: AnomalyKind,
        detail: str,
        transport: Transport = Transport.TCP,
        app: AppProtocol = AppProtocol.UNKNOWN,
    ) -> None:
        hi = self.host_index(host) if host is not None else -1
        self._stores["anomaly"].rows.append(
            (self._take(1), actor.code, ts_ns, hi, transport, src[0], src[1], dst[0], dst[1],
             kind, detail, app)
        )  # fmt: skip

    # -- activity, many events per call -----------------------------------------------------

    def reads(
        self,
        actor: Actor,
        procs: npt.ArrayLike,
        ts_ns: npt.ArrayLike,
        paths: str | Sequence[str],
        nbytes: npt.ArrayLike,
    ) -> None:
        """File reads: by process index, time, path (one for all or one each) and size."""
        proc = np.asarray(procs, dtype=np.int64)
        m = len(proc)
        self._stores["file"].block(
            m, n=np.arange(self._take(m), self._n + 1), actor=actor.code,
            ts=np.asarray(ts_ns, dtype=np.int64), host=self.proc_hosts(proc), proc=proc,
            path=paths, bytes=np.asarray(nbytes, dtype=np.int64),
        )  # fmt: skip

    def flows(
        self,
        actor: Actor,
        procs: npt.ArrayLike,
        ts_ns: npt.ArrayLike,
        *,
        dst_ip: str | Sequence[str] | npt.NDArray[np.object_],
        dst_port: int | npt.ArrayLike,
        bytes_out: npt.ArrayLike,
        bytes_in: npt.ArrayLike,
        duration_ns: int | npt.ArrayLike = NS_PER_S,
        transport: Transport = Transport.TCP,
        app: AppProtocol = AppProtocol.TLS,
        server_name: str | Sequence[str | None] | npt.NDArray[np.object_] | None = None,
    ) -> None:
        """Many flows, each exactly as :meth:`flow` would record it (ports taken from each
        host's ephemeral range in the order given)."""
        proc = np.asarray(procs, dtype=np.int64)
        self._flows(actor, proc, np.asarray(ts_ns, dtype=np.int64), None, dst_ip=dst_ip,
                    dst_port=dst_port, bytes_out=bytes_out, bytes_in=bytes_in,
                    duration_ns=duration_ns, transport=transport, app=app,
                    server_name=server_name)  # fmt: skip

    def dns_many(
        self,
        actor: Actor,
        procs: npt.ArrayLike,
        ts_ns: npt.ArrayLike,
        queries: Sequence[str],
        *,
        qtype: str | Sequence[str] = "A",
        answers: tuple[str, ...] | Sequence[tuple[str, ...]] = (),
        response_bytes: npt.ArrayLike | None = None,
        via_api: bool = True,
        resolver_ip: str | Sequence[str] | None = None,
    ) -> None:
        """Many lookups, each exactly as :meth:`dns` would record it: the query, then its
        UDP/53 flow (from the host's DNS client service when ``via_api``)."""
        proc = np.asarray(procs, dtype=np.int64)
        ts = np.asarray(ts_ns, dtype=np.int64)
        m = len(proc)
        resolver: Any = resolver_ip or self.env.resolver_ip
        query_bytes = np.fromiter(map(len, queries), dtype=np.int64, count=m)
        query_bytes += dns_query_bytes("")
        if response_bytes is None:
            if isinstance(answers, tuple):
                extra: Any = _answer_bytes(answers)
            else:
                extra = np.fromiter(map(_answer_bytes, answers), dtype=np.int64, count=m)
            resp = query_bytes + extra
        else:
            resp = np.broadcast_to(np.asarray(response_bytes, dtype=np.int64), (m,))
        hosts = self.proc_hosts(proc)
        if via_api:
            cache = {h: self.dnscache(self._hosts[h]).index for h in set(hosts.tolist())}
            senders = np.array([cache[h] for h in hosts.tolist()], dtype=np.int64)
        else:
            senders = proc
        # Each lookup takes its query's number, then its flow's records (one, unless the flow
        # is cut at the window end or the timeout is shorter than a DNS exchange).
        records = split_flows(
            ts, np.full(m, DNS_FLOW_NS, dtype=np.int64), query_bytes, resp, udp=True,
            last_ns=self.env.end_ns - 1, timeout_ns=self.active_timeout_ns,
        )  # fmt: skip
        first = self._take(m + int(records.count.sum()))
        numbers = first + np.cumsum(records.count + 1) - (records.count + 1)
        self._stores["dns"].block(
            m, n=numbers, actor=actor.code, ts=ts, host=hosts,
            proc=proc if via_api else -1, resolver=resolver, query=list(queries), qtype=qtype,
            rcode="NOERROR", answers=answers, query_bytes=query_bytes, response_bytes=resp,
        )  # fmt: skip
        self._flow_block(
            actor, senders, ts, numbers + 1, records, dst_ip=resolver, dst_port=53,
            transport=Transport.UDP, app=AppProtocol.DNS, server_name=None,
        )  # fmt: skip

    def _flows(
        self,
        actor: Actor,
        proc: Int64s,
        ts: Int64s,
        first_numbers: Int64s | None,
        *,
        dst_ip: Any,
        dst_port: Any,
        bytes_out: Any,
        bytes_in: Any,
        duration_ns: Any,
        transport: Transport,
        app: AppProtocol,
        server_name: Any,
    ) -> None:
        m = len(proc)
        records = split_flows(
            ts, np.broadcast_to(np.asarray(duration_ns, dtype=np.int64), (m,)),
            np.broadcast_to(np.asarray(bytes_out, dtype=np.int64), (m,)),
            np.broadcast_to(np.asarray(bytes_in, dtype=np.int64), (m,)),
            udp=transport is Transport.UDP, last_ns=self.env.end_ns - 1,
            timeout_ns=self.active_timeout_ns,
        )  # fmt: skip
        if first_numbers is None:
            first_numbers = self._take(int(records.count.sum())) + (
                np.cumsum(records.count) - records.count
            )
        self._flow_block(actor, proc, ts, first_numbers, records, dst_ip=dst_ip,
                         dst_port=dst_port, transport=transport, app=app,
                         server_name=server_name)  # fmt: skip

    def _flow_block(
        self,
        actor: Actor,
        proc: Int64s,
        ts: Int64s,
        first_numbers: Int64s,
        records: FlowRecords,
        *,
        dst_ip: Any,
        dst_port: Any,
        transport: Transport,
        app: AppProtocol,
        server_name: Any,
    ) -> None:
        m = len(proc)
        hosts = self.proc_hosts(proc)
        actor.hosts.update(self._hosts[h].name for h in set(hosts.tolist()))
        sports = self._ports_for(hosts)
        if isinstance(dst_ip, str):
            direction: Any = _direction(dst_ip)
            dst: Any = dst_ip
        else:
            dst = as_objects(dst_ip, m)
            direction = as_objects([_direction(d) for d in dst.tolist()], m)
        f = records.flow

        def per_record(values: Any) -> Any:
            if isinstance(values, np.ndarray) and values.ndim == 1:
                return values[f]
            if isinstance(values, list):
                return as_objects(values, m)[f]
            return values

        self._flow_total_blocks.append((first_numbers, *records.totals))
        self._stores["flow"].block(
            len(f), n=first_numbers[f] + records.k - 1, actor=actor.code, ts=records.ts,
            flow=first_numbers[f], host=hosts[f], proc=proc[f], transport=transport,
            src_port=sports[f], dst_ip=per_record(dst), dst_port=per_record(
                np.asarray(dst_port, dtype=np.int64) if not isinstance(dst_port, int)
                else dst_port),
            direction=per_record(direction), app=app, start=ts[f], end=records.end[f],
            bytes_out=records.bytes_out, bytes_in=records.bytes_in,
            packets_out=records.packets_out, packets_in=records.packets_in,
            final=records.final, server_name=per_record(server_name),
        )  # fmt: skip

    def _ports_for(self, hosts: Int64s) -> Int64s:
        """Ephemeral source ports for flows from ``hosts``, each host's in turn, as
        :meth:`flow` takes them one at a time."""
        ports = np.asarray(self._ports, dtype=np.int64)
        order = np.argsort(hosts, kind="stable")
        sorted_hosts = hosts[order]
        starts = np.searchsorted(sorted_hosts, sorted_hosts, side="left")
        rank = np.empty(len(hosts), dtype=np.int64)
        rank[order] = np.arange(len(hosts)) - starts
        out = 49_152 + (ports[hosts] - 49_152 + rank) % 16_384
        counts = np.bincount(hosts, minlength=len(ports))
        for h in np.flatnonzero(counts).tolist():
            self._ports[h] = 49_152 + (self._ports[h] - 49_152 + int(counts[h])) % 16_384
        return out

    # -- output -------------------------------------------------------------------------------

    def finish(self, profile: Profile) -> ScenarioRun:
        """Events in the window, sorted and rendered under ``profile``, and the ground truth."""
        return render.finish(self, profile)


@lru_cache(maxsize=4_096)
def _answer_bytes(answers: tuple[str, ...]) -> int:
    """Bytes the answer records add to a DNS response (as :meth:`World.dns` counts them)."""
    return sum(16 + len(a) for a in answers)


def dns_query_bytes(query: str) -> int:
    """Size of a DNS query message: header, name, type/class, EDNS0 OPT record."""
    return 12 + len(query) + 2 + 4 + 11


def packets(payload: int, transport: Transport, *, originator: bool) -> int:
    """Packets needed to carry ``payload`` bytes, with TCP's handshake and teardown."""
    if transport is Transport.UDP:
        return max(1, -(-payload // _MSS)) if payload else 0
    data = -(-payload // _MSS)
    # SYN (or SYN-ACK), final ACK of the handshake for the originator, FIN, and pure ACKs for
    # roughly every second segment received.
    return data + 2 + (1 if originator else 0)
