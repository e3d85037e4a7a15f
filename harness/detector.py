"""The detector contract.

A detector is a class that declares its analytic, the ATT&CK techniques it covers, the telemetry
fields it needs, the event kinds it consumes and its tunables, and then is driven as a stream::

    detector = MyDetector(**tunables)        # unknown or out-of-range tunables raise UsageError
    detector.fit(baseline_events)            # learn what normal looks like
    for event in detection_events:           # strictly in event-time order
        alerts += detector.observe(event)
    alerts += detector.flush()               # end of stream: emit what is still pending

Detectors receive :data:`harness.events.Event` values only; ground truth is a separate type the
runner never passes on. Subclass :class:`Detector` to get tunable validation for free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.alerts import Alert
from harness.analytics import AnalyticId, TechniqueId
from harness.errors import InvalidParameterError, UnknownPluginError
from harness.events import Event, EventKind
from harness.fields import Field

__all__ = ["Detector", "Tunable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tunable:
    """A documented knob of a detector: its default, bounds and meaning (with units)."""

    default: float
    minimum: float
    maximum: float
    description: str
    #: Swept by threshold sweeps when True: the detector's main operating point.
    primary: bool = False

    def check(self, name: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParameterError(f"tunable {name!r}", value, "a number")
        if not self.minimum <= value <= self.maximum:
            raise InvalidParameterError(
                f"tunable {name!r}", value, f"a number in [{self.minimum}, {self.maximum}]"
            )
        return float(value)


class Detector:
    """Base class for detectors: declarations plus the fit/observe/flush stream.

    Subclasses set the class variables and implement :meth:`fit`, :meth:`observe` and
    :meth:`flush`. Tunable values are available as ``self.tunables[name]``.
    """

    id: ClassVar[str]
    analytic: ClassVar[AnalyticId]
    techniques: ClassVar[tuple[TechniqueId, ...]]
    required_fields: ClassVar[frozenset[Field]]
    consumes: ClassVar[frozenset[EventKind]]
    tunable_specs: ClassVar[Mapping[str, Tunable]] = {}

    def __init__(self, **tunables: Any) -> None:
        unknown = set(tunables) - set(self.tunable_specs)
        if unknown:
            name = sorted(unknown)[0]
            raise UnknownPluginError(f"tunable of {self.id}", name, self.tunable_specs)
        self.tunables: dict[str, float] = {
            name: spec.check(name, tunables.get(name, spec.default))
            for name, spec in self.tunable_specs.items()
        }

    def fit(self, baseline: Iterable[Event]) -> None:
        """Learn from the baseline window (events in time order). The default learns nothing."""
        for _ in baseline:
            pass

    def observe(self, event: Event) -> Sequence[Alert]:
        raise NotImplementedError

    def flush(self) -> Sequence[Alert]:
        """End of the stream: return alerts still pending. The default has none."""
        return ()
