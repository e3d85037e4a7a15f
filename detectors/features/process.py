"""Process identity features: the normalised executable path used as a process's identity, and
a table of the processes a detector has seen start.

A process is identified by its full image path, case-folded, with the per-user part of
profile paths replaced by ``*`` so that ``C:\\Users\\alice\\AppData\\...\\OneDrive.exe`` and
Bob's copy are one application (per-user installs are common: OneDrive, Teams, Zoom, Slack).
``C:\\Users\\Public`` and ``C:\\Users\\Default`` are kept as they are: they are shared folders,
and software that runs from there is itself notable.

Network-only telemetry has no processes: :class:`ProcessTable` then answers ``None`` for every
flow, and detectors fall back to the host (or source address) as the entity.
"""

from __future__ import annotations

from functools import lru_cache

from detectors.features.stats import FirstSeen
from harness.events import ProcessStart

__all__ = ["ProcessTable", "image_key"]

_SHARED_PROFILES = frozenset({"public", "default", "all users"})


@lru_cache(maxsize=65_536)
def image_key(image: str) -> str:
    """Normalised identity of an executable path (see the module docstring)."""
    path = image.replace("/", "\\").casefold()
    marker = "\\users\\"
    i = path.find(marker)
    if i != -1:
        start = i + len(marker)
        end = path.find("\\", start)
        user = path[start:end] if end != -1 else path[start:]
        if end != -1 and user not in _SHARED_PROFILES:
            path = path[:start] + "*" + path[end:]
    return path


class ProcessTable:
    """The process starts a detector has seen, by ``process_guid``, and on how many hosts each
    image has run (fleet prevalence).

    Feed it every :class:`ProcessStart` of the baseline and of the detection window (a software
    rollout reaches many hosts within hours: prevalence must keep growing while detecting).
    Memory is one entry per process instance plus one host set per image.
    """

    __slots__ = ("_procs", "_runs")

    def __init__(self) -> None:
        self._procs: dict[str, ProcessStart] = {}
        self._runs: FirstSeen[str, str] = FirstSeen()

    def learn(self, event: ProcessStart) -> None:
        self._procs[event.process_guid] = event
        self._runs.learn(event.host, image_key(event.image))

    def get(self, guid: str | None) -> ProcessStart | None:
        """The start event of ``guid``; ``None`` for an unknown or absent guid."""
        return self._procs.get(guid) if guid is not None else None

    def image(self, guid: str | None) -> str | None:
        """The normalised image of ``guid`` (see :func:`image_key`), or ``None``."""
        proc = self.get(guid)
        return image_key(proc.image) if proc is not None else None

    def fleet_hosts(self, image: str) -> int:
        """On how many distinct hosts the normalised ``image`` has been seen to run."""
        return self._runs.fleet_prevalence(image)

    @property
    def host_count(self) -> int:
        """Hosts seen running anything: the denominator of a prevalence fraction."""
        return self._runs.host_count

    def __len__(self) -> int:
        return len(self._procs)
