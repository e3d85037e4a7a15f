"""Ground truth: who did what, kept beside the telemetry and never handed to a detector.

A :class:`GroundTruth` names every actor of a scenario run, malicious or benign, maps each event
id to the actor that caused it, and records for malicious actors the cumulative bytes they moved
over time, so that scoring can say how much left before the first true alert.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from harness.analytics import AnalyticId, TechniqueId
from harness.fields import Field

__all__ = ["ActorKind", "ActorTruth", "BytesTimeline", "GroundTruth"]


class ActorKind(StrEnum):
    MALICIOUS = "malicious"
    BENIGN = "benign"


class BytesTimeline(Sequence[tuple[int, int]]):
    """``(ts_ns, cumulative_bytes)`` points held as two arrays, the tuples made on access: a
    generator books tens of thousands of points per run, most of which no one reads. Equal to
    any sequence of the same points."""

    __slots__ = ("_total", "_ts")

    def __init__(self, ts_ns: npt.NDArray[np.int64], total: npt.NDArray[np.int64]) -> None:
        if len(ts_ns) != len(total):
            raise ValueError(f"{len(ts_ns)} times for {len(total)} totals")
        self._ts, self._total = ts_ns, total

    def __len__(self) -> int:
        return len(self._ts)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[int, int]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return BytesTimeline(self._ts[index], self._total[index])
        return int(self._ts[index]), int(self._total[index])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._ts.tolist(), self._total.tolist(), strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"BytesTimeline({list(self)!r})"

    def until(self, ts_ns: int) -> int:
        """Cumulative bytes at ``ts_ns`` (inclusive)."""
        i = int(np.searchsorted(self._ts, ts_ns, side="right"))
        return int(self._total[i - 1]) if i else 0

    def __getstate__(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return self._ts, self._total

    def __setstate__(self, state: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]) -> None:
        self._ts, self._total = state


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorTruth:
    """One actor of a scenario run.

    ``bytes_timeline`` holds ``(ts_ns, cumulative_bytes_out)`` points in time order (a tuple,
    or a :class:`BytesTimeline`): after the
    point at ``ts_ns`` the actor had sent ``cumulative_bytes_out`` bytes in total (all its flows,
    DNS included). ``trap_for`` names the analytics a benign actor is a deliberate
    false-positive trap for.
    """

    actor_id: str
    kind: ActorKind
    description: str
    techniques: tuple[TechniqueId, ...] = ()
    expected_analytics: tuple[AnalyticId, ...] = ()
    trap_for: tuple[AnalyticId, ...] = ()
    #: Fields without which the actor leaves no trace its expected analytics could see (for
    #: example ``packets`` for injected resets: an EDR cannot see them). Under a profile that
    #: lacks one, the actor is scored *unobservable*, not missed.
    observable_with: frozenset[Field] = frozenset()
    start_ns: int | None = None
    hosts: tuple[str, ...] = ()
    process_instances: int = 0
    bytes_timeline: Sequence[tuple[int, int]] = ()

    def bytes_until(self, ts_ns: int) -> int:
        """Cumulative bytes the actor had sent at ``ts_ns`` (inclusive)."""
        if isinstance(self.bytes_timeline, BytesTimeline):
            return self.bytes_timeline.until(ts_ns)
        times = [t for t, _ in self.bytes_timeline]
        i = bisect.bisect_right(times, ts_ns)
        return self.bytes_timeline[i - 1][1] if i else 0

    @property
    def bytes_total(self) -> int:
        return self.bytes_timeline[-1][1] if self.bytes_timeline else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GroundTruth:
    """Every actor of one scenario run and the actor behind every event id."""

    scenario: str
    seed: int
    actors: tuple[ActorTruth, ...]
    event_actor: Mapping[str, str] = field(repr=False)

    def actor(self, actor_id: str) -> ActorTruth:
        for a in self.actors:
            if a.actor_id == actor_id:
                return a
        raise KeyError(actor_id)

    @property
    def malicious(self) -> tuple[ActorTruth, ...]:
        return tuple(a for a in self.actors if a.kind is ActorKind.MALICIOUS)

    @property
    def benign_process_instances(self) -> int:
        return sum(a.process_instances for a in self.actors if a.kind is ActorKind.BENIGN)
