"""From a :class:`~scenarios.world.World`'s columns to telemetry and ground truth.

:func:`finish` cuts the recorded events to the window, computes the ground truth (first event in
the detection window, process instances, cumulative bytes over time for every actor) on the
columns, sorts the events into :func:`harness.telemetry.sort_events` order (time, then event id
as a string) and renders them under a profile. ``edr`` and ``network-only`` stay column-wise: the
telemetry's events are a :class:`harness.eventtable.EventTable`, made into objects when first
read. ``sysmon+zeek`` needs the objects to split and join the sensor views, so it makes them here
and goes through :func:`harness.telemetry.project` and :func:`harness.ingest.join.join`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harness.events import (
    DnsQuery,
    Event,
    FileAccess,
    FileOperation,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
)
from harness.eventtable import EventBlock, EventTable, Prefixed
from harness.fields import PROFILE_FIELDS, Profile
from harness.ingest.join import join
from harness.scenario import ScenarioRun
from harness.telemetry import Telemetry, origin_event_id, project
from harness.truth import ActorTruth, BytesTimeline, GroundTruth
from scenarios.columns import Part, as_objects, column_array, process_guid

if TYPE_CHECKING:
    from scenarios.world import World

__all__ = ["EventActors", "finish", "recorded"]

Columns = dict[str, npt.NDArray[Any]]
_NEVER = np.iinfo(np.int64).max
_EVENT_ID, _FLOW_ID = Prefixed("e"), Prefixed("f")
#: Kinds whose events carry a process (the ``proc`` column).
_WITH_PROCESS = ("process", "file", "flow", "dns")


class EventActors(Mapping[str, str]):
    """Event id (``e<n>``) to actor id, for the events numbered ``numbers``, without a dict of
    hundreds of thousands of strings: ids are parsed and looked up in an array."""

    __slots__ = ("_actor_ids", "_codes", "_numbers")

    def __init__(
        self, numbers: npt.NDArray[np.int64], codes: npt.NDArray[np.int64], actor_ids: list[str]
    ) -> None:
        order = np.argsort(numbers, kind="stable")
        self._numbers = numbers[order]
        self._codes = codes[order]
        self._actor_ids = actor_ids

    def _find(self, key: object) -> int:
        if not isinstance(key, str) or not key.startswith("e") or not key[1:].isdigit():
            return -1
        n = int(key[1:])
        if key != f"e{n}":  # "e007" is not an id this world gave
            return -1
        i = int(np.searchsorted(self._numbers, n))
        return i if i < len(self._numbers) and self._numbers[i] == n else -1

    def __getitem__(self, key: str) -> str:
        i = self._find(key)
        if i < 0:
            raise KeyError(key)
        return self._actor_ids[int(self._codes[i])]

    def __contains__(self, key: object) -> bool:
        return self._find(key) >= 0

    def __iter__(self) -> Iterator[str]:
        return (f"e{n}" for n in self._numbers.tolist())

    def __len__(self) -> int:
        return len(self._numbers)

    def values_array(self) -> npt.NDArray[np.int64]:
        """Actor index of every event, in event-number order."""
        return self._codes


@dataclass(frozen=True, slots=True)
class GuidFormat:
    """A column format: process numbers (index in the world's process table, -1 for none) as
    the process GUIDs :meth:`World.spawn` gives (``None`` for -1)."""

    seed: int
    #: The address of each process's host, by process number.
    ips: tuple[str, ...]

    def __call__(self, values: list[int]) -> list[str | None]:
        seed, ips = self.seed, self.ips
        return [None if p < 0 else process_guid(p + 1, seed, ips[p]) for p in values]


class _Tables:
    """The world's host table as object arrays, for fancy indexing (index 0 of
    ``host_name_or_none`` is ``None``: look up with index + 1, so -1 gives ``None``), and the
    format of process GUIDs."""

    def __init__(self, world: World) -> None:
        hosts = world.hosts
        n = len(hosts)
        self.host_name = as_objects([h.name for h in hosts], n)
        self.host_name_or_none = as_objects([None, *(h.name for h in hosts)], n + 1)
        self.host_ip = as_objects([h.ip for h in hosts], n)
        self.guid = GuidFormat(world.seed, tuple(hosts[h].ip for h in world.proc_host_array()))


def _block(kind: str, c: Columns, t: _Tables, positions: npt.NDArray[np.int64]) -> EventBlock:
    """One part's events as an :class:`EventBlock` (constant columns stay constant)."""
    eid: tuple[tuple[int, Any], ...] = ((0, _EVENT_ID),)
    if kind == "process":
        cols: tuple[Any, ...] = (
            c["n"], c["ts"], t.host_name[c["host"]], c["proc"], c["pid"], c["image"],
            c["name"], c["command_line"], c["parent"], c["user"], c["signer"],
        )  # fmt: skip
        return EventBlock(ProcessStart, cols, positions, (*eid, (3, t.guid), (8, t.guid)))
    if kind == "file":
        cols = (c["n"], c["ts"], t.host_name[c["host"]], c["proc"], c["path"],
                FileOperation.READ, c["bytes"])  # fmt: skip
        return EventBlock(FileAccess, cols, positions, (*eid, (3, t.guid)))
    if kind == "flow":
        cols = (
            c["n"], c["ts"], c["flow"], t.host_name[c["host"]], c["proc"],
            c["transport"], t.host_ip[c["host"]], c["src_port"], c["dst_ip"], c["dst_port"],
            c["direction"], c["app"], c["start"], c["end"], c["bytes_out"], c["bytes_in"],
            c["packets_out"], c["packets_in"], c["final"], c["server_name"],
        )  # fmt: skip
        return EventBlock(NetworkFlow, cols, positions, (*eid, (2, _FLOW_ID), (4, t.guid)))
    if kind == "dns":
        cols = (
            c["n"], c["ts"], t.host_name[c["host"]], c["proc"], t.host_ip[c["host"]],
            c["resolver"], c["query"], c["qtype"], c["rcode"], c["answers"], c["query_bytes"],
            c["response_bytes"],
        )  # fmt: skip
        return EventBlock(DnsQuery, cols, positions, (*eid, (3, t.guid)))
    cols = (
        c["n"], c["ts"], t.host_name_or_none[c["host"] + 1], c["transport"], c["src_ip"],
        c["src_port"], c["dst_ip"], c["dst_port"], c["kind"], c["detail"], c["app"],
    )  # fmt: skip
    return EventBlock(ProtocolAnomaly, cols, positions, eid)


