"""Telemetry: the events of one scenario run as one set of sensors saw them.

A :class:`Telemetry` holds events in event-time order plus what a detector may legitimately know
about the recording (its hosts, its time span, the end of the baseline window and the fields its
profile supplies). It holds no ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from harness.errors import InvalidParameterError
from harness.events import NS_PER_S, DnsQuery, Event, FileAccess, NetworkFlow, ProcessStart
from harness.fields import Field, Profile

__all__ = ["Telemetry", "TelemetryInfo", "project", "sort_events"]


def sort_events(events: Iterable[Event]) -> list[Event]:
    """Event-time order, ties broken by event id so the order is total and reproducible."""
    return sorted(events, key=lambda e: (e.ts_ns, e.event_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class Telemetry:
    """Sensor events of one run, split into a baseline and a detection window."""

    profile: str
    fields: frozenset[Field]
    hosts: tuple[str, ...]
    start_ns: int
    baseline_until_ns: int
    end_ns: int
    events: Sequence[Event]

    def __post_init__(self) -> None:
        if not self.start_ns <= self.baseline_until_ns <= self.end_ns:
            raise InvalidParameterError(
                "telemetry window",
                (self.start_ns, self.baseline_until_ns, self.end_ns),
                "start <= baseline_until <= end",
            )

    @property
    def baseline(self) -> Sequence[Event]:
        return self.events[: self._split()]

    @property
    def detection(self) -> Sequence[Event]:
        return self.events[self._split() :]

    @property
    def detection_host_seconds(self) -> int:
        """Hosts times whole seconds of detection window: exact, so sums are order-free."""
        return len(self.hosts) * ((self.end_ns - self.baseline_until_ns) // NS_PER_S)

    @property
    def detection_host_days(self) -> float:
        return self.detection_host_seconds / 86_400

    def _split(self) -> int:
        lo, hi = 0, len(self.events)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.events[mid].ts_ns < self.baseline_until_ns:
                lo = mid + 1
            else:
                hi = mid
        return lo


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryInfo:
    """What scoring needs to know about a telemetry once its events are consumed: its profile,
    fields, hosts and window, and how many events it had. Run records keep this instead of the
    events, so that a run's records stay small (and cheap to send between worker processes)."""

    profile: str
    fields: frozenset[Field]
    hosts: tuple[str, ...]
    start_ns: int
    baseline_until_ns: int
    end_ns: int
    events: int

    @classmethod
    def of(cls, telemetry: Telemetry) -> TelemetryInfo:
        return cls(
            profile=telemetry.profile,
            fields=telemetry.fields,
            hosts=telemetry.hosts,
            start_ns=telemetry.start_ns,
            baseline_until_ns=telemetry.baseline_until_ns,
            end_ns=telemetry.end_ns,
            events=len(telemetry.events),
        )

    @property
    def detection_host_seconds(self) -> int:
        """Hosts times whole seconds of detection window (as :class:`Telemetry` computes it)."""
        return len(self.hosts) * ((self.end_ns - self.baseline_until_ns) // NS_PER_S)


def project(events: Iterable[Event], profile: Profile) -> list[Event]:
    """Render full-knowledge events as the sensors of ``profile`` would report them.

    ``edr`` keeps process, file, flow and resolver-API DNS events (a DNS query with no process was
    sent from a raw socket and an EDR sees it only as a UDP/53 flow) and drops packet-inspection
    anomalies. ``network-only`` drops endpoint events and strips process identity from flows and
    DNS.
    """
    out: list[Event] = []
    if profile is Profile.EDR:
        for e in events:
            if isinstance(e, ProcessStart | FileAccess | NetworkFlow) or (
                isinstance(e, DnsQuery) and e.process_guid is not None
            ):
                out.append(e)
    elif profile is Profile.NETWORK_ONLY:
        for e in events:
            if isinstance(e, NetworkFlow | DnsQuery):
                out.append(replace(e, process_guid=None) if e.process_guid is not None else e)
            elif not isinstance(e, ProcessStart | FileAccess):
                out.append(e)
    else:  # pragma: no cover - StrEnum is closed
        raise InvalidParameterError("profile", profile, ", ".join(p.value for p in Profile))
    return out
