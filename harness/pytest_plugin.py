"""pytest plugin: test a detection rule against the harness's scenarios in a few lines.

Installed with the harness (entry point ``pytest11``), it gives every test the ``egress`` fixture::

    from my_rules import MyRule

    def test_my_rule_catches_dns_tunnel(egress):
        result = egress.run(MyRule, scenario="dns-tunnels", seeds=3)
        result.assert_detects("iodine-tunnel")

    def test_my_rule_quiet_on_backup_agent(egress):
        egress.run(MyRule, scenario="office-baseline").assert_quiet_on("backup-agent")

``egress.run(detector, scenario=..., seeds=..., params=..., tunables=..., profile=...)`` generates
the scenario for each seed, streams its telemetry through a fresh instance of the detector (a
:class:`~harness.detector.Detector` subclass, or the id of a registered detector) and returns an
:class:`EgressResult`:

* ``assert_detects(actor, min_rate=1.0, max_latency_s=None, max_bytes_before_alert=None)``: the
  malicious actor drew an alert of this detector citing one of its events in at least
  ``min_rate`` of the seeds (default: every seed), within the latency and byte budgets if given;
* ``assert_quiet_on(actor, max_alerts=0)``: at most ``max_alerts`` false alerts cite the events
  of that benign actor (a false-positive trap such as ``backup-agent``), over all seeds;
* ``assert_quiet(max_alerts=0)``: at most ``max_alerts`` false alerts in all;
* ``actor(actor_id)``, ``false_alerts``, ``analytic_summary`` (the results-document figures of the
  detector's analytic) and ``records`` (the raw run records) for assertions of your own.

An actor is *detected* when any alert of the detector cites one of its events, whether or not
the catalogue expects the detector's analytic to fire on it, so a rule can be tested against any
actor. A detector that raises or lacks a telemetry field fails the assertion with that reason,
never as a silent miss. Failure messages carry the harness's figures: detection rate over the
seeds with its Wilson 95% interval, which seeds missed, per seed the latency and the bytes the
actor had sent before the first alert, and the false alerts with their reasons; plus the
analytic's detection rate, false alerts per 100 host-days and latency over the run.

**Speed.** Scenarios run on a small office by default (:data:`SMALL_OFFICE`: 6 workstations, 1
server, 2 baseline days, 1 detection day; about a second per scenario and seed) instead of the
full defaults; knobs a scenario lacks are skipped. Override any knob with ``params={...}`` or
drop the small defaults with ``small=False``. Seeds: ``seeds=3`` (seeds 0-2), ``seeds=[4, 9]``
or ``"10-14"``; without ``seeds`` a test runs :data:`DEFAULT_SEEDS` seeds, or as many as
``pytest --egress-seeds N`` says (a count, a range ``10-14`` or a list ``1,4,9``), so CI can
widen every test without editing it; an explicit ``seeds=`` wins. Identical runs are cached for
the session, so several assertions on one scenario cost one run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.detector import Detector
    from harness.runner import RunRecord
    from harness.scenario import Scenario

__all__ = [
    "DEFAULT_SEEDS",
    "SMALL_OFFICE",
    "ActorOutcome",
    "EgressHarness",
    "EgressResult",
    "FalseAlert",
    "SeedOutcome",
]

#: Knobs applied by default, when the scenario has them: a small office, for fast tests.
SMALL_OFFICE: Mapping[str, int] = {
    "workstations": 6,
    "servers": 1,
    "baseline_days": 2,
    "detection_days": 1,
}
#: Seeds per run when neither the test nor ``--egress-seeds`` says.
DEFAULT_SEEDS = 2
_NS_PER_S = 1_000_000_000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("egress-harness", "egress-harness detection tests")
    group.addoption(
        "--egress-seeds",
        action="store",
        default=None,
        metavar="SEEDS",
        help="seeds for egress.run calls that give none: a count (5: seeds 0-4), a range "
        f"(10-14) or a list (1,4,9); default {DEFAULT_SEEDS}",
    )


_CACHE = pytest.StashKey[dict[tuple[Any, ...], "EgressResult"]]()


@pytest.fixture
def egress(request: pytest.FixtureRequest) -> EgressHarness:
    """Run detectors against harness scenarios and assert on the outcome (see the module
    docstring of :mod:`harness.pytest_plugin`)."""
    config = request.config
    cache = config.stash.setdefault(_CACHE, {})
    return EgressHarness(seeds_option=config.getoption("--egress-seeds"), cache=cache)


@dataclass(frozen=True, slots=True, kw_only=True)
class FalseAlert:
    """A false alert (it cites no malicious actor's event) and the benign actors it cites."""

    seed: int
    ts_utc: str
    host: str | None
    actors: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedOutcome:
    """One actor in one seed: detected or not, and when."""

    seed: int
    detected: bool
    latency_s: float | None
    bytes_before_alert: int | None
    bytes_total: int
    true_alerts: int
    first_reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorOutcome:
    """One actor over every seed of a run."""

    actor_id: str
    kind: str
    seeds: tuple[SeedOutcome, ...]

    @property
    def detected_seeds(self) -> tuple[int, ...]:
        return tuple(s.seed for s in self.seeds if s.detected)

    @property
    def missed_seeds(self) -> tuple[int, ...]:
        return tuple(s.seed for s in self.seeds if not s.detected)

    @property
    def detection_rate(self) -> tuple[float, float, float] | None:
        """Share of seeds in which it was detected, with the Wilson 95% interval."""
        from harness.stats import wilson_interval

        return wilson_interval(len(self.detected_seeds), len(self.seeds))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f} s"


