"""The ``egress-harness`` command line.

Exit codes: 0 success; 2 usage error (bad option, unknown plugin, bad value); 3 harness error
(a plugin failed to load, a results document failed validation, an internal fault). Errors are
one line on stderr; ``--debug`` shows the traceback of an internal fault.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.analytics import ANALYTICS
from harness.errors import HarnessError, InvalidParameterError, UsageError
from harness.fields import Profile
from harness.frontier import frontier_markdown, search_frontier
from harness.holdout import drawn_knob_plan, held_out_seed_plan, holdout_section
from harness.progress import Progress
from harness.registry import DETECTORS, REPORTERS, SCENARIOS, SUITES
from harness.results import (
    alerts_ndjson,
    build_results,
    build_timing,
    canonical_json,
    validate,
)
from harness.runner import (
    DetectorSpec,
    ProgressFn,
    RunPlan,
    ScenarioSpec,
    default_workers,
    run_plan,
)
from harness.truth import GroundTruth

__all__ = ["main"]

_PROG = "egress-harness"
#: Knob settings drawn per scenario for ``run --holdout``.
HOLDOUT_DRAWS = 3


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
@click.option(
    "--sweep",
    "sweep_points",
    type=click.IntRange(0, 15),
    default=0,
    show_default=True,
    metavar="N",
    help="Threshold sweep: re-run each detector at N values of its primary tunable "
    "(default x 4^k around the default) for detection-vs-false-alert curves; 0: none.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    metavar="N",
    help="Worker processes for the (scenario, seed) jobs; 0: one per available core.",
)
@click.option(
    "--holdout",
    is_flag=True,
    help="Also score held-out seeds (from 1000) and Hypothesis-drawn knob settings, shown "
    "beside the main figures.",
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
    sweep_points: int,
    workers: int,
    holdout: bool,
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
        sweep_points=sweep_points,
    )
    started = datetime.now(UTC)
    wall0 = time.perf_counter()
    progress = Progress(sys.stderr)
    try:
        jobs = len(plan.scenarios) * len(plan.seeds)
        records = run_plan(plan, progress=progress, workers=workers or default_workers(jobs))
        held_out = _held_out(plan, workers, progress) if holdout else None
    finally:
        progress.close()
    doc = build_results(plan, records, held_out=held_out)
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
    from harness.evidence import code_inputs, reproduce_command, run_configuration, write_manifest

    write_manifest(  # last: it hashes every file written above
        folder,
        command=reproduce_command(click.get_current_context()),
        configuration=run_configuration(doc),
        inputs=code_inputs([*scen_classes.values(), *det_classes.values()]),
    )
    if not quiet:
        click.echo(REPORTERS.load("console")().render(doc), nl=False)
    click.echo(f"results: {folder / 'results.json'}", err=True)


@cli.command()
@click.option(
    "--scenario",
    "scenario_ids",
    multiple=True,
    metavar="ID",
    help="Scenario to search (repeatable); default: every scenario with difficulty ladders.",
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
    default="2",
    show_default=True,
    help="Seeds per rung: a count, a range (10-14) or a list (1,4,9).",
)
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default="edr",
    show_default=True,
    help="Telemetry profile the scenarios are rendered under.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    metavar="N",
    help="Worker processes; 0: one per available core.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: reports/frontier-<time>).",
)
def frontier(
    scenario_ids: tuple[str, ...],
    detector_ids: tuple[str, ...],
    seeds: str,
    profile: str,
    workers: int,
    out: Path | None,
) -> None:
    """Evasion frontier: the weakest knob setting (lowest rate, smallest volume, most disguise)
    of each malicious actor that each expected analytic still catches. Writes frontier.json and
    frontier.md."""
    seed_list = parse_seeds(seeds)
    ids = list(scenario_ids) or SCENARIOS.names()
    classes = [SCENARIOS.load(i) for i in dict.fromkeys(ids)]
    laddered = [c for c in classes if c.difficulty]
    if not laddered:
        raise UsageError(
            "none of the scenarios has difficulty ladders: " + ", ".join(c.id for c in classes)
        )
    dets = [DetectorSpec(detector=DETECTORS.load(i)) for i in detector_ids or DETECTORS.names()]
    jobs = sum(len(v) for c in laddered for v in c.difficulty.values()) * len(seed_list)
    started = datetime.now(UTC)
    progress = Progress(sys.stderr)
    try:
        doc = search_frontier(
            laddered,
            dets,
            seed_list,
            workers=workers or default_workers(jobs),
            progress=progress,
            profile=Profile(profile),
        )
    finally:
        progress.close()
    folder = out if out is not None else Path("reports") / f"frontier-{started:%Y%m%dT%H%M%SZ}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "frontier.json").write_text(canonical_json(doc), encoding="utf-8")
        (folder / "frontier.md").write_text(frontier_markdown(doc), encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write the frontier to {folder}: {exc.strerror or exc}") from exc
    click.echo(frontier_markdown(doc), nl=False)
    click.echo(f"frontier: {folder / 'frontier.json'}", err=True)


def _held_out(plan: RunPlan, workers: int, progress: Progress) -> dict[str, Any]:
    """Run the held-out seeds and the drawn knob settings of ``plan``; the results section."""
    seed_plan = held_out_seed_plan(plan)
    knob_plan = drawn_knob_plan(plan, HOLDOUT_DRAWS)

    def stage(name: str) -> ProgressFn:
        return lambda done, total, label: progress(done, total, f"{name}: {label}")

    jobs = len(seed_plan.scenarios) * len(seed_plan.seeds)
    seed_records = run_plan(
        seed_plan, progress=stage("held-out"), workers=workers or default_workers(jobs)
    )
    knob_records = []
    if knob_plan is not None:
        knob_records = run_plan(
            knob_plan,
            progress=stage("drawn knobs"),
            workers=workers or default_workers(len(knob_plan.scenarios)),
        )
    return holdout_section(seed_plan, seed_records, knob_plan, knob_records)


def truth_document(
    truth: GroundTruth, *, profile: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The ground truth of one generation as a JSON document (``truth.json``)."""
    from harness.ecs import format_timestamp

    actors = []
    for a in truth.actors:
        actors.append(
            {
                "actor_id": a.actor_id,
                "kind": a.kind.value,
                "description": a.description,
                "techniques": list(a.techniques),
                "expected_analytics": list(a.expected_analytics),
                "trap_for": list(a.trap_for),
                "observable_with": sorted(f.value for f in a.observable_with),
                "start_ns": a.start_ns,
                "start": None if a.start_ns is None else format_timestamp(a.start_ns),
                "hosts": list(a.hosts),
                "process_instances": a.process_instances,
                "bytes_total": a.bytes_total,
                "bytes_timeline": [[ts, total] for ts, total in a.bytes_timeline],
            }
        )
    return {
        "schema_version": 1,
        "scenario": truth.scenario,
        "seed": truth.seed,
        "profile": profile,
        "params": dict(params),
        "actors": actors,
        "event_actor": dict(sorted(truth.event_actor.items(), key=lambda kv: _eid_key(kv[0]))),
    }


