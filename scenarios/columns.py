"""Column storage for :class:`~scenarios.world.World`: the recorded events of each kind as rows
(one tuple per event, from actors that act one event at a time) and blocks (NumPy columns, from
actors that draw a whole span of activity at once), and the active-timeout split of flows into
export records, done for many flows at once.

Columns are the recorder's own layout, not the event classes': hosts and processes are indices
into the world's host and process tables, event and flow ids are integers. :mod:`scenarios.render`
turns them into :class:`harness.eventtable.EventTable` blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ANOMALY",
    "DNS",
    "FILE",
    "FLOW",
    "PROCESS",
    "FlowRecords",
    "Int64s",
    "Store",
    "as_objects",
    "column_array",
    "mul_div",
    "packets",
    "process_guid",
    "split_flows",
]

Int64s = npt.NDArray[np.int64]

#: Column names of each kind, in row order. ``n`` is the event number (id ``e<n>``), ``actor``
#: the actor's index in the world, ``host``/``proc`` indices into the world's tables (-1: none).
PROCESS = ("n", "actor", "ts", "host", "proc", "pid", "image", "name", "command_line",
           "parent", "user", "signer")  # fmt: skip
FILE = ("n", "actor", "ts", "host", "proc", "path", "bytes")
FLOW = ("n", "actor", "ts", "flow", "host", "proc", "transport", "src_port", "dst_ip",
        "dst_port", "direction", "app", "start", "end", "bytes_out", "bytes_in", "packets_out",
        "packets_in", "final", "server_name")  # fmt: skip
DNS = ("n", "actor", "ts", "host", "proc", "resolver", "query", "qtype", "rcode", "answers",
       "query_bytes", "response_bytes")  # fmt: skip
ANOMALY = ("n", "actor", "ts", "host", "transport", "src_ip", "src_port", "dst_ip", "dst_port",
           "kind", "detail", "app")  # fmt: skip
_INTS = frozenset(
    (
        "n",
        "actor",
        "ts",
        "host",
        "proc",
        "pid",
        "parent",
        "bytes",
        "flow",
        "src_port",
        "dst_port",
        "start",
        "end",
        "bytes_out",
        "bytes_in",
        "packets_out",
        "packets_in",
        "query_bytes",
        "response_bytes",
    )
)
_BOOLS = frozenset(("final",))
_MSS = 1460


def as_objects(values: Any, m: int) -> npt.NDArray[np.object_]:
    """``m`` values as a 1-D object array: a sequence of ``m`` values element by element (tuples
    stay tuples), anything else repeated."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    if isinstance(values, list | np.ndarray) or (
        isinstance(values, Sequence) and not isinstance(values, str | tuple)
    ):
        if len(values) != m:
            raise ValueError(f"column of {len(values)} values for {m} events")
        if m and isinstance(values, list) and type(values[0]) is str:
            out = np.empty(m, dtype=object)
            out[:] = values  # a list of strings: one C-level copy
            return out
        return np.fromiter(values, dtype=object, count=m)
    out = np.empty(m, dtype=object)
    out.fill(values)
    return out


class Store:
    """The events of one kind, as rows and blocks (see the module docstring)."""

    __slots__ = ("blocks", "names", "rows")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.rows: list[tuple[Any, ...]] = []
        self.blocks: list[tuple[int, dict[str, Any]]] = []

    def block(self, m: int, **columns: Any) -> None:
        """``m`` events; each column an array of ``m`` values or one value for all."""
        if set(columns) != set(self.names):
            raise ValueError(f"block columns {sorted(set(columns) ^ set(self.names))} differ")
        if m:
            self.blocks.append((m, columns))

    def __len__(self) -> int:
        return len(self.rows) + sum(m for m, _ in self.blocks)

    def parts(self) -> list[Part]:
        """Every event of this kind as parts (rows first, then blocks in recording order), each
        a number of events and its columns: 1-D arrays, or one value for all the part's events
        (a constant column is never expanded)."""
        out: list[Part] = []
        if self.rows:
            m = len(self.rows)
            by_column = [list(c) for c in zip(*self.rows, strict=True)]
            out.append((m, {n: _column(n, by_column[i], m) for i, n in enumerate(self.names)}))
        for m, cols in self.blocks:
            out.append((m, {n: _column(n, v, m) for n, v in cols.items()}))
        return out


#: A part of a :class:`Store`: (events, columns).
Part = tuple[int, dict[str, Any]]


