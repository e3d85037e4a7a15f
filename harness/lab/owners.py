"""Owners of the flows the socket monitor missed.

The monitor (:class:`~harness.lab.attribution.SocketMonitor`) polls, so a socket opened and
closed between two polls has no owner there. Two fallbacks name one: the sinks' own ``/proc``
lookup made when the connection arrived (:class:`harness.lab.sinks.OwnerLookup`, logged in
``sinks.jsonl``), else the one lab process alive on that client at the flow's start.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.events import NS_PER_S, NetworkFlow
from harness.lab.attribution import ProcessInfo, SocketMonitor
from harness.lab.phases import Launch

__all__ = [
    "OWNER_TOLERANCE_NS",
    "hinted_process",
    "owner_hints",
    "sink_records",
    "sole_process",
]

#: A socket is taken to have existed this long before its first and after its last sighting:
#: a poll of many processes on a loaded machine takes far longer than the monitor's interval,
#: and a program sends its first packet right after opening its socket. The local address and
#: port must match exactly, so a wide tolerance only matters when a port is reused that fast.
OWNER_TOLERANCE_NS = 2 * NS_PER_S


def sink_records(path: Path) -> list[dict[str, Any]]:
    """The records of the sinks' JSON-lines log, read once for :func:`owner_hints` and
    :func:`harness.lab.truth.sink_dns_ports`. A missing log or a line that is not a JSON object
    is skipped: the sinks are stopped by signal, so the last line may be cut."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def owner_hints(
    records: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str, int], list[tuple[int, int, int]]]:
    """The sinks' owner lookups (:class:`harness.lab.sinks.OwnerLookup`) among the sinks' log
    ``records`` (:func:`sink_records`): per (transport, client address, client port) the (time,
    pid, start ticks) of each connection's owner."""
    out: dict[tuple[str, str, int], list[tuple[int, int, int]]] = defaultdict(list)
    for rec in records:
        if rec.get("event") != "connection":
            continue
        try:
            owner = rec.get("owner")
            if owner:
                key = (str(rec["transport"]), str(rec["client_ip"]), int(rec["client_port"]))
                out[key].append((int(rec["ts_ns"]), int(owner["pid"]), int(owner["start_ticks"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def hinted_process(
    hints: Mapping[tuple[str, str, int], list[tuple[int, int, int]]],
    flow: NetworkFlow,
    procs: Mapping[tuple[int, int], ProcessInfo],
) -> ProcessInfo | None:
    """The process a sink's lookup named for the flow's client endpoint (nearest in time,
    within the owner tolerance), if the monitor saw that process."""
    found = hints.get((flow.transport.value, flow.src_ip, flow.src_port))
    if not found:
        return None
    ts, pid, ticks = min(found, key=lambda h: abs(h[0] - flow.start_ns))
    if abs(ts - flow.start_ns) > OWNER_TOLERANCE_NS:
        return None
    return procs.get((pid, ticks))


def sole_process(
    monitor: SocketMonitor,
    launch_of: Mapping[tuple[int, int], Launch],
    client: str,
    netns: str | None,
    flow: NetworkFlow,
) -> ProcessInfo | None:
    """When the monitor missed a flow's socket (one opened and closed between two polls, such
    as a resolver lookup): the process that must have sent it, if exactly one lab process
    (with no live child of its own) was alive on that client at the flow's start."""
    alive = [
        p
        for p in monitor.alive(flow.start_ns, netns=netns)
        if (la := launch_of.get((p.pid, p.start_ticks))) is not None and la.host.name == client
    ]
    parents = {p.ppid for p in alive}
    leaves = [p for p in alive if p.pid not in parents]
    return leaves[0] if len(leaves) == 1 else None
