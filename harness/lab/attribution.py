"""Socket-to-process attribution for the lab, from ``/proc``.

A :class:`SocketMonitor` polls (default every 20 ms, in a background thread, plus one final poll
on :meth:`~SocketMonitor.stop`) the processes it watches:

* every process inside given network namespaces (``readlink /proc/PID/ns/net`` equals one of
  them, e.g. the netns backend's client namespaces), and/or
* the given root pids and all their descendants (for hosts that share the harness's own
  namespace, such as the loopback backend).

Each poll reads ``/proc/PID/stat`` (ppid, comm, start time) of the candidates, the socket inodes
of their open descriptors (``/proc/PID/fd``), and once per namespace the socket tables
``/proc/PID/net/{tcp,tcp6,udp,udp6}``; it records per socket the transport, local and remote
address and port (``0.0.0.0:0`` as the remote of an unconnected UDP socket), the owning pid and
when it was first and last seen, and per process its pid, ppid, comm, exe, command line, start
time (``starttime`` of ``/proc/PID/stat`` plus the boot time) and when it was first seen. A
process that execs (``ip netns exec`` becoming the actor) is re-read when its comm changes.
The ``/proc`` readers are those of :mod:`harness.lab.procfs`, which the sinks' owner lookup
shares.

:meth:`SocketMonitor.owner` answers "which process held this local endpoint around this time",
with a tolerance of a few poll intervals; :meth:`SocketMonitor.to_events` turns the processes
into :class:`~harness.events.ProcessStart` events with deterministic ``process_guid`` values.

Known gaps: a socket opened and closed between two polls is not seen, and a TCP socket closed by
both sides leaves ``/proc/net/tcp`` (only an inode-less TIME_WAIT entry remains) even while its
descriptor is still open; programs that must be attributed keep their connections up for longer
than a poll interval, or the caller falls back to the processes alive on that host
(:meth:`SocketMonitor.alive`); descendants are found through ppid
links, so a process whose parent died before it was first seen is lost in root-pid mode.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.events import ProcessStart, Transport
from harness.lab.procfs import (
    SOCKET_TABLES,
    TCP_LISTEN,
    Stat,
    endpoint,
    netns_of,
    read_stat,
    socket_inodes,
    socket_table,
)

__all__ = [
    "DEFAULT_INTERVAL_S",
    "GUID_NAMESPACE",
    "ProcessInfo",
    "SocketMonitor",
    "SocketRecord",
    "boot_epoch_ns",
    "process_guid",
]

DEFAULT_INTERVAL_S = 0.02
#: uuid5 namespace of lab process GUIDs.
GUID_NAMESPACE = uuid.UUID("0c6c3e4e-6a55-5d1b-9a53-2f0f6c1e1ab7")
_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
_WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - addresses read from /proc, no bind


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessInfo:
    """A process the monitor saw."""

    pid: int
    ppid: int
    #: ``/proc/PID/comm``: the executable name, at most 15 characters.
    comm: str
    #: ``/proc/PID/exe``: the real binary (the interpreter for named Python programs).
    exe: str
    #: ``/proc/PID/cmdline`` split at NULs (``cmdline[0]`` is the path it was launched as).
    cmdline: tuple[str, ...]
    #: Start time, ns since the epoch (``/proc/PID/stat`` starttime plus the boot time).
    start_ns: int
    #: ``starttime`` in clock ticks since boot: with the pid, the process's identity.
    start_ticks: int
    #: Network namespace, ``net:[INODE]``.
    netns: str
    #: Owner uid of ``/proc/PID``.
    uid: int
    #: Working directory when first read (to resolve a relative ``argv[0]``).
    cwd: str
    first_seen_ns: int
    last_seen_ns: int

    @property
    def image(self) -> str:
        """The path the program was launched as: ``argv[0]`` as a path (for a program started
        under a named symlink, the symlink's path), else ``exe``."""
        argv0 = self.cmdline[0] if self.cmdline else ""
        if "/" in argv0:
            return argv0 if argv0.startswith("/") else os.path.normpath(f"{self.cwd}/{argv0}")
        if argv0 and os.path.basename(self.exe) != argv0:
            return argv0
        return self.exe or argv0 or self.comm


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketRecord:
    """One socket (one inode with one pair of endpoints) a watched process held."""

    transport: Transport
    local_ip: str
    local_port: int
    #: ``0.0.0.0`` / ``0`` for an unconnected UDP socket or a listener.
    remote_ip: str
    remote_port: int
    listening: bool
    inode: int
    pid: int
    netns: str
    first_seen_ns: int
    last_seen_ns: int


def process_guid(run_id: str, host: str, pid: int, start_ticks: int) -> str:
    """The deterministic GUID of a lab process (uuid5 over run id, host, pid, start time)."""
    return str(uuid.uuid5(GUID_NAMESPACE, f"{run_id}|{host}|{pid}|{start_ticks}"))


@dataclass(slots=True)
class _Proc:
    info: ProcessInfo
    last_seen_ns: int


@dataclass(slots=True)
class _Sock:
    record: SocketRecord
    last_seen_ns: int


@functools.cache
def boot_epoch_ns() -> int:
    """When the machine booted, ns since the epoch (``starttime`` in ``/proc/PID/stat`` counts
    from boot on CLOCK_BOOTTIME). Computed once per harness process, so every monitor of a run
    turns the same start ticks into the same start times."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


@dataclass(slots=True)
class _Row:
    transport: Transport
    local: tuple[str, int]
    remote: tuple[str, int]
    listening: bool


@dataclass(slots=True)
class State:
    procs: dict[tuple[int, int], _Proc] = field(default_factory=dict)
    socks: dict[tuple[int, int, str, int, str, int], _Sock] = field(default_factory=dict)


class SocketMonitor:
    """Watch processes (by network namespace and/or as descendants of root pids) and the
    sockets they hold (see the module docstring)."""

    def __init__(
        self,
        *,
        netns: Iterable[str] = (),
        roots: Iterable[int] = (),
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], int] = time.time_ns,
        proc: Path = Path("/proc"),
        boot_ns: int | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._proc = str(proc)
        self._netns: set[str] = set(netns)
        self._roots: set[int] = set(roots)
        self._boot_ns = boot_epoch_ns() if boot_ns is None else boot_ns
        self._lock = threading.Lock()
        self._state = State()
        #: Query indexes, rebuilt after a poll changed what the monitor knows.
        self._version = 0
        self._index: tuple[int, dict[tuple[Transport, int], list[SocketRecord]]] | None = None
        self._by_pid: tuple[int, dict[int, list[ProcessInfo]]] | None = None
        #: pid -> key of the live process with that pid (the last seen one).
        self._live: dict[int, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Number of polls run, their total wall time and CPU time (ns): the efficiency figure.
        self.polls = 0
        self.poll_ns_total = 0
        self.poll_cpu_ns_total = 0

    # -- targets ---------------------------------------------------------------------------

    def watch_netns(self, netns: str) -> None:
        """Also watch every process in the namespace ``netns`` (``net:[INODE]``)."""
        with self._lock:
            self._netns.add(netns)

    def watch_root(self, pid: int) -> None:
        """Also watch ``pid`` and its descendants."""
        with self._lock:
            self._roots.add(pid)

    # -- thread ----------------------------------------------------------------------------

    def start(self) -> SocketMonitor:
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lab-socket-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, then poll one last time."""
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join()
            self._thread = None
        self.poll()

    def __enter__(self) -> SocketMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval_s)

    # -- one poll ----------------------------------------------------------------------------

    def _candidates(self, pids: list[int]) -> dict[int, tuple[Stat, str]]:
        """The pids to watch now, with their stat and namespace."""
        out: dict[int, tuple[Stat, str]] = {}
        with self._lock:
            netns, roots = set(self._netns), set(self._roots)
        if netns:
            for pid in pids:
                ns = netns_of(self._proc, pid)
                if ns in netns:
                    st = read_stat(self._proc, pid)
                    if st is not None and ns is not None:
                        out[pid] = (st, ns)
        if roots:
            stats: dict[int, Stat] = {}
            children: dict[int, list[int]] = {}
            for pid in pids:
                st = read_stat(self._proc, pid)
                if st is not None:
                    stats[pid] = st
                    children.setdefault(st.ppid, []).append(pid)
            # Known processes stay watched while they live (their parent may have exited).
            todo = [p for p in roots | set(self._live) if p in stats]
            seen: set[int] = set()
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                todo.extend(children.get(pid, ()))
            for pid in seen:
                if pid not in out:
                    ns = netns_of(self._proc, pid)
                    if ns is not None:
                        out[pid] = (stats[pid], ns)
        return out

    def _read_tables(self, pid: int, wanted: set[int]) -> dict[int, _Row]:
        rows: dict[int, _Row] = {}
        for table, transport, v6 in SOCKET_TABLES:
            for inode, parts in socket_table(self._proc, pid, table) or ():
                if inode not in wanted:
                    continue
                rows[inode] = _Row(
                    transport=transport,
                    local=endpoint(parts[1], v6),
                    remote=endpoint(parts[2], v6),
                    listening=transport is Transport.TCP and parts[3] == TCP_LISTEN,
                )
        return rows

    def _process_info(self, pid: int, st: Stat, ns: str, now: int) -> ProcessInfo:
        base = f"{self._proc}/{pid}"
        try:
            with open(f"{base}/cmdline", "rb") as f:
                raw = f.read()
            cmdline = tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1])
        except OSError:
            cmdline = ()
        exe = cwd = ""
        with contextlib.suppress(OSError):
            exe = os.readlink(f"{base}/exe")
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"{base}/cwd")
        try:
            uid = os.stat(base).st_uid
        except OSError:
            uid = -1
        return ProcessInfo(
            pid=pid,
            ppid=st.ppid,
            comm=st.comm,
            exe=exe,
            cmdline=cmdline,
            start_ns=self._boot_ns + st.start_ticks * _NS_PER_TICK,
            start_ticks=st.start_ticks,
            netns=ns,
            uid=uid,
            cwd=cwd,
            first_seen_ns=now,
            last_seen_ns=now,
        )

    def poll(self) -> None:
        """One observation of every watched process and its sockets."""
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        now = self._clock()
        try:
            pids = [int(p) for p in os.listdir(self._proc) if p.isdigit()]
        except OSError:
            return
        candidates = self._candidates(pids)
        by_ns: dict[str, list[int]] = {}
        inodes_of: dict[int, list[int]] = {}
        for pid, (_, ns) in candidates.items():
            by_ns.setdefault(ns, []).append(pid)
            inodes_of[pid] = list(socket_inodes(self._proc, pid))
        rows_of_ns: dict[str, dict[int, _Row]] = {}
        for ns, members in by_ns.items():
            wanted = {i for pid in members for i in inodes_of[pid]}
            if not wanted:
                continue
            for pid in members:
                rows = self._read_tables(pid, wanted)
                if rows or netns_of(self._proc, pid) == ns:
                    rows_of_ns[ns] = rows
                    break
        with self._lock:
            state = self._state
            live: dict[int, tuple[int, int]] = {}
            for pid, (st, ns) in candidates.items():
                key = (pid, st.start_ticks)
                live[pid] = key
                entry = state.procs.get(key)
                if entry is None:
                    state.procs[key] = _Proc(
                        info=self._process_info(pid, st, ns, now), last_seen_ns=now
                    )
                else:
                    entry.last_seen_ns = now
                    if entry.info.comm != st.comm or entry.info.netns != ns:
                        # It exec'd (or entered the namespace): re-read what it is now.
                        fresh = self._process_info(pid, st, ns, now)
                        entry.info = replace(fresh, first_seen_ns=entry.info.first_seen_ns)
                rows = rows_of_ns.get(ns, {})
                for inode in inodes_of[pid]:
                    row = rows.get(inode)
                    if row is None:
                        continue
                    skey = (inode, pid, *row.local, *row.remote)
                    sock = state.socks.get(skey)
                    if sock is None:
                        state.socks[skey] = _Sock(
                            record=SocketRecord(
                                transport=row.transport,
                                local_ip=row.local[0],
                                local_port=row.local[1],
                                remote_ip=row.remote[0],
                                remote_port=row.remote[1],
                                listening=row.listening,
                                inode=inode,
                                pid=pid,
                                netns=ns,
                                first_seen_ns=now,
                                last_seen_ns=now,
                            ),
                            last_seen_ns=now,
                        )
                    else:
                        sock.last_seen_ns = now
            self._live = live
            self._version += 1
            self.polls += 1
            self.poll_ns_total += time.perf_counter_ns() - t0
            self.poll_cpu_ns_total += time.thread_time_ns() - c0

    # -- queries ---------------------------------------------------------------------------

    def processes(self) -> list[ProcessInfo]:
        """Every process seen, by start time then pid."""
        with self._lock:
            out = [replace(p.info, last_seen_ns=p.last_seen_ns) for p in self._state.procs.values()]
        return sorted(out, key=lambda p: (p.start_ns, p.pid))

    def sockets(self) -> list[SocketRecord]:
        """Every socket seen, by first sighting."""
        with self._lock:
            out = [
                replace(s.record, last_seen_ns=s.last_seen_ns) for s in self._state.socks.values()
            ]
        return sorted(out, key=lambda s: (s.first_seen_ns, s.pid, s.inode))

    def process(self, pid: int, ts_ns: int | None = None) -> ProcessInfo | None:
        """The process with ``pid`` (the one alive around ``ts_ns`` if the pid was reused)."""
        with self._lock:
            version, cached = self._version, self._by_pid
        if cached is None or cached[0] != version:
            by_pid: dict[int, list[ProcessInfo]] = {}
            for p in self.processes():
                by_pid.setdefault(p.pid, []).append(p)
            cached = self._by_pid = (version, by_pid)
        found = cached[1].get(pid, [])
        if ts_ns is not None:
            found = [p for p in found if p.start_ns <= ts_ns] or found
        return found[-1] if found else None

    def owner(
        self,
        transport: Transport | str,
        local_ip: str,
        local_port: int,
        ts_ns: int,
        *,
        netns: str | None = None,
        tolerance_ns: int | None = None,
    ) -> ProcessInfo | None:
        """The process that held the local endpoint ``local_ip:local_port`` (``transport``)
        around ``ts_ns``; a socket bound to the wildcard address matches any ``local_ip``
        (prefer passing ``netns`` then). ``tolerance_ns`` (default: three poll intervals) widens
        each socket's seen interval, since a socket lives a little before its first and after
        its last sighting."""
        transport = Transport(transport)
        tol = tolerance_ns if tolerance_ns is not None else int(3 * self.interval_s * 1e9)
        best: tuple[tuple[int, int, int], SocketRecord] | None = None
        with self._lock:
            version, index = self._version, self._index
        if index is None or index[0] != version:
            table: dict[tuple[Transport, int], list[SocketRecord]] = {}
            for rec in self.sockets():
                table.setdefault((rec.transport, rec.local_port), []).append(rec)
            index = self._index = (version, table)
        for s in index[1].get((transport, local_port), ()):
            if netns is not None and s.netns != netns:
                continue
            exact = s.local_ip == local_ip
            if not exact and s.local_ip not in _WILDCARDS:
                continue
            if s.first_seen_ns <= ts_ns <= s.last_seen_ns:
                distance = 0
            else:
                distance = min(abs(ts_ns - s.first_seen_ns), abs(ts_ns - s.last_seen_ns))
                if distance > tol:
                    continue
            rank = (0 if exact else 1, 1 if s.listening else 0, distance)
            if best is None or rank < best[0]:
                best = (rank, s)
        if best is None:
            return None
        return self.process(best[1].pid, ts_ns)

    def alive(self, ts_ns: int, *, netns: str | None = None) -> list[ProcessInfo]:
        """The watched processes alive at ``ts_ns`` (optionally only those in ``netns``)."""
        tol = int(3 * self.interval_s * 1e9)
        return [
            p
            for p in self.processes()
            if p.start_ns - tol <= ts_ns <= p.last_seen_ns + tol
            and (netns is None or p.netns == netns)
        ]

    def descendants(self, pid: int) -> set[int]:
        """The pids of every process seen whose ancestry (through seen processes) reaches
        ``pid``; ``pid`` itself is not included."""
        children: dict[int, set[int]] = {}
        for p in self.processes():
            children.setdefault(p.ppid, set()).add(p.pid)
        out: set[int] = set()
        todo = list(children.get(pid, ()))
        while todo:
            child = todo.pop()
            if child in out or child == pid:
                continue
            out.add(child)
            todo.extend(children.get(child, ()))
        return out

    def to_events(self, host_of: Callable[[ProcessInfo], str], run_id: str) -> list[ProcessStart]:
        """One :class:`~harness.events.ProcessStart` per process seen, in start order, with
        ``process_guid`` from :func:`process_guid`, ``image`` = :attr:`ProcessInfo.image`,
        ``name`` = comm and ``parent_guid`` when the parent was seen too: one event per entry
        of :meth:`processes`, in the same order."""
        procs = self.processes()
        guids: dict[int, tuple[int, str]] = {}
        hosts = {(p.pid, p.start_ticks): host_of(p) for p in procs}
        for p in procs:
            host = hosts[(p.pid, p.start_ticks)]
            guids[p.pid] = (p.start_ticks, process_guid(run_id, host, p.pid, p.start_ticks))
        events = []
        for p in procs:
            host = hosts[(p.pid, p.start_ticks)]
            guid = process_guid(run_id, host, p.pid, p.start_ticks)
            parent = guids.get(p.ppid)
            parent_guid = parent[1] if parent is not None and parent[0] <= p.start_ticks else None
            events.append(
                ProcessStart(
                    event_id=f"lab-process:{guid}",
                    ts_ns=p.start_ns,
                    host=host,
                    process_guid=guid,
                    pid=p.pid,
                    image=p.image,
                    name=p.comm,
                    command_line=shlex.join(p.cmdline) if p.cmdline else p.comm,
                    parent_guid=parent_guid,
                    user=_user(p.uid),
                )
            )
        return events


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