def _eid_key(event_id: str) -> tuple[int, str]:
    digits = event_id.lstrip("e")
    return (int(digits), event_id) if digits.isdigit() else (-1, event_id)


@cli.command()
@click.argument("scenario_id", metavar="SCENARIO")
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default="edr",
    show_default=True,
    help="Telemetry profile: edr (ECS NDJSON) or network-only (NDJSON plus a pcap).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KNOB=VALUE",
    help="Override a scenario knob (repeatable), e.g. workstations=5.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (created if missing).",
)
@click.option(
    "--snaplen",
    type=click.IntRange(0, 262_144),
    default=384,
    show_default=True,
    metavar="BYTES",
    help="network-only: bytes stored per frame, the rest counted in the record's original "
    "length (tcpdump -s); 0: whole frames.",
)
@click.option(
    "--max-segment",
    type=click.IntRange(0, 65_495),
    default=65_000,
    show_default=True,
    metavar="BYTES",
    help="network-only: largest TCP segment payload, as a host capture with segmentation "
    "offload shows; 0: the 1500-byte-MTU MSS (1460/1440).",
)
@click.option(
    "--udp-bulk",
    type=click.IntRange(0, 65_507),
    default=65_000,
    show_default=True,
    metavar="BYTES",
    help="network-only: largest bulk UDP datagram (media, filler) after the first 16 "
    "real-size ones of a message; 0: every datagram at its real size.",
)
def generate(
    scenario_id: str,
    profile: str,
    seed: int,
    params: tuple[str, ...],
    out: Path,
    snaplen: int,
    max_segment: int,
    udp_bulk: int,
) -> None:
    """Write one scenario's telemetry as ECS NDJSON (events.ndjson), its ground truth
    (truth.json) and, for network-only, the packet capture (capture.pcap).

    The capture is compact by default (offloaded segments, 384-byte snapshots): every flow's
    byte counts are in its headers at a fraction of the size; --snaplen 0 --max-segment 0
    --udp-bulk 0 gives the capture on the wire."""
    from harness.ecs import write_ndjson
    from harness.pcap.scenario import CaptureOptions, estimate_capture_bytes, write_scenario_pcap

    overrides: dict[str, Any] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidParameterError("--param", item, "KNOB=VALUE")
        overrides[name.strip()] = _parse_value(value)
    if 0 < udp_bulk < 1_472:
        raise InvalidParameterError("--udp-bulk", udp_bulk, "0, or 1472..65507 bytes")
    capture = CaptureOptions(
        max_segment=max_segment or None,
        snaplen=snaplen or None,
        udp_bulk_datagram=udp_bulk or None,
    )
    scenario = SCENARIOS.load(scenario_id)()
    chosen = scenario.params(overrides)
    prof = Profile(profile)
    progress = Progress(sys.stderr)
    try:
        run = scenario.generate(chosen, seed, prof)
        events = run.telemetry.events
        try:
            out.mkdir(parents=True, exist_ok=True)
            if prof is Profile.NETWORK_ONLY:
                need = estimate_capture_bytes(events, options=capture)
                free = shutil.disk_usage(out).free
                if need > free:
                    raise HarnessError(
                        f"the capture of {scenario_id!r} would take about {need / 1e9:.1f} GB "
                        f"and {out} has {free / 1e9:.1f} GB free; generate fewer hosts or days "
                        "(--param workstations=N --param baseline_days=N) or keep the compact "
                        "capture defaults (--snaplen, --max-segment, --udp-bulk)"
                    )
            write_ndjson(events, out / "events.ndjson")
            doc = truth_document(run.truth, profile=prof.value, params=dataclasses.asdict(chosen))
            (out / "truth.json").write_text(canonical_json(doc), encoding="utf-8")
            if prof is Profile.NETWORK_ONLY:
                summary = write_scenario_pcap(
                    events, out / "capture.pcap", options=capture, progress=progress
                )
                click.echo(
                    f"capture: {summary.packets} packets, {summary.flows} flows, "
                    f"{summary.file_bytes / 1e6:,.1f} MB ({summary.packets_per_s:,.0f} packets/s)",
                    err=True,
                )
        except OSError as exc:
            raise HarnessError(f"cannot write to {out}: {exc.strerror or exc}") from exc
    finally:
        progress.close()
    click.echo(f"events: {out / 'events.ndjson'} ({len(events)} events)", err=True)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--detector",
    "detector_ids",
    multiple=True,
    metavar="ID",
    help="Judge the analytic by this detector's required fields (repeatable); default: every "
    "registered detector.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the readiness document as JSON.")
