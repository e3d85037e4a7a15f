"""Telemetry: the events of one scenario run as one set of sensors saw them.

A :class:`Telemetry` holds events in event-time order plus what a detector may legitimately know
about the recording (its hosts, its time span, the end of the baseline window and the fields its
profile supplies). It holds no ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from harness.errors import InvalidParameterError
from harness.events import (
    NS_PER_S,
    Direction,
    DnsQuery,
    Event,
    FileAccess,
    NetworkConnection,
    NetworkFlow,
    ProcessStart,
)
from harness.eventtable import EventTable
from harness.fields import Field, Profile

__all__ = [
    "CONNECTION_ID_SUFFIX",
    "NETWORK_DNS_ID_SUFFIX",
    "Telemetry",
    "TelemetryInfo",
    "evolve",
    "origin_event_id",
    "project",
    "sort_events",
    "split_index",
]

#: Id suffix of the endpoint connection event rendered from a flow's first record.
CONNECTION_ID_SUFFIX = ".conn"
#: Id suffix of the network sensor's copy of a resolver-API DNS query.
NETWORK_DNS_ID_SUFFIX = ".net"


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
        return split_index(self.events, self.baseline_until_ns)


def split_index(events: Sequence[Event], ts_ns: int) -> int:
    """The index of the first event at or after ``ts_ns`` in time-ordered ``events`` (on an
    :class:`~harness.eventtable.EventTable`, found in its time column without making events)."""
    if isinstance(events, EventTable):
        return int(np.searchsorted(events.ts_ns, ts_ns, side="left"))
    lo, hi = 0, len(events)
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid].ts_ns < ts_ns:
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


_E = TypeVar("_E", bound=Event)


def evolve(event: _E, **changes: Any) -> _E:
    """A copy of ``event`` with ``changes``: :func:`dataclasses.replace` without its per-call
    field introspection (five times faster; events have no ``__post_init__`` to run)."""
    cls = type(event)
    new = object.__new__(cls)
    setattr_ = object.__setattr__
    for name in cls.__slots__:
        setattr_(new, name, changes[name] if name in changes else getattr(event, name))
    if len(changes) and not changes.keys() <= set(cls.__slots__):
        raise TypeError(f"{cls.__name__} has no field {sorted(set(changes) - set(cls.__slots__))}")
    return new


def origin_event_id(event_id: str) -> str:
    """The id of the full-knowledge event a rendered event was made from (itself for most)."""
    for suffix in (CONNECTION_ID_SUFFIX, NETWORK_DNS_ID_SUFFIX):
        if event_id.endswith(suffix):
            return event_id[: -len(suffix)]
    return event_id


def project(events: Iterable[Event], profile: Profile) -> list[Event]:
    """Render full-knowledge events as the sensors of ``profile`` would report them.

    ``edr`` keeps process, file, flow and resolver-API DNS events (a DNS query with no process was
    sent from a raw socket and an EDR sees it only as a UDP/53 flow) and drops packet-inspection
    anomalies. ``network-only`` drops endpoint events and strips process identity from flows and
    DNS.

    ``sysmon+zeek`` renders the two sensors' split views, not yet joined
    (:mod:`harness.ingest.join` joins them): Sysmon's process starts (event 1), resolver-API DNS
    queries with process (event 22), and one :class:`NetworkConnection` per flow (event 3: the
    process and 5-tuple at the flow's start, no bytes; id: the flow's first record id plus
    :data:`CONNECTION_ID_SUFFIX`); Zeek's flow records without process and with ``host`` = the
    local endpoint's address, and every DNS query without process, host likewise (a copy of a
    resolver-API query gets the id plus :data:`NETWORK_DNS_ID_SUFFIX`). No file reads (Sysmon has
    no file-read event), no protocol anomalies. Flow records keep their active-timeout interim
    records, as Zeek with Corelight's long-connections package or a NetFlow exporter reports
    them. The result is in :func:`sort_events` order; :func:`origin_event_id` maps a derived id
    back to the event it was made from, so ground truth books it to the same actor.
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
    elif profile is Profile.SYSMON_ZEEK:
        return _sysmon_zeek(events)
    else:  # pragma: no cover - StrEnum is closed
        raise InvalidParameterError("profile", profile, ", ".join(p.value for p in Profile))
    return out


def _sysmon_zeek(events: Iterable[Event]) -> list[Event]:
    out: list[Event] = []
    seen_flows: set[str] = set()
    for e in events:
        if isinstance(e, ProcessStart | NetworkConnection):
            out.append(e)
        elif isinstance(e, DnsQuery):
            if e.process_guid is None:
                out.append(evolve(e, host=e.src_ip))
            else:
                out.append(e)
                out.append(
                    evolve(
                        e,
                        event_id=e.event_id + NETWORK_DNS_ID_SUFFIX,
                        process_guid=None,
                        host=e.src_ip,
                    )
                )
        elif isinstance(e, NetworkFlow):
            local = e.dst_ip if e.direction is Direction.INBOUND else e.src_ip
            if e.process_guid is not None and e.flow_id not in seen_flows:
                seen_flows.add(e.flow_id)
                out.append(
                    NetworkConnection(
                        event_id=e.event_id + CONNECTION_ID_SUFFIX,
                        ts_ns=e.start_ns,
                        host=e.host,
                        process_guid=e.process_guid,
                        transport=e.transport,
                        src_ip=e.src_ip,
                        src_port=e.src_port,
                        dst_ip=e.dst_ip,
                        dst_port=e.dst_port,
                        direction=e.direction,
                        initiated=e.direction is not Direction.INBOUND,
                    )
                )
            out.append(evolve(e, process_guid=None, host=local))
    return sort_events(out)
