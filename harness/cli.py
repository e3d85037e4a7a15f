"""The ``egress-harness`` command line.

Exit codes: 0 success; 2 usage error (bad option, unknown plugin, bad value); 3 harness error
(a plugin failed to load, a results document failed validation, an internal fault). Errors are
one line on stderr; ``--debug`` shows the traceback of an internal fault.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.analytics import ANALYTICS
from harness.errors import HarnessError, InvalidParameterError, UsageError
from harness.fields import Profile
from harness.progress import Progress
from harness.registry import DETECTORS, REPORTERS, SCENARIOS, SUITES
from harness.results import (
    alerts_ndjson,
    build_results,
    build_timing,
    canonical_json,
    validate,
)
from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan

__all__ = ["main"]

_PROG = "egress-harness"


def parse_seeds(text: str, first: int = 0) -> tuple[int, ...]:
    """``5`` is five seeds from ``first``; ``10-14`` a range; ``1,4,9`` a list."""
    text = text.strip()
    try:
        if "," in text:
            seeds = tuple(int(s) for s in text.split(",") if s.strip())
        elif "-" in text.lstrip("-"):
            lo, hi = text.split("-", 1)
            seeds = tuple(range(int(lo), int(hi) + 1))
        else:
            count = int(text)
            if count < 1:
                raise ValueError(text)
            seeds = tuple(range(first, first + count))
    except ValueError as exc:
        raise InvalidParameterError(
            "--seeds", text, "a count (5), a range (10-14) or a list (1,4,9)"
        ) from exc
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise InvalidParameterError("--seeds", text, "distinct non-negative seeds")
    return seeds


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_assignments(items: Sequence[str], option: str) -> dict[str, dict[str, Any]]:
    """``PLUGIN.NAME=VALUE`` pairs grouped by plugin id."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        plugin, dot, name = target.rpartition(".")
        if not sep or not dot or not plugin or not name:
            raise InvalidParameterError(option, item, "PLUGIN.NAME=VALUE")
        out.setdefault(plugin, {})[name] = _parse_value(value)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=_PROG)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal faults.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Validate outbound-traffic detections (MITRE AN0988, AN0030, AN1225, AN0144, AN1962)
    against synthetic scenarios with ground truth."""
    ctx.obj = {"debug": debug}


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """List scenarios, detectors, analytics, suites and reporters."""
    scenarios = [{"id": s.id, "description": s.description} for s in SCENARIOS.load_all()]
    detectors = [
        {
            "id": d.id,
            "analytic": d.analytic,
            "techniques": list(d.techniques),
            "required_fields": sorted(f.value for f in d.required_fields),
            "tunables": {
                k: {
                    "default": v.default,
                    "min": v.minimum,
                    "max": v.maximum,
                    "description": v.description,
                }
                for k, v in d.tunable_specs.items()
            },
        }
        for d in DETECTORS.load_all()
    ]
    analytics = [
        {
            "id": a.id,
            "title": a.title,
            "techniques": list(a.techniques),
            "required_fields": sorted(f.value for f in a.required_fields),
        }
        for a in ANALYTICS.values()
    ]
    suites = [{"id": name, "scenarios": list(SUITES.load(name))} for name in SUITES.names()]
    reporters = [{"id": r.id, "file": r.filename} for r in REPORTERS.load_all()]
    if as_json:
        doc = {
            "scenarios": scenarios,
            "detectors": detectors,
            "analytics": analytics,
            "suites": suites,
            "reporters": reporters,
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    from tabulate import tabulate

    click.echo("Scenarios")
    click.echo(tabulate([[s["id"], s["description"]] for s in scenarios], tablefmt="plain"))
    click.echo("\nDetectors")
    click.echo(
        tabulate(
            [[d["id"], d["analytic"], ", ".join(d["required_fields"])] for d in detectors],
            tablefmt="plain",
        )
    )
    click.echo("\nAnalytics")
    click.echo(tabulate([[a["id"], a["title"]] for a in analytics], tablefmt="plain"))
    click.echo("\nSuites")
    click.echo(tabulate([[s["id"], ", ".join(s["scenarios"])] for s in suites], tablefmt="plain"))
    click.echo("\nReporters")
    click.echo(tabulate([[r["id"], r["file"] or "(console)"] for r in reporters], tablefmt="plain"))


@cli.command()
@click.option(
    "--suite",
    default="default",
    show_default=True,
    help="Named suite of scenarios to run when no --scenario is given.",
)
@click.option(
    "--scenario",
    "scenario_ids",
    multiple=True,
    metavar="ID",
    help="Scenario to run (repeatable); overrides --suite.",
)
@click.option(
    "--detector",
    "detector_ids",
    multiple=True,
    metavar="ID",
    help="Detector to run (repeatable); default: every registered detector.",
)
@click.option(
    "--seeds",
    default="5",
    show_default=True,
    help="A count (5: seeds 0-4), a range (10-14) or a list (1,4,9).",
)
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default="edr",
    show_default=True,
    help="Telemetry profile the scenarios are rendered under.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="SCENARIO.KNOB=VALUE",
    help="Override a scenario knob (repeatable).",
)
@click.option(
    "--tunable",
    "tunables",
    multiple=True,
    metavar="DETECTOR.NAME=VALUE",
    help="Override a detector tunable (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: reports/<run-id>).",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not print the table.")
def run(
    suite: str,
    scenario_ids: tuple[str, ...],
    detector_ids: tuple[str, ...],
    seeds: str,
    profile: str,
    params: tuple[str, ...],
    tunables: tuple[str, ...],
    out: Path | None,
    quiet: bool,
) -> None:
    """Run scenarios through detectors, score them against ground truth and write the results
    document, a Markdown report and every alert."""
    seed_list = parse_seeds(seeds)
    ids = list(scenario_ids) or list(SUITES.load(suite))
    param_map = parse_assignments(params, "--param")
    tunable_map = parse_assignments(tunables, "--tunable")
    scen_classes = {i: SCENARIOS.load(i) for i in dict.fromkeys(ids)}
    det_classes = {i: DETECTORS.load(i) for i in dict.fromkeys(detector_ids or DETECTORS.names())}
    for plugin in param_map:
        if plugin not in scen_classes:
            raise UsageError(f"--param names scenario {plugin!r}, which is not being run")
    for plugin in tunable_map:
        if plugin not in det_classes:
            raise UsageError(f"--tunable names detector {plugin!r}, which is not being run")
    plan = RunPlan(
        scenarios=tuple(
            ScenarioSpec(scenario=c, overrides=param_map.get(i, {}))
            for i, c in scen_classes.items()
        ),
        detectors=tuple(
            DetectorSpec(detector=c, tunables=tunable_map.get(i, {}))
            for i, c in det_classes.items()
        ),
        seeds=seed_list,
        profile=Profile(profile),
    )
    started = datetime.now(UTC)
    wall0 = time.perf_counter()
    progress = Progress(sys.stderr)
    try:
        records = run_plan(plan, progress=progress)
    finally:
        progress.close()
    doc = build_results(plan, records)
    validate(doc)
    digest = doc["run"]["config_digest"].split(":", 1)[1][:8]
    run_id = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{digest}"
    folder = out if out is not None else Path("reports") / run_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for reporter_cls in REPORTERS.load_all():
            reporter = reporter_cls()
            if reporter.filename:
                (folder / reporter.filename).write_text(reporter.render(doc), encoding="utf-8")
        (folder / "alerts.ndjson").write_text(alerts_ndjson(records), encoding="utf-8")
        timing = build_timing(
            records,
            run_id=run_id,
            started_utc=started.isoformat(),
            wall_s=time.perf_counter() - wall0,
        )
        (folder / "timing.json").write_text(canonical_json(timing), encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write results to {folder}: {exc.strerror or exc}") from exc
    if not quiet:
        click.echo(REPORTERS.load("console")().render(doc), nl=False)
    click.echo(f"results: {folder / 'results.json'}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes without tracebacks."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name=_PROG, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo(f"{_PROG}: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if exc.exit_code == 2 else exc.exit_code
    except HarnessError as exc:
        click.echo(f"{_PROG}: error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"{_PROG}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback)",
            err=True,
        )
        return 3
    return 0