def readiness(inputs: tuple[str, ...], detector_ids: tuple[str, ...], as_json: bool) -> None:
    """Which analytics recorded telemetry can support: per analytic, the fields present and
    missing, the share of flows attributed to a process, and a verdict (supported, degraded,
    not evaluable). INPUT: pcap/pcapng, Zeek logs, Sysmon EVTX/XML/JSON lines, ECS NDJSON, or a
    folder of them (gzip is read transparently; formats are recognised by content)."""
    from harness.ingest.evaluate import (
        assess,
        detector_specs,
        readiness_document,
        scan_inputs,
        validate_document,
    )
    from harness.reporters.evaluation import inputs_text, readiness_text

    specs = detector_specs(detector_ids, {})
    progress = Progress(sys.stderr)
    try:
        inputs_read = scan_inputs(inputs, progress=progress)
    finally:
        progress.close()
    fields = inputs_read.fields()
    doc = readiness_document(inputs_read, fields, assess(fields, [s.detector for s in specs]))
    validate_document(doc)
    if as_json:
        click.echo(canonical_json(doc), nl=False)
        return
    click.echo(inputs_text(doc["inputs"]))
    click.echo(readiness_text(doc), nl=False)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ground truth to score against: the truth.json of `generate`, or a JSON/CSV rules "
    "file (see harness.ingest.evaluate).",
)
@click.option(
    "--baseline-until",
    metavar="TIME",
    default=None,
    help="End of the baseline window: ISO 8601 UTC (2026-11-02T12:00:00Z) or a duration after "
    "the first event (90s, 30m, 2h, 1d). Default: no baseline, the detectors judge the "
    "recording on what it shows by itself.",
)
@click.option(
    "--detector",
    "detector_ids",
    multiple=True,
    metavar="ID",
    help="Detector to run (repeatable); default: every registered detector.",
)
@click.option(
    "--tunable",
    "tunables",
    multiple=True,
    metavar="DETECTOR.NAME=VALUE",
    help="Override a detector tunable (repeatable).",
)
@click.option(
    "--inject",
    metavar="SCENARIO:ACTOR",
    default=None,
    help="Overlay one synthetic malicious actor (e.g. dns-tunnels:iodine-tunnel) on the "
    "recording and score its detection; every other alert counts as false.",
)
@click.option(
    "--inject-at",
    metavar="TIME",
    default=None,
    help="When the injected actor starts (as --baseline-until); default: mid-recording.",
)
@click.option(
    "--inject-host",
    metavar="HOST",
    default=None,
    help="Host of the recording the injected actor runs on; default: the busiest.",
)
@click.option(
    "--inject-param",
    "inject_params",
    multiple=True,
    metavar="KNOB=VALUE",
    help="Override a knob of the injected actor's scenario (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write alerts.ndjson, readiness.json, evaluation.json and (with labels or an "
    "injection) results.json here.",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not print the alerts.")
def evaluate(
    inputs: tuple[str, ...],
    labels_path: Path | None,
    baseline_until: str | None,
    detector_ids: tuple[str, ...],
    tunables: tuple[str, ...],
    inject: str | None,
    inject_at: str | None,
    inject_host: str | None,
    inject_params: tuple[str, ...],
    out: Path | None,
    quiet: bool,
) -> None:
    """Run the detectors over recorded telemetry (INPUT as for `readiness`): every alert with
    its evidence and reason, per-analytic counts and readiness, and scores when labels or an
    injected actor give ground truth."""
    from harness.ingest import evaluate as ev_mod
    from harness.reporters.evaluation import alerts_text, inputs_text, scoring_text

    specs = ev_mod.detector_specs(detector_ids, parse_assignments(tunables, "--tunable"))
    labels = ev_mod.load_labels(labels_path) if labels_path is not None else None
    overrides: dict[str, Any] = {}
    for item in inject_params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidParameterError("--inject-param", item, "KNOB=VALUE")
        overrides[name.strip()] = _parse_value(value)
    if inject_params and inject is None:
        raise UsageError("--inject-param needs --inject")
    progress = Progress(sys.stderr)
    try:
        result = ev_mod.evaluate(
            inputs,
            specs=specs,
            baseline_until=baseline_until,
            labels=labels,
            inject=inject,
            inject_at=inject_at,
            inject_host=inject_host,
            inject_params=overrides,
            progress=progress,
        )
    finally:
        progress.close()
    doc = ev_mod.evaluation_document(result)
    ev_mod.validate_document(doc)
    ready = {
        "schema_version": doc["schema_version"],
        "document": "readiness",
        "harness_version": doc["harness_version"],
        "inputs": doc["inputs"],
        "fields": doc["telemetry"]["fields"],
        "join": doc["join"],
        "analytics": doc["readiness"],
    }
    results = ev_mod.results_document(result)
    alerts = ev_mod.alert_records(result)
    click.echo(inputs_text(doc["inputs"]))
    t = doc["telemetry"]
    click.echo(
        f"{t['events']} events, {t['hosts']} hosts, {t['start']} to {t['end']}; baseline "
        + (
            f"until {t['baseline_until']} ({t['baseline_events']} events)"
            if t["baseline_events"]
            else "window empty"
        )
        + "; fields: "
        + ", ".join(t["fields"])
    )
    if doc["labels"] is not None:
        lab = doc["labels"]
        click.echo(
            f"labels: {lab['path']} ({lab['format']}): {lab['labelled_events']} events labelled"
        )
        if lab["labelled_events"] == 0:
            click.echo(
                "warning: the labels match no event of the inputs (truth.json labels name the "
                "events of the ECS export written beside it; label captures with a rules file)",
                err=True,
            )
    if doc["injection"] is not None:
        inj = doc["injection"]
        click.echo(
            f"injected {inj['scenario']}:{inj['actor']} ({inj['events']} events, "
            f"{inj['profile']} view) on {inj['host']} from {inj['start']}"
        )
    if not quiet:
        click.echo("")
        click.echo(alerts_text(alerts), nl=False)
    click.echo("")
    click.echo(scoring_text({**doc, "results": results}), nl=False)
    for aid, a in doc["analytics"].items():
        if a["error"]:
            click.echo(f"ERROR {aid}: {a['error']}", err=True)
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps(a, sort_keys=True, ensure_ascii=False) for a in alerts]
            (out / "alerts.ndjson").write_text(
                "".join(line + "\n" for line in lines), encoding="utf-8"
            )
            (out / "readiness.json").write_text(canonical_json(ready), encoding="utf-8")
            (out / "evaluation.json").write_text(canonical_json(doc), encoding="utf-8")
            if results is not None:
                (out / "results.json").write_text(canonical_json(results), encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"cannot write to {out}: {exc.strerror or exc}") from exc
        from harness import evidence as ev

        ctx = click.get_current_context()
        ev.write_manifest(  # last: it hashes every file written above
            out,
            command=ev.reproduce_command(ctx),
            configuration=ev.command_configuration(ctx, specs),
            inputs=[
                *ev.file_inputs(inputs, "telemetry"),
                *ev.file_inputs([labels_path] if labels_path is not None else [], "labels"),
                *ev.code_inputs([s.detector for s in specs]),
            ],
        )
        click.echo(f"written: {out}", err=True)


