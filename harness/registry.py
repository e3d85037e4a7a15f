"""Plugin registry over entry points: scenarios, detectors, reporters, suites and lab casts.

Built-ins register through the same entry-point groups as third-party plugins
(``egress_harness.scenarios``, ``egress_harness.detectors``, ``egress_harness.reporters``), so a
plugin is a first-class citizen. Lookups of unknown ids suggest the closest registered ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from harness.errors import PluginError, UnknownPluginError

__all__ = ["DETECTORS", "LAB_CASTS", "REPORTERS", "SCENARIOS", "SUITES", "PluginGroup"]


@dataclass(frozen=True, slots=True)
class PluginGroup:
    """One entry-point group; loads a plugin class by id and checks that its ``id`` matches."""

    group: str
    kind: str

    def _points(self) -> dict[str, EntryPoint]:
        return _entry_points(self.group)

    def names(self) -> list[str]:
        return sorted(self._points())

    def load(self, name: str) -> Any:
        point = self._points().get(name)
        if point is None:
            raise UnknownPluginError(self.kind, name, self._points())
        try:
            obj = point.load()
        except Exception as exc:
            raise PluginError(
                f"{self.kind} {name!r} failed to load from {point.value}: {exc}"
            ) from exc
        declared = getattr(obj, "id", None)
        if declared != name:
            raise PluginError(
                f"{self.kind} {name!r} ({point.value}) declares id {declared!r}; "
                "the entry-point name and the plugin's id must be the same"
            )
        return obj

    def load_all(self) -> list[Any]:
        return [self.load(n) for n in self.names()]


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


SCENARIOS = PluginGroup("egress_harness.scenarios", "scenario")
DETECTORS = PluginGroup("egress_harness.detectors", "detector")
REPORTERS = PluginGroup("egress_harness.reporters", "reporter")
#: Named suites: entry points resolving to a tuple of scenario ids.
SUITES = PluginGroup("egress_harness.suites", "suite")
#: Casts of the emulation lab: entry points resolving to a :class:`harness.lab.spec.LabCast`.
LAB_CASTS = PluginGroup("egress_harness.lab_casts", "lab cast")
