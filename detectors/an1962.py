"""AN1962 reference detector: uncommon data flows and protocol non-conformance.

MITRE (DET0830): "Monitor network data for uncommon data flows. Processes utilizing the network
that do not normally have network communication or have never been seen before are suspicious.
Monitor and analyze traffic patterns and packet inspection associated to protocol(s) that do not
follow the expected protocol standards and traffic flows ..." MITRE gives no logic or thresholds;
this is ours.

Logic
-----
Three kinds of evidence, each usable on its own, so the analytic is evaluable wherever flows
carry a payload-identified application protocol (``edr``: flows with processes, no packet
inspection; ``network-only``: packet-inspection anomalies and flows without processes).

1. **Port/protocol mismatch** (flows). An *outbound* flow whose payload protocol does not belong
   on its port (:mod:`detectors.features.portproto`): severity 1.0 for impersonation (TLS or HTTP
   on 53, plain HTTP on 443, DNS off 53, SMB off 445/139), 0.7 for an odd port (TLS on 8531,
   HTTP on 8090, an unidentified payload on TCP/443). Not counted: QUIC, RTP and DTLS on UDP
   (meeting media, HTTP/3), group destinations (mDNS on 5353, LLMNR, SSDP), an "unknown" payload
   with no data one way or from a flow that began in the first ``capture_grace_s`` of the
   recording (a mid-connection start hides the TLS handshake), and any combination seen in the
   baseline for that destination (address, protocol, port) or for that process image (so a
   vendor updater on TLS/8531 that ran in the baseline is known).

2. **Packet-inspection anomalies** (``ProtocolAnomaly``), weighed by kind: injected reset 0.25,
   out of window 0.25, no handshake 0.3, malformed DNS 0.5, wrong direction of first data 0.5,
   port/protocol mismatch by the table above (0.3 for an unidentified payload the sensor calls
   a mismatch and the table does not judge; 0 for an identified protocol the table accepts
   there, such as RTP on UDP/443). Discounts for what real captures produce benignly: the
   TCP-state kinds count 0 in the first ``capture_grace_s`` of the recording and for
   connections already under way then; malformed DNS counts 0 on mDNS/LLMNR/NetBIOS ports;
   wrong-direction first data counts a fifth on server-speaks-first ports (SMTP, FTP, SSH,
   POP3, IMAP ...); anything to a multicast or broadcast address counts 0; a pair with no
   external endpoint counts half.

   Evidence from (1) and (2) accumulates per **endpoint pair** (the two addresses, ports
   ignored) over ``window_s``. Each kind contributes its mean weight times ``1 + log2(n)`` for
   ``n`` distinct occurrences (for identified mismatching protocols, distinct 5-tuples per five
   minutes, so a flow record and the sensor's anomaly for one session count once and a
   keep-alive C2 session keeps counting; for unidentified payloads, distinct 5-tuples; for
   the packet kinds, distinct 5-tuple-minutes),
   and the packet kinds saturate at ``n = 2`` (a retransmission storm in one connection is not
   a campaign). The sum is raised 10 % per additional distinct kind (extraneous packets of many
   kinds between the same two addresses are rare in benign traffic). The pair alerts when the
   score reaches ``min_score``: with the default 2.0, two impersonating sessions, four odd-port
   sessions, or five anomalies of five kinds.

3. **Uncommon processes on the network** (needs process telemetry). A process whose image never
   ran anywhere in the baseline (first seen), or whose image ran but never opened an outbound
   flow (network-silent, e.g. rundll32), opens an outbound flow. It is scored 0.4 (first seen)
   or 0.35 (silent) plus command-line and launch indicators
   (:mod:`detectors.features.cmdline`): encoded command or Base64 blob, download cradle, LOLBin
   given a URL or a user-folder file, hidden PowerShell (together at most +0.5); image in a
   user-writable folder (+0.2 unsigned, +0.05 signed); unsigned (+0.1); an Office application
   or script host as parent (+0.2). It alerts when the score reaches ``min_process_score``
   and, for a first-seen image, the image has run on fewer than ``max_fleet_hosts`` hosts so
   far (prevalence keeps growing during detection: a signed app rolled out to many hosts at
   once stops being rare, and without indicators it never reaches the threshold anyway).

One alert per entity per episode: an endpoint pair, or a (host, image) for process alerts, does
not alert again until it has been quiet for ``episode_gap_s``. Alerts cite the events that made
them (flows, anomalies, the process start), name the entity and give a one-line reason; a
mismatch alert in process telemetry also names the process and whether it is new.

Assumptions: flows are seen from the originator and carry a payload-identified application
protocol and a direction (internal addresses are learnt from the baseline; otherwise private,
loopback, link-local and group addresses are internal and everything else external); the
start of the recording is the first event the detector is shown (fit or observe); the baseline
(if any) is clean.

Known gaps:
  * A protocol on its own port is never a mismatch: C2 over proper TLS on 443 or HTTP on 80 is
    invisible to (1) and (2); only (3) can see its process, and only if the process is new,
    network-silent or launched suspiciously.
  * Unidentified custom protocols on high ports are not mismatches (AN1225 and AN0030 judge
    those by volume); TLS or HTTP on an odd port that the baseline saw to the same address is
    trusted.
  * Internal (east-west) flows are not judged for port/protocol mismatch; internal anomaly
    pairs count half.
  * Anomaly weights are judgement, not learnt: a network whose firewall injects resets and whose
    links drop packets on one path all day can reach ``min_score`` for that pair (three weak
    kinds, each twice in an hour, stay below 2.0; add a fourth kind and they do not).
  * Without packet inspection (``edr``) extraneous packets are invisible; without process
    telemetry (``network-only``) uncommon processes are.
  * A malicious process whose image ran and used the network somewhere in the baseline (a
    renamed tool at a known path, an injected browser) is not uncommon here.
  * A first-seen process with no suspicious launch indicator (a new unsigned tool in
    ``C:\\Tools``) does not alert: new software alone is too common to alert on.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from detectors.features.cmdline import (
    command_line_indicators,
    risky_parent,
    user_writable_image,
)
from detectors.features.portproto import (
    STANDARD_PORTS,
    Mismatch,
    is_group_address,
    is_local_address,
    port_protocol_verdict,
)
from detectors.features.process import ProcessTable, image_key
from harness.alerts import Alert, Entity
from harness.analytics import AnalyticId, TechniqueId, analytic_id, technique_id
from harness.detector import Detector, Tunable
from harness.events import (
    NS_PER_S,
    AnomalyKind,
    AppProtocol,
    Direction,
    Event,
    EventKind,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
    Transport,
)
from harness.fields import Field

__all__ = ["UncommonFlows"]

_OUTBOUND, _INBOUND, _INTERNAL = Direction.OUTBOUND, Direction.INBOUND, Direction.INTERNAL
_TCP, _UDP = Transport.TCP, Transport.UDP
_UNKNOWN = AppProtocol.UNKNOWN

#: Kind indices of the per-pair evidence: the port/protocol mismatch (flows and sensor
#: anomalies alike) first, then the packet-level kinds.
_MISMATCH = 0
_PACKET_KINDS: tuple[AnomalyKind, ...] = (
    AnomalyKind.NO_HANDSHAKE,
    AnomalyKind.OUT_OF_WINDOW,
    AnomalyKind.INJECTED_RESET,
    AnomalyKind.MALFORMED_DNS,
    AnomalyKind.WRONG_DIRECTION_FIRST_DATA,
)
_KIND_INDEX: dict[AnomalyKind, int] = {k: i + 1 for i, k in enumerate(_PACKET_KINDS)}
_KIND_INDEX[AnomalyKind.PORT_PROTOCOL_MISMATCH] = _MISMATCH
_KIND_LABEL = ("port/protocol mismatch", *(k.value.replace("_", " ") for k in _PACKET_KINDS))
_N_KINDS = len(_KIND_LABEL)
#: Base weight of one occurrence of each packet-level kind (see the module docstring).
_PACKET_WEIGHT: dict[AnomalyKind, float] = {
    AnomalyKind.NO_HANDSHAKE: 0.3,
    AnomalyKind.OUT_OF_WINDOW: 0.25,
    AnomalyKind.INJECTED_RESET: 0.25,
    AnomalyKind.MALFORMED_DNS: 0.5,
    AnomalyKind.WRONG_DIRECTION_FIRST_DATA: 0.5,
}
#: Kinds that a recording starting mid-connection produces for connections already under way.
_TCP_STATE = frozenset(
    {
        AnomalyKind.NO_HANDSHAKE,
        AnomalyKind.OUT_OF_WINDOW,
        AnomalyKind.INJECTED_RESET,
        AnomalyKind.WRONG_DIRECTION_FIRST_DATA,
    }
)
#: Weight of a sensor-reported mismatch the port table considers conforming.
_SENSOR_ONLY_MISMATCH = 0.3
#: Packet kinds stop growing at this many occurrences: 1 + log2(2).
_PACKET_SATURATION = 2.0
_DIVERSITY_BONUS = 0.1
_INTERNAL_PAIR_FACTOR = 0.5
_SERVER_FIRST_FACTOR = 0.2
#: Ports whose protocol speaks first from the server (banner or greeting).
_SERVER_FIRST_PORTS = frozenset({21, 22, 23, 25, 110, 143, 587, 2525, 3306, 5900, 6667})
#: mDNS, LLMNR and NetBIOS name service: DNS-like, not DNS, malformed by a DNS parser's light.
_NAME_SERVICE_PORTS = frozenset({5353, 5355, 137})
#: Packet anomalies in the same 5-tuple within this many seconds are one occurrence.
_DEDUPE_NS = 60 * NS_PER_S
#: Records of one 5-tuple with an identified mismatching protocol within this many seconds are
#: one occurrence (a flow record and the sensor's anomaly for it count once; a long session
#: counts again every five minutes it keeps talking). An *unidentified* payload counts once per
#: 5-tuple however long it lasts: a TLS connection resumed after idling since before the
#: recording looks exactly like that, and the sensor may report it in several records.
_MISMATCH_BUCKET_NS = 300 * NS_PER_S
#: Evidence ids cited per alert, the most recent ones.
_MAX_EVIDENCE = 32
_PRUNE_EVERY = 4_096
_MAX_MIDSTREAM = 100_000
_MAX_JUDGED = 65_536

# Process scoring (see the module docstring).
_FIRST_SEEN_BASE = 0.4
_SILENT_BASE = 0.35
_INDICATOR_WEIGHT = {
    "encoded-command": 0.35,
    "base64-blob": 0.25,
    "download-cradle": 0.35,
    "lolbin-remote": 0.35,
    "lolbin-user-path": 0.35,
    "hidden-powershell": 0.2,
}
_INDICATORS_CAP = 0.5
_WRITABLE_UNSIGNED, _WRITABLE_SIGNED = 0.2, 0.05
_UNSIGNED = 0.1
_RISKY_PARENT = 0.2

#: Fast conformance check for the common case, without hashing enum members: per transport,
#: port -> the protocols that conform there (tuple membership compares identity first).
_TCP_OK: dict[int, tuple[AppProtocol, ...]] = {}
_UDP_OK: dict[int, tuple[AppProtocol, ...]] = {}
for (_app, _tr), _ports in STANDARD_PORTS.items():
    _table = _TCP_OK if _tr is _TCP else _UDP_OK
    for _port in _ports:
        _table[_port] = (*_table.get(_port, ()), _app)
_UDP_ANY = (AppProtocol.QUIC, AppProtocol.RTP, AppProtocol.TLS)

_Tuple = tuple[Transport, str, int, str, int]
_Conn = tuple[Transport, tuple[str, int], tuple[str, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Candidate:
    """A process whose launch makes it alert-worthy once it talks outward."""

    score: float
    first_seen: bool
    reasons: tuple[str, ...]
    start_event: str


class _Pair:
    """Windowed evidence between two addresses: per-kind distinct occurrences and weights."""

    __slots__ = (
        "alerted_ns",
        "counts",
        "items",
        "keys",
        "last_ns",
        "latest_mismatch",
        "weights",
    )

    def __init__(self) -> None:
        # (ts_ns, kind, dedupe key, event id) oldest first
        self.items: deque[tuple[int, int, Hashable, str]] = deque()
        # (kind, dedupe key) -> [references in window, weight]
        self.keys: dict[tuple[int, Hashable], list[float]] = {}
        self.counts = [0] * _N_KINDS
        self.weights = [0.0] * _N_KINDS
        self.last_ns = 0
        self.alerted_ns: int | None = None
        self.latest_mismatch: str | None = None

    def add(
        self, ts_ns: int, kind: int, key: Hashable, weight: float, event_id: str, window_ns: int
    ) -> None:
        self.last_ns = ts_ns
        horizon = ts_ns - window_ns
        items, keys = self.items, self.keys
        while items and items[0][0] <= horizon:
            _, k, dk, _ = items.popleft()
            old = keys[(k, dk)]
            old[0] -= 1
            if old[0] <= 0:
                del keys[(k, dk)]
                self.counts[k] -= 1
                self.weights[k] -= old[1]
        items.append((ts_ns, kind, key, event_id))
        ref = keys.get((kind, key))
        if ref is None:
            keys[(kind, key)] = [1, weight]
            self.counts[kind] += 1
            self.weights[kind] += weight
        else:
            ref[0] += 1

    def score(self) -> float:
        total, kinds = 0.0, 0
        for kind in range(_N_KINDS):
            n = self.counts[kind]
            if n <= 0:
                continue
            kinds += 1
            growth = 1.0 + math.log2(n)
            if kind != _MISMATCH:
                growth = min(growth, _PACKET_SATURATION)
            total += self.weights[kind] / n * growth
        return total * (1.0 + _DIVERSITY_BONUS * max(0, kinds - 1))

    def reset(self) -> None:
        self.items.clear()
        self.keys.clear()
        self.counts = [0] * _N_KINDS
        self.weights = [0.0] * _N_KINDS
        self.latest_mismatch = None


class UncommonFlows(Detector):
    """Alerts on port/protocol mismatches, extraneous or malformed packets between two
    addresses, and uncommon or suspiciously launched processes opening outbound flows (see the
    module docstring for the logic and its gaps)."""

    id: ClassVar[str] = "an1962-uncommon-flows"
    analytic: ClassVar[AnalyticId] = analytic_id("AN1962")
    techniques: ClassVar[tuple[TechniqueId, ...]] = (
        technique_id("T1571"),
        technique_id("T1205"),
        technique_id("T1095"),
        technique_id("T1071"),
    )
    required_fields: ClassVar[frozenset[Field]] = frozenset({Field.FLOW_APP_PROTOCOL})
    consumes: ClassVar[frozenset[EventKind]] = frozenset(
        {EventKind.PROCESS_START, EventKind.NETWORK_FLOW, EventKind.PROTOCOL_ANOMALY}
    )
    tunable_specs: ClassVar[Mapping[str, Tunable]] = {
        "min_score": Tunable(
            default=2.0,
            minimum=0.1,
            maximum=100.0,
            primary=True,
            description="evidence score of one endpoint pair within window_s that raises an "
            "alert (2.0: two impersonating sessions, four odd-port sessions, or five packet "
            "anomalies of five kinds)",
        ),
        "window_s": Tunable(
            default=3_600,
            minimum=10,
            maximum=7 * 86_400,
            description="sliding window over which a pair's evidence accumulates, seconds",
        ),
        "episode_gap_s": Tunable(
            default=3_600,
            minimum=0,
            maximum=30 * 86_400,
            description="quiet time after which an entity that alerted may alert again, seconds",
        ),
        "capture_grace_s": Tunable(
            default=300,
            minimum=0,
            maximum=86_400,
            description="start of the recording in which mid-connection artefacts (no "
            "handshake, out of window, resets, unidentified payload on 443) do not count, s",
        ),
        "min_process_score": Tunable(
            default=0.7,
            minimum=0.0,
            maximum=2.0,
            description="launch score (first-seen or network-silent image plus command-line, "
            "folder, signature and parent indicators) at which a process talking outward alerts",
        ),
        "max_fleet_hosts": Tunable(
            default=3,
            minimum=1,
            maximum=1e6,
            description="a first-seen image already run on this many hosts is a rollout, not rare",
        ),
    }

    def __init__(self, **tunables: float) -> None:
        super().__init__(**tunables)
        self.min_score = self.tunables["min_score"]
        self.window_ns = int(self.tunables["window_s"] * NS_PER_S)
        self.episode_gap_ns = int(self.tunables["episode_gap_s"] * NS_PER_S)
        self.grace_ns = int(self.tunables["capture_grace_s"] * NS_PER_S)
        self.min_process_score = self.tunables["min_process_score"]
        self.max_fleet_hosts = int(self.tunables["max_fleet_hosts"])
        self._t0: int | None = None
        self._grace_end = 0
        self._procs = ProcessTable()
        self._base_images: set[str] = set()
        self._net_images: set[str] = set()
        self._internal: set[str] = set()
        self._known_dst: set[tuple[str, AppProtocol, Transport, int]] = set()
        self._known_image: set[tuple[str, AppProtocol, Transport, int]] = set()
        # Connections under way when the recording started, and connections the sensor saw
        # without a handshake (conn -> last time): their payload cannot be identified.
        self._early: set[_Conn] = set()
        self._midstream: dict[_Conn, int] = {}
        self._candidates: dict[str, _Candidate] = {}
        self._judged: dict[
            tuple[str, str, bool, str | None, bool], tuple[float, bool, tuple[str, ...]]
        ] = {}
        self._proc_episode: dict[tuple[str, str], int] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._inserts = 0

    # -- learning -----------------------------------------------------------------------------

    def _start_clock(self, ts_ns: int) -> None:
        self._t0 = ts_ns
        self._grace_end = ts_ns + self.grace_ns

    def fit(self, baseline: Iterable[Event]) -> None:
        # Flat, dispatched on the event's class: the baseline is most of a recording.
        starts: list[ProcessStart] = []
        procs = self._procs
        internal, net_images = self._internal, self._net_images
        guid_image: dict[str, str] = {}  # what procs.image() answers, without two calls
        events = iter(baseline)
        first = next(events, None)
        if first is not None and self._t0 is None:
            self._start_clock(first.ts_ns)
        grace_end, early = self._grace_end, self._early
        for event in itertools.chain(() if first is None else (first,), events):
            if type(event) is NetworkFlow:
                direction = event.direction
                if direction is not _INBOUND:
                    internal.add(event.src_ip)
                if direction is _INTERNAL:
                    internal.add(event.dst_ip)
                if event.start_ns < grace_end:
                    early.add(_flow_conn(event))
                if direction is not _OUTBOUND:
                    continue
                guid = event.process_guid
                image = guid_image.get(guid) if guid is not None else None
                if image is not None:
                    net_images.add(image)
                app, transport, port = event.app_protocol, event.transport, event.dst_port
                ok = (_TCP_OK if transport is _TCP else _UDP_OK).get(port)
                if ok is not None and app in ok:
                    continue  # conforms (the fast table agrees with port_protocol_verdict)
                if port_protocol_verdict(app, transport, port) is not None:
                    self._known_dst.add((event.dst_ip, app, transport, port))
                    if image is not None:
                        self._known_image.add((image, app, transport, port))
            elif type(event) is ProcessStart:
                procs.learn(event)
                image = image_key(event.image)
                guid_image[event.process_guid] = image
                self._base_images.add(image)
                starts.append(event)
        # A process started in the baseline may first talk outward in the detection window;
        # judged now, when the baseline's network-using images are all known.
        for proc in starts:
            self._judge_process(proc)

    def _judge_process(self, proc: ProcessStart) -> None:
        """Remember ``proc`` as a candidate if its launch alone could make it alert."""
        image = image_key(proc.image)
        if image in self._net_images:
            return
        parent = self._procs.get(proc.parent_guid)
        key = (
            proc.image,
            proc.command_line,
            proc.signer is None,
            parent.image if parent is not None else None,
            image in self._base_images,
        )
        judged = self._judged.get(key)
        if judged is None:
            if len(self._judged) >= _MAX_JUDGED:
                self._judged.clear()
            judged = self._judged[key] = self._launch_score(proc, image, parent)
        score, first_seen, reasons = judged
        if score >= self.min_process_score:
            self._candidates[proc.process_guid] = _Candidate(
                score=score, first_seen=first_seen, reasons=reasons, start_event=proc.event_id
            )

    def _launch_score(
        self, proc: ProcessStart, image: str, parent: ProcessStart | None
    ) -> tuple[float, bool, tuple[str, ...]]:
        """Score, first-seen flag and reasons of a launch (pure: cached by its inputs)."""
        first_seen = image not in self._base_images
        score = _FIRST_SEEN_BASE if first_seen else _SILENT_BASE
        reasons = ["first seen in the fleet" if first_seen else "never used the network before"]
        found = command_line_indicators(proc.image, proc.command_line)
        if found:
            score += min(_INDICATORS_CAP, sum(_INDICATOR_WEIGHT[i] for i in found))
            reasons.append("command line: " + ", ".join(found))
        unsigned = proc.signer is None
        if user_writable_image(proc.image):
            score += _WRITABLE_UNSIGNED if unsigned else _WRITABLE_SIGNED
            reasons.append("runs from a user-writable folder")
        if unsigned:
            score += _UNSIGNED
            reasons.append("unsigned")
        if parent is not None and risky_parent(parent.image):
            score += _RISKY_PARENT
            reasons.append(f"started by {parent.name}")
        return score, first_seen, tuple(reasons)

    # -- detection ----------------------------------------------------------------------------

    def observe(self, event: Event) -> Sequence[Alert]:
        if self._t0 is None:
            self._start_clock(event.ts_ns)
        if type(event) is NetworkFlow:
            # Hot path, kept flat: most flows are internal, or conform on their port, and come
            # from processes that are not candidates.
            if event.start_ns < self._grace_end:
                self._early.add(_flow_conn(event))
            if event.direction is not _OUTBOUND:
                return ()
            guid = event.process_guid
            if guid is None or guid not in self._candidates:
                app, port = event.app_protocol, event.dst_port
                udp = event.transport is _UDP
                ok = (_UDP_OK if udp else _TCP_OK).get(port)
                if ok is not None:
                    if app in ok:
                        return ()
                elif app is _UNKNOWN:
                    if port != 443 and port != 53:
                        return ()
                elif udp and app in _UDP_ANY and port != 123:
                    return ()
            return self._flow(event)
        if type(event) is ProtocolAnomaly:
            return self._anomaly(event)
        if type(event) is ProcessStart:
            self._procs.learn(event)
            self._judge_process(event)
        return ()

    def _flow(self, flow: NetworkFlow) -> Sequence[Alert]:
        """An outbound flow that does not conform on its port or comes from a candidate."""
        self._internal.add(flow.src_ip)  # the originator of an outbound flow is ours
        guid = flow.process_guid
        verdict = self._flow_mismatch(flow)
        out: tuple[Alert, ...] = ()
        if guid is not None and guid in self._candidates:
            out = self._process_alert(flow, self._candidates[guid], verdict)
        if verdict is None:
            return out
        tup = _flow_tuple(flow)
        alert = self._pair_evidence(
            flow.ts_ns,
            flow.src_ip,
            flow.dst_ip,
            _MISMATCH,
            tup if flow.app_protocol is _UNKNOWN else (tup, flow.ts_ns // _MISMATCH_BUCKET_NS),
            verdict.severity,
            flow.event_id,
            mismatch=verdict,
            host=flow.host,
            flow=flow,
            # The process alert already told this story: the pair's episode starts silently.
            silent=bool(out),
        )
        return (*out, alert) if alert is not None else out

    def _flow_mismatch(self, flow: NetworkFlow) -> Mismatch | None:
        """The port/protocol mismatch of an outbound flow, after the benign discounts."""
        app, transport, port = flow.app_protocol, flow.transport, flow.dst_port
        conforming = (_TCP_OK if transport is _TCP else _UDP_OK).get(port)
        if (conforming is not None and app in conforming) or (
            transport is _UDP and app in _UDP_ANY and port != 53 and port != 123
        ):
            return None
        if app is _UNKNOWN and port != 443 and port != 53:
            return None
        verdict = port_protocol_verdict(app, transport, port)
        if verdict is None:
            return None
        if app is _UNKNOWN and (
            flow.start_ns < self._grace_end
            or flow.bytes_out == 0
            or flow.bytes_in == 0
            or _flow_conn(flow) in self._midstream
        ):
            return None
        if is_group_address(flow.dst_ip) or (flow.dst_ip, app, transport, port) in self._known_dst:
            return None
        image = self._procs.image(flow.process_guid)
        if image is not None and (image, app, transport, port) in self._known_image:
            return None
        return verdict

    def _anomaly(self, an: ProtocolAnomaly) -> Sequence[Alert]:
        kind = an.anomaly
        src, dst = an.src_ip, an.dst_ip
        if is_group_address(dst) or is_group_address(src):
            return ()
        tup = (an.transport, src, an.src_port, dst, an.dst_port)
        conn = _conn_key(an.transport, src, an.src_port, dst, an.dst_port)
        if kind is AnomalyKind.NO_HANDSHAKE:
            self._midstream[conn] = an.ts_ns
            if len(self._midstream) > _MAX_MIDSTREAM:
                self._prune(an.ts_ns)
        mismatch: Mismatch | None = None
        if kind is AnomalyKind.PORT_PROTOCOL_MISMATCH:
            app = an.app_protocol
            mismatch = port_protocol_verdict(app, an.transport, an.dst_port)
            if (dst, app, an.transport, an.dst_port) in self._known_dst:
                return ()
            if app is _UNKNOWN and (
                an.ts_ns < self._grace_end or conn in self._early or conn in self._midstream
            ):
                return ()
            if mismatch is None and app is not _UNKNOWN:
                return ()  # an identified protocol our table accepts there (RTP on UDP/443)
            weight = mismatch.severity if mismatch is not None else _SENSOR_ONLY_MISMATCH
            dedupe: Hashable = tup if app is _UNKNOWN else (tup, an.ts_ns // _MISMATCH_BUCKET_NS)
        else:
            weight = _PACKET_WEIGHT[kind]
            if kind in _TCP_STATE and (an.ts_ns < self._grace_end or conn in self._early):
                return ()
            if kind is AnomalyKind.MALFORMED_DNS and (
                an.src_port in _NAME_SERVICE_PORTS or an.dst_port in _NAME_SERVICE_PORTS
            ):
                return ()
            if kind is AnomalyKind.WRONG_DIRECTION_FIRST_DATA and (
                an.src_port in _SERVER_FIRST_PORTS or an.dst_port in _SERVER_FIRST_PORTS
            ):
                weight *= _SERVER_FIRST_FACTOR
            dedupe = (tup, an.ts_ns // _DEDUPE_NS)
        if not (self._external(src) or self._external(dst)):
            weight *= _INTERNAL_PAIR_FACTOR
        alert = self._pair_evidence(
            an.ts_ns,
            src,
            dst,
            _KIND_INDEX[kind],
            dedupe,
            weight,
            an.event_id,
            mismatch=mismatch,
            host=an.host,
            anomaly=an,
        )
        return (alert,) if alert is not None else ()

    def _external(self, ip: str) -> bool:
        return ip not in self._internal and not is_local_address(ip)

    def _pair_evidence(
        self,
        ts_ns: int,
        a: str,
        b: str,
        kind: int,
        dedupe: Hashable,
        weight: float,
        event_id: str,
        *,
        mismatch: Mismatch | None,
        host: str | None,
        flow: NetworkFlow | None = None,
        anomaly: ProtocolAnomaly | None = None,
        silent: bool = False,
    ) -> Alert | None:
        key = (a, b) if a <= b else (b, a)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = _Pair()
            self._inserts += 1
            if self._inserts % _PRUNE_EVERY == 0:
                self._prune(ts_ns)
        elif pair.alerted_ns is not None:
            if ts_ns - pair.last_ns < self.episode_gap_ns:
                pair.last_ns = ts_ns  # the episode goes on: no repeat alert
                return None
            pair.alerted_ns = None  # quiet long enough: a new episode may alert
            pair.reset()
        pair.add(ts_ns, kind, dedupe, weight, event_id, self.window_ns)
        if mismatch is not None:
            pair.latest_mismatch = mismatch.description
        if silent:
            pair.alerted_ns = ts_ns
            return None
        score = pair.score()
        if score < self.min_score:
            return None
        pair.alerted_ns = ts_ns
        return self._pair_alert(pair, score, host, flow, anomaly)

    def _prune(self, now_ns: int) -> None:
        horizon = now_ns - max(self.window_ns, self.episode_gap_ns)
        stale = [k for k, p in self._pairs.items() if p.last_ns <= horizon]
        for k in stale:
            del self._pairs[k]
        old = [c for c, ts in self._midstream.items() if ts <= horizon]
        for c in old:
            del self._midstream[c]

    # -- alerts -------------------------------------------------------------------------------

    def _pair_alert(
        self,
        pair: _Pair,
        score: float,
        host: str | None,
        flow: NetworkFlow | None,
        anomaly: ProtocolAnomaly | None,
    ) -> Alert:
        ev = flow if flow is not None else anomaly
        assert ev is not None
        src, dst, dport = ev.src_ip, ev.dst_ip, ev.dst_port
        proc = self._procs.get(flow.process_guid) if flow is not None else None
        counts = ", ".join(
            f"{_KIND_LABEL[k]} x{n}" for k, n in enumerate(pair.counts) if n > 0 and k != _MISMATCH
        )
        minutes = self.window_ns / NS_PER_S / 60
        parts: list[str] = []
        sessions = pair.counts[_MISMATCH]
        if sessions:
            parts.append(
                f"{pair.latest_mismatch} in {sessions} session{'s' if sessions != 1 else ''}"
            )
        if counts:
            parts.append(f"packet anomalies: {counts}")
        who = host or src
        if proc is not None:
            image = image_key(proc.image)
            novelty = (
                ", first seen in the fleet"
                if image not in self._base_images
                else ", never used the network before"
                if image not in self._net_images
                else ""
            )
            who = f"{who} ({proc.name}{novelty})"
        # An outbound flow's destination is the remote end; for packets, whichever is external.
        ext = [dst] if flow is not None else [ip for ip in (src, dst) if self._external(ip)]
        remote = f"{ext[0]} (external)" if ext else f"{dst} (internal)"
        bonus = 0.1 if proc is not None and image_key(proc.image) not in self._net_images else 0.0
        return Alert(
            analytic=self.analytic,
            detector=self.id,
            ts_ns=ev.ts_ns,
            score=round(min(1.0, 0.5 + 0.25 * math.log2(score / self.min_score) + bonus), 4),
            entity=Entity(
                host=host,
                process_guid=proc.process_guid if proc is not None else None,
                process_name=proc.name if proc is not None else None,
                src_ip=src,
                dst_ip=dst,
                dst_port=dport,
                domain=flow.server_name if flow is not None else None,
            ),
            evidence=tuple(eid for *_, eid in list(pair.items)[-_MAX_EVIDENCE:]),
            reason=(
                f"{'; '.join(parts)} between {who} and {remote} within {minutes:g} min "
                f"(score {score:.2f}); not seen in the baseline"
            ),
        )

    def _process_alert(
        self, flow: NetworkFlow, cand: _Candidate, mismatch: Mismatch | None
    ) -> tuple[Alert, ...]:
        proc = self._procs.get(flow.process_guid)
        if proc is None:  # pragma: no cover - candidates come from the table
            return ()
        image = image_key(proc.image)
        fleet = self._procs.fleet_hosts(image)
        if cand.first_seen and fleet >= self.max_fleet_hosts:
            return ()
        key = (flow.host, image)
        last = self._proc_episode.get(key)
        self._proc_episode[key] = flow.ts_ns
        if last is not None and flow.ts_ns - last < self.episode_gap_ns:
            return ()
        dest = flow.server_name or flow.dst_ip
        what = (
            mismatch.description
            if mismatch is not None
            else f"{flow.app_protocol.value.upper()} {flow.transport.value}/{flow.dst_port}"
        )
        return (
            Alert(
                analytic=self.analytic,
                detector=self.id,
                ts_ns=flow.ts_ns,
                score=round(min(1.0, cand.score), 4),
                entity=Entity(
                    host=flow.host,
                    process_guid=proc.process_guid,
                    process_name=proc.name,
                    src_ip=flow.src_ip,
                    dst_ip=flow.dst_ip,
                    dst_port=flow.dst_port,
                    domain=flow.server_name,
                ),
                evidence=(cand.start_event, flow.event_id),
                reason=(
                    f"{proc.name} from {proc.image} talked to {dest} ({what}): "
                    f"{'; '.join(cand.reasons)}; runs on {fleet} host{'s' if fleet != 1 else ''}"
                ),
            ),
        )


def _flow_tuple(flow: NetworkFlow) -> _Tuple:
    return (flow.transport, flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port)


def _conn_key(
    transport: Transport, a_ip: str, a_port: int, b_ip: str, b_port: int
) -> tuple[Transport, tuple[str, int], tuple[str, int]]:
    """A connection's identity whichever side a record or packet is seen from."""
    a, b = (a_ip, a_port), (b_ip, b_port)
    return (transport, a, b) if a <= b else (transport, b, a)


def _flow_conn(flow: NetworkFlow) -> tuple[Transport, tuple[str, int], tuple[str, int]]:
    return _conn_key(flow.transport, flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port)
