"""Events held column-wise: a :class:`~collections.abc.Sequence` of events that stores columns
(NumPy arrays) and makes the event objects only when someone reads them.

A generator that builds one frozen object per event cannot go faster than object construction
(about 2 microseconds per event in CPython). :class:`EventTable` lets a producer hand over its
columns instead: every field value is already decided and stored, and the objects are made once,
on first read, in one pass per event kind (``map`` over the columns with a positional
constructor), then kept. Readers see an ordinary sequence of events in the order the producer
gave; equality compares events, so a table equals the list of the same events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from harness.events import Event

__all__ = ["EventBlock", "EventTable", "Prefixed", "positional"]

_E = TypeVar("_E")
_MAKERS: dict[type, Callable[..., Any]] = {}


def positional(cls: type[_E]) -> Callable[..., _E]:
    """A constructor of the frozen, slotted event class ``cls`` taking its fields positionally,
    in declaration order, about three times as fast as the keyword ``__init__``.

    A frozen dataclass ``__init__`` goes through ``object.__setattr__`` once per field. Events
    have no ``__post_init__``, so setting the slots directly gives equal objects (same ``repr``,
    same ``==``). If that ever stops holding, this falls back to the keyword constructor.
    """
    made = _MAKERS.get(cls)
    if made is not None:
        return made
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if (
        hasattr(cls, "__post_init__")
        or names != getattr(cls, "__slots__", None)
        or not all(n.isidentifier() and n not in ("obj", "new", "cls") for n in names)
    ):

        def slow(*values: Any) -> _E:
            return cls(**dict(zip(names, values, strict=True)))

        return slow
    # One straight-line function per class, as dataclasses writes its __init__: a loop over
    # the setters costs half as much again. Field names are identifiers (checked above), and
    # nothing else goes into the source.
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    scope.update({f"set_{n}": getattr(cls, n).__set__ for n in names})
    body = "".join(f"    set_{n}(obj, {n})\n" for n in names)
    source = f"def make({', '.join(names)}):\n    obj = new(cls)\n{body}    return obj\n"
    exec(source, scope)  # noqa: S102 - generated from the class's own field names
    make: Callable[..., _E] = scope["make"]
    _MAKERS[cls] = make
    return make


@dataclass(frozen=True, slots=True)
class EventBlock:
    """The events of one class: ``columns`` in the class's field order (each an array or a
    list of one value per event, or a single value shared by all), and ``positions``, where
    each event sits in the table (at least one column must hold one value per event).

    A column named in ``formats`` holds integers that its format turns into the field's values
    on the first read (event ids ``e12`` and flow ids ``f12`` with :class:`Prefixed`, process
    GUIDs from process numbers): formatting is left until someone reads the events."""

    cls: type[Event]
    columns: tuple[Any, ...]
    positions: npt.NDArray[np.int64]
    formats: tuple[tuple[int, Callable[[list[int]], list[Any]]], ...] = ()

    def make(self) -> list[Event]:
        if len(self.positions) == 0:
            return []
        formats = dict(self.formats)
        cols: list[Iterable[Any]] = []
        for i, c in enumerate(self.columns):
            fmt = formats.get(i)
            if isinstance(c, list) or (isinstance(c, np.ndarray) and c.ndim == 1):
                values = c.tolist() if isinstance(c, np.ndarray) else c
                cols.append(fmt(values) if fmt else values)
            else:  # one value for every event
                value = c.item() if isinstance(c, np.ndarray | np.generic) else c
                cols.append(repeat(fmt([value])[0] if fmt else value))
        return list(map(positional(self.cls), *cols))


@dataclass(frozen=True, slots=True)
class Prefixed:
    """A column format: integers shown as ``prefix`` followed by the number (``e12``)."""

    prefix: str

    def __call__(self, values: list[int]) -> list[str]:
        prefix = self.prefix
        return [prefix + s for s in map(str, values)]


class EventTable(Sequence[Event]):
    """A sequence of events stored as :class:`EventBlock` columns (see the module docstring).

    ``ts_ns`` is the time column in table order, so a reader can bisect on time without making
    any event."""

    __slots__ = ("_blocks", "_events", "ts_ns")

    def __init__(self, blocks: Sequence[EventBlock], ts_ns: npt.NDArray[np.int64]) -> None:
        total = sum(len(b.positions) for b in blocks)
        if total != len(ts_ns):
            raise ValueError(f"blocks hold {total} events, the time column {len(ts_ns)}")
        self._blocks = tuple(blocks)
        self.ts_ns = ts_ns
        self._events: list[Event] | None = None

    def events(self) -> list[Event]:
        """Every event as an object (made on the first call, then kept)."""
        if self._events is None:
            out: list[Any] = [None] * len(self.ts_ns)
            for block in self._blocks:
                for pos, event in zip(block.positions.tolist(), block.make(), strict=True):
                    out[pos] = event
            self._events = out
            self._blocks = ()
        return self._events

    def __len__(self) -> int:
        return len(self.ts_ns)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        return self.events()[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventTable):
            return self.events() == other.events()
        if isinstance(other, list | tuple):
            return self.events() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        state = "made" if self._events is not None else "columns"
        return f"<EventTable of {len(self)} events ({state})>"

    def __getstate__(self) -> tuple[tuple[EventBlock, ...], npt.NDArray[np.int64], Any]:
        return self._blocks, self.ts_ns, self._events

    def __setstate__(self, state: tuple[Any, Any, Any]) -> None:
        self._blocks, self.ts_ns, self._events = state