def column_array(value: Any, m: int) -> npt.NDArray[Any]:
    """A part's column as a 1-D array of ``m`` values (a constant is broadcast, not copied)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value
    if isinstance(value, int | np.integer):
        return np.broadcast_to(np.int64(value), (m,))
    return as_objects(value, m)


def _column(name: str, values: Any, m: int) -> Any:
    """One column of a part: ints and flags as arrays (a single int stays a constant), other
    values as object arrays (a single value, including a tuple, stays a constant)."""
    if name in _INTS:
        if isinstance(values, int | np.integer):
            return int(values)
        arr = np.asarray(values, dtype=np.int64)
        return arr if arr.ndim == 1 else int(arr)
    if name in _BOOLS:
        if isinstance(values, bool):
            return values
        return np.asarray(values, dtype=bool)
    if isinstance(values, list | np.ndarray):
        return as_objects(values, m)
    return values


def process_guid(number: int, seed: int, ip: str) -> str:
    """The GUID of the world's process ``number`` (1-based) on the host with address ``ip``:
    unique per process, with the seed and the host's last octet in it, as Sysmon writes them."""
    octet = int(ip.rsplit(".", 1)[-1])
    return f"{{{number:08X}-{seed & 0xFFFF:04X}-4E0B-8000-{octet:012X}}}"


def packets(payload: Int64s, *, udp: bool, originator: bool) -> Int64s:
    """Packets needed to carry each ``payload`` (see :func:`scenarios.world.packets`)."""
    data = -(-payload // _MSS)
    if udp:
        return np.where(payload > 0, np.maximum(data, 1), 0)
    return data + (3 if originator else 2)


def mul_div(a: Int64s, b: Int64s, c: Int64s) -> Int64s:
    """``a * b // c`` exactly for non-negative ``a``, ``b`` and positive ``c`` whose product may
    overflow 64 bits (bytes times nanoseconds), as long as the result and ``c`` fit.

    The quotient is estimated in floating point (off by at most one at these magnitudes), then
    corrected with the remainder ``a*b - q*c``, which is small: computed in wrapping 64-bit
    arithmetic it is exact even though ``a*b`` alone is not."""
    q = np.floor(a.astype(np.float64) * (b.astype(np.float64) / c.astype(np.float64)))
    q = q.astype(np.int64)
    with np.errstate(over="ignore"):
        r = a * b - q * c
    q = q - (r < 0) + (r >= c)
    with np.errstate(over="ignore"):
        r = a * b - q * c
    if np.any((r < 0) | (r >= c)):  # pragma: no cover - would mean an estimate off by two
        raise ArithmeticError("mul_div estimate out of range")
    return q


@dataclass(frozen=True, slots=True)
class FlowRecords:
    """The export records of a set of flows: ``flow`` is the index of the flow each record
    belongs to, ``k`` its 1-based place in the flow, the rest the record's values."""

    flow: Int64s
    k: Int64s
    ts: Int64s
    bytes_out: Int64s
    bytes_in: Int64s
    packets_out: Int64s
    packets_in: Int64s
    final: npt.NDArray[np.bool_]
    #: Per flow: end time (after the cut at the window end), totals, and records.
    end: Int64s
    totals: tuple[Int64s, Int64s, Int64s, Int64s]
    count: Int64s


def split_flows(
    ts: Int64s,
    duration_ns: Int64s,
    bytes_out: Int64s,
    bytes_in: Int64s,
    *,
    udp: bool,
    last_ns: int,
    timeout_ns: int,
) -> FlowRecords:
    """Flows cut at ``last_ns`` (the window's last nanosecond, bytes pro rata) and split into
    active-timeout records whose counts add up to the flow's totals, exactly as
    :meth:`scenarios.world.World.flow` does one flow at a time."""
    end = ts + np.maximum(duration_ns, 1)
    bytes_out, bytes_in = bytes_out.copy(), bytes_in.copy()
    cut = (end > last_ns) & (ts < last_ns)
    if cut.any():
        kept, span = last_ns - ts[cut], end[cut] - ts[cut]
        bytes_out[cut] = mul_div(bytes_out[cut], kept, span)
        bytes_in[cut] = mul_div(bytes_in[cut], kept, span)
        end[cut] = last_ns
    pkts_out = packets(bytes_out, udp=udp, originator=True)
    pkts_in = packets(bytes_in, udp=udp, originator=False)
    span = end - ts
    count = -(-span // timeout_ns)
    flow = np.repeat(np.arange(len(ts), dtype=np.int64), count)
    first = np.cumsum(count) - count
    k = np.arange(len(flow), dtype=np.int64) - first[flow] + 1
    final = k == count[flow]
    rec_ts = np.where(final, end[flow], ts[flow] + k * timeout_ns)
    span_r = span[flow]

    split = np.flatnonzero(count[flow] > 1)  # records of flows longer than the timeout

    def share(total: Int64s) -> Int64s:
        out = total[flow].copy()
        if len(split):
            t, kk, sp = out[split], k[split], span_r[split]
            upto = np.where(final[split], t, mul_div(t, kk * timeout_ns, sp))
            out[split] = upto - mul_div(t, (kk - 1) * timeout_ns, sp)
        return out

    return FlowRecords(
        flow=flow,
        k=k,
        ts=rec_ts,
        bytes_out=share(bytes_out),
        bytes_in=share(bytes_in),
        packets_out=share(pkts_out),
        packets_in=share(pkts_in),
        final=final,
        end=end,
        totals=(bytes_out, bytes_in, pkts_out, pkts_in),
        count=count,
    )
