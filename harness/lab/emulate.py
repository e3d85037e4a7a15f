"""Orchestration behind ``egress-harness emulate``: run the lab, turn it into events, label them
by actor, score them like a synthetic run, and set the figures beside the synthetic ones.

:func:`run_emulation` does, in order:

1. **Backend**: ``netns``, ``docker`` or ``loopback`` by name; ``auto`` takes the first of those
   three that can run here and says why (:attr:`EmulationOutcome.backend_reason`).
2. **Lab** (inside ``with backend:``, so everything is torn down on error or interrupt): the
   run's certificates (:mod:`harness.lab.certs`), the sink process (:mod:`harness.lab.sinks`)
   on the plan's sink host (waits for its ``READY`` line; its death is a :class:`LabError`
   naming its log), a :class:`~harness.lab.attribution.SocketMonitor` over the client hosts, and
   under ``backend.capture(capture.pcap)`` the **baseline phase** then the **attack phase**
   (:mod:`harness.lab.phases`).
3. **Events** (:mod:`harness.lab.telemetry`): the capture (or, when the backend cannot capture,
   the sinks' Zeek-style logs) through the project's own readers, endpoint events from the
   monitor and the actors' audit files, joined by :func:`harness.ingest.join.join` as real
   Sysmon + Zeek data is; a socket the monitor missed is attributed by
   :mod:`harness.lab.owners`.
4. **Truth** (:mod:`harness.lab.truth`): every event labelled with its actor and every
   :class:`~harness.lab.spec.LabActor` made an :class:`~harness.truth.ActorTruth`; events no
   actor claims are counted per kind and reported, never silently dropped.
5. **Scoring** exactly as a synthetic run: :func:`harness.runner.run_detectors`,
   :func:`harness.scoring.score_detector_run`, :func:`harness.results.build_results` (profile
   ``recorded``, scenario ``lab``), alerts as ``evaluate`` writes them
   (:mod:`harness.lab.report`).
6. **Side by side** (:mod:`harness.lab.compare`): each actor's figures beside those of its
   synthetic counterpart.

:func:`harness.lab.report.write_outputs` writes the run folder (see its docstring).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import InvalidParameterError, LabError, LabUnavailableError
from harness.events import NS_PER_S
from harness.lab.attribution import SocketMonitor
from harness.lab.backend import LabBackend, LabPlan, LabProcess
from harness.lab.certs import make_certs
from harness.lab.compare import side_by_side_rows, synthetic_figures
from harness.lab.phases import LabRun, ProgressFn, launch_docs, tail
from harness.lab.plan import default_plan, validate_run_id
from harness.lab.report import alert_documents, results_document
from harness.lab.sinks import plan_to_dict
from harness.lab.spec import LabActor, LabCast, Phase
from harness.lab.telemetry import build_telemetry
from harness.lab.truth import LAB_SCENARIO
from harness.runner import DetectorRun, DetectorSpec, RunRecord, run_detectors
from harness.telemetry import Telemetry, TelemetryInfo
from harness.truth import GroundTruth

__all__ = [
    "BACKENDS",
    "EmulationConfig",
    "EmulationOutcome",
    "ProgressFn",
    "choose_backend",
    "default_cast",
    "new_run_id",
    "run_emulation",
]

#: Backend names ``--backend`` accepts.
BACKENDS = ("auto", "netns", "docker", "loopback")
#: Seconds the sink process has to bind every socket and print ``READY``.
SINK_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulationConfig:
    """What one emulation runs."""

    #: Where everything goes (the backend's work directory too: Docker mounts it).
    out: Path
    backend: str = "auto"
    baseline_s: float = 40.0
    attack_s: float = 80.0
    #: Actor ids to run (all of the cast when empty).
    actors: tuple[str, ...] = ()
    #: The cast; ``None``: :data:`scenarios.lab.LAB_ACTORS`.
    cast: tuple[LabActor, ...] | None = None
    #: Seconds after the last malicious actor exited before the attack phase ends early.
    grace_s: float = 5.0
    run_id: str | None = None
    #: Detectors; ``None``: every registered one.
    detectors: tuple[DetectorSpec, ...] | None = None
    side_by_side: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidParameterError("--backend", self.backend, ", ".join(BACKENDS))
        if not self.baseline_s >= 0:
            raise InvalidParameterError("--baseline-s", self.baseline_s, "zero or more seconds")
        if not self.attack_s > 0:
            raise InvalidParameterError("--attack-s", self.attack_s, "a positive number")
        if self.run_id is not None:
            validate_run_id(self.run_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulationOutcome:
    """Everything one emulation produced (:func:`write_outputs` writes it)."""

    run_id: str
    backend: str
    backend_reason: str
    plan: LabPlan
    out: Path
    telemetry: Telemetry
    truth: GroundTruth
    specs: tuple[DetectorSpec, ...]
    runs: tuple[DetectorRun, ...]
    record: RunRecord
    results: dict[str, Any]
    alerts: list[dict[str, Any]]
    emulation: dict[str, Any]
    rows: list[dict[str, Any]]
    wall_s: float


def new_run_id() -> str:
    """A short run id (``[a-z0-9]{7}``) from the clock and the process id."""
    value = (time.time_ns() // 1_000_000) * 1000 + os.getpid() % 1000
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return out[-7:]


def _backend_class(name: str) -> type[LabBackend]:
    if name == "netns":
        from harness.lab.netns import NetnsBackend

        return NetnsBackend
    if name == "docker":
        from harness.lab.docker import DockerBackend

        return DockerBackend
    if name == "loopback":
        from harness.lab.loopback import LoopbackBackend

        return LoopbackBackend
    raise InvalidParameterError("--backend", name, ", ".join(BACKENDS))


def choose_backend(name: str) -> tuple[type[LabBackend], str]:
    """The backend class for ``name`` and why it was chosen; :class:`LabUnavailableError` when
    it (or, for ``auto``, every backend) cannot run here."""
    if name != "auto":
        cls = _backend_class(name)
        why = cls.available()
        if why is not None:
            others = [b for b in BACKENDS[1:] if b != name]
            raise LabUnavailableError(
                f"the {name} lab backend cannot run here: {why} (try --backend "
                f"{' or '.join(others)}, or --backend auto)"
            )
        return cls, f"{name}: requested with --backend {name}"
    reasons: list[str] = []
    for candidate in BACKENDS[1:]:
        try:
            cls = _backend_class(candidate)
        except ImportError as exc:  # pragma: no cover - a backend module missing its deps
            reasons.append(f"{candidate} unavailable ({exc})")
            continue
        why = cls.available()
        if why is None:
            tried = "; ".join(reasons)
            return cls, (
                f"auto: {candidate} is available"
                + (f" (skipped: {tried})" if tried else " (the first choice)")
            )
        reasons.append(f"{candidate} unavailable ({why})")
    raise LabUnavailableError("no lab backend can run here: " + "; ".join(reasons))


def default_cast() -> tuple[LabActor, ...]:
    """The actors of the registered ``default`` lab cast."""
    from harness.registry import LAB_CASTS

    cast: LabCast = LAB_CASTS.load("default")
    return tuple(cast.actors)


def _select(cast: Sequence[LabActor], ids: Sequence[str]) -> tuple[LabActor, ...]:
    known = {a.actor_id: a for a in cast}
    if len(known) != len(cast):
        dupes = sorted(a for a, n in Counter(a.actor_id for a in cast).items() if n > 1)
        raise InvalidParameterError("lab cast", dupes, "unique actor ids")
    if not ids:
        return tuple(cast)
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidParameterError("--actors", ",".join(missing), ", ".join(sorted(known)))
    chosen = set(ids)
    return tuple(a for a in cast if a.actor_id in chosen)


def _wait_ready(sink: LabProcess, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("READY"):
                    return
        code = sink.poll()
        if code is not None:
            raise LabError(
                f"the sink process exited with status {code} before it was ready; see {log}: "
                + tail(log)
            )
        time.sleep(0.05)
    raise LabError(f"the sink process was not ready after {timeout_s:g} s; see {log}: {tail(log)}")


# -- the entry point -------------------------------------------------------------------------


def run_emulation(config: EmulationConfig, progress: ProgressFn | None = None) -> EmulationOutcome:
    """Run one emulation (see the module docstring)."""
    t_start = time.monotonic()
    cls, reason = choose_backend(config.backend)
    cast = _select(config.cast if config.cast is not None else default_cast(), config.actors)
    if not cast:
        raise InvalidParameterError("--actors", ",".join(config.actors), "at least one actor")
    run_id = config.run_id or new_run_id()
    clients = max(a.client for a in cast) + 1
    plan = default_plan(run_id, clients, loopback=cls.name == "loopback")
    out = config.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = _replace_out(config, out)
    specs = config.detectors if config.detectors is not None else _all_detectors()
    pcap = out / "capture.pcap"
    sink_log = out / "sinks.log"
    sink_logs = out / "sinks"
    captured = False
    capture_note: str | None = None
    backend = cls(plan, out)
    with backend:
        certs = make_certs(plan, out / "certs")
        plan_file = out / "plan.json"
        plan_file.write_text(json.dumps(plan_to_dict(plan), indent=2), encoding="utf-8")
        sink = backend.start(
            plan.sink,
            ["python", "-m", "harness.lab.sinks", "--plan", str(plan_file),
             "--certs", str(certs.directory), "--log", str(sink_logs)],
            name="eh-sinks", log=sink_log,
        )  # fmt: skip
        _wait_ready(sink, sink_log, SINK_READY_TIMEOUT_S)
        netns = {c.name: backend.netns_of(c) for c in plan.clients}
        monitor = SocketMonitor(netns=[ns for ns in netns.values() if ns is not None])
        lab = LabRun(config, backend, plan, certs, monitor, sink, sink_log, progress, netns)
        monitor.start()
        try:
            with contextlib.ExitStack() as capturing:
                try:
                    captured = capturing.enter_context(backend.capture(pcap)) is not None
                except LabUnavailableError:
                    # The backend cannot capture here (loopback unprivileged): run without.
                    captured = False
                if not captured:
                    capture_note = (
                        "no packet capture (the backend cannot capture here): network events "
                        "come from the sinks' Zeek-style logs"
                    )
                lab.run_phase(Phase.BASELINE, config.baseline_s, cast)
                lab.run_phase(Phase.ATTACK, config.attack_s, cast)
                time.sleep(0.5)  # the last packets of stopped actors reach the capture
        finally:
            monitor.stop()
            code = sink.stop(grace_s=5.0)
        if code not in (0, None, -15):
            capture_note = (capture_note or "") + f" sink exited with status {code}"
    built = build_telemetry(plan, lab, monitor, cls.name, captured, pcap, sink_logs, cast)
    telemetry, truth, info = built
    runs = run_detectors(telemetry, specs)
    record = RunRecord(
        scenario=LAB_SCENARIO,
        seed=0,
        parameters={},
        telemetry=TelemetryInfo.of(telemetry),
        truth=truth,
        detectors=runs,
        generate_s=0.0,
    )
    results = results_document(specs, record)
    alerts = alert_documents(telemetry, runs, truth)
    synthetic = synthetic_figures(cast, specs) if config.side_by_side else {}
    rows = side_by_side_rows(cast, record, synthetic)
    wall_s = time.monotonic() - t_start
    emulation = {
        "schema_version": 1,
        "document": "emulation",
        "harness_version": __version__,
        "run_id": run_id,
        "backend": cls.name,
        "backend_reason": reason,
        "plan": plan_to_dict(plan),
        "phases": {
            p.value: {"start_ns": b[0], "end_ns": b[1], "seconds": (b[1] - b[0]) / NS_PER_S}
            for p, b in lab.phase_bounds.items()
        },
        "config": {
            "baseline_s": config.baseline_s,
            "attack_s": config.attack_s,
            "grace_s": config.grace_s,
            "actors": [a.actor_id for a in cast],
        },
        "capture": {"pcap": captured, "note": capture_note},
        "actors": launch_docs(lab.launches, monitor, info),
        **info["doc"],
        "side_by_side": rows,
        "wall_s": wall_s,
    }
    return EmulationOutcome(
        run_id=run_id, backend=cls.name, backend_reason=reason, plan=plan, out=out,
        telemetry=telemetry, truth=truth, specs=specs, runs=runs, record=record,
        results=results, alerts=alerts, emulation=emulation, rows=rows, wall_s=wall_s,
    )  # fmt: skip


def _replace_out(config: EmulationConfig, out: Path) -> EmulationConfig:
    from dataclasses import replace

    return replace(config, out=out)


def _all_detectors() -> tuple[DetectorSpec, ...]:
    from harness.ingest.evaluate import detector_specs

    return detector_specs((), {})
