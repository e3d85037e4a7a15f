"""The synthetic world: an environment of hosts plus a recorder that turns actor behaviour into
events and ground truth at the same time.

Actors never build events by hand. They call :class:`World` (``spawn``, ``read_file``, ``flow``,
``dns``, ``anomaly``); the world numbers events, splits long flows into active-timeout records,
sends resolver-API DNS through the host's DNS client service as Windows does, and books every
event and every byte to the actor that caused it. :meth:`World.finish` sorts the events, renders
them under a telemetry profile (for ``sysmon+zeek``: the split Sysmon and Zeek views, joined by
:func:`harness.ingest.join.join`) and hands back telemetry and ground truth separately.

Flow byte counts are transport payload bytes per direction (as Zeek's ``orig_bytes`` and
``resp_bytes``); DNS flows carry the DNS message sizes.
"""

from __future__ import annotations

import bisect
import dataclasses
import ipaddress
import operator
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from harness.analytics import AnalyticId, TechniqueId
from harness.events import (
    NS_PER_S,
    AnomalyKind,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    FileAccess,
    FileOperation,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
    Transport,
)
from harness.fields import PROFILE_FIELDS, Field, Profile
from harness.ingest.join import join
from harness.scenario import ScenarioRun
from harness.telemetry import Telemetry, origin_event_id, project
from harness.truth import ActorKind, ActorTruth, GroundTruth

__all__ = [
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
]

NS_PER_DAY = 86_400 * NS_PER_S
#: 2026-11-02 00:00:00 UTC, a Monday: synthetic time starts here.
EPOCH_NS = 1_793_577_600 * NS_PER_S
_MSS = 1460
#: Duration of a DNS exchange's UDP flow.
_DNS_FLOW_NS = 2_000_000
#: Address plan limits: workstations on 192.0.2.100-249 (.250 is the printer), servers on
#: 192.0.2.20-99.
MAX_WORKSTATIONS = 150
MAX_SERVERS = 80
_INTERNAL_NET = ipaddress.ip_network("192.0.2.0/24")
_E = TypeVar("_E")


@lru_cache(maxsize=65_536)
def _direction(dst_ip: str) -> Direction:
    """Internal when the destination is in the organisation's range (cached: a third of the
    generation time went into parsing the same few hundred addresses again)."""
    internal = ipaddress.ip_address(dst_ip) in _INTERNAL_NET
    return Direction.INTERNAL if internal else Direction.OUTBOUND