@cli.command()
@click.argument("evidence", type=click.Path(path_type=Path), metavar="EVIDENCE")
@click.option(
    "--outputs-only",
    is_flag=True,
    help="Check only the files of the run folder, not the inputs (code, telemetry) recorded "
    "by absolute path: for a bundle copied away from the machine that made it.",
)
@click.option(
    "--expect-digest",
    metavar="sha256:HEX",
    default=None,
    help="Also require the manifest's own digest to be this one (kept out of the run's reach, "
    "e.g. in a CI log): the check that catches a rewritten manifest.",
)
def verify(evidence: Path, outputs_only: bool, expect_digest: str | None) -> None:
    """Re-hash every file an evidence manifest lists and report each changed, missing or extra
    file. EVIDENCE: a run folder or its evidence.json. Exit 0 when all match, 1 when anything
    changed, 2 on a usage error, 3 on a harness error."""
    from harness.evidence import EvidenceMismatch
    from harness.evidence import verify as verify_manifest

    report = verify_manifest(evidence, check_inputs=not outputs_only, expect_digest=expect_digest)
    lines = report.lines()
    for line in lines:
        click.echo(line)
    if not report.ok:
        raise EvidenceMismatch(f"{report.manifest}: {lines[-1]}")


#: Example CI jobs shipped in the package (``harness/templates/ci/``).
_CI_TEMPLATES = {"github": "github-actions.yml", "gitlab": "gitlab-ci.yml"}


