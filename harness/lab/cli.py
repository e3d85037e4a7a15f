"""The ``egress-harness emulate`` command (registered on the main command group by
:mod:`harness.cli`): run the emulation lab, print the per-actor table, write the run folder.

Exit codes as for every command: 0 done; 2 usage error, including a lab backend that cannot run
here (:class:`~harness.errors.LabUnavailableError`, one line saying what is missing); 3 the lab
failed while running (:class:`~harness.errors.LabError`) or another harness error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.errors import InvalidParameterError
from harness.lab.compare import side_by_side_text
from harness.lab.emulate import BACKENDS, EmulationConfig, new_run_id, run_emulation
from harness.lab.report import write_outputs
from harness.progress import Progress

__all__ = ["emulate"]


def _actor_ids(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    ids = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    if not ids:
        raise InvalidParameterError("--actors", text, "a comma-separated list of actor ids")
    return ids


@click.command("emulate")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="Lab backend: network namespaces (root), Docker, or loopback (unprivileged); auto "
    "takes the first that can run here.",
)
@click.option(
    "--baseline-s",
    type=click.FloatRange(min=0),
    default=40.0,
    show_default=True,
    help="Seconds of the baseline phase (benign actors; the detectors' fit window).",
)
@click.option(
    "--attack-s",
    type=click.FloatRange(min=1),
    default=80.0,
    show_default=True,
    help="Seconds of the attack phase at most (it ends earlier once every malicious actor "
    "has exited).",
)
@click.option(
    "--actors",
    "actors",
    default=None,
    metavar="ID,...",
    help="Run only these actors of the lab cast (default: all).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default: reports/<run-id>-emulate/).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def emulate(
    backend: str,
    baseline_s: float,
    attack_s: float,
    actors: str | None,
    out: Path | None,
    quiet: bool,
) -> None:
    """Run benign and malicious actors as real processes in an isolated lab, capture and
    attribute their traffic, and score it like a synthetic run, with the synthetic figures of
    the same actors beside the emulated ones."""
    run_id = new_run_id()
    folder = out if out is not None else Path("reports") / f"{run_id}-emulate"
    config = EmulationConfig(
        out=folder,
        backend=backend,
        baseline_s=baseline_s,
        attack_s=attack_s,
        actors=_actor_ids(actors),
        run_id=run_id,
    )
    progress = None if quiet else Progress(sys.stderr)
    try:
        outcome = run_emulation(config, progress)
    finally:
        if progress is not None:
            progress.close()
    write_outputs(outcome)
    doc = outcome.emulation
    click.echo(
        f"lab run {outcome.run_id}: backend {outcome.backend} ({outcome.backend_reason}); "
        f"{len(doc['actors'])} actor launches, {outcome.telemetry.events.__len__()} events, "
        f"{outcome.wall_s:.0f} s",
        err=True,
    )
    rate = doc["attribution_rate"]
    click.echo(
        "attribution: "
        + (f"{rate:.1%} of flows" if rate is not None else "no flows")
        + f" ({doc['join']['flows_attributed']}/{doc['join']['flows']}), "
        f"{doc['unattributed_total']} events without an actor "
        f"{doc['unattributed_events'] or ''}".rstrip(),
        err=True,
    )
    for launch in doc["actors"]:
        if launch["exit_code"] not in (0, None) and not launch["stopped_at_phase_end"]:
            click.echo(
                f"warning: actor {launch['actor']} ({launch['phase']}) exited with status "
                f"{launch['exit_code']}: {launch['log_tail']}",
                err=True,
            )
    click.echo(side_by_side_text(outcome.rows), nl=False)
    click.echo(f"written: {outcome.out}", err=True)
