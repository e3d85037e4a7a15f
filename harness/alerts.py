"""Alerts: what a detector says, with the entity it is about and the events that prove it."""

from __future__ import annotations

from dataclasses import dataclass

from harness.analytics import AnalyticId

__all__ = ["Alert", "Entity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    """Who and where: the host, the process if known, and the remote end if there is one."""

    host: str | None = None
    process_guid: str | None = None
    process_name: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    domain: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One detection.

    ``ts_ns`` is the event time at which the detector decided (the time of the last evidence it
    needed). ``evidence`` cites event ids; scoring judges an alert true when any cited event was
    caused by a malicious actor. ``reason`` is one line a human can act on.
    """

    analytic: AnalyticId
    detector: str
    ts_ns: int
    score: float
    entity: Entity
    evidence: tuple[str, ...]
    reason: str