@cli.command(
    epilog="\b\nExit codes: 0 pass, 1 fail, 2 usage error (bad policy, missing file), 3 harness "
    "error\n(results or baseline invalid against the schema).\n"
    "Example CI jobs that install, run the suite, gate it, publish the JUnit XML and upload\n"
    "the report folder ship in the package as harness/templates/ci/github-actions.yml and\n"
    "harness/templates/ci/gitlab-ci.yml: print one with --ci-template github|gitlab."
)
@click.argument("results", required=False, type=click.Path(path_type=Path))
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy file (TOML), e.g. reports/policy.toml.",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(path_type=Path),
    help="Baseline results (results.json or run folder) for the policy's tolerances; "
    "default: the `baseline` the policy names.",
)
@click.option("--no-baseline", is_flag=True, help="Ignore the baseline the policy names.")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JUnit XML: the results' test cases and one per policy rule.",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the step-summary Markdown here (default: append it to $GITHUB_STEP_SUMMARY "
    "when that is set).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Print passing checks too.")
@click.option(
    "--ci-template",
    type=click.Choice(sorted(_CI_TEMPLATES)),
    help="Print an example CI job that runs and gates the suite, and exit.",
)
def gate(
    results: Path | None,
    policy_path: Path | None,
    baseline_path: Path | None,
    no_baseline: bool,
    junit_path: Path | None,
    summary_path: Path | None,
    as_json: bool,
    verbose: bool,
    ci_template: str | None,
) -> None:
    """Gate RESULTS (a results.json or a run folder) against a policy: print every violated
    rule (analytic, rule, observed, limit) and the verdict; exit 1 when any rule fails."""
    import os
    from importlib import resources

    from harness import gate as gate_mod
    from harness.reporters.junit import render_junit
    from harness.reporters.summary import render_summary

    if ci_template is not None:
        path = f"templates/ci/{_CI_TEMPLATES[ci_template]}"
        click.echo(resources.files("harness").joinpath(path).read_text("utf-8"), nl=False)
        return
    if policy_path is None:
        raise UsageError(
            "gate needs --policy POLICY (a TOML policy file, e.g. reports/policy.toml)"
        )
    if results is None:
        raise UsageError("gate needs RESULTS: a results.json or the run folder that holds one")
    policy = gate_mod.load_policy(policy_path)
    doc = gate_mod.load_results(results)
    if no_baseline:
        baseline_path = None
    elif baseline_path is None:
        baseline_path = policy.baseline
    baseline = (
        gate_mod.load_results(baseline_path, what="baseline") if baseline_path is not None else None
    )
    report = gate_mod.evaluate(
        policy,
        doc,
        baseline=baseline,
        results_name=str(results),
        baseline_name=str(baseline_path) if baseline_path is not None else None,
    )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    try:
        if junit_path is not None:
            junit_path.write_text(render_junit(doc, gate=report), encoding="utf-8")
        markdown = render_summary(doc, gate=report, baseline=baseline)
        if summary_path is not None:
            summary_path.write_text(markdown, encoding="utf-8")
        elif step_summary:
            with Path(step_summary).open("a", encoding="utf-8") as fh:
                fh.write(markdown)
    except OSError as exc:
        raise HarnessError(
            f"cannot write a gate report: {exc.filename}: {exc.strerror or exc}"
        ) from exc
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(report.text(verbose=verbose), nl=False)
    if not report.passed:
        raise gate_mod.GateFailure(f"{len(report.violations)} policy violation(s), listed above")


@cli.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--latency-pct",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="Report an actor's latency change when it exceeds this many percent ...",
)
@click.option(
    "--latency-min-s",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="... and this many seconds.",
)
def diff(old: Path, new: Path, as_json: bool, latency_pct: float, latency_min_s: float) -> None:
    """Compare two runs (results.json files or run folders): per-analytic figures, detections
    gained and lost per actor and seed, new false alerts per benign actor, latency changes."""
    from harness.diff import DiffOptions, diff_results, diff_text
    from harness.gate import load_results

    d = diff_results(
        load_results(old, what="old results"),
        load_results(new, what="new results"),
        DiffOptions(latency_pct=latency_pct, latency_min_s=latency_min_s),
    )
    if as_json:
        click.echo(canonical_json(d), nl=False)
    else:
        click.echo(diff_text(d), nl=False)


def _register_lab() -> None:
    """``emulate`` lives in :mod:`harness.lab.cli` (the lab is its own package)."""
    from harness.lab.cli import emulate

    cli.add_command(emulate)


_register_lab()


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
