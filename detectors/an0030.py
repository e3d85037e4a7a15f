r"""AN0030 reference detector: lopsided, junk-padded outbound conversations with rare peers.

MITRE (DET0011, T1001.001 Junk Data): "Processes generating large outbound connections with
disproportionate send/receive ratios, often to uncommon ports or hosts, potentially inserting
meaningless data into protocol payloads." MITRE gives no logic or thresholds; this is ours.

Logic
-----
The unit is a **conversation**: an entity and a destination (``dst_ip``, ``dst_port``,
transport), over ``outbound`` flow records only (printers, file servers and the internal
resolver are not "outbound connections"). The entity is the process instance when flows carry
one (EDR, or Sysmon 3 joined to flow bytes); with network-only telemetry it falls back to the
sending host, so the detector runs on flows alone (``required_fields = {flow.bytes}``).

A conversation's records are grouped into **episodes**: an episode opens with the first
upload-leaning record (more bytes out than in) and closes after ``episode_gap_s`` without a
record. Per episode the detector keeps bytes out and in, the producer-consumer ratio
PCR = (out - in) / (out + in), the number of connections, and the mean and coefficient of
variation of the request size per connection (the records of one flow are added up first).

An episode alerts once, at the record that completes the evidence, when all of these hold:

1. **Disproportionate**: PCR >= ``min_pcr`` (0.8 is "more than 90 % outbound").
2. **Large, or junk-padded**: bytes out >= ``min_bytes``; or a beacon-like junk pattern: at
   least ``junk_min_flows`` connections carrying ``junk_min_bytes`` in total whose requests are
   inflated (mean >= ``junk_min_request_bytes``, padding) or near-constant in size
   (CV <= ``junk_max_cv``, fixed-size padding), which flags padded beacons long before they
   add up to ``min_bytes``.
3. **Uncommon peer**: the destination was contacted by at most ``rare_fraction`` of the
   fleet's hosts other than this one (RITA weighs destinations seen by at most 2 % of hosts),
   or the destination port is that rare in the fleet. A destination is the registered domain
   of its server name when the sensor reports one (SNI, Host, resolved name), else its
   address: CDN and cloud addresses are shared by many unrelated names, and a new endpoint of
   a widely used service (``diag.`` next to ``api.`` of the same vendor) is not a new peer.
   Both are learnt in ``fit`` and keep being learnt while detecting.
4. **Not the key's normal**: the robust z-score (median/MAD) of log10(bytes out) against the
   history of upload-heavy episodes (PCR >= ``min_pcr``, at least a tenth of ``min_bytes``) of
   the most specific key that has ``history_min_samples`` of them is at least ``min_z``, or no
   key has such a history. Keys, most specific first: (host, image, destination), (host,
   image), image fleet-wide with process identity; (host, destination) without. A backup
   agent that pushes hundreds of MB to the same off-site port every night is normal because
   the baseline saw it do so; sizes are compared on a log scale because upload volumes are
   heavy-tailed. History is learnt in ``fit`` and online from episodes that close without an
   alert (alerted traffic never becomes normal).

Benign traffic this is built to pass: sync clients and webmail uploads (common destinations,
and uploads of that size are the process's history), meeting media (symmetric, PCR near 0),
updates (download-heavy), nightly backups to a fixed peer (history).

Software deployments (:class:`detectors.features.process.DeploymentHold`, as in AN0144 and
AN1225): the first hosts of a rollout meet a peer no other host has contacted yet and have no
history, so an alert on a signed image that never ran in the baseline and is not under
``C:\Windows`` is held until ``rollout_hold_s`` after the image first started in the fleet,
and dropped if the image has started on ``rollout_hosts`` hosts by then. Unsigned images, and
flows without process identity, are never held.

The score starts at 0.5 and rises with volume over ``min_bytes``, a missing history, an
uncommon port, near-constant request sizes and an unsigned image.

Assumptions: flow records carry per-interval bytes per direction, as NetFlow/IPFIX and EDRs
export them; ``direction`` marks traffic leaving the organisation; the baseline covers the
organisation's recurring uploads (at least ``history_min_samples`` occurrences of each).

Known gaps:
  * Exfiltration to a destination many hosts use (a popular cloud store) is not uncommon and
    does not alert here; AN0144 and AN0988 judge the process instead.
  * Code injected into a process that uploads to the same peer at similar volumes every day
    (a backup agent, a sync client) hides in that history.
  * Uploads that keep PCR below ``min_pcr`` by downloading as much as they send (or by
    interleaving large downloads into the conversation) are not disproportionate.
  * Random-size padding in requests below ``junk_min_request_bytes`` on average is only seen
    once the episode reaches ``min_bytes``; payload entropy and declared-vs-actual length
    checks need packet inspection, which this detector does not consume.
  * Network-only: the entity is the host, so several processes talking to one peer merge, and
    a NAT or proxy in front of the sensor merges hosts; flows without a server name are judged
    by address only (shared CDN addresses look common).
  * In small fleets ``rare_fraction`` of the hosts is less than one host, so "rare" means "no
    other host": the first host of a genuine new service can alert (held and dropped when the
    sender is signed software deployed to ``rollout_hosts`` hosts within the hold; a pilot
    rollout to fewer hosts alerts, and an attacker's signed tool spread to that many hosts
    within the hold is dropped).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from detectors.features.dns import split_name
from detectors.features.process import DEPLOYMENT_TUNABLES, DeploymentHold, ProcessTable
from detectors.features.stats import RobustBaseline
from harness.alerts import Alert, Entity
from harness.analytics import AnalyticId, TechniqueId, analytic_id, technique_id
from harness.detector import Detector, Tunable
from harness.events import (
    NS_PER_S,
    Direction,
    Event,
    EventKind,
    NetworkFlow,
    ProcessStart,
    Transport,
)
from harness.fields import Field

__all__ = ["AsymmetricOutbound"]

#: Episodes under this share of ``min_bytes`` are not upload history worth remembering.
_HISTORY_MIN_SHARE = 0.1
#: Floor of the MAD of log10(bytes) in history: a constant history still allows 10**0.15 = 1.4x.
_LOG_MAD_FLOOR = 0.15
#: How often (event time) idle episodes are closed and learnt.
_SWEEP_NS = 600 * NS_PER_S
#: Event ids kept per episode as evidence (the most recent ones).
_EVIDENCE_MAX = 32

#: Server names whose registered domain is cached before the cache starts over.
_DOMAIN_CACHE_MAX = 200_000
#: Conversations remembered before the idle ones are forgotten (re-learning is harmless).
_CONVS_MAX = 500_000
_OUTBOUND = Direction.OUTBOUND
_UDP = Transport.UDP

#: A conversation: (entity, destination address, destination port, is UDP).
ConvKey = tuple[str, str, int, bool]
#: A history key: its level's name, then host, image and peer as the level needs.
HistKey = tuple[str, ...]


def _fmt_bytes(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def _fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Episode:
    """One episode of one conversation (see the module docstring).

    The request sizes' running mean and variance are kept inline (Welford's algorithm, as
    :class:`~detectors.features.stats.RunningStats` computes them): an episode is created for
    every upload-leaning conversation, so it is kept to plain slots, and records are added to
    it by :meth:`AsymmetricOutbound._record` itself rather than through a method call.
    """

    __slots__ = (
        "alerted",
        "bytes_in",
        "bytes_out",
        "evidence",
        "first_ns",
        "host",
        "last_ns",
        "open_flows",
        "peer",
        "req_m2",
        "req_mean",
        "req_n",
    )

    def __init__(self, ts_ns: int, host: str, peer: str) -> None:
        self.host = host
        #: The destination's identity for history: its registered domain when named, else
        #: its address.
        self.peer = peer
        self.first_ns = ts_ns
        self.last_ns = ts_ns
        self.bytes_out = 0
        self.bytes_in = 0
        #: Requests (a flow's bytes out, its records added up): count, mean, sum of squares.
        self.req_n = 0
        self.req_mean = 0.0
        self.req_m2 = 0.0
        #: Bytes out so far of flows whose final record is still to come.
        self.open_flows: dict[str, int] | None = None
        #: Event ids, the most recent last; trimmed to the last _EVIDENCE_MAX now and then.
        self.evidence: list[str] = []
        self.alerted = False

    @property
    def pcr(self) -> float:
        total = self.bytes_out + self.bytes_in
        return (self.bytes_out - self.bytes_in) / total if total else 0.0

    def cv(self) -> float | None:
        """Coefficient of variation of the request sizes (as ``RunningStats.cv``)."""
        n = self.req_n
        if n < 2 or self.req_mean == 0.0:
            return None
        return math.sqrt(self.req_m2 / n) / abs(self.req_mean)

    def last_evidence(self) -> tuple[str, ...]:
        return tuple(self.evidence[-_EVIDENCE_MAX:])


#: Marks a conversation that has been seen (its peer learnt) and is not in an episode.
_IDLE = _Episode(0, "", "")


class AsymmetricOutbound(Detector):
    """Alerts on upload-heavy (or junk-padded) outbound conversations with an uncommon peer
    that the sender's own history does not explain (see the module docstring)."""

    id: ClassVar[str] = "an0030-asymmetric-outbound"
    analytic: ClassVar[AnalyticId] = analytic_id("AN0030")
    techniques: ClassVar[tuple[TechniqueId, ...]] = (technique_id("T1001.001"),)
    required_fields: ClassVar[frozenset[Field]] = frozenset({Field.FLOW_BYTES})
    consumes: ClassVar[frozenset[EventKind]] = frozenset(
        {EventKind.PROCESS_START, EventKind.NETWORK_FLOW}
    )
    tunable_specs: ClassVar[Mapping[str, Tunable]] = {
        "min_bytes": Tunable(
            default=1_000_000,
            minimum=1_000,
            maximum=1e11,
            primary=True,
            description="bytes sent in one episode of a conversation that make it 'large'",
        ),
        "min_pcr": Tunable(
            default=0.8,
            minimum=-1.0,
            maximum=1.0,
            description="producer-consumer ratio (out-in)/(out+in) of the episode at or above "
            "which it is disproportionate (0.8: more than 90 % outbound)",
        ),
        "episode_gap_s": Tunable(
            default=1_800,
            minimum=1,
            maximum=86_400,
            description="seconds without a record after which a conversation's episode ends",
        ),
        "rare_fraction": Tunable(
            default=0.02,
            minimum=0.0,
            maximum=1.0,
            description="a destination (address, registered domain) or port contacted by at most "
            "this fraction of the fleet's other hosts is uncommon (RITA: 2 %)",
        ),
        "min_z": Tunable(
            default=3.5,
            minimum=0.0,
            maximum=100.0,
            description="robust z-score of log10(bytes out) against the key's upload history "
            "at or above which the episode is not the key's normal",
        ),
        "history_min_samples": Tunable(
            default=2,
            minimum=1,
            maximum=1_000,
            description="upload-heavy episodes a key needs before its history is used",
        ),
        "junk_min_flows": Tunable(
            default=10,
            minimum=2,
            maximum=1e6,
            description="connections in an episode before its request sizes are judged as junk "
            "padding",
        ),
        "junk_min_bytes": Tunable(
            default=150_000,
            minimum=0,
            maximum=1e11,
            description="bytes sent in an episode before the junk-padding pattern can alert",
        ),
        "junk_min_request_bytes": Tunable(
            default=8_000,
            minimum=1,
            maximum=1e9,
            description="mean request size per connection, bytes, that counts as inflated "
            "(beacons and API calls send hundreds of bytes)",
        ),
        **DEPLOYMENT_TUNABLES,
        "junk_max_cv": Tunable(
            default=0.05,
            minimum=0.0,
            maximum=10.0,
            description="coefficient of variation of request sizes at or below which they are "
            "near-constant (fixed-size padding)",
        ),
    }

    def __init__(self, **tunables: float) -> None:
        super().__init__(**tunables)
        t = self.tunables
        self.min_bytes = t["min_bytes"]
        self.min_pcr = t["min_pcr"]
        self.gap_ns = int(t["episode_gap_s"] * NS_PER_S)
        self.rare_fraction = t["rare_fraction"]
        self.min_z = t["min_z"]
        self.junk_min_flows = int(t["junk_min_flows"])
        self.junk_min_bytes = t["junk_min_bytes"]
        self.junk_min_request = t["junk_min_request_bytes"]
        self.junk_max_cv = t["junk_max_cv"]
        # Below this an episode can satisfy neither size condition: the fast path.
        self._floor = min(self.min_bytes, self.junk_min_bytes)
        self._history_min = _HISTORY_MIN_SHARE * self.min_bytes
        self._procs = ProcessTable()
        self._hold = DeploymentHold.from_tunables(self._procs, t)
        self._history: RobustBaseline[HistKey] = RobustBaseline(
            min_samples=int(t["history_min_samples"]),
            mad_floor=_LOG_MAD_FLOOR,
            mad_floor_fraction=0.0,
        )
        self._convs: dict[ConvKey, _Episode] = {}  # every conversation seen: _IDLE or open
        self._open: dict[ConvKey, _Episode] = {}  # conversations in an episode
        # address, "dns:" + registered domain, or port number -> hosts that contacted it
        self._dst_hosts: dict[str | int, set[str]] = {}
        self._hosts: set[str] = set()
        self._domains: dict[str, str] = {}  # server name -> registered domain (cache)
        self._next_sweep = 0

    # -- stream ---------------------------------------------------------------------------

    def fit(self, baseline: Iterable[Event]) -> None:
        record = self._record
        learn = self._procs.learn
        for event in baseline:
            if type(event) is NetworkFlow:
                if event.direction is not _OUTBOUND:
                    continue
                # One outbound record. Most are downloads in an idle conversation, which need
                # only the look-up, so the look-up is made here and the rest in _record. The
                # conversation key holds no enum: a bool for the transport hashes faster.
                ts = event.ts_ns
                if ts >= self._next_sweep:
                    self._sweep(ts)
                host = event.host or event.src_ip
                key = (
                    event.process_guid or host,
                    event.dst_ip,
                    event.dst_port,
                    event.transport is _UDP,
                )
                ep = self._convs.get(key)
                if ep is _IDLE and event.bytes_out <= event.bytes_in:
                    continue
                record(event, ts, host, key, ep, False)
            elif type(event) is ProcessStart:
                learn(event)
        for key, ep in list(self._open.items()):
            self._close(key, ep)
        self._procs.end_baseline()

    def observe(self, event: Event) -> Sequence[Alert]:
        if event.ts_ns >= self._hold.next_due_ns:
            released = self._hold.release(event.ts_ns)
            alerts = self._observe(event)
            return (*released, *alerts) if released else alerts
        return self._observe(event)

    def flush(self) -> Sequence[Alert]:
        return self._hold.release(None)

    def _observe(self, event: Event) -> Sequence[Alert]:
        if type(event) is NetworkFlow:
            if event.direction is not _OUTBOUND:
                return ()
            # The same front as in fit, then the record.
            ts = event.ts_ns
            if ts >= self._next_sweep:
                self._sweep(ts)
            host = event.host or event.src_ip
            key = (
                event.process_guid or host,
                event.dst_ip,
                event.dst_port,
                event.transport is _UDP,
            )
            ep = self._convs.get(key)
            if ep is _IDLE and event.bytes_out <= event.bytes_in:
                return ()
            return self._record(event, ts, host, key, ep, True)
        if type(event) is ProcessStart:
            self._procs.learn(event)
        return ()

    # -- internals ------------------------------------------------------------------------

    def _record(
        self,
        flow: NetworkFlow,
        ts: int,
        host: str,
        key: ConvKey,
        ep: _Episode | None,
        detecting: bool,
    ) -> Sequence[Alert]:
        """One outbound flow record of conversation ``key``, whose state ``ep`` was just looked
        up (by ``fit`` or ``observe``), at time ``ts`` from ``host``. Alerts only when
        ``detecting``."""
        # A conversation is unseen (None), seen and idle (_IDLE), or in an episode.
        out = flow.bytes_out
        if ep is _IDLE:  # the callers return already when such a record is not upload-leaning
            ep = self._open_episode(key, flow, host)
        elif ep is None:
            self._learn_peer(key, host, flow.server_name)
            if out <= flow.bytes_in:
                return ()
            ep = self._open_episode(key, flow, host)
        elif ts - ep.last_ns > self.gap_ns:
            self._close(key, ep)
            if out <= flow.bytes_in:
                return ()
            ep = self._open_episode(key, flow, host)
        # Add the record to the episode (inlined: once per record of every episode).
        sent = ep.bytes_out = ep.bytes_out + out
        ep.bytes_in += flow.bytes_in
        ep.last_ns = ts
        evidence = ep.evidence
        evidence.append(flow.event_id)
        if len(evidence) > 2 * _EVIDENCE_MAX:
            del evidence[:-_EVIDENCE_MAX]
        pending = ep.open_flows
        if flow.is_final:
            # A request ends: Welford's update of the request sizes' mean and variance.
            x = out if pending is None else pending.pop(flow.flow_id, 0) + out
            n = ep.req_n = ep.req_n + 1
            delta = x - ep.req_mean
            ep.req_mean += delta / n
            ep.req_m2 += delta * (x - ep.req_mean)
        elif pending is None:
            ep.open_flows = {flow.flow_id: out}
        else:
            pending[flow.flow_id] = pending.get(flow.flow_id, 0) + out
        if not detecting or ep.alerted or sent < self._floor:
            return ()
        return self._judge(flow, host, ep)

    def _open_episode(self, key: ConvKey, flow: NetworkFlow, host: str) -> _Episode:
        name = flow.server_name
        peer = (self._domains.get(name) or self._domain(name)) if name else flow.dst_ip
        ep = self._open[key] = self._convs[key] = _Episode(flow.start_ns, host, peer)
        return ep

    def _judge(self, flow: NetworkFlow, host: str, ep: _Episode) -> Sequence[Alert]:
        pcr = ep.pcr
        if pcr < self.min_pcr:
            return ()
        large = ep.bytes_out >= self.min_bytes
        cv = ep.cv()
        junk = (
            ep.req_n >= self.junk_min_flows
            and ep.bytes_out >= self.junk_min_bytes
            and (
                ep.req_mean >= self.junk_min_request or (cv is not None and cv <= self.junk_max_cv)
            )
        )
        if not (large or junk):
            return ()
        dst_rare = self._dst_rare(flow, host)
        port_rare = self._rare(self._dst_hosts.get(flow.dst_port), host)
        if not (dst_rare or port_rare):
            return ()
        z, basis = self._zscore(flow.process_guid, ep)
        if z is not None and z < self.min_z:
            return ()
        ep.alerted = True
        alert = self._alert(flow, host, ep, pcr, cv, dst_rare, port_rare, z, basis, junk)
        proc = self._procs.get(flow.process_guid)
        if proc is not None and self._hold.applies(proc):
            return self._hold.submit(proc, alert)
        return (alert,)

    def _learn_peer(self, key: ConvKey, host: str, name: str | None) -> None:
        """Prevalence of the conversation's address, port and name: once per conversation."""
        convs = self._convs
        if len(convs) >= _CONVS_MAX:  # forget idle conversations; re-learning is harmless
            self._convs = convs = {k: ep for k, ep in convs.items() if ep is not _IDLE}
        convs[key] = _IDLE
        self._hosts.add(host)
        dst_hosts = self._dst_hosts
        hosts = dst_hosts.get(key[1])
        if hosts is None:
            dst_hosts[key[1]] = {host}
        else:
            hosts.add(host)
        if name:
            domain = self._domains.get(name) or self._domain(name)
            hosts = dst_hosts.get(domain)
            if hosts is None:
                dst_hosts[domain] = {host}
            else:
                hosts.add(host)
        hosts = dst_hosts.get(key[2])
        if hosts is None:
            dst_hosts[key[2]] = {host}
        else:
            hosts.add(host)

    def _domain(self, server_name: str) -> str:
        """The peer identity of a server name: ``dns:`` and its registered domain, cached.

        Names with random leading labels (CDN and telemetry tokens) are unique, so the cache is
        also keyed by the name's parent: when the parent itself has a subdomain, the name and
        its parent share their registered domain and the parent's entry serves every sibling.
        """
        cache = self._domains
        ident = cache.get(server_name)
        if ident is not None:
            return ident
        parent = server_name.partition(".")[2]
        ident = cache.get(parent)
        if ident is None:
            sub, domain = split_name(server_name)
            ident = "dns:" + domain
            if "." in sub:  # the parent has a subdomain too: it stands for all its children
                cache[parent] = ident
            if len(cache) >= _DOMAIN_CACHE_MAX:
                cache.clear()
            cache[server_name] = ident
        return ident

    def _rare(self, hosts: set[str] | None, host: str) -> bool:
        others = 0 if hosts is None else len(hosts) - (host in hosts)
        return others <= self.rare_fraction * max(1, len(self._hosts) - 1)

    def _dst_rare(self, flow: NetworkFlow, host: str) -> bool:
        # A named peer is judged by its registered domain: CDN and cloud addresses are shared
        # by many unrelated names, so the address of a named service says little about it.
        ident = self._domain(flow.server_name) if flow.server_name else flow.dst_ip
        return self._rare(self._dst_hosts.get(ident), host)

    def _history_keys(self, guid: str | None, ep: _Episode) -> list[HistKey]:
        image = self._procs.image(guid)
        if image is None:
            return [("host-peer", ep.host, ep.peer)]
        return [
            ("host-image-peer", ep.host, image, ep.peer),
            ("host-image", ep.host, image),
            ("image", image),
        ]

    def _zscore(self, guid: str | None, ep: _Episode) -> tuple[float | None, HistKey | None]:
        value = math.log10(max(1, ep.bytes_out))
        for key in self._history_keys(guid, ep):
            z = self._history.z(key, value)
            if z is not None:
                return z, key
        return None, None

    def _close(self, key: ConvKey, ep: _Episode) -> None:
        del self._open[key]
        self._convs[key] = _IDLE
        if not ep.alerted:
            self._learn_episode(key, ep)

    def _learn_episode(self, key: ConvKey, ep: _Episode) -> None:
        if ep.bytes_out < self._history_min or ep.pcr < self.min_pcr:
            return
        value = math.log10(ep.bytes_out)
        guid = key[0] if self._procs.get(key[0]) is not None else None
        for hkey in self._history_keys(guid, ep):
            self._history.add(hkey, value)

    def _sweep(self, now_ns: int) -> None:
        horizon = now_ns - self.gap_ns
        for key in [k for k, ep in self._open.items() if ep.last_ns < horizon]:
            self._close(key, self._open[key])
        self._next_sweep = now_ns + _SWEEP_NS

    def _alert(
        self,
        flow: NetworkFlow,
        host: str,
        ep: _Episode,
        pcr: float,
        cv: float | None,
        dst_rare: bool,
        port_rare: bool,
        z: float | None,
        basis: HistKey | None,
        junk: bool,
    ) -> Alert:
        proc = self._procs.get(flow.process_guid)
        name = proc.name if proc is not None else f"host {host}"
        constant = cv is not None and cv <= self.junk_max_cv and ep.req_n >= 2
        score = 0.5 + 0.15 * max(0.0, math.log10(max(1.0, ep.bytes_out / self.min_bytes)))
        score += 0.15 if z is None else 0.05
        score += 0.1 * port_rare + 0.1 * constant + 0.05 * (proc is not None and not proc.signer)
        peer = flow.server_name or flow.dst_ip
        where = f"{peer}:{flow.dst_port}/{flow.transport.value}"
        rarity = []
        if dst_rare:
            rarity.append(
                "peer seen by no other host"
                if not self._others(flow, host)
                else "peer rare in the fleet"
            )
        if port_rare:
            rarity.append("uncommon port")
        n = ep.req_n + len(ep.open_flows or ())
        shape = f"{n} connection{'s' if n != 1 else ''}"
        if junk and ep.req_n:
            shape += f", requests of {_fmt_bytes(ep.req_mean)} on average"
            if cv is not None:
                shape += f" (CV {cv:.2f}{', near-constant' if constant else ''})"
        if z is None:
            history = "no upload history for this sender"
        else:
            level = basis[0] if basis else "?"
            history = f"robust z {z:.1f} against its usual uploads ({level} history)"
        span = (ep.last_ns - ep.first_ns) / NS_PER_S
        return Alert(
            analytic=self.analytic,
            detector=self.id,
            ts_ns=flow.ts_ns,
            score=round(min(1.0, score), 4),
            entity=Entity(
                host=host,
                process_guid=flow.process_guid,
                process_name=proc.name if proc is not None else None,
                src_ip=flow.src_ip,
                dst_ip=flow.dst_ip,
                dst_port=flow.dst_port,
                domain=flow.server_name,
            ),
            evidence=ep.last_evidence(),
            reason=(
                f"{name} sent {_fmt_bytes(ep.bytes_out)} to {where} in "
                f"{_fmt_duration(span)}, {100 * ep.bytes_out / (ep.bytes_out + ep.bytes_in):.0f}%"
                f" outbound (PCR {pcr:.2f}) over {shape}; {', '.join(rarity)}; {history}"
            ),
        )

    def _others(self, flow: NetworkFlow, host: str) -> int:
        ident = self._domain(flow.server_name) if flow.server_name else flow.dst_ip
        hosts = self._dst_hosts.get(ident)
        return 0 if hosts is None else len(hosts) - (host in hosts)