def _bytes(n: float | None) -> str:
    from harness.reporters._table import fmt_bytes

    return fmt_bytes(n)


def _rate(rate: Mapping[str, Any], fmt: Any = _pct) -> str:
    if rate["value"] is None:
        return "n/a"
    return f"{fmt(rate['value'])} (95% CI {fmt(rate['ci_low'])} to {fmt(rate['ci_high'])})"


def _count(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


class EgressResult:
    """The outcome of one detector over one scenario and its seeds (see the module docstring)."""

    def __init__(
        self,
        *,
        detector: type[Detector],
        scenario: str,
        seeds: tuple[int, ...],
        profile: str,
        parameters: Mapping[str, Any],
        records: Sequence[RunRecord],
        doc: Mapping[str, Any],
    ) -> None:
        self.detector = detector
        self.scenario = scenario
        self.seeds = seeds
        self.profile = profile
        self.parameters = dict(parameters)
        self.records = tuple(records)
        self.doc = doc
        #: The results-document summary of the detector's analytic (None for an analytic the
        #: harness does not catalogue).
        self.analytic_summary: Mapping[str, Any] | None = doc["analytics"].get(detector.analytic)

    # -- figures -----------------------------------------------------------------------------

    @property
    def _label(self) -> str:
        return f"{self.detector.id} ({self.detector.analytic}) on {self.scenario}"

    def _runs(self) -> list[tuple[RunRecord, Any]]:
        return [(rec, run) for rec in self.records for run in rec.detectors]

    def _actor_ids(self) -> dict[str, str]:
        return {a.actor_id: a.kind.value for rec in self.records for a in rec.truth.actors}

    def actor(self, actor_id: str) -> ActorOutcome:
        """How ``actor_id`` fared in every seed (``UnknownPluginError`` if no such actor)."""
        from harness.errors import UnknownPluginError
        from harness.scoring import classify_alert

        kinds = self._actor_ids()
        if actor_id not in kinds:
            raise UnknownPluginError(f"actor of scenario {self.scenario!r}", actor_id, kinds)
        seeds = []
        for rec, run in self._runs():
            truth = rec.truth
            try:
                actor = truth.actor(actor_id)
            except KeyError:  # not generated in this seed
                continue
            hits = [
                r
                for r in run.alerts
                if actor_id in classify_alert(r.alert.evidence, truth, frozenset({actor_id}))
            ]
            first = min(hits, key=lambda r: r.raised_ns, default=None)
            if first is None or actor.start_ns is None:
                seeds.append(
                    SeedOutcome(
                        seed=rec.seed,
                        detected=first is not None,
                        latency_s=None,
                        bytes_before_alert=None,
                        bytes_total=actor.bytes_total,
                        true_alerts=len(hits),
                        first_reason=None if first is None else first.alert.reason,
                    )
                )
                continue
            seeds.append(
                SeedOutcome(
                    seed=rec.seed,
                    detected=True,
                    latency_s=(first.raised_ns - actor.start_ns) / _NS_PER_S,
                    bytes_before_alert=actor.bytes_until(first.raised_ns),
                    bytes_total=actor.bytes_total,
                    true_alerts=len(hits),
                    first_reason=first.alert.reason,
                )
            )
        return ActorOutcome(actor_id=actor_id, kind=kinds[actor_id], seeds=tuple(seeds))

    @property
    def false_alerts(self) -> tuple[FalseAlert, ...]:
        """Every alert that cites no malicious actor's event, with the actors it does cite."""
        from harness.scoring import classify_alert

        out = []
        for rec, run in self._runs():
            truth = rec.truth
            for raised in run.alerts:
                if classify_alert(raised.alert.evidence, truth):
                    continue
                cited = sorted({truth.event_actor.get(e, "<none>") for e in raised.alert.evidence})
                out.append(
                    FalseAlert(
                        seed=rec.seed,
                        ts_utc=datetime.fromtimestamp(raised.alert.ts_ns / _NS_PER_S, UTC)
                        .isoformat(timespec="seconds")
                        .replace("+00:00", "Z"),
                        host=raised.alert.entity.host,
                        actors=tuple(cited),
                        reason=raised.alert.reason,
                    )
                )
        return tuple(out)

    # -- assertions --------------------------------------------------------------------------

    def _outcome_problem(self) -> str | None:
        """Why the detector could not be judged at all (errors, missing fields), or None."""
        from harness.runner import Outcome

        lines = []
        for rec, run in self._runs():
            if run.outcome is Outcome.ERROR:
                lines.append(f"  seed {rec.seed}: ERROR, the detector raised: {run.error}")
            elif run.outcome is Outcome.NOT_EVALUABLE:
                missing = ", ".join(f.value for f in run.missing_fields)
                lines.append(
                    f"  seed {rec.seed}: not evaluable under the {self.profile!r} profile "
                    f"(missing {missing})"
                )
        if not lines:
            return None
        return f"{self._label}: the detector could not be judged\n" + "\n".join(lines)

    def _analytic_lines(self) -> list[str]:
        run_line = (
            f"  run: seeds {', '.join(map(str, self.seeds))}, profile {self.profile}, "
            f"parameters {self.parameters}"
        )
        a = self.analytic_summary
        if a is None:
            return [run_line]
        c = a["counts"]
        return [
            f"  {self.detector.analytic} over this run: detection rate "
            f"{_rate(a['detection_rate'])} of expected actors "
            f"({c['detected_actors']}/{c['expected_actors']}), false alerts per 100 host-days "
            f"{_rate(a['false_alerts_per_100_host_days'], _count)} ({c['false_alerts']} over "
            f"{c['host_days']:.1f} host-days), latency median / p95 "
            f"{_secs(a['latency_s']['median'])} / {_secs(a['latency_s']['p95'])}",
            run_line,
        ]

    def assert_detects(
        self,
        actor_id: str,
        *,
        min_rate: float = 1.0,
        max_latency_s: float | None = None,
        max_bytes_before_alert: int | None = None,
    ) -> EgressResult:
        """Fail unless the malicious ``actor_id`` is detected in at least ``min_rate`` of the
        seeds and, where given, every detection came within ``max_latency_s`` and before the
        actor had sent ``max_bytes_before_alert`` bytes."""
        __tracebackhide__ = True
        from harness.errors import InvalidParameterError
        from harness.stats import percentile

        if not 0.0 <= min_rate <= 1.0:
            raise InvalidParameterError("min_rate", min_rate, "a share between 0 and 1")
        outcome = self.actor(actor_id)
        if outcome.kind != "malicious":
            raise InvalidParameterError(
                "actor", actor_id, "a malicious actor (use assert_quiet_on for benign ones)"
            )
        problem = self._outcome_problem()
        if problem is not None:
            raise AssertionError(problem)
        n = len(outcome.seeds)
        hit = len(outcome.detected_seeds)
        failures = []
        if hit < min_rate * n:
            failures.append(
                f"detected in {hit} of {n} seeds, below the required {_pct(min_rate)}; "
                f"missed seeds: {', '.join(map(str, outcome.missed_seeds))}"
            )
        late = [
            s
            for s in outcome.seeds
            if max_latency_s is not None and s.latency_s is not None and s.latency_s > max_latency_s
        ]
        if late:
            failures.append(
                f"first alert later than {_secs(max_latency_s)} in seeds "
                + ", ".join(f"{s.seed} ({_secs(s.latency_s)})" for s in late)
            )
        leaky = [
            s
            for s in outcome.seeds
            if max_bytes_before_alert is not None
            and s.bytes_before_alert is not None
            and s.bytes_before_alert > max_bytes_before_alert
        ]
        if leaky:
            failures.append(
                f"more than {_bytes(max_bytes_before_alert)} left before the first alert in seeds "
                + ", ".join(f"{s.seed} ({_bytes(s.bytes_before_alert)})" for s in leaky)
            )
        if not failures:
            return self
        rate = outcome.detection_rate
        rate_text = (
            "n/a"
            if rate is None
            else f"{_pct(rate[0])} (95% CI {_pct(rate[1])} to {_pct(rate[2])})"
        )
        latencies = [s.latency_s for s in outcome.seeds if s.latency_s is not None]
        before = [s.bytes_before_alert for s in outcome.seeds if s.bytes_before_alert is not None]
        lines = [
            f"{self._label}: {actor_id!r} not detected as required",
            *(f"  {f}" for f in failures),
            f"  detection rate over seeds: {rate_text}; latency median / p95 "
            f"{_secs(percentile(latencies, 50))} / {_secs(percentile(latencies, 95))}; bytes "
            f"before alert median / p95 {_bytes(percentile(before, 50))} / "
            f"{_bytes(percentile(before, 95))}",
        ]
        for s in outcome.seeds:
            if s.detected:
                lines.append(
                    f"  seed {s.seed}: detected after {_secs(s.latency_s)}, "
                    f"{_bytes(s.bytes_before_alert)} of {_bytes(s.bytes_total)} sent before the "
                    f"first alert, {s.true_alerts} alerts; first: {s.first_reason}"
                )
            else:
                lines.append(f"  seed {s.seed}: MISSED, {_bytes(s.bytes_total)} left unalerted")
        lines += self._analytic_lines()
        raise AssertionError("\n".join(lines))

    def assert_quiet_on(self, actor_id: str, *, max_alerts: int = 0) -> EgressResult:
        """Fail if more than ``max_alerts`` false alerts cite events of the benign ``actor_id``
        over all seeds."""
        __tracebackhide__ = True
        from harness.errors import InvalidParameterError

        if self.actor(actor_id).kind == "malicious":
            raise InvalidParameterError(
                "actor", actor_id, "a benign actor (use assert_detects for malicious ones)"
            )
        problem = self._outcome_problem()
        if problem is not None:
            raise AssertionError(problem)
        hits = [f for f in self.false_alerts if actor_id in f.actors]
        if len(hits) <= max_alerts:
            return self
        self._raise_noisy(f"{len(hits)} false alerts on {actor_id!r}", hits, max_alerts)
        return self  # pragma: no cover - _raise_noisy raises

    def assert_quiet(self, *, max_alerts: int = 0) -> EgressResult:
        """Fail if the detector raised more than ``max_alerts`` false alerts in all."""
        __tracebackhide__ = True
        problem = self._outcome_problem()
        if problem is not None:
            raise AssertionError(problem)
        hits = list(self.false_alerts)
        if len(hits) <= max_alerts:
            return self
        self._raise_noisy(f"{len(hits)} false alerts", hits, max_alerts)
        return self  # pragma: no cover - _raise_noisy raises

    def _raise_noisy(self, what: str, hits: Sequence[FalseAlert], max_alerts: int) -> None:
        __tracebackhide__ = True
        per_seed = {s: sum(1 for h in hits if h.seed == s) for s in self.seeds}
        lines = [
            f"{self._label}: {what} over {len(self.seeds)} seeds (allowed {max_alerts})",
            "  per seed: " + ", ".join(f"seed {s}: {n}" for s, n in per_seed.items()),
        ]
        shown = 10
        for h in hits[:shown]:
            lines.append(
                f"  seed {h.seed} {h.ts_utc} on {h.host or '?'} citing {', '.join(h.actors)}: "
                f"{h.reason}"
            )
        if len(hits) > shown:
            lines.append(f"  ... and {len(hits) - shown} more (EgressResult.false_alerts)")
        lines += self._analytic_lines()
        raise AssertionError("\n".join(lines))


class EgressHarness:
    """What the ``egress`` fixture returns: runs detectors over scenarios (see the module
    docstring)."""

    def __init__(
        self, *, seeds_option: str | None, cache: dict[tuple[Any, ...], EgressResult]
    ) -> None:
        self._seeds_option = seeds_option
        self._cache = cache

    def _seeds(self, seeds: int | str | Sequence[int] | None) -> tuple[int, ...]:
        from harness.cli import parse_seeds
        from harness.errors import InvalidParameterError

        if seeds is None:
            seeds = self._seeds_option if self._seeds_option is not None else DEFAULT_SEEDS
        if isinstance(seeds, bool):
            raise InvalidParameterError("seeds", seeds, "a count, a range, a list of seeds")
        if isinstance(seeds, int):
            return parse_seeds(str(seeds))
        if isinstance(seeds, str):
            return parse_seeds(seeds)
        listed = tuple(seeds)
        if (
            not listed
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in listed)
            or len(set(listed)) != len(listed)
        ):
            raise InvalidParameterError("seeds", seeds, "distinct non-negative integer seeds")
        return listed

    def run(
        self,
        detector: type[Detector] | str,
        *,
        scenario: type[Scenario] | str,
        seeds: int | str | Sequence[int] | None = None,
        params: Mapping[str, Any] | None = None,
        tunables: Mapping[str, float] | None = None,
        profile: str = "edr",
        small: bool = True,
    ) -> EgressResult:
        """Run ``detector`` over ``scenario`` for each seed and score it (cached per session)."""
        from harness.fields import Profile
        from harness.registry import DETECTORS, SCENARIOS
        from harness.results import build_results
        from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan

        det_cls = DETECTORS.load(detector) if isinstance(detector, str) else detector
        scen_cls = SCENARIOS.load(scenario) if isinstance(scenario, str) else scenario
        knobs = {f.name for f in dataclasses.fields(scen_cls.Params)}
        overrides = {k: v for k, v in SMALL_OFFICE.items() if small and k in knobs}
        overrides.update(params or {})
        seed_list = self._seeds(seeds)
        prof = Profile(profile)
        key = (
            det_cls,
            scen_cls,
            seed_list,
            tuple(sorted(overrides.items())),
            tuple(sorted((tunables or {}).items())),
            prof,
        )
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        plan = RunPlan(
            scenarios=(ScenarioSpec(scenario=scen_cls, overrides=overrides),),
            detectors=(DetectorSpec(detector=det_cls, tunables=dict(tunables or {})),),
            seeds=seed_list,
            profile=prof,
        )
        records = run_plan(plan, workers=1)
        result = EgressResult(
            detector=det_cls,
            scenario=scen_cls.id,
            seeds=seed_list,
            profile=prof.value,
            parameters=overrides,
            records=records,
            doc=build_results(plan, records),
        )
        self._cache[key] = result
        return result
