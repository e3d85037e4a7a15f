"""What the lab runs: an actor is a real program started under a chosen executable name on a lab
client, during the baseline phase, the attack phase, or both, with the truth the scorer needs.

A program is a Python module run as ``python -m`` (the default cast's live in
:mod:`scenarios.programs`, one module each, ``main(argv) -> int``). Their
arguments are templates: ``{name}`` placeholders are filled from the lab plan by
:func:`expand` (addresses of the sinks, the zone, the run id, the actor id, the phase duration,
the actor's audit file and work directory). Every program embeds the run id in what it sends (a
DNS label, an HTTP header, a payload prefix) so each packet can be traced to the run.

An actor whose ``atomic`` is set is not started directly: it is an Atomic Red Team-format test
in ``scenarios/atomics/<technique>/`` (``technique``, test ``name``), run inside the lab by
atomic-operator (:mod:`harness.lab.atomics`); its processes are the descendants of that runner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from harness.analytics import AnalyticId, TechniqueId
from harness.lab.backend import LabHost, LabPlan
from harness.truth import ActorKind

__all__ = ["AtomicRef", "LabActor", "LabCast", "Phase", "expand", "placeholders"]


class Phase(StrEnum):
    #: The detectors' fit window: benign actors only.
    BASELINE = "baseline"
    #: The detection window: benign actors again, and the malicious ones.
    ATTACK = "attack"


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicRef:
    """An Atomic Red Team-format test: file ``scenarios/atomics/<technique>/<technique>.yaml``
    (Atomic Red Team's own layout, the only one atomic-operator finds), test name."""

    technique: TechniqueId
    test_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LabActor:
    """One actor of the lab, benign or malicious."""

    actor_id: str
    kind: ActorKind
    description: str
    #: Dotted module of the program, run as ``python -m`` (ignored when ``atomic`` is set).
    program: str
    #: Executable name the process runs under (``/proc/PID/comm``, the process image's name).
    exe_name: str
    #: Program arguments, with ``{placeholder}`` templates (see :func:`placeholders`).
    args: tuple[str, ...] = ()
    phases: frozenset[Phase] = frozenset({Phase.ATTACK})
    #: Index of the lab client host the actor runs on.
    client: int = 0
    #: Seconds into the phase at which the actor starts.
    start_offset_s: float = 0.0
    techniques: tuple[TechniqueId, ...] = ()
    expected_analytics: tuple[AnalyticId, ...] = ()
    trap_for: tuple[AnalyticId, ...] = ()
    #: The synthetic counterpart ``(scenario id, actor id)`` shown beside it in the report.
    synthetic: tuple[str, str] | None = None
    atomic: AtomicRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LabCast:
    """A named set of lab actors, registered under the entry-point group
    ``egress_harness.lab_casts`` (the built-in ``default`` is :data:`scenarios.lab.DEFAULT_CAST`):
    the harness loads casts by name, as it loads scenarios, and never imports them."""

    id: str
    description: str
    actors: tuple[LabActor, ...]


def placeholders(
    plan: LabPlan,
    *,
    host: LabHost,
    actor: LabActor,
    duration_s: float,
    audit: str,
    workdir: str,
    ca: str,
) -> dict[str, str]:
    """The values ``{name}`` templates in :attr:`LabActor.args` may use: ``run_id``, ``actor``,
    ``zone``, ``resolver``, ``bind`` (the client's own address: programs bind their sockets to
    it, which matters on loopback), ``duration`` (seconds), ``audit`` (JSON-lines file the
    program appends its own file reads to), ``workdir`` (a directory of its own), per sink
    service ``dns``, ``https``, ``http``, ``tcp``, ``udp`` (address) with ``<service>_port``,
    ``<service>_port1``, ... (its ports in plan order), and ``ca`` (the run's lab CA
    certificate, a PEM file, for programs that verify the sinks' TLS)."""
    values = {
        "bind": host.address,
        "run_id": plan.run_id,
        "actor": actor.actor_id,
        "zone": plan.zone,
        "resolver": plan.resolver,
        "duration": f"{duration_s:g}",
        "audit": audit,
        "workdir": workdir,
    }
    for e in plan.endpoints:
        values[e.service.value] = e.address
        for i, port in enumerate(e.ports):
            values[f"{e.service.value}_port{i}" if i else f"{e.service.value}_port"] = str(port)
    values["ca"] = ca
    return values


def expand(args: tuple[str, ...], values: Mapping[str, str]) -> list[str]:
    """Fill the templates; an unknown placeholder is a :class:`KeyError` naming it."""
    return [a.format_map(values) for a in args]
