"""The lab's phases: start each actor's program on its client host, watch it, stop it.

:class:`LabRun` holds the moving parts of one run (backend, plan, certificates, socket monitor,
sink process) and runs the **baseline phase** (the actors with
:attr:`~harness.lab.spec.Phase.BASELINE`, benign ones) then the **attack phase** (every actor
with :attr:`~harness.lab.spec.Phase.ATTACK` at its start offset). The attack phase ends at its
duration, or earlier once every malicious actor has started and exited and a short grace has
passed. An actor of both phases is started once, in the baseline, and runs on into the attack
phase as the same process (a service does not restart when an attack begins). Everything still
running is then stopped (SIGTERM, then SIGKILL). Every start of an actor is a :class:`Launch`;
:func:`launch_docs` describes them for ``emulation.json``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InvalidParameterError, LabError
from harness.lab.attribution import SocketMonitor
from harness.lab.backend import LabBackend, LabHost, LabPlan, LabProcess
from harness.lab.certs import LabCerts
from harness.lab.spec import LabActor, Phase, expand, placeholders
from harness.truth import ActorKind

if TYPE_CHECKING:
    from harness.lab.emulate import EmulationConfig

__all__ = ["LabRun", "Launch", "ProgressFn", "launch_docs", "tail"]

#: How often the phase loop looks at its processes.
_TICK_S = 0.2

ProgressFn = Callable[[int, int, str], None]


@dataclass(slots=True)
class Launch:
    """One start of one actor in one phase."""

    actor: LabActor
    phase: Phase
    host: LabHost
    proc: LabProcess
    argv: list[str]
    log: Path
    audit: Path
    start_ns: int
    end_ns: int | None = None
    exit_code: int | None = None
    stopped: bool = False


class LabRun:
    """The moving parts of one run, for the phase loop."""

    def __init__(
        self,
        config: EmulationConfig,
        backend: LabBackend,
        plan: LabPlan,
        certs: LabCerts,
        monitor: SocketMonitor,
        sink: LabProcess,
        sink_log: Path,
        progress: ProgressFn | None,
        netns: Mapping[str, str | None],
    ) -> None:
        self.config = config
        self.backend = backend
        self.plan = plan
        self.certs = certs
        self.monitor = monitor
        self.sink = sink
        self.sink_log = sink_log
        self.progress = progress
        #: Network namespace of each client (None: the harness's own), read while it exists.
        self.netns = dict(netns)
        self.launches: list[Launch] = []
        self.phase_bounds: dict[Phase, tuple[int, int]] = {}

    def _check_sink(self) -> None:
        code = self.sink.poll()
        if code is not None:
            raise LabError(
                f"the sink process exited with status {code} during the run; see {self.sink_log}: "
                + tail(self.sink_log)
            )

    def _launch(self, actor: LabActor, phase: Phase, duration_s: float) -> Launch:
        if not 0 <= actor.client < len(self.plan.clients):
            raise InvalidParameterError(
                f"client of lab actor {actor.actor_id}", actor.client,
                f"0..{len(self.plan.clients) - 1}",
            )  # fmt: skip
        host = self.plan.clients[actor.client]
        base = self.config.out / "actors" / f"{actor.actor_id}-{phase.value}"
        work = base / "work"
        work.mkdir(parents=True, exist_ok=True)
        audit = base / "audit.jsonl"
        values = placeholders(
            self.plan, host=host, actor=actor, duration_s=max(1.0, round(duration_s, 1)),
            audit=str(audit), workdir=str(work), ca=str(self.certs.ca),
        )  # fmt: skip
        try:
            args = expand(actor.args, values)
        except KeyError as exc:
            raise InvalidParameterError(
                f"arguments of lab actor {actor.actor_id}", actor.args,
                f"placeholders among {sorted(values)} (unknown: {exc})",
            ) from exc  # fmt: skip
        if actor.atomic is not None:
            from harness.lab.atomics import runner_argv

            argv = runner_argv(
                actor, values, bin_dir=base / "bin", timeout_s=max(1.0, duration_s) + 30.0
            )
        else:
            argv = ["python", "-m", actor.program, *args]
        log = base.with_suffix(".log")
        proc = self.backend.start(host, argv, name=actor.exe_name, log=log)
        if self.netns[host.name] is None:
            self.monitor.watch_root(proc.pid)
        launch = Launch(
            actor=actor, phase=phase, host=host, proc=proc, argv=argv, log=log, audit=audit,
            start_ns=time.time_ns(),
        )  # fmt: skip
        self.launches.append(launch)
        return launch

    def run_phase(self, phase: Phase, duration_s: float, actors: Sequence[LabActor]) -> None:
        members = sorted(
            (a for a in actors if phase in a.phases), key=lambda a: (a.start_offset_s, a.actor_id)
        )
        # An actor of both phases started in the baseline runs on, as one process, into the
        # attack phase (a service does not restart when an attack begins); it is started again
        # only if it has exited.
        carried = [la for la in self.launches if la.exit_code is None and phase in la.actor.phases]
        running_ids = {la.actor.actor_id for la in carried}
        pending = [a for a in members if a.actor_id not in running_ids]
        started: list[Launch] = list(carried)
        t0 = time.monotonic()
        start_ns = time.time_ns()
        quiet_since: float | None = None
        malicious = [a for a in members if a.kind is ActorKind.MALICIOUS]
        total = max(1, int(duration_s))
        while True:
            elapsed = time.monotonic() - t0
            while pending and pending[0].start_offset_s <= elapsed:
                actor = pending.pop(0)
                length = duration_s - actor.start_offset_s
                if phase is Phase.BASELINE and Phase.ATTACK in actor.phases:
                    length += self.config.attack_s
                started.append(self._launch(actor, phase, length))
            self._check_sink()
            for launch in started:
                if launch.exit_code is None:
                    code = launch.proc.poll()
                    if code is not None:
                        launch.exit_code = code
                        launch.end_ns = time.time_ns()
            running = [
                la.actor.actor_id
                for la in sorted(started, key=lambda la: la.actor.kind is ActorKind.BENIGN)
                if la.exit_code is None
            ]
            if self.progress is not None:
                self.progress(
                    min(total, int(elapsed)), total,
                    f"{phase.value} phase: {len(running)} running"
                    + (f" ({', '.join(running[:4])}{', ...' if len(running) > 4 else ''})"
                       if running else ""),
                )  # fmt: skip
            if elapsed >= duration_s:
                break
            if phase is Phase.ATTACK and malicious:
                done = not any(
                    a in pending for a in malicious
                ) and all(
                    la.exit_code is not None
                    for la in started
                    if la.actor.kind is ActorKind.MALICIOUS
                )  # fmt: skip
                if done:
                    quiet_since = quiet_since if quiet_since is not None else time.monotonic()
                    if time.monotonic() - quiet_since >= self.config.grace_s:
                        break
                else:
                    quiet_since = None
            time.sleep(_TICK_S)
        for launch in started:
            if phase is Phase.BASELINE and Phase.ATTACK in launch.actor.phases:
                continue  # carried into the attack phase
            if launch.exit_code is None:
                launch.stopped = True
                launch.exit_code = launch.proc.stop(grace_s=3.0)
                launch.end_ns = time.time_ns()
        self.phase_bounds[phase] = (start_ns, time.time_ns())


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def launch_docs(
    launches: Sequence[Launch], monitor: SocketMonitor, info: Mapping[str, Any]
) -> list[dict[str, Any]]:
    launch_of: Mapping[tuple[int, int], Launch] = info["launch_of"]
    procs = monitor.processes()
    out = []
    for la in launches:
        tree = [p for p in procs if launch_of.get((p.pid, p.start_ticks)) is la]
        root = next((p for p in tree if p.pid == la.proc.pid), None)
        out.append(
            {
                "actor": la.actor.actor_id,
                "kind": la.actor.kind.value,
                "phase": la.phase.value,
                "host": la.host.name,
                "exe_name": la.actor.exe_name,
                "pid": la.proc.pid,
                "image": root.image if root is not None else None,
                "comm": root.comm if root is not None else None,
                "processes": [
                    {"pid": p.pid, "ppid": p.ppid, "comm": p.comm, "image": p.image} for p in tree
                ],
                "argv": la.argv,
                "start_ns": la.start_ns,
                "end_ns": la.end_ns,
                "exit_code": la.exit_code,
                "stopped_at_phase_end": la.stopped,
                "log": os.path.relpath(la.log, la.log.parents[1]),
                "log_tail": tail(la.log, 3) if la.exit_code not in (0, None) else None,
            }
        )
    return out