Parts = dict[str, list[Part]]


def _select(part: Part, mask: npt.NDArray[np.bool_]) -> Part:
    """The events of ``part`` where ``mask`` holds (constant columns stay constant)."""
    _, cols = part
    if mask.all():
        return part
    return int(mask.sum()), {
        k: v[mask] if isinstance(v, np.ndarray) and v.ndim == 1 else v for k, v in cols.items()
    }


def _all(parts: list[Part], name: str) -> npt.NDArray[Any]:
    """Column ``name`` of every part, as one array."""
    arrays = [column_array(cols[name], m) for m, cols in parts]
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)


def _table(world: World, parts: Parts, *, by_time: bool) -> EventTable:
    """The events of ``parts`` in one table: in sort_events order, or by event number."""
    flat = [(kind, part) for kind, ps in parts.items() for part in ps if part[0]]
    ts = _all([p for _, p in flat], "ts")
    numbers = _all([p for _, p in flat], "n")
    order = np.lexsort((numbers, ts)) if by_time else np.argsort(numbers, kind="stable")
    if by_time:
        _break_ties_by_id(order, ts, numbers)
    positions = np.empty(len(order), dtype=np.int64)
    positions[order] = np.arange(len(order), dtype=np.int64)
    tables = _Tables(world)
    blocks, at = [], 0
    for kind, (m, cols) in flat:
        blocks.append(_block(kind, cols, tables, positions[at : at + m]))
        at += m
    return EventTable(blocks, ts[order])


def _break_ties_by_id(
    order: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], numbers: npt.NDArray[np.int64]
) -> None:
    """Events at the same nanosecond are ordered by id as a string (``e10`` before ``e9``), as
    :func:`harness.telemetry.sort_events` orders them; ``order`` (by time, then number) is
    fixed in place. Ties are rare, so this goes run by run."""
    st = ts[order]
    same = np.flatnonzero(st[1:] == st[:-1])
    if not len(same):
        return
    run_start = same[np.r_[True, same[1:] != same[:-1] + 1]]
    run_end = same[np.r_[same[1:] != same[:-1] + 1, True]] + 2
    for i, j in zip(run_start.tolist(), run_end.tolist(), strict=True):
        chunk = order[i:j].tolist()
        order[i:j] = sorted(chunk, key=lambda x: f"e{numbers[x]}")


def recorded(world: World) -> list[Event]:
    """Every recorded event, in recording (event number) order, before any window cut."""
    parts = {k: s.parts() for k, s in world._stores.items()}
    return _table(world, parts, by_time=False).events()