def _positional(cls: type[_E]) -> Callable[..., _E]:
    """A constructor of the frozen, slotted event class ``cls`` taking its fields positionally,
    in declaration order, about 1.5 times as fast as the keyword ``__init__``.

    The generator builds hundreds of thousands of events; a frozen dataclass ``__init__`` goes
    through ``object.__setattr__`` once per field. Events have no ``__post_init__``, so setting
    the slots directly gives equal objects (same ``repr``, same ``==``). If that ever stops
    holding, this falls back to the keyword constructor.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or names != getattr(cls, "__slots__", None):

        def slow(*values: Any) -> _E:
            return cls(**dict(zip(names, values, strict=True)))

        return slow
    setters = tuple(getattr(cls, n).__set__ for n in names)
    new = object.__new__

    arity = len(setters)

    def make(*values: Any) -> _E:
        if len(values) != arity:  # a field added to the event class must not shift the others
            raise TypeError(f"{cls.__name__} takes {arity} fields, got {len(values)}")
        obj = new(cls)
        for setter, value in zip(setters, values):  # noqa: B905 - arity checked above
            setter(obj, value)
        return obj

    return make


_new_flow = _positional(NetworkFlow)
_new_dns = _positional(DnsQuery)
_new_file = _positional(FileAccess)
_new_process = _positional(ProcessStart)
_new_anomaly = _positional(ProtocolAnomaly)


#: The organisation's DNS domain: every host is ``<name>.corp.example``.
DOMAIN = "corp.example"


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A machine: ``role`` is resolver, server or workstation; ``services`` says what a server
    provides (``dns``, ``directory``, ``file``, ``backup``, ``proxy``, ``app``)."""

    name: str
    ip: str
    role: str
    user: str
    services: tuple[str, ...] = ()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Hosts, the shared services and the time plan of one synthetic organisation.

    Address plan (documentation ranges only): the organisation is 192.0.2.0/24 (resolver and
    domain controller .10, servers from .20, workstations from .100, printer .250); outside
    services are spread over 198.51.100.0/24 and 203.0.113.0/24 by a hash of their name."""

    hosts: tuple[Host, ...]
    resolver_ip: str
    start_ns: int
    baseline_until_ns: int
    end_ns: int

    def with_service(self, service: str) -> tuple[Host, ...]:
        """Hosts that provide ``service`` (e.g. ``proxy``, ``file``)."""
        return tuple(h for h in self.hosts if service in h.services)

    @property
    def workstations(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.role == "workstation")

    def days(self, *, detection: bool | None = None) -> range:
        """Day indices (0-based from ``start_ns``): all, only baseline or only detection days."""
        first = 0
        split = (self.baseline_until_ns - self.start_ns) // NS_PER_DAY
        last = (self.end_ns - self.start_ns) // NS_PER_DAY
        if detection is None:
            return range(first, last)
        return range(split, last) if detection else range(first, split)


def build_environment(
    rng: random.Random,
    *,
    workstations: int = 20,
    servers: int = 2,
    baseline_days: int = 3,
    detection_days: int = 1,
) -> Environment:
    """An organisation on 192.0.2.0/24 with a resolver, servers and named workstations.

    The first server is the file and backup server; the second, if there is one, the web
    proxy; any further ones are application servers."""
    first_names = (
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "ivan",
        "judy",
        "mallory",
        "niaj",
        "olivia",
        "peggy",
        "rupert",
        "sybil",
        "trent",
        "victor",
        "walter",
        "yolanda",
    )
    hosts: list[Host] = [
        Host(
            name="dc01",
            ip="192.0.2.10",
            role="resolver",
            user="SYSTEM",
            services=("dns", "directory"),
        )
    ]
    for i in range(servers):
        services = (("file", "backup"), ("proxy",))[i] if i < 2 else ("app",)
        hosts.append(
            Host(
                name=f"srv{i + 1:02d}",
                ip=f"192.0.2.{20 + i}",
                role="server",
                user="SYSTEM",
                services=services,
            )
        )
    for i in range(workstations):
        user = f"{first_names[i % len(first_names)]}{i // len(first_names) or ''}"
        hosts.append(
            Host(name=f"ws{i + 1:03d}", ip=f"192.0.2.{100 + i}", role="workstation", user=user)
        )
    rng.shuffle(hosts[1 + servers :])  # which user sits where does not matter, but is seeded
    start = EPOCH_NS
    return Environment(
        hosts=tuple(hosts),
        resolver_ip="192.0.2.10",
        start_ns=start,
        baseline_until_ns=start + baseline_days * NS_PER_DAY,
        end_ns=start + (baseline_days + detection_days) * NS_PER_DAY,
    )


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
    bytes_points: list[tuple[int, int]] = field(default_factory=list)


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


class World:
    """Records what actors do as events, and books each event to its actor."""

    def __init__(
        self, scenario: str, seed: int, env: Environment, *, active_timeout_s: int = 60
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = env
        self.active_timeout_ns = active_timeout_s * NS_PER_S
        self._events: list[Event] = []
        self._event_actor: dict[str, str] = {}
        self._actors: dict[str, Actor] = {}
        self._n = 0
        self._guids = 0
        self._ports: dict[str, int] = defaultdict(lambda: 49_152)
        self._dnscache: dict[str, Proc] = {}
        self._spawner: dict[str, str] = {}
        self._payloads: list[TunnelPayload] = []
        self._flow_totals: dict[str, tuple[int, int, int, int]] = {}
        self._system = self.actor(
            "windows-system",
            ActorKind.BENIGN,
            "Operating-system services present on every host (DNS client service).",
        )

    @property
    def recorded_events(self) -> tuple[Event, ...]:
        """Every event recorded so far, in recording order, before the window cut of
        :meth:`finish` (for tests: actors must never record events outside the window)."""
        return tuple(self._events)

    @property
    def tunnel_payloads(self) -> tuple[TunnelPayload, ...]:
        return tuple(self._payloads)

    @property
    def flow_totals(self) -> dict[str, tuple[int, int, int, int]]:
        """Flow id to the flow's (bytes out, bytes in, packets out, packets in), as recorded
        (after the cut at the window end): what its export records must add up to."""
        return dict(self._flow_totals)

    def note_tunnel_payload(
        self, actor: Actor, encoding: str, domain: str, data: bytes, *, pings: int = 0
    ) -> None:
        """Record the bytes a DNS tunnel actor put into its query names."""
        self._payloads.append(
            TunnelPayload(
                actor_id=actor.actor_id, encoding=encoding, domain=domain, data=data, pings=pings
            )
        )

    # -- actors and processes -------------------------------------------------------------

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
        )
        self._actors[actor_id] = a
        return a

    def _eid(self, actor: Actor) -> str:
        self._n += 1
        eid = f"e{self._n}"
        self._event_actor[eid] = actor.actor_id
        return eid

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
        self._guids += 1
        octet = int(host.ip.rsplit(".", 1)[-1])
        guid = f"{{{self._guids:08X}-{self.seed & 0xFFFF:04X}-4E0B-8000-{octet:012X}}}"
        name = image.rsplit("\\", 1)[-1]
        actor.hosts.add(host.name)
        self._spawner[guid] = actor.actor_id
        self._events.append(
            _new_process(
                self._eid(actor), ts_ns, host.name, guid, 4 * (1000 + self._guids % 15_000),
                image, name, command_line, parent.guid if parent else None, user or host.user,
                signer,
            )
        )  # fmt: skip
        return Proc(guid=guid, host=host, name=name, image=image)

    def dnscache(self, host: Host) -> Proc:
        """The host's DNS client service, which sends resolver-API queries on Windows."""
        proc = self._dnscache.get(host.name)
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
            self._dnscache[host.name] = proc
        return proc

    # -- activity ---------------------------------------------------------------------------

    def read_file(self, actor: Actor, proc: Proc, ts_ns: int, path: str, nbytes: int) -> None:
        self._events.append(
            _new_file(
                self._eid(actor), ts_ns, proc.host.name, proc.guid, path, FileOperation.READ,
                nbytes,
            )
        )  # fmt: skip

    def _ephemeral_port(self, host: Host) -> int:
        port = self._ports[host.name]
        self._ports[host.name] = 49_152 + (port - 49_152 + 1) % 16_384
        return port

    @staticmethod
    def _direction(dst_ip: str) -> Direction:
        return _direction(dst_ip)

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
        sport = src_port if src_port is not None else self._ephemeral_port(host)
        n = self._n
        flow_id = f"f{n + 1}"
        end_ns = ts_ns + max(duration_ns, 1)
        last_ns = self.env.end_ns - 1
        if end_ns > last_ns and ts_ns < last_ns:
            kept, span = last_ns - ts_ns, end_ns - ts_ns
            bytes_out, bytes_in = bytes_out * kept // span, bytes_in * kept // span
            end_ns = last_ns
        pkts_out = _packets(bytes_out, transport, originator=True)
        pkts_in = _packets(bytes_in, transport, originator=False)
        direction = _direction(dst_ip)
        self._flow_totals[flow_id] = (bytes_out, bytes_in, pkts_out, pkts_in)
        actor.hosts.add(host.name)
        event_actor = self._event_actor
        append = self._events.append
        actor_id = actor.actor_id
        timeout = self.active_timeout_ns
        if end_ns - ts_ns <= timeout:
            # The common case: one final record with the flow's totals.
            n += 1
            self._n = n
            eid = f"e{n}"
            event_actor[eid] = actor_id
            append(
                _new_flow(
                    eid, end_ns, flow_id, host.name, proc.guid, transport, host.ip, sport,
                    dst_ip, dst_port, direction, app, ts_ns, end_ns, bytes_out, bytes_in,
                    pkts_out, pkts_in, True, server_name,
                )
            )  # fmt: skip
            if bytes_out:
                actor.bytes_points.append((end_ns, bytes_out))
            return flow_id
        bounds = [ts_ns, *range(ts_ns + timeout, end_ns, timeout), end_ns]
        span = end_ns - ts_ns
        sent = recv = po = pi = 0
        for i in range(1, len(bounds)):
            last = i == len(bounds) - 1
            frac_num = bounds[i] - ts_ns
            # Spread counts pro rata over the intervals; the last record takes the remainder so
            # the records of a flow always add up to the flow's totals exactly.
            b_out = bytes_out - sent if last else bytes_out * frac_num // span - sent
            b_in = bytes_in - recv if last else bytes_in * frac_num // span - recv
            p_out = pkts_out - po if last else pkts_out * frac_num // span - po
            p_in = pkts_in - pi if last else pkts_in * frac_num // span - pi
            sent, recv, po, pi = sent + b_out, recv + b_in, po + p_out, pi + p_in
            n += 1
            eid = f"e{n}"
            event_actor[eid] = actor_id
            append(
                _new_flow(
                    eid, bounds[i], flow_id, host.name, proc.guid, transport, host.ip, sport,
                    dst_ip, dst_port, direction, app, ts_ns, end_ns, b_out, b_in, p_out, p_in,
                    last, server_name,
                )
            )  # fmt: skip
            if b_out:
                actor.bytes_points.append((bounds[i], b_out))
        self._n = n
        return flow_id

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
        query_bytes = 12 + len(query) + 2 + 4 + 11  # header, name, type/class, EDNS0 OPT
        if response_bytes is None:
            response_bytes = query_bytes + sum(16 + len(a) for a in answers)
        self._events.append(
            _new_dns(
                self._eid(actor), ts_ns, proc.host.name, proc.guid if via_api else None,
                proc.host.ip, resolver, query, qtype, rcode, tuple(answers), query_bytes,
                response_bytes,
            )
        )  # fmt: skip
        sender = self.dnscache(proc.host) if via_api else proc
        end_ns = ts_ns + _DNS_FLOW_NS
        if end_ns >= self.env.end_ns or self.active_timeout_ns < _DNS_FLOW_NS:
            self.flow(
                actor,
                sender,
                ts_ns,
                dst_ip=resolver,
                dst_port=53,
                bytes_out=query_bytes,
                bytes_in=response_bytes,
                duration_ns=_DNS_FLOW_NS,
                transport=Transport.UDP,
                app=AppProtocol.DNS,
            )
            return
        # The common case, inlined: exactly the single final record flow() would make.
        host = sender.host
        sport = self._ephemeral_port(host)
        n = self._n + 1
        flow_id, eid = f"f{n}", f"e{n}"
        self._n = n
        pkts_out = max(1, -(-query_bytes // _MSS)) if query_bytes else 0
        pkts_in = max(1, -(-response_bytes // _MSS)) if response_bytes else 0
        self._flow_totals[flow_id] = (query_bytes, response_bytes, pkts_out, pkts_in)
        actor.hosts.add(host.name)
        self._event_actor[eid] = actor.actor_id
        self._events.append(
            _new_flow(
                eid, end_ns, flow_id, host.name, sender.guid, Transport.UDP, host.ip, sport,
                resolver, 53, _direction(resolver), AppProtocol.DNS, ts_ns, end_ns, query_bytes,
                response_bytes, pkts_out, pkts_in, True, None,
            )
        )  # fmt: skip
        if query_bytes:
            actor.bytes_points.append((end_ns, query_bytes))

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
        self._events.append(
            _new_anomaly(
                self._eid(actor), ts_ns, host.name if host else None, transport, src[0], src[1],
                dst[0], dst[1], kind, detail, app,
            )
        )  # fmt: skip

    # -- output -------------------------------------------------------------------------------

    def finish(self, profile: Profile) -> ScenarioRun:
        env = self.env
        start_ns, end_ns = env.start_ns, env.end_ns
        events = [e for e in self._events if start_ns <= e.ts_ns < end_ns]
        # The order of harness.telemetry.sort_events (time, then event id), with a C-level key.
        events.sort(key=operator.attrgetter("ts_ns", "event_id"))
        if len(events) == len(self._events):
            event_actor = dict(self._event_actor)
        else:
            kept = {e.event_id for e in events}
            event_actor = {k: v for k, v in self._event_actor.items() if k in kept}
        first_ts: dict[str, int] = {}
        # A process instance counts for the actor that started it, once, if it did anything in
        # the detection window (the DNS client service sends other actors' queries).
        guids: dict[str, set[str]] = defaultdict(set)
        spawner = self._spawner
        split = bisect.bisect_left(events, env.baseline_until_ns, key=operator.attrgetter("ts_ns"))
        for e in events[split:]:
            actor_id = event_actor[e.event_id]
            if actor_id not in first_ts:
                first_ts[actor_id] = e.ts_ns
            guid = getattr(e, "process_guid", None)
            if guid is not None:
                guids[spawner[guid]].add(guid)
        actors = []
        for a in sorted(self._actors.values(), key=lambda a: a.actor_id):
            total = 0
            timeline: list[tuple[int, int]] = []
            for ts, n in sorted(p for p in a.bytes_points if env.start_ns <= p[0] < env.end_ns):
                total += n
                if timeline and timeline[-1][0] == ts:
                    timeline[-1] = (ts, total)
                else:
                    timeline.append((ts, total))
            actors.append(
                ActorTruth(
                    actor_id=a.actor_id,
                    kind=a.kind,
                    description=a.description,
                    techniques=a.techniques,
                    expected_analytics=a.expected_analytics,
                    trap_for=a.trap_for,
                    observable_with=a.observable_with,
                    start_ns=first_ts.get(a.actor_id),
                    hosts=tuple(sorted(a.hosts)),
                    process_instances=len(guids[a.actor_id]),
                    bytes_timeline=tuple(timeline),
                )
            )
        rendered = project(events, profile)
        if profile is Profile.SYSMON_ZEEK:
            # The split sensor views are joined here, as a SOC's pipeline would before its
            # detections run; the runner and the detectors see only the joined telemetry. Events
            # the rendering derived (connections, the network copy of a DNS query) are booked to
            # the actor of the event they came from.
            rendered = list(join(rendered))
            for e in rendered:
                if e.event_id not in event_actor:
                    event_actor[e.event_id] = event_actor[origin_event_id(e.event_id)]
        telemetry = Telemetry(
            profile=profile.value,
            fields=PROFILE_FIELDS[profile],
            hosts=tuple(h.name for h in env.hosts),
            start_ns=env.start_ns,
            baseline_until_ns=env.baseline_until_ns,
            end_ns=env.end_ns,
            events=rendered,
        )
        truth = GroundTruth(
            scenario=self.scenario, seed=self.seed, actors=tuple(actors), event_actor=event_actor
        )
        return ScenarioRun(telemetry=telemetry, truth=truth)


def _packets(payload: int, transport: Transport, *, originator: bool) -> int:
    """Packets needed to carry ``payload`` bytes, with TCP's handshake and teardown."""
    if transport is Transport.UDP:
        return max(1, -(-payload // _MSS)) if payload else 0
    data = -(-payload // _MSS)
    # SYN (or SYN-ACK), final ACK of the handshake for the originator, FIN, and pure ACKs for
    # roughly every second segment received.
    return data + 2 + (1 if originator else 0)
