"""Scenario knobs: a parameter field that knows its meaning, its valid values and its test range.

A scenario's ``Params`` is a frozen dataclass; each field declared with :func:`knob` carries a
:class:`Knob` in its metadata. One declaration then serves three readers:

* validation (:func:`validate`, called from ``__post_init__``) rejects a value of the wrong type
  or out of range with an :class:`~harness.errors.InvalidParameterError` naming the knob;
* :mod:`scenarios.strategies` draws values for property tests from ``test_range`` (a sub-range
  of the valid one that keeps a generated scenario small) or ``choices``;
* :mod:`scenarios.catalogue` prints the default and the meaning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InvalidParameterError
from scenarios.malicious import DISGUISES

__all__ = [
    "Knob",
    "disguise_knob",
    "files_knob",
    "jitter_knob",
    "knob",
    "knobs",
    "port_knob",
    "validate",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Knob:
    """What a knob means and which values it accepts."""

    name: str = ""
    doc: str
    default: Any
    #: Inclusive bounds for numbers (``None``: unbounded on that side).
    low: float | None = None
    high: float | None = None
    #: The closed set of accepted values, for strings (and booleans).
    choices: tuple[Any, ...] = ()
    #: Values inside the bounds that are still invalid (a protocol's own port for a misuse).
    exclude: tuple[Any, ...] = ()
    #: Bounds property tests draw from: valid, and small enough to generate quickly.
    test_range: tuple[float, float] | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def check(self, value: Any) -> None:
        kind = self.kind
        if kind is bool or self.choices:
            if value not in self.choices or type(value) is not kind:
                shown = ", ".join(repr(c) for c in self.choices)
                raise InvalidParameterError(self.name, value, f"one of {shown}")
            return
        ok_type = (
            isinstance(value, int) and not isinstance(value, bool)
            if kind is int
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if not ok_type:
            raise InvalidParameterError(
                self.name, value, f"a{'n integer' if kind is int else ' number'}"
            )
        if value != value:  # NaN
            raise InvalidParameterError(self.name, value, "a number, not NaN")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise InvalidParameterError(self.name, value, f"a value in {self.bounds()}")
        if value in self.exclude:
            shown = ", ".join(str(x) for x in self.exclude)
            raise InvalidParameterError(
                self.name, value, f"a value in {self.bounds()} other than {shown}"
            )

    def bounds(self) -> str:
        """The valid range as text, e.g. ``[1, 65535]``."""
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        return f"[{low}, {high}]"

    def values(self) -> str:
        """Accepted values for the catalogue."""
        if self.choices:
            return " / ".join(str(c) for c in self.choices)
        if self.exclude:
            return f"{self.bounds()} except {', '.join(str(x) for x in self.exclude)}"
        return self.bounds()


def _num(x: float) -> str:
    return f"{int(x):,}".replace(",", "_") if float(x).is_integer() else f"{x:g}"


def knob(
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[Any, ...] = (),
    exclude: tuple[Any, ...] = (),
    test_range: tuple[float, float] | None = None,
) -> Any:
    """A dataclass field with a default and a :class:`Knob` in its metadata."""
    if isinstance(default, bool) and not choices:
        choices = (False, True)
    spec = Knob(
        doc=doc,
        default=default,
        low=low,
        high=high,
        choices=choices,
        exclude=exclude,
        test_range=test_range,
    )
    return field(default=default, metadata={"knob": spec})


def knobs(params: Any) -> Iterator[Knob]:
    """The knobs of a ``Params`` class or instance, in declaration order, names filled in."""
    for f in dataclasses.fields(params):
        spec = f.metadata.get("knob")
        if spec is None:
            spec = Knob(doc="", default=f.default)
        yield dataclasses.replace(spec, name=f.name)


def validate(params: Any) -> None:
    """Check every knob of ``params``; raises :class:`InvalidParameterError` on the first bad
    one."""
    for spec in knobs(params):
        if spec.doc:
            spec.check(getattr(params, spec.name))


# --- knobs shared by several scenarios ---


def jitter_knob(default: float, what: str = "the gap between sends") -> float:
    doc = f"Fractional jitter of {what} (0: fixed period)."
    result: float = knob(default, doc, low=0, high=0.99, test_range=(0, 0.9))
    return result


def port_knob(default: int, doc: str, exclude: tuple[int, ...] = ()) -> int:
    result: int = knob(default, doc, low=1, high=65_535, exclude=exclude)
    return result


def files_knob(default: int, who: str) -> int:
    doc = (
        f"Documents {who} reads first (the precursor of AN0988); 0 removes the precursor and "
        "AN0988 is then not expected."
    )
    result: int = knob(default, doc, low=0, high=1_000_000, test_range=(0, 30))
    return result


def disguise_knob(who: str) -> str:
    doc = (
        f"Process identity of {who}: 'default' keeps each actor's own, the others replace it "
        "(see scenarios.malicious.disguise)."
    )
    result: str = knob("default", doc, choices=DISGUISES)
    return result