def finish(world: World, profile: Profile) -> ScenarioRun:
    env = world.env
    parts: Parts = {}
    for kind, store in world._stores.items():
        parts[kind] = []
        for part in store.parts():
            ts = column_array(part[1]["ts"], part[0])
            parts[kind].append(_select(part, (ts >= env.start_ns) & (ts < env.end_ns)))
    actor_ids = [a.actor_id for a in world._actors.values()]
    every = [p for ps in parts.values() for p in ps]
    codes = _all(every, "actor")
    event_actor = EventActors(_all(every, "n"), codes, actor_ids)
    truth = GroundTruth(
        scenario=world.scenario,
        seed=world.seed,
        actors=_actor_truths(world, parts, _all(every, "ts"), codes),
        event_actor=event_actor,
    )
    if profile is Profile.SYSMON_ZEEK:
        # The split sensor views are joined here, as a SOC's pipeline would before its
        # detections run; the runner and the detectors see only the joined telemetry. Events
        # the rendering derived (connections, the network copy of a DNS query) are booked to
        # the actor of the event they came from.
        rendered: Any = list(join(project(_table(world, parts, by_time=True), profile)))
        labels = dict(event_actor)
        for e in rendered:
            if e.event_id not in labels:
                labels[e.event_id] = labels[origin_event_id(e.event_id)]
        truth = GroundTruth(
            scenario=truth.scenario, seed=truth.seed, actors=truth.actors, event_actor=labels
        )
    else:
        rendered = _table(world, _project(parts, profile), by_time=True)
    telemetry = Telemetry(
        profile=profile.value,
        fields=PROFILE_FIELDS[profile],
        hosts=tuple(h.name for h in env.hosts),
        start_ns=env.start_ns,
        baseline_until_ns=env.baseline_until_ns,
        end_ns=env.end_ns,
        events=rendered,
    )
    return ScenarioRun(telemetry=telemetry, truth=truth)


def _project(parts: Parts, profile: Profile) -> Parts:
    """:func:`harness.telemetry.project` for ``edr`` and ``network-only``, on columns."""
    if profile is Profile.EDR:
        # A DNS query with no process was sent from a raw socket: an EDR sees only its flow.
        dns = [_select(p, column_array(p[1]["proc"], p[0]) >= 0) for p in parts["dns"]]
        return {"process": parts["process"], "file": parts["file"], "flow": parts["flow"],
                "dns": dns}  # fmt: skip
    if profile is Profile.NETWORK_ONLY:
        out: Parts = {}
        for kind in ("flow", "dns"):
            out[kind] = [(m, {**cols, "proc": -1}) for m, cols in parts[kind]]
        out["anomaly"] = parts["anomaly"]
        return out
    raise ValueError(f"profile {profile.value!r} is rendered from event objects")


def _actor_truths(
    world: World, parts: Parts, ts: npt.NDArray[np.int64], actor: npt.NDArray[np.int64]
) -> tuple[ActorTruth, ...]:
    """Every actor's truth from the window's ``parts`` (``ts`` and ``actor``: the time and
    actor columns of all of them)."""
    env = world.env
    actors = list(world._actors.values())
    n_actors = len(actors)
    # First event of each actor in the detection window.
    late = ts >= env.baseline_until_ns
    first = np.full(n_actors, _NEVER, dtype=np.int64)
    np.minimum.at(first, actor[late], ts[late])
    # A process instance counts for the actor that started it, once, if it did anything in the
    # detection window (the DNS client service sends other actors' queries).
    with_process = [p for k in _WITH_PROCESS for p in parts[k]]
    proc, pts = _all(with_process, "proc"), _all(with_process, "ts")
    active = np.unique(proc[(pts >= env.baseline_until_ns) & (proc >= 0)])
    spawner = np.asarray(world._proc_actor, dtype=np.int64)
    instances = np.bincount(spawner[active], minlength=n_actors)
    timelines = _bytes_timelines(parts["flow"], n_actors)
    out = []
    for a in sorted(actors, key=lambda a: a.actor_id):
        out.append(
            ActorTruth(
                actor_id=a.actor_id,
                kind=a.kind,
                description=a.description,
                techniques=a.techniques,
                expected_analytics=a.expected_analytics,
                trap_for=a.trap_for,
                observable_with=a.observable_with,
                start_ns=None if first[a.code] == _NEVER else int(first[a.code]),
                hosts=tuple(sorted(a.hosts)),
                process_instances=int(instances[a.code]),
                bytes_timeline=timelines[a.code],
            )
        )
    return tuple(out)


def _bytes_timelines(flows: list[Part], n_actors: int) -> list[Sequence[tuple[int, int]]]:
    """Per actor: (time, cumulative bytes sent) at every flow record that sent bytes, one point
    per distinct time."""
    size = _all(flows, "bytes_out")
    sent = size > 0
    actor, ts, size = _all(flows, "actor")[sent], _all(flows, "ts")[sent], size[sent]
    if not len(size):
        return [()] * n_actors
    span = int(ts.max() - ts.min()) + 1
    if span * n_actors < 2**62:  # one sort on (actor, time) folded into one key
        order = np.argsort(actor * span + (ts - ts.min()), kind="stable")
    else:
        order = np.lexsort((ts, actor))
    actor, ts, size = actor[order], ts[order], size[order]
    total = np.cumsum(size)
    group_start = np.r_[True, actor[1:] != actor[:-1]]
    total = total - np.maximum.accumulate(np.where(group_start, total - size, 0))
    last = np.r_[(actor[1:] != actor[:-1]) | (ts[1:] != ts[:-1]), True]
    actor, ts, total = actor[last], ts[last], total[last]
    bounds = np.searchsorted(actor, np.arange(n_actors + 1)).tolist()
    return [BytesTimeline(ts[i:j], total[i:j]) for i, j in itertools.pairwise(bounds)]
