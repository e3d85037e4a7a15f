"""AN0988 reference detector: a normally quiet process sends a burst outward after reading files.

MITRE (DET0348, T1041 Exfiltration Over C2 Channel): "Identifies suspicious outbound traffic
volume mismatches from processes that typically do not generate network activity,
particularly over C2 protocols like HTTPS, DNS, or custom TCP/UDP ports, following file or data
access." MITRE gives no logic; its tunable is "more than 1 MB in under 5 minutes". The rest is
ours.

Logic
-----
A process's identity is its normalised image (:func:`detectors.features.process.image_key`).

**Quiet.** From the baseline, and online while detecting, the detector counts the network
bytes every (host, image) and every image fleet-wide sent: flow bytes out in any direction,
plus the query bytes of DNS lookups made through the resolver API (Sysmon 22 names the caller;
the UDP flow belongs to the DNS client service). When a process first sends, its image is
judged by the history of *its other instances* (its own bytes never count, and neither do the
bytes of instances that alerted):

* it ran on this host before: quiet when those instances sent at most ``quiet_bytes_per_day``
  per day of history (notepad, rundll32, calc: usually nothing);
* it never ran on this host: quiet when, on the hosts where it did run, it sent at most that
  much per host-day;
* it never ran anywhere: it has no network history, so it counts as quiet (a dropped tool, a
  renamed copy). This is the weakest of the three and scores lowest.

**Volume mismatch.** For a quiet process the detector sums, over the last ``window_s``, the
bytes it sends outward over any protocol and port (HTTPS, custom TCP/UDP ...) plus the bytes
it sends as DNS: UDP/TCP 53 or payload-identified DNS flows in any direction (a raw-socket tool
querying the internal resolver) and resolver-API queries attributed to it. It is a mismatch
when the sum reaches ``min_bytes`` (MITRE: 1 MB in under 5 minutes) or the DNS part reaches
``dns_min_bytes`` (DNS carries little per query; a process that never used the network sending
100 kB of queries in five minutes is several thousand lookups).

**Following data access.** At that moment the process, or a process one step away in the
process tree (its parent, its children, its siblings through the parent: ``7z.exe`` stages an
archive, ``curl.exe`` started by the same shell uploads it), must have read at least
``min_files`` distinct files or ``min_read_bytes`` bytes within ``read_window_s``. Reads of
executables and libraries and anything under ``\\Windows\\`` are ignored: every process loads
those.

One alert per process instance per episode; an episode ends after ``episode_gap_s`` without
sending. The alert cites a sample of the file reads and the sends in the window.

Assumptions: flows and resolver-API DNS events carry the process GUID (EDR, or Sysmon 3/22
joined to flow bytes); file reads are logged for the data that matters (Security 4663 with a
SACL on user data, or an EDR); the baseline has seen the fleet's ordinary software run.

Known gaps:
  * Processes that started before the recording (no process start seen) are not judged.
  * A process that does use the network (browsers, Office, sync clients, svchost) is never
    quiet: code injected into one, or exfiltration by such an application, is invisible here
    (AN0144 and AN0030 judge those by destination and volume).
  * Low and slow: less than ``min_bytes`` (or ``dns_min_bytes`` of DNS) per ``window_s``
    never alerts, and neither does sending that starts more than ``read_window_s`` after the
    reads (staging now, exfiltration tomorrow).
  * Data access through a chain longer than one step (a script host spawning a shell spawning
    the uploader), or by a process with no parent link, is not connected to the sender.
  * A never-seen image counts as quiet, so a brand-new legitimate tool that reads a batch of
    files and uploads them (a new backup client's first run) alerts until its history builds.
  * DNS tunnelled through the resolver API by a process that Sysmon 22 does not see (ETW
    DNS client logging off) is attributed to the DNS client service and missed.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import ClassVar

from detectors.features.dns import registered_domain
from detectors.features.process import image_key
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
    FileAccess,
    FileOperation,
    NetworkFlow,
    ProcessStart,
)
from harness.fields import Field

__all__ = ["QuietProcessAfterFileAccess"]

_DNS = AppProtocol.DNS
_READ = FileOperation.READ
_OUTBOUND = Direction.OUTBOUND

NS_PER_DAY = 86_400 * NS_PER_S
#: One data read: (ts_ns, path, bytes, event_id, reader's process_guid).
_Read = tuple[int, str, int, str, str]
#: Evidence kept per alert: reads from the start and the end of the access, and the latest sends.
_READ_EVIDENCE = 5
_SEND_EVIDENCE = 30
#: Module files every process reads; not "data access".
_MODULE_SUFFIXES = (".dll", ".exe", ".sys", ".mui", ".ocx", ".drv", ".cpl", ".nls", ".pyd")


@lru_cache(maxsize=65_536)
def _is_data_path(path: str) -> bool:
    """True for a file read that counts as data access (see the module docstring)."""
    p = path.replace("/", "\\").casefold()
    return not (p.endswith(_MODULE_SUFFIXES) or "\\windows\\" in p)


def _fmt_bytes(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def _fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"


class _NetHistory:
    """Network bytes sent and process starts of one (host, image) or one image fleet-wide."""

    __slots__ = ("bytes", "hosts", "starts")

    def __init__(self) -> None:
        self.bytes = 0
        self.starts = 0
        self.hosts: set[str] = set()


class _Proc:
    """What the detector keeps per process instance."""

    __slots__ = (
        "alerted",
        "counted",
        "dns_total",
        "fleet",
        "last_send_ns",
        "local",
        "parent",
        "quiet",
        "quiet_reason",
        "reads",
        "start",
        "window",
        "window_total",
    )

    def __init__(self, start: ProcessStart, local: _NetHistory, fleet: _NetHistory) -> None:
        self.start = start
        self.parent = start.parent_guid
        self.local = local
        self.fleet = fleet
        #: Bytes this instance added to ``local``/``fleet`` (never its own history).
        self.counted = 0
        self.quiet: bool | None = None
        self.quiet_reason = ""
        #: Data reads by this process and its children.
        self.reads: deque[_Read] = deque()
        #: (ts_ns, bytes, event, is_dns) of sends within the window.
        self.window: deque[tuple[int, int, NetworkFlow | DnsQuery, bool]] = deque()
        self.window_total = 0
        self.dns_total = 0
        self.last_send_ns = -1
        self.alerted = False


class QuietProcessAfterFileAccess(Detector):
    """Alerts when a process whose image normally stays off the network sends a volume outward
    (or over DNS) shortly after it or a neighbour in the process tree read files (see the
    module docstring for the logic and its gaps)."""

    id: ClassVar[str] = "an0988-quiet-process-after-file-access"
    analytic: ClassVar[AnalyticId] = analytic_id("AN0988")
    techniques: ClassVar[tuple[TechniqueId, ...]] = (technique_id("T1041"),)
    required_fields: ClassVar[frozenset[Field]] = frozenset(
        {Field.PROCESS, Field.FILE_READ, Field.FLOW_BYTES, Field.FLOW_PROCESS}
    )
    consumes: ClassVar[frozenset[EventKind]] = frozenset(
        {
            EventKind.PROCESS_START,
            EventKind.FILE_ACCESS,
            EventKind.NETWORK_FLOW,
            EventKind.DNS_QUERY,
        }
    )
    tunable_specs: ClassVar[Mapping[str, Tunable]] = {
        "min_bytes": Tunable(
            default=1_000_000,
            minimum=1_000,
            maximum=1e11,
            primary=True,
            description="bytes a quiet process sends outward (any protocol, DNS included) "
            "within window_s that are a volume mismatch (MITRE: 1 MB in under 5 minutes)",
        ),
        "window_s": Tunable(
            default=300,
            minimum=1,
            maximum=86_400,
            description="sliding window over which sent bytes are summed, seconds",
        ),
        "dns_min_bytes": Tunable(
            default=100_000,
            minimum=100,
            maximum=1e10,
            description="DNS bytes (queries sent, raw or through the resolver API) within "
            "window_s that are a volume mismatch on their own",
        ),
        "quiet_bytes_per_day": Tunable(
            default=50_000,
            minimum=0,
            maximum=1e12,
            description="network bytes per day (per host-day fleet-wide) an image's other "
            "instances may have sent for it to count as quiet",
        ),
        "read_window_s": Tunable(
            default=1_800,
            minimum=1,
            maximum=7 * 86_400,
            description="file reads count when they fall within this many seconds before the "
            "volume mismatch",
        ),
        "min_files": Tunable(
            default=10,
            minimum=1,
            maximum=1e7,
            description="distinct files read (by the process or a neighbour in the tree) that "
            "count as data access",
        ),
        "min_read_bytes": Tunable(
            default=5_000_000,
            minimum=1,
            maximum=1e12,
            description="bytes read that count as data access even from fewer files (an archive)",
        ),
        "episode_gap_s": Tunable(
            default=1_800,
            minimum=1,
            maximum=86_400,
            description="seconds without sending after which a process can alert again",
        ),
    }

    def __init__(self, **tunables: float) -> None:
        super().__init__(**tunables)
        t = self.tunables
        self.min_bytes = t["min_bytes"]
        self.window_ns = int(t["window_s"] * NS_PER_S)
        self.dns_min_bytes = t["dns_min_bytes"]
        self.quiet_per_day = t["quiet_bytes_per_day"]
        self.read_window_ns = int(t["read_window_s"] * NS_PER_S)
        self.min_files = int(t["min_files"])
        self.min_read_bytes = t["min_read_bytes"]
        self.gap_ns = int(t["episode_gap_s"] * NS_PER_S)
        self._procs: dict[str, _Proc] = {}
        self._local: dict[tuple[str, str], _NetHistory] = {}
        self._fleet: dict[str, _NetHistory] = {}
        self._t0: int | None = None

    # -- stream ---------------------------------------------------------------------------

    def fit(self, baseline: Iterable[Event]) -> None:
        # Flat, dispatched on the event's class: the baseline is most of a recording. No
        # instance alerts in the baseline, so a send is only added to the instance's ``counted``
        # here; the instances' totals go into their (host, image) and fleet histories at the
        # end (integer sums: the same totals as adding them event by event).
        procs = self._procs
        get = procs.get
        read = self._read
        learn = self._learn_process
        events = iter(baseline)
        first = next(events, None)
        if first is None:
            return
        if self._t0 is None:
            self._t0 = first.ts_ns
        fitted: list[_Proc] = []
        for event in itertools.chain((first,), events):
            if type(event) is NetworkFlow:
                p = get(event.process_guid)  # type: ignore[arg-type]  # None: no process
                if p is not None:
                    p.counted += event.bytes_out
            elif type(event) is DnsQuery:
                p = get(event.process_guid)  # type: ignore[arg-type]
                if p is not None:
                    p.counted += event.query_bytes
            elif type(event) is FileAccess:
                read(event)
            elif type(event) is ProcessStart:
                old = get(event.process_guid)
                if old is not None:
                    fitted.append(old)  # a reused guid: keep what the old instance sent
                learn(event)
        fitted.extend(procs.values())
        for p in fitted:
            n = p.counted
            if n:
                p.local.bytes += n
                p.fleet.bytes += n

    def observe(self, event: Event) -> Sequence[Alert]:
        # Called for every event: flat, with the common exits first (most flows belong to
        # processes already judged not quiet).
        if type(event) is NetworkFlow:
            p = self._procs.get(event.process_guid)  # type: ignore[arg-type]  # None: no process
            if p is None:
                return ()
            n = event.bytes_out
            if not n:
                return ()
            if p.counted >= 0:
                p.counted += n
                p.local.bytes += n
                p.fleet.bytes += n
            if p.quiet is False:
                return ()
            dns = event.dst_port == 53 or event.app_protocol is _DNS
            if not dns and event.direction is not _OUTBOUND:
                return ()
            return self._send(p, event, n, dns)
        if type(event) is DnsQuery:
            p = self._procs.get(event.process_guid)  # type: ignore[arg-type]
            if p is None:
                return ()
            n = event.query_bytes
            if n and p.counted >= 0:
                p.counted += n
                p.local.bytes += n
                p.fleet.bytes += n
            if p.quiet is False:
                return ()
            return self._send(p, event, n, True)
        if type(event) is FileAccess:
            self._read(event)
        elif type(event) is ProcessStart:
            if self._t0 is None:
                self._t0 = event.ts_ns
            self._learn_process(event)
        return ()

    # -- history --------------------------------------------------------------------------

    def _learn_process(self, event: ProcessStart) -> None:
        image = image_key(event.image)
        key = (event.host, image)
        local = self._local.get(key)
        if local is None:
            local = self._local[key] = _NetHistory()
        fleet = self._fleet.get(image)
        if fleet is None:
            fleet = self._fleet[image] = _NetHistory()
        local.starts += 1
        fleet.starts += 1
        fleet.hosts.add(event.host)
        self._procs[event.process_guid] = _Proc(event, local, fleet)

    def _count(self, p: _Proc, n: int) -> None:
        if n and p.counted >= 0:
            p.counted += n
            p.local.bytes += n
            p.fleet.bytes += n

    def _forget(self, p: _Proc) -> None:
        """Take an alerted instance's bytes out of the history: alerts never become normal."""
        p.local.bytes -= p.counted
        p.fleet.bytes -= p.counted
        p.counted = -1

    def _judge_quiet(self, p: _Proc, now_ns: int) -> None:
        days = max(1.0, (now_ns - (self._t0 or now_ns)) / NS_PER_DAY)
        own = max(p.counted, 0)
        local, fleet = p.local, p.fleet
        host = p.start.host
        if local.starts > 1:
            rate = (local.bytes - own) / days
            p.quiet = rate <= self.quiet_per_day
            p.quiet_reason = (
                f"never seen on the network on this host ({local.starts - 1} earlier runs)"
                if local.bytes - own <= 0
                else f"sends {_fmt_bytes(rate)}/day on this host"
            )
            return
        other_hosts = len(fleet.hosts - {host})
        if other_hosts:
            rate = (fleet.bytes - local.bytes) / (other_hosts * days)
            p.quiet = rate <= self.quiet_per_day
            p.quiet_reason = (
                f"first run on this host; sends {_fmt_bytes(rate)}/day on {other_hosts} other "
                f"host{'s' if other_hosts != 1 else ''}"
            )
            return
        p.quiet = True
        p.quiet_reason = "image never seen before, no network history"

    # -- file access ----------------------------------------------------------------------

    def _read(self, event: FileAccess) -> None:
        if event.operation is not _READ or not _is_data_path(event.path):
            return
        p = self._procs.get(event.process_guid)
        if p is None:
            return
        ts = event.ts_ns
        item = (ts, event.path, event.bytes, event.event_id, event.process_guid)
        horizon = ts - self.read_window_ns
        reads = p.reads
        reads.append(item)
        while reads[0][0] <= horizon:
            reads.popleft()
        parent = self._procs.get(p.parent) if p.parent else None
        if parent is not None:
            reads = parent.reads
            reads.append(item)
            while reads[0][0] <= horizon:
                reads.popleft()

    def _access(self, p: _Proc, now_ns: int) -> list[_Read]:
        """Data reads within the read window by ``p``, its children and its parent's tree."""
        horizon = now_ns - self.read_window_ns
        seen: dict[str, _Read] = {}
        sources = [p.reads]
        parent = self._procs.get(p.parent) if p.parent else None
        if parent is not None:
            sources.append(parent.reads)
        for reads in sources:
            for item in reads:
                if item[0] > horizon:
                    seen[item[3]] = item
        return sorted(seen.values())

    # -- sending --------------------------------------------------------------------------

    def _send(self, p: _Proc, event: NetworkFlow | DnsQuery, n: int, dns: bool) -> Sequence[Alert]:
        if not n:
            return ()
        ts = event.ts_ns
        if p.alerted:
            if ts - p.last_send_ns <= self.gap_ns:
                p.last_send_ns = ts
                return ()
            p.alerted = False  # a new episode
            p.window.clear()
            p.window_total = p.dns_total = 0
        p.last_send_ns = ts
        if p.quiet is None:
            self._judge_quiet(p, ts)
            if not p.quiet:
                return ()
        win = p.window
        win.append((ts, n, event, dns))
        total = p.window_total + n
        if dns:
            p.dns_total += n
        horizon = ts - self.window_ns
        while win[0][0] <= horizon:
            _, old, _, was_dns = win.popleft()
            total -= old
            if was_dns:
                p.dns_total -= old
        p.window_total = total
        if total < self.min_bytes and p.dns_total < self.dns_min_bytes:
            return ()
        reads = self._access(p, ts)
        read_bytes = sum(r[2] for r in reads)
        files = len({r[1] for r in reads})
        if files < self.min_files and read_bytes < self.min_read_bytes:
            return ()
        p.alerted = True
        alert = self._alert(p, ts, event, reads, files, read_bytes)
        self._forget(p)
        return (alert,)

    def _alert(
        self,
        p: _Proc,
        ts: int,
        event: Event,
        reads: list[_Read],
        files: int,
        read_bytes: int,
    ) -> Alert:
        start = p.start
        dns_only = p.dns_total >= self.dns_min_bytes and p.window_total < self.min_bytes
        volume, threshold = (
            (p.dns_total, self.dns_min_bytes) if dns_only else (p.window_total, self.min_bytes)
        )
        known_quiet = p.local.starts > 1 or len(p.fleet.hosts - {start.host}) > 0
        score = 0.5 + 0.2 * math.log10(max(1.0, volume / threshold))
        score += 0.15 * known_quiet + 0.1 * (files >= 5 * self.min_files)
        score += 0.05 * (start.signer is None)
        labels = sorted({_label(w[2], w[3]) for w in p.window})
        if isinstance(event, NetworkFlow):
            dst_ip, dst_port, domain = event.dst_ip, event.dst_port, event.server_name
        elif isinstance(event, DnsQuery):
            dst_ip, dst_port, domain = event.resolver_ip, 53, registered_domain(event.query)
        else:  # pragma: no cover - only sends reach here
            dst_ip, dst_port, domain = None, None, None
        others = sorted({self._procs[r[4]].start.name for r in reads if r[4] != start.process_guid})
        readers = f" (read by {', '.join(others)})" if others else ""
        evidence = [r[3] for r in reads[:_READ_EVIDENCE]]
        evidence += [r[3] for r in reads[_READ_EVIDENCE:][-_READ_EVIDENCE:]]
        evidence += [w[2].event_id for w in list(p.window)[-_SEND_EVIDENCE:]]
        dns_note = ""
        if p.dns_total * 10 >= p.window_total:
            count = sum(1 for w in p.window if w[3])
            part = "" if p.dns_total == p.window_total else f"{_fmt_bytes(p.dns_total)} "
            dns_note = f" ({part}in {count} DNS queries)"
        since = (ts - reads[-1][0]) / NS_PER_S if reads else 0.0
        return Alert(
            analytic=self.analytic,
            detector=self.id,
            ts_ns=ts,
            score=round(min(1.0, score), 4),
            entity=Entity(
                host=start.host,
                process_guid=start.process_guid,
                process_name=start.name,
                dst_ip=dst_ip,
                dst_port=dst_port,
                domain=domain,
            ),
            evidence=tuple(dict.fromkeys(evidence)),
            reason=(
                f"{start.name} sent {_fmt_bytes(p.window_total)}{dns_note} over "
                f"{'/'.join(labels)} to {domain or dst_ip} within {_fmt_duration(since)} of "
                f"reading {files} file{'s' if files != 1 else ''} ({_fmt_bytes(read_bytes)})"
                f"{readers}; {p.quiet_reason}"
            ),
        )


def _label(event: NetworkFlow | DnsQuery, dns: bool) -> str:
    """How a send went out, for the alert's reason: DNS, or the flow's channel."""
    return "DNS" if dns or not isinstance(event, NetworkFlow) else _channel(event)


def _channel(flow: NetworkFlow) -> str:
    app = flow.app_protocol
    if app is AppProtocol.UNKNOWN:
        return f"{flow.transport.value.upper()}/{flow.dst_port}"
    return app.value.upper()
