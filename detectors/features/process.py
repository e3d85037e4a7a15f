"""Process identity features: the normalised executable path used as a process's identity, and
a table of the processes a detector has seen start.

A process is identified by its full image path, case-folded, with the per-user part of
profile paths replaced by ``*`` so that ``C:\\Users\\alice\\AppData\\...\\OneDrive.exe`` and
Bob's copy are one application (per-user installs are common: OneDrive, Teams, Zoom, Slack).
``C:\\Users\\Public`` and ``C:\\Users\\Default`` are kept as they are: they are shared folders,
and software that runs from there is itself notable.

Network-only telemetry has no processes: :class:`ProcessTable` then answers ``None`` for every
flow, and detectors fall back to the host (or source address) as the entity.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from harness.alerts import Alert
from harness.detector import Tunable
from harness.events import NS_PER_S, ProcessStart

__all__ = ["DEPLOYMENT_TUNABLES", "NEVER", "DeploymentHold", "ProcessTable", "image_key"]

#: Operating-system binaries, as :func:`image_key` writes them: never "rolled out".
_WINDOWS_DIR = "c:\\windows\\"

_SHARED_PROFILES = frozenset({"public", "default", "all users"})

#: A time after every event's (nanoseconds since the epoch: year 2262).
NEVER = 2**63


@lru_cache(maxsize=65_536)
def image_key(image: str) -> str:
    """Normalised identity of an executable path (see the module docstring)."""
    path = image.replace("/", "\\").casefold()
    marker = "\\users\\"
    i = path.find(marker)
    if i != -1:
        start = i + len(marker)
        end = path.find("\\", start)
        user = path[start:end] if end != -1 else path[start:]
        if end != -1 and user not in _SHARED_PROFILES:
            path = path[:start] + "*" + path[end:]
    return path


class ProcessTable:
    """The process starts a detector has seen, by ``process_guid``, and on how many hosts each
    image has run (fleet prevalence).

    Feed it every :class:`ProcessStart` of the baseline and of the detection window (a software
    rollout reaches many hosts within hours: prevalence must keep growing while detecting).
    Memory is one entry per process instance plus one host set per image.
    """

    __slots__ = ("_established", "_first_start", "_hosts", "_image_hosts", "_procs")

    def __init__(self) -> None:
        self._procs: dict[str, ProcessStart] = {}
        #: image -> the hosts it ran on (a :class:`~detectors.features.stats.FirstSeen` of
        #: images, kept inline: every detector learns every process start).
        self._image_hosts: dict[str, set[str]] = {}
        self._hosts: set[str] = set()
        self._first_start: dict[str, int] = {}
        self._established: frozenset[str] = frozenset()

    def learn(self, event: ProcessStart) -> None:
        self._procs[event.process_guid] = event
        image = image_key(event.image)
        host = event.host
        hosts = self._image_hosts.get(image)
        if hosts is None:
            self._image_hosts[image] = {host}
            self._first_start[image] = event.ts_ns
        else:
            hosts.add(host)
        self._hosts.add(host)

    def end_baseline(self) -> None:
        """Call at the end of ``fit``: the images seen so far are the established software."""
        self._established = frozenset(self._first_start)

    def is_established(self, image: str) -> bool:
        """True when ``image`` ran somewhere in the baseline (see :meth:`end_baseline`)."""
        return image in self._established

    def first_start_ns(self, image: str) -> int | None:
        """When ``image`` first started anywhere in the fleet."""
        return self._first_start.get(image)

    def get(self, guid: str | None) -> ProcessStart | None:
        """The start event of ``guid``; ``None`` for an unknown or absent guid."""
        return self._procs.get(guid) if guid is not None else None

    def image(self, guid: str | None) -> str | None:
        """The normalised image of ``guid`` (see :func:`image_key`), or ``None``."""
        proc = self.get(guid)
        return image_key(proc.image) if proc is not None else None

    def fleet_hosts(self, image: str) -> int:
        """On how many distinct hosts the normalised ``image`` has been seen to run."""
        hosts = self._image_hosts.get(image)
        return 0 if hosts is None else len(hosts)

    @property
    def host_count(self) -> int:
        """Hosts seen running anything: the denominator of a prevalence fraction."""
        return len(self._hosts)

    def __len__(self) -> int:
        return len(self._procs)


#: The tunables of a :class:`DeploymentHold` (see :meth:`DeploymentHold.from_tunables`), the
#: same in every detector that holds alerts on software deployments.
DEPLOYMENT_TUNABLES: Mapping[str, Tunable] = MappingProxyType(
    {
        "rollout_hold_s": Tunable(
            default=1_800,
            minimum=0,
            maximum=86_400,
            description="how long an alert on a signed image new to the fleet waits for the "
            "image to spread like a software deployment, seconds after its first start",
        ),
        "rollout_hosts": Tunable(
            default=3,
            minimum=2,
            maximum=1e6,
            description="hosts a signed, fleet-new image must start on within the hold to be "
            "judged a software deployment (its alert is then dropped)",
        ),
    }
)


class DeploymentHold:
    """Alerts on new, signed software held back until it has had time to spread.

    Software deployments (SCCM, Intune, GPO, a vendor's auto-update) push *signed* software that
    no host ran before to many hosts within minutes to hours; its first instances can upload
    diagnostics or sync before prevalence says "common". An alert on an image that is signed,
    never ran in the baseline and is not an operating-system binary (those are not rolled out:
    a never-run OS binary that sends data is a living-off-the-land tool) is therefore held until
    ``hold_ns`` after the image first started in the fleet. If it has started on ``min_hosts``
    hosts by then, the alert is dropped as a deployment; otherwise it is released, dated at the
    evidence but raised late. Unsigned or established images are never held.

    Known gap: an attacker's signed tool that reaches ``min_hosts`` hosts within the hold is
    taken for a deployment; a pilot rollout to fewer hosts alerts.
    """

    __slots__ = ("_held", "_table", "hold_ns", "min_hosts", "next_due_ns")

    def __init__(self, table: ProcessTable, *, hold_ns: int, min_hosts: int) -> None:
        self._table = table
        self.hold_ns = hold_ns
        self.min_hosts = min_hosts
        self._held: list[tuple[int, str, Alert]] = []
        #: When the earliest held alert is due (:data:`NEVER` when none is held): a stream
        #: needs to call :meth:`release` only from then on, so the common case is one compare.
        self.next_due_ns = NEVER

    @classmethod
    def from_tunables(cls, table: ProcessTable, tunables: Mapping[str, float]) -> DeploymentHold:
        """A hold set by a detector's :data:`DEPLOYMENT_TUNABLES` values."""
        return cls(
            table,
            hold_ns=int(tunables["rollout_hold_s"] * NS_PER_S),
            min_hosts=int(tunables["rollout_hosts"]),
        )

    def applies(self, proc: ProcessStart | None) -> bool:
        """Whether alerts on ``proc`` go through the hold (signed, fleet-new, not the OS)."""
        if proc is None or proc.signer is None:
            return False
        image = image_key(proc.image)
        return not self._table.is_established(image) and not image.startswith(_WINDOWS_DIR)

    def submit(self, proc: ProcessStart, alert: Alert) -> tuple[Alert, ...]:
        """Hold ``alert`` (on a process for which :meth:`applies`), or drop it at once when the
        image has already spread like a deployment. Returns what can be raised now: nothing."""
        image = image_key(proc.image)
        if self._table.fleet_hosts(image) >= self.min_hosts:
            return ()
        first = self._table.first_start_ns(image)
        due = (first if first is not None else alert.ts_ns) + self.hold_ns
        self._held.append((due, image, alert))
        self.next_due_ns = min(self.next_due_ns, due)
        return ()

    def release(self, now_ns: int | None) -> tuple[Alert, ...]:
        """Held alerts whose hold is over at ``now_ns`` (``None``: the end of the stream, all of
        them), except those whose image spread to ``min_hosts`` hosts meanwhile."""
        if not self._held:
            return ()
        out: list[Alert] = []
        kept = []
        for due, image, alert in self._held:
            if now_ns is not None and now_ns < due:
                kept.append((due, image, alert))
            elif self._table.fleet_hosts(image) < self.min_hosts:
                out.append(alert)
        self._held = kept
        self.next_due_ns = min((due for due, _, _ in kept), default=NEVER)
        return tuple(out)

    def __bool__(self) -> bool:
        return bool(self._held)
