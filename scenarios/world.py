"""The synthetic world: an environment of hosts plus a recorder that turns actor behaviour into
events and ground truth at the same time.

Actors never build events by hand. They call :class:`World` (``spawn``, ``read_file``, ``flow``,
``dns``, ``anomaly``); the world numbers events, splits long flows into active-timeout records,
sends resolver-API DNS through the host's DNS client service as Windows does, and books every
event and every byte to the actor that caused it. :meth:`World.finish` sorts the events, renders
them under a telemetry profile and hands back telemetry and ground truth separately.

Flow byte counts are transport payload bytes per direction (as Zeek's ``orig_bytes`` and
``resp_bytes``); DNS flows carry the DNS message sizes.
"""

from __future__ import annotations

import ipaddress
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
from harness.scenario import ScenarioRun
from harness.telemetry import Telemetry, project, sort_events
from harness.truth import ActorKind, ActorTruth, GroundTruth

__all__ = ["Actor", "Environment", "Host", "Proc", "World", "build_environment"]

NS_PER_DAY = 86_400 * NS_PER_S
#: 2026-11-02 00:00:00 UTC, a Monday: synthetic time starts here.
EPOCH_NS = 1_793_577_600 * NS_PER_S
_MSS = 1460


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    name: str
    ip: str
    role: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Hosts, the shared services and the time plan of one synthetic organisation."""

    hosts: tuple[Host, ...]
    resolver_ip: str
    start_ns: int
    baseline_until_ns: int
    end_ns: int

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
    """An organisation on 192.0.2.0/24 with a resolver, servers and named workstations."""
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
    hosts: list[Host] = [Host(name="dc01", ip="192.0.2.10", role="resolver", user="SYSTEM")]
    for i in range(servers):
        hosts.append(
            Host(name=f"srv{i + 1:02d}", ip=f"192.0.2.{20 + i}", role="server", user="SYSTEM")
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
        self._system = self.actor(
            "windows-system",
            ActorKind.BENIGN,
            "Operating-system services present on every host (DNS client service).",
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
            ProcessStart(
                event_id=self._eid(actor),
                ts_ns=ts_ns,
                host=host.name,
                process_guid=guid,
                pid=4 * (1000 + self._guids % 15_000),
                image=image,
                name=name,
                command_line=command_line,
                parent_guid=parent.guid if parent else None,
                user=user or host.user,
                signer=signer,
            )
        )
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
            FileAccess(
                event_id=self._eid(actor),
                ts_ns=ts_ns,
                host=proc.host.name,
                process_guid=proc.guid,
                path=path,
                operation=FileOperation.READ,
                bytes=nbytes,
            )
        )

    def _ephemeral_port(self, host: Host) -> int:
        port = self._ports[host.name]
        self._ports[host.name] = 49_152 + (port - 49_152 + 1) % 16_384
        return port

    def _direction(self, dst_ip: str) -> Direction:
        internal = ipaddress.ip_address(dst_ip) in ipaddress.ip_network("192.0.2.0/24")
        return Direction.INTERNAL if internal else Direction.OUTBOUND

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
        """One flow, reported in active-timeout records; returns its flow id."""
        host = proc.host
        sport = src_port if src_port is not None else self._ephemeral_port(host)
        flow_id = f"f{self._n + 1}"
        end_ns = ts_ns + max(duration_ns, 1)
        pkts_out = _packets(bytes_out, transport, originator=True)
        pkts_in = _packets(bytes_in, transport, originator=False)
        cuts = list(range(ts_ns + self.active_timeout_ns, end_ns, self.active_timeout_ns))
        bounds = [ts_ns, *cuts, end_ns]
        span = end_ns - ts_ns
        sent = recv = po = pi = 0
        actor.hosts.add(host.name)
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
            self._events.append(
                NetworkFlow(
                    event_id=self._eid(actor),
                    ts_ns=bounds[i],
                    flow_id=flow_id,
                    host=host.name,
                    process_guid=proc.guid,
                    transport=transport,
                    src_ip=host.ip,
                    src_port=sport,
                    dst_ip=dst_ip,
                    dst_port=dst_port,
                    direction=self._direction(dst_ip),
                    app_protocol=app,
                    start_ns=ts_ns,
                    end_ns=end_ns,
                    bytes_out=b_out,
                    bytes_in=b_in,
                    packets_out=p_out,
                    packets_in=p_in,
                    is_final=last,
                    server_name=server_name,
                )
            )
            if b_out:
                actor.bytes_points.append((bounds[i], b_out))
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
            DnsQuery(
                event_id=self._eid(actor),
                ts_ns=ts_ns,
                host=proc.host.name,
                process_guid=proc.guid if via_api else None,
                src_ip=proc.host.ip,
                resolver_ip=resolver,
                query=query,
                qtype=qtype,
                rcode=rcode,
                answers=tuple(answers),
                query_bytes=query_bytes,
                response_bytes=response_bytes,
            )
        )
        sender = self.dnscache(proc.host) if via_api else proc
        self.flow(
            actor,
            sender,
            ts_ns,
            dst_ip=resolver,
            dst_port=53,
            bytes_out=query_bytes,
            bytes_in=response_bytes,
            duration_ns=2_000_000,
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
        self._events.append(
            ProtocolAnomaly(
                event_id=self._eid(actor),
                ts_ns=ts_ns,
                host=host.name if host else None,
                transport=transport,
                src_ip=src[0],
                src_port=src[1],
                dst_ip=dst[0],
                dst_port=dst[1],
                anomaly=kind,
                detail=detail,
                app_protocol=app,
            )
        )

    # -- output -------------------------------------------------------------------------------

    def finish(self, profile: Profile) -> ScenarioRun:
        env = self.env
        events = sort_events(e for e in self._events if env.start_ns <= e.ts_ns < env.end_ns)
        kept = {e.event_id for e in events}
        event_actor = {k: v for k, v in self._event_actor.items() if k in kept}
        first_ts: dict[str, int] = {}
        # A process instance counts for the actor that started it, once, if it did anything in
        # the detection window (the DNS client service sends other actors' queries).
        guids: dict[str, set[str]] = defaultdict(set)
        for e in events:
            actor_id = event_actor[e.event_id]
            if e.ts_ns >= env.baseline_until_ns:
                first_ts.setdefault(actor_id, e.ts_ns)
                guid = getattr(e, "process_guid", None)
                if guid is not None:
                    guids[self._spawner[guid]].add(guid)
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
