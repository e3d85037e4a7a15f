"""AN1225 reference detector: abnormal use of application-layer protocols (HTTP, TLS, DNS, SMB).

MITRE (DET0444, T1071): "Detects suspicious usage of common application-layer protocols (e.g.,
HTTP, HTTPS, DNS, SMB) by abnormal processes, with high outbound byte counts or irregular ports,
possibly indicating command and control or data exfiltration." MITRE gives no logic or
thresholds; this is ours. Two families of rules share one alert stream.

DNS tunnelling and exfiltration (``DnsQuery`` events; works on network-only telemetry)
---------------------------------------------------------------------------------------
Queries are aggregated per **(client, registered domain)**. The client is the calling process
when the query carries a ``process_guid`` (resolver-API queries under an EDR), otherwise the
host (the source address when the host is unknown). Per key the detector keeps, over a sliding
``dns_window_s`` (default one day, Paxson et al.'s unit):

* the **compressed information content** of the unique subdomains
  (:class:`~detectors.features.dns.InformationCounter`; Paxson et al., USENIX Security 2013,
  bound benign clients at about 4 kB per domain per day),
* the number of **distinct subdomains** (:class:`~detectors.features.dns.DistinctCounter`),
* how many queries used an **unusual type** (NULL, TXT, KEY, CNAME, MX, ANY, private-use
  65280-65534 such as iodine's 65399), and how many names look **data-like** (a label of at
  least 16 characters whose character-bigram likelihood under English,
  :class:`~detectors.features.bigram.BigramModel`, is at most -3.9 nats: hex, Base32/64).

It alerts when the information exceeds the budget ``dns_info_bytes`` (halved when most of the
key's queries use an unusual type, and halved again when most names are data-like), or when the
distinct subdomains reach ``dns_max_subdomains``. The budget is aggregate, so a low-and-slow
tunnel and a low-entropy dictionary-word encoding are caught once they have moved about 1-4 kB,
however innocent each single query looks; a tunnel at a few queries per second crosses it within
seconds (the windowed value only lags by the counter's lazy buffer), well inside 60 s.

**Fleet evidence**: a registered domain queried with long subdomains (16 characters or more)
by at least ``service_min_hosts`` distinct hosts (baseline and detection window alike) is a
service: AV reputation look-ups (Sophos, McAfee GTI), telemetry and CDN names. Its queries are
then skipped at the cost of a suffix test (on the name's last two or three labels, before the
Public Suffix split: a name under a private suffix registered below a service domain is
skipped with it). A tunnel is one or a few clients to one domain (a
client and its resolver, when a capture sees both sides). Reverse look-ups (``.arpa``) are not
aggregated.

Abnormal process use of a protocol (``NetworkFlow`` events)
-------------------------------------------------------------
The protocol is ``app_protocol`` as identified from payload (``dns``, ``http``, ``tls``,
``smb``; ``unknown`` when the sensor could not name it; QUIC and RTP are not judged). The
*subject* of a flow is its process image (:func:`~detectors.features.process.image_key`) when
the flow carries a process that the detector saw start, otherwise its destination (the
registered domain of the server name, else the address). A subject is **abnormal** for a
protocol on a host when that host never used the protocol with that subject in the baseline and
it is **rare** in the fleet: fewer than ``max_fleet_hosts`` hosts (or a quarter of the hosts
seen, whichever is smaller, at least 2) used the protocol with it so far, detection window
included (a rollout stops being rare within hours). An image that never ran during the baseline
is new software: it is rare only while it also *runs* on fewer hosts than that, so a software
rollout is judged by its spread, while a long-installed image (Notepad) is judged by whether it
ever spoke the protocol. Alerts on a signed image new to the fleet (not an OS binary) wait
``rollout_hold_s`` for it to spread to ``rollout_hosts`` hosts, when they are dropped as a
software deployment (:class:`detectors.features.process.DeploymentHold`). Per abnormal
(entity, subject, protocol),
outbound flows are summed over ``flow_window_s``. It alerts when:

* **high outbound**: the window's bytes out reach ``min_out_bytes`` with a producer-consumer
  ratio PCR = (out - in) / (out + in) of at least ``min_pcr`` (MITRE's "more than 90 %
  outbound" is PCR 0.8), or at least three flows each average a robust z-score of
  ``min_z`` or more against what this host normally sends per flow over the protocol
  (:class:`~detectors.features.stats.RobustBaseline` learnt in ``fit``) with the same PCR
  condition and at least a tenth of ``min_out_bytes``;
* **irregular port**: ``irregular_min_flows`` messages of an identified protocol off its ports
  (DNS off 53; HTTP off 80/8080/8000/8008/3128; TLS off 443/8443 and the IANA TLS service ports
  465, 563, 636, 853, 989-995, 3269, 5061; SMB off 445/139), multicast excluded (mDNS, LLMNR);
* **DNS from an abnormal sender**: ``min_dns_flows`` DNS messages from a process that is not
  the host's usual DNS sender (a raw socket: iodine, dnscat2 without the resolver API), or,
  with no process identity, to a resolver the host never used (only judged for hosts seen in
  the baseline: without history every resolver would be new).

A *message* is a TCP flow record, or a UDP datagram sent (a UDP record counts its
``packets_out``): a tool that keeps one UDP socket for all its queries (iodine does, and so do
most hand-written clients) is one flow but many DNS messages, and must weigh as much as a tool
that opens a socket per query.

SMB to an outside address (``OUTBOUND`` direction) alerts whatever the process. Only outbound
flows are judged, plus internal DNS (a raw-socket tool talking to the internal resolver).

Alerts
------
One alert per entity (process, else host) per episode and rule family (DNS, or a flow subject
and protocol); the episode ends after ``episode_gap_s`` of silence from the entity in that
family. Each alert cites the events of its window (at most 64, the most recent), names the
entity and the remote end, and gives a one-line reason. Every rule computes the ratio of its
evidence to its threshold; ``alert_threshold`` (the primary tunable) is the ratio needed, so
sweeping it moves every rule together. The score grows with that ratio.

Assumptions: events arrive in time order; ``app_protocol`` comes from payload inspection; the
baseline contains the organisation's normal software and DNS senders (for novelty; the DNS
tunnel rules need no baseline); a network-only capture names the host or its address as the
client of each query.

Known gaps:
  * A tunnel spread thinly over many registered domains, or over many clients (a botnet on
    ``service_min_hosts`` hosts, or clients behind one NAT or resolver that the capture names
    as one) is missed, or folded into one client.
  * A DNS tunnel under a domain that many hosts query with long names (a compromised service,
    a shared dynamic-DNS zone not in the Public Suffix List) is treated as a service.
  * Benign single-client high-information DNS (DNSBL look-ups on a mail server, a crawler,
    AV reputation on a single-host capture without baseline) can exceed the budget; in
    network-only telemetry behind a resolver, the resolver is the only client.
  * Idle C2 beacons over DNS (one short query a minute) carry too little information to cross
    the budget; timing regularity is not modelled. Reverse-zone (``.arpa``) tunnels are ignored.
  * A process that used a protocol on the host in the baseline is never abnormal for it:
    injected code in a browser or the DNS client service (``svchost.exe``), or a renamed copy
    at the real path, is invisible here (AN0988/AN0030 judge volume against own history).
  * Uploads below ``min_out_bytes`` per ``flow_window_s`` by a new process with ordinary
    per-flow sizes, and C2 with balanced traffic on regular ports, are not caught.
  * Without process identity the subject is the destination, so a new process sending to a
    destination the host already used is invisible, and a novel destination is judged instead.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import ClassVar

from detectors.features.bigram import BigramModel
from detectors.features.dns import DistinctCounter, InformationCounter, split_name
from detectors.features.process import DEPLOYMENT_TUNABLES, DeploymentHold, ProcessTable, image_key
from detectors.features.stats import FirstSeen, RobustBaseline
from harness.alerts import Alert, Entity
from harness.analytics import AnalyticId, TechniqueId, analytic_id, technique_id
from harness.detector import Detector, Tunable
from harness.events import (
    NS_PER_S,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    EventKind,
    NetworkFlow,
    ProcessStart,
    Transport,
)
from harness.fields import Field

__all__ = ["AbnormalAppProtocolUse"]

_MAX_EVIDENCE = 64
_LONG_NAME = 16  # subdomain length from which a host counts toward a domain being a service
_DATA_LABEL = 16  # label length from which a name can be data-like
_DATA_BIGRAM = -3.9  # nats per bigram: English-like host labels score above, encodings below
_MIN_Z_FLOWS = 3
_UDP = Transport.UDP

_PER_FLOW_SAMPLES = 256
# Outbound flows of the named protocols and of unidentified ones; internal flows only for DNS
# (a raw-socket tool talking to the internal resolver).
_OUTBOUND, _INTERNAL = Direction.OUTBOUND, Direction.INTERNAL
_DNS, _SMB = AppProtocol.DNS, AppProtocol.SMB
#: Protocols judged on outbound flows; internal flows are judged for DNS only.
_JUDGED_OUTBOUND = frozenset(
    {AppProtocol.DNS, AppProtocol.HTTP, AppProtocol.TLS, AppProtocol.SMB, AppProtocol.UNKNOWN}
)
_REGULAR_PORTS: dict[AppProtocol, frozenset[int]] = {
    AppProtocol.DNS: frozenset({53}),
    AppProtocol.HTTP: frozenset({80, 8080, 8000, 8008, 3128}),
    AppProtocol.TLS: frozenset(
        {443, 8443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 3269, 5061}
    ),
    AppProtocol.SMB: frozenset({445, 139}),
}
_UNUSUAL_QTYPES = frozenset({"NULL", "TXT", "KEY", "CNAME", "MX", "ANY", "PRIVATE"})

_BIGRAMS = BigramModel.load_default()


@lru_cache(maxsize=256)
def _unusual_qtype(qtype: str) -> bool:
    """NULL, TXT, KEY, CNAME, MX, ANY, or a private-use type (65280-65534, e.g. ``65399``)."""
    name = qtype.upper()
    if name in _UNUSUAL_QTYPES:
        return True
    digits = name.removeprefix("TYPE")
    return digits.isdigit() and 65_280 <= int(digits) <= 65_534


@lru_cache(maxsize=65_536)
def _data_like(sub: str) -> bool:
    """A label of at least 16 characters that English bigrams find unlikely (encoded data)."""
    longest = max(map(len, sub.split("."))) if "." in sub else len(sub)
    return longest >= _DATA_LABEL and _BIGRAMS.score(sub) <= _DATA_BIGRAM


@lru_cache(maxsize=4_096)
def _is_multicast(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_multicast
    except ValueError:
        return False


def _kb(n: float) -> str:
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def _score(ratio: float) -> float:
    return round(min(1.0, max(0.05, 0.5 + 0.25 * math.log10(max(ratio, 1e-9)))), 4)


class _DnsKey:
    """Per (client, registered domain) counts and the most recent evidence."""

    __slots__ = ("data_like", "evidence", "first_ns", "qtypes", "queries", "unusual")

    def __init__(self, ts_ns: int) -> None:
        self.first_ns = ts_ns
        self.queries = 0
        self.unusual = 0
        self.data_like = 0
        self.qtypes: dict[str, int] = {}
        self.evidence: deque[str] = deque(maxlen=_MAX_EVIDENCE)


class _FlowWindow:
    """Outbound flow records of one abnormal (entity, subject, protocol) in a sliding window."""

    __slots__ = ("bytes_in", "bytes_out", "irregular", "items", "messages")

    def __init__(self) -> None:
        self.items: deque[tuple[int, int, int, int, bool, str]] = deque()
        self.bytes_out = 0
        self.bytes_in = 0
        #: Messages in the window (see the module docstring), and how many were off-port.
        self.messages = 0
        self.irregular = 0

    def add(self, flow: NetworkFlow, irregular: bool, window_ns: int) -> None:
        msgs = max(flow.packets_out, 1) if flow.transport is _UDP else 1
        self.items.append(
            (flow.ts_ns, flow.bytes_out, flow.bytes_in, msgs, irregular, flow.event_id)
        )
        self.bytes_out += flow.bytes_out
        self.bytes_in += flow.bytes_in
        self.messages += msgs
        if irregular:
            self.irregular += msgs
        horizon = flow.ts_ns - window_ns
        items = self.items
        while items[0][0] <= horizon:
            _, out, inb, n, irr, _ = items.popleft()
            self.bytes_out -= out
            self.bytes_in -= inb
            self.messages -= n
            if irr:
                self.irregular -= n

    @property
    def pcr(self) -> float:
        total = self.bytes_out + self.bytes_in
        return (self.bytes_out - self.bytes_in) / total if total else 0.0

    def evidence(self) -> tuple[str, ...]:
        return tuple(item[5] for item in list(self.items)[-_MAX_EVIDENCE:])


class AbnormalAppProtocolUse(Detector):
    """DNS tunnelling per (client, domain), and HTTP/TLS/SMB/DNS use by abnormal processes with
    high outbound volume or irregular ports (see the module docstring for logic and gaps)."""

    id: ClassVar[str] = "an1225-abnormal-app-protocol"
    analytic: ClassVar[AnalyticId] = analytic_id("AN1225")
    techniques: ClassVar[tuple[TechniqueId, ...]] = (
        technique_id("T1071"),
        technique_id("T1071.001"),
        technique_id("T1071.002"),
        technique_id("T1071.004"),
        technique_id("T1048.003"),
    )
    required_fields: ClassVar[frozenset[Field]] = frozenset(
        {Field.DNS_QUERY, Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL}
    )
    consumes: ClassVar[frozenset[EventKind]] = frozenset(
        {EventKind.PROCESS_START, EventKind.NETWORK_FLOW, EventKind.DNS_QUERY}
    )
    tunable_specs: ClassVar[Mapping[str, Tunable]] = {
        "alert_threshold": Tunable(
            default=1.0,
            minimum=0.01,
            maximum=1_000.0,
            primary=True,
            description="ratio of evidence to each rule's threshold needed to alert (1.0 = the "
            "thresholds as documented; higher is stricter for every rule at once)",
        ),
        "dns_info_bytes": Tunable(
            default=4_000,
            minimum=100,
            maximum=1e9,
            description="compressed bytes of unique subdomains per (client, registered domain) "
            "per dns_window_s (Paxson et al.: 4 kB/day); halved for unusual qtypes and again "
            "for data-like names",
        ),
        "dns_max_subdomains": Tunable(
            default=500,
            minimum=2,
            maximum=1e6,
            description="distinct subdomains per (client, registered domain) per dns_window_s",
        ),
        "dns_window_s": Tunable(
            default=86_400,
            minimum=60,
            maximum=7 * 86_400,
            description="sliding window of the DNS aggregates, seconds (24 buckets)",
        ),
        "service_min_hosts": Tunable(
            default=5,
            minimum=2,
            maximum=1e6,
            description="hosts querying a registered domain with long subdomains that make "
            "it a service, not a tunnel",
        ),
        "min_out_bytes": Tunable(
            default=1_000_000,
            minimum=1_000,
            maximum=1e12,
            description="bytes out in flow_window_s by an abnormal subject that are high "
            "outbound (MITRE's AN0988 tunable: 1 MB in under 5 minutes)",
        ),
        "min_pcr": Tunable(
            default=0.8,
            minimum=-1.0,
            maximum=1.0,
            description="producer-consumer ratio of the window for high outbound (0.8 = 90 %% "
            "of the bytes outbound, MITRE's AN1225 tunable)",
        ),
        "min_z": Tunable(
            default=8.0,
            minimum=1.0,
            maximum=1e6,
            description="robust z-score of bytes per flow against the host's per-flow history "
            "for the protocol that counts as high outbound for small flows",
        ),
        "flow_window_s": Tunable(
            default=3_600,
            minimum=10,
            maximum=86_400,
            description="sliding window over which an abnormal subject's flows are summed, s",
        ),
        "max_fleet_hosts": Tunable(
            default=5,
            minimum=1,
            maximum=1e6,
            description="a subject that used a protocol on this many hosts (or a quarter of "
            "the hosts seen) is common, not rare",
        ),
        **DEPLOYMENT_TUNABLES,
        "irregular_min_flows": Tunable(
            default=3,
            minimum=1,
            maximum=1e6,
            description="messages (TCP flows, UDP datagrams) of an identified protocol off its "
            "ports by an abnormal subject",
        ),
        "min_dns_flows": Tunable(
            default=10,
            minimum=1,
            maximum=1e6,
            description="DNS messages (flows, UDP datagrams) in flow_window_s from an abnormal "
            "sender (raw socket, or a resolver the host never used)",
        ),
        "episode_gap_s": Tunable(
            default=3_600,
            minimum=1,
            maximum=7 * 86_400,
            description="silence after which an alerted entity can alert again, seconds",
        ),
    }

    def __init__(self, **tunables: float) -> None:
        super().__init__(**tunables)
        t = self.tunables
        self.alert_threshold = t["alert_threshold"]
        self.dns_info_bytes = t["dns_info_bytes"]
        self.dns_max_subdomains = t["dns_max_subdomains"]
        dns_window_ns = int(t["dns_window_s"]) * NS_PER_S
        dns_window_ns -= dns_window_ns % 24  # InformationCounter needs a bucket divisor
        self.dns_window_ns = dns_window_ns
        self.service_min_hosts = int(t["service_min_hosts"])
        self.min_out_bytes = t["min_out_bytes"]
        self.min_pcr = t["min_pcr"]
        self.min_z = t["min_z"]
        self.flow_window_ns = int(t["flow_window_s"] * NS_PER_S)
        self.max_fleet_hosts = int(t["max_fleet_hosts"])
        self.irregular_min_flows = t["irregular_min_flows"]
        self.min_dns_flows = t["min_dns_flows"]
        self.episode_gap_ns = int(t["episode_gap_s"] * NS_PER_S)

        self._procs = ProcessTable()
        self._hold = DeploymentHold.from_tunables(self._procs, t)
        # DNS tunnel state
        self._domain_hosts: dict[str, set[str]] = {}
        self._services: set[str] = set()
        #: "." + each service domain of two or three labels: a name ending in one is skipped.
        self._service_tails: tuple[str, ...] = ()
        self._info: InformationCounter[tuple[str, str]] = InformationCounter(
            window_ns=dns_window_ns, buckets=24
        )
        self._distinct: DistinctCounter[tuple[str, str]] = DistinctCounter(
            window_ns=dns_window_ns, max_values_per_key=int(self.dns_max_subdomains) + 1
        )
        self._dns_keys: dict[tuple[str, str], _DnsKey] = {}
        # flow state
        self._seen: set[tuple[str, str, AppProtocol]] = set()  # (host, subject, proto) baseline
        self._history_hosts: set[str] = set()
        self._baseline_images: set[str] = set()  # images that ran during the baseline
        self._guid_image: dict[str, str] = {}  # process_guid -> image_key, for every start
        self._fleet: FirstSeen[str, tuple[str, AppProtocol]] = FirstSeen()
        self._per_flow: RobustBaseline[tuple[str, AppProtocol]] = RobustBaseline(
            min_samples=20, max_samples_per_key=2_000
        )
        self._windows: dict[tuple[str, str, AppProtocol], _FlowWindow] = {}
        # episodes: (entity, family) -> last activity time
        self._episodes: dict[tuple[str, str], int] = {}

    # -- fit -------------------------------------------------------------------------------

    def fit(self, baseline: Iterable[Event]) -> None:
        seen = self._seen
        history = self._history_hosts
        per_flow: dict[tuple[str, AppProtocol], list[int]] = {}
        guid_image = self._guid_image
        # (host, subject, protocol) -> the per-flow samples of (host, protocol): one look-up
        # per flow for both the novelty and the per-flow history.
        samples_of: dict[tuple[str, str, AppProtocol], list[int]] = {}
        for event in baseline:
            if type(event) is NetworkFlow:
                proto = event.app_protocol
                direction = event.direction
                if direction is _OUTBOUND:
                    if proto not in _JUDGED_OUTBOUND:
                        continue
                elif direction is not _INTERNAL or proto is not _DNS:
                    continue
                host = event.host
                subject = guid_image.get(event.process_guid)  # type: ignore[arg-type]
                if subject is None:
                    subject = self._destination(event)
                key = (host, subject, proto)
                samples = samples_of.get(key)
                if samples is None:
                    if key not in seen:
                        seen.add(key)
                        history.add(host)
                        self._fleet.learn(host, (subject, proto))
                    samples = per_flow.get((host, proto))
                    if samples is None:
                        samples = per_flow[(host, proto)] = []
                    samples_of[key] = samples
                out = event.bytes_out
                if out:
                    samples.append(out)
            elif type(event) is DnsQuery:
                history.add(event.host)
                name = event.query
                if (
                    len(name) < _LONG_NAME
                    or name.endswith(self._service_tails)
                    or self._folded_service_suffix(name)
                ):
                    continue
                sub, reg = split_name(name)
                if len(sub) >= _LONG_NAME:
                    self._learn_domain_host(reg, event.host or event.src_ip)
            elif type(event) is ProcessStart:
                self._learn_process(event)
                self._baseline_images.add(guid_image[event.process_guid])
        for bkey, values in per_flow.items():
            if not values:
                continue  # only flows that sent nothing
            # At most _PER_FLOW_SAMPLES per key, evenly spaced in time: plenty for a median/MAD.
            step = -(-len(values) // _PER_FLOW_SAMPLES)
            self._per_flow.extend(bkey, values[::step])
        self._procs.end_baseline()

    # -- observe ---------------------------------------------------------------------------

    def observe(self, event: Event) -> Sequence[Alert]:
        released: Sequence[Alert] = ()
        if event.ts_ns >= self._hold.next_due_ns:
            released = self._hold.release(event.ts_ns)
        if type(event) is NetworkFlow:
            # The front of the flow rules, here because it runs for every flow record and most
            # stop at it: a direction and protocol not judged, or a subject the host used with
            # the protocol in the baseline.
            proto = event.app_protocol
            direction = event.direction
            if direction is _OUTBOUND:
                if proto not in _JUDGED_OUTBOUND:
                    return released
            elif direction is not _INTERNAL or proto is not _DNS:
                return released
            guid = event.process_guid
            subject = self._guid_image.get(guid) if guid is not None else None
            if subject is None:
                subject = self._destination(event)
            if proto is not _SMB and (event.host, subject, proto) in self._seen:
                return released  # used in the baseline (and learnt in the fleet then)
            alerts = self._flow(event, subject)
        elif type(event) is DnsQuery:
            alerts = self._dns(event)
        else:
            if type(event) is ProcessStart:
                self._learn_process(event)
            return released
        return (*released, *alerts) if released else alerts

    def flush(self) -> Sequence[Alert]:
        return self._hold.release(None)

    def _learn_process(self, event: ProcessStart) -> None:
        self._procs.learn(event)
        self._guid_image[event.process_guid] = image_key(event.image)

    # -- DNS tunnels -----------------------------------------------------------------------

    def _learn_domain_host(self, reg: str, host: str) -> None:
        hosts = self._domain_hosts.get(reg)
        if hosts is None:
            hosts = self._domain_hosts[reg] = set()
        hosts.add(host)
        if len(hosts) >= self.service_min_hosts and reg not in self._services:
            self._services.add(reg)
            if 1 <= reg.count(".") <= 2:
                self._service_tails = (*self._service_tails, "." + reg)

    def _folded_service_suffix(self, name: str) -> bool:
        """Whether ``name`` ends in a known service domain of two or three labels, for a name
        that does not end in one as given (``name.endswith(self._service_tails)``, which the
        callers test first). Both are checked before the Public Suffix split, which costs
        microseconds on every unique name. A lower-case ASCII name then ends in none; others
        are compared label by label, lower case."""
        if name.isascii() and name.islower():
            return False
        services = self._services
        if not services:
            return False
        last = name.rfind(".")
        second = name.rfind(".", 0, last)
        if second < 0:
            return False
        if name[second + 1 :].lower() in services:
            return True
        third = name.rfind(".", 0, second)
        return third >= 0 and name[third + 1 :].lower() in services

    def _dns(self, q: DnsQuery) -> Sequence[Alert]:
        name = q.query
        if name.endswith(self._service_tails) or self._folded_service_suffix(name):
            return ()
        sub, reg = split_name(name)
        if not sub or reg in self._services or reg.endswith("arpa"):
            return ()
        host = q.host or q.src_ip
        if len(sub) >= _LONG_NAME:
            self._learn_domain_host(reg, host)
            if reg in self._services:
                return ()
        client = q.process_guid or host
        ts = q.ts_ns
        if self._in_episode(client, "dns", ts):
            return ()
        key = (client, reg)
        state = self._dns_keys.get(key)
        if state is None:
            state = self._dns_keys[key] = _DnsKey(ts)
        state.queries += 1
        qtype = q.qtype
        state.qtypes[qtype] = state.qtypes.get(qtype, 0) + 1
        if _unusual_qtype(qtype):
            state.unusual += 1
        if len(sub) >= _DATA_LABEL and _data_like(sub):
            state.data_like += 1
        state.evidence.append(q.event_id)
        info = self._info.add(key, sub, ts)
        distinct = self._distinct.add(key, sub, ts)
        budget = self.dns_info_bytes
        if state.queries >= 5:
            if 2 * state.unusual >= state.queries:
                budget /= 2
            if 2 * state.data_like >= state.queries:
                budget /= 2
        ratio = max(info / budget, distinct / self.dns_max_subdomains)
        if ratio < self.alert_threshold:
            return ()
        self._episodes[(client, "dns")] = ts
        del self._dns_keys[key]
        return (self._dns_alert(q, reg, state, info, distinct, budget, ratio),)

    def _dns_alert(
        self,
        q: DnsQuery,
        reg: str,
        state: _DnsKey,
        info: int,
        distinct: int,
        budget: float,
        ratio: float,
    ) -> Alert:
        proc = self._procs.get(q.process_guid)
        who = f"{proc.name} on {q.host}" if proc else (q.host or q.src_ip)
        span_s = max((q.ts_ns - state.first_ns) / NS_PER_S, 1.0)
        qtypes = "/".join(sorted(state.qtypes, key=state.qtypes.__getitem__, reverse=True)[:3])
        hosts = len(self._domain_hosts.get(reg, ()))
        return Alert(
            analytic=self.analytic,
            detector=self.id,
            ts_ns=q.ts_ns,
            score=_score(ratio / self.alert_threshold),
            entity=Entity(
                host=q.host or None,
                process_guid=q.process_guid,
                process_name=proc.name if proc else None,
                src_ip=q.src_ip,
                dst_ip=q.resolver_ip,
                dst_port=53,
                domain=reg,
            ),
            evidence=tuple(state.evidence),
            reason=(
                f"DNS tunnel suspected: {who} sent {state.queries} queries "
                f"({state.queries / span_s:.2f}/s, {qtypes}) with {distinct} distinct "
                f"subdomains of {reg} carrying {_kb(info)} of compressed information "
                f"(budget {_kb(budget)}); {state.data_like} data-like names; "
                f"{hosts} host{'s' if hosts != 1 else ''} query it with long names"
            ),
        )

    # -- flows -----------------------------------------------------------------------------

    def _subject(self, flow: NetworkFlow) -> str:
        guid = flow.process_guid
        if guid is not None:
            image = self._guid_image.get(guid)
            if image is not None:
                return image
        return self._destination(flow)

    @staticmethod
    def _destination(flow: NetworkFlow) -> str:
        """The subject of a flow without a known process: its registered domain or address."""
        if flow.server_name:
            return "dst:" + split_name(flow.server_name)[1]
        return "dst:" + flow.dst_ip

    def _rare_limit(self) -> int:
        quarter = max(2, self._fleet.host_count // 4)
        return min(self.max_fleet_hosts, quarter)

    def _rare(self, subject: str, fleet_key: tuple[str, AppProtocol]) -> bool:
        """Few hosts used the protocol with the subject; for an image that never ran in the
        baseline (new software), also few hosts run it at all (a rollout is not rare)."""
        limit = self._rare_limit()
        if self._fleet.fleet_prevalence(fleet_key) >= limit:
            return False
        if subject in self._baseline_images or subject.startswith("dst:"):
            return True
        return self._procs.fleet_hosts(subject) < limit

    def _flow(self, flow: NetworkFlow, subject: str) -> Sequence[Alert]:
        """A judged flow record of ``subject`` that is not the host's baseline use of the
        protocol, SMB aside (``observe`` checks that first)."""
        proto = flow.app_protocol
        direction = flow.direction
        host = flow.host
        guid = flow.process_guid
        entity = guid or host
        ts = flow.ts_ns
        if proto is _SMB and direction is _OUTBOUND and flow.bytes_out:
            if self._in_episode(entity, "smb-out", ts):
                return ()
            self._episodes[(entity, "smb-out")] = ts
            smb = _FlowWindow()
            smb.add(flow, False, self.flow_window_ns)
            return (self._flow_alert(flow, "SMB to an outside address", smb, 1.0, None),)
        if proto is _SMB and (host, subject, proto) in self._seen:
            return ()  # used in the baseline (and learnt in the fleet then)
        fleet_key = (subject, proto)
        abnormal = self._rare(subject, fleet_key)
        self._fleet.learn(host, fleet_key)
        if not abnormal:
            return ()
        # All DNS of an entity is one family, so a tunnel is not also an "unusual resolver".
        family = "dns" if proto is AppProtocol.DNS else f"{subject}|{proto.value}"
        if self._in_episode(entity, family, ts):
            return ()
        wkey = (entity, subject, proto)
        win = self._windows.get(wkey)
        if win is None:
            win = self._windows[wkey] = _FlowWindow()
        regular = _REGULAR_PORTS.get(proto)
        irregular = (
            regular is not None and flow.dst_port not in regular and not _is_multicast(flow.dst_ip)
        )
        win.add(flow, irregular, self.flow_window_ns)
        threshold = self.alert_threshold
        what = ""
        ratio = 0.0
        flows = len(win.items)
        if win.irregular and (r := win.irregular / self.irregular_min_flows) >= threshold:
            what, ratio = f"{proto.value.upper()} on irregular port {flow.dst_port}", r
        elif proto is AppProtocol.DNS:
            has_process = not subject.startswith("dst:")
            if has_process or host in self._history_hosts:
                r = win.messages / self.min_dns_flows
                if r >= threshold:
                    what = (
                        "DNS sent by a process that is not the host's DNS sender (raw socket)"
                        if has_process
                        else f"DNS to a resolver this host never used ({flow.dst_ip})"
                    )
                    ratio = r
        elif win.pcr >= self.min_pcr and win.bytes_out > 0:
            r = win.bytes_out / self.min_out_bytes
            if r >= threshold:
                what, ratio = "high outbound volume", r
            elif flows >= _MIN_Z_FLOWS and 10 * r >= threshold:
                z = self._per_flow.z((host, proto), win.bytes_out / flows)
                if z is not None and (rz := z / self.min_z) >= threshold:
                    what, ratio = f"outbound bytes per flow far above this host's (z={z:.0f})", rz
        if not what:
            return ()
        self._episodes[(entity, family)] = ts
        del self._windows[wkey]
        prevalence = self._fleet.fleet_prevalence(fleet_key)
        alert = self._flow_alert(flow, what, win, ratio, prevalence)
        proc = self._procs.get(flow.process_guid)
        if proc is not None and self._hold.applies(proc):
            return self._hold.submit(proc, alert)
        return (alert,)

    def _flow_alert(
        self, flow: NetworkFlow, what: str, win: _FlowWindow, ratio: float, fleet: int | None
    ) -> Alert:
        proc = self._procs.get(flow.process_guid)
        proto = flow.app_protocol.value.upper()
        if proc is not None:
            signature = f"signed by {proc.signer}" if proc.signer else "unsigned"
            who = f"{proc.name} ({proc.image}, {signature})"
        else:
            who = f"host {flow.host}"
        dest = f"{flow.server_name or flow.dst_ip}:{flow.dst_port}"
        span_min = (win.items[-1][0] - win.items[0][0]) / NS_PER_S / 60
        novelty = (
            ""
            if fleet is None
            else f"; never used {proto} with this {'process' if proc else 'destination'} on "
            f"this host before, {fleet} host{'s' if fleet != 1 else ''} in the fleet"
        )
        return Alert(
            analytic=self.analytic,
            detector=self.id,
            ts_ns=flow.ts_ns,
            score=_score(ratio / self.alert_threshold),
            entity=Entity(
                host=flow.host,
                process_guid=flow.process_guid,
                process_name=proc.name if proc else None,
                src_ip=flow.src_ip,
                dst_ip=flow.dst_ip,
                dst_port=flow.dst_port,
                domain=flow.server_name,
            ),
            evidence=win.evidence(),
            reason=(
                f"{what}: {who} sent {_kb(win.bytes_out)} and received {_kb(win.bytes_in)} "
                f"over {proto} to {dest} in {len(win.items)} flow records over "
                f"{span_min:.0f} min (PCR {win.pcr:+.2f}){novelty}"
            ),
        )

    # -- episodes --------------------------------------------------------------------------

    def _in_episode(self, entity: str, family: str, ts_ns: int) -> bool:
        """True (and the episode extended) while ``entity`` is in an alerted episode."""
        key = (entity, family)
        last = self._episodes.get(key)
        if last is None:
            return False
        if ts_ns - last > self.episode_gap_ns:
            del self._episodes[key]
            return False
        self._episodes[key] = ts_ns
        return True
