"""The CI gate: a policy of per-analytic limits evaluated against a results document.

A policy is a TOML file (example: ``reports/policy.toml``, the project's own)::

    version = 1
    baseline = "baseline.json"          # optional, relative to this file; --baseline overrides

    [defaults]                          # merged into every [analytics.*] table, key by key
    required_status = "ok"              # the analytic ran and was scored
    allow_not_evaluable = false         # true: "not_evaluable" passes (its limits are skipped)
    max_errors = 0                      # detector runs that raised
    min_detection_rate = 0.8            # share of expected actors detected
    use_ci_low = false                  # true: compare the Wilson 95% lower bound instead
    max_false_alerts_per_100_host_days = 5.0
    max_latency_p95_s = 900
    max_bytes_before_alert_median = 5e6
    required_negative_tests = []        # benign actor ids that must draw no false alert

    [defaults.tolerance]                # against the baseline results document
    detection_rate_drop = 0.05          # absolute
    false_alerts_rise = 1.0             # absolute, per 100 host-days
    latency_p95_increase_pct = 50       # relative
    bytes_before_alert_median_increase_pct = 50

    [analytics.AN0144]                  # only the analytics named here are gated
    min_detection_rate = 0.9
    required_negative_tests = ["backup-agent"]

Every configured limit needs a measured figure: an undefined (``null``) figure fails its rule,
because a rate nobody measured is not a rate that passed. Tolerance rules are skipped, with a
note, when the baseline has no figure to compare with.

Errors: a bad policy (unknown key, wrong type, out of range) is a :class:`PolicyError` (usage,
exit 2) naming the key and the file; a failed gate is :class:`GateFailure` (exit 1).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Final

from harness.analytics import ANALYTICS
from harness.errors import HarnessError, InputError, SchemaError, UsageError
from harness.results import validate

__all__ = [
    "AnalyticPolicy",
    "Check",
    "GateFailure",
    "GateReport",
    "Policy",
    "PolicyError",
    "Tolerance",
    "evaluate",
    "load_policy",
    "load_results",
    "parse_policy",
]

POLICY_VERSION: Final = 1


class PolicyError(UsageError):
    """A policy file that cannot be read, or a key in it with a bad name, type or value."""


class GateFailure(HarnessError):
    """The results broke at least one rule of the policy: the gate's verdict is FAIL."""

    exit_code = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Tolerance:
    """How far a figure may move against the baseline; ``None``: not checked."""

    detection_rate_drop: float | None = None
    false_alerts_rise: float | None = None
    latency_p95_increase_pct: float | None = None
    bytes_before_alert_median_increase_pct: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticPolicy:
    """The merged rules for one analytic; ``None`` leaves a limit unchecked."""

    analytic: str
    required_status: str | None = None
    allow_not_evaluable: bool = False
    max_errors: int | None = None
    min_detection_rate: float | None = None
    use_ci_low: bool = False
    max_false_alerts_per_100_host_days: float | None = None
    max_latency_p95_s: float | None = None
    max_bytes_before_alert_median: float | None = None
    required_negative_tests: tuple[str, ...] = ()
    tolerance: Tolerance = field(default_factory=Tolerance)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A parsed policy file: the gated analytics and the baseline it names, if any."""

    source: str
    analytics: tuple[AnalyticPolicy, ...]
    baseline: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One rule evaluated on one analytic."""

    analytic: str
    rule: str
    passed: bool
    observed: str
    limit: str
    detail: str = ""

    def line(self) -> str:
        verdict = "ok  " if self.passed else "FAIL"
        text = (
            f"{verdict} {self.analytic}  {self.rule}: observed {self.observed}, limit {self.limit}"
        )
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True, slots=True, kw_only=True)
class GateReport:
    """Every check of a gate run, notes (skipped rules, warnings) and the inputs' names."""

    checks: tuple[Check, ...]
    notes: tuple[str, ...]
    policy: str
    results: str
    baseline: str | None

    @property
    def violations(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def passed(self) -> bool:
        return not self.violations

    def verdict(self) -> str:
        gated = len({c.analytic for c in self.checks})
        base = f"baseline {self.baseline}" if self.baseline else "no baseline"
        if self.passed:
            return f"gate: PASS ({len(self.checks)} checks on {gated} analytics; {base})"
        failing = len({c.analytic for c in self.violations})
        return (
            f"gate: FAIL ({len(self.violations)} of {len(self.checks)} checks failed in "
            f"{failing} analytic(s); {base})"
        )

    def text(self, *, verbose: bool = False) -> str:
        """Violations one a line (every check with ``verbose``), notes, then the verdict."""
        shown = self.checks if verbose else self.violations
        lines = [c.line() for c in shown]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(self.verdict())
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.passed else "fail",
            "policy": self.policy,
            "results": self.results,
            "baseline": self.baseline,
            "checks": [
                {
                    "analytic": c.analytic,
                    "rule": c.rule,
                    "passed": c.passed,
                    "observed": c.observed,
                    "limit": c.limit,
                    "detail": c.detail,
                }
                for c in self.checks
            ],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- policy parsing


@dataclass(frozen=True, slots=True)
class _Key:
    expected: str
    check: Callable[[object], bool]


def _number(lo: float, hi: float = math.inf) -> _Key:
    def check(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return math.isfinite(value) and lo <= value <= hi

    upper = "" if hi == math.inf else f" and <= {hi:g}"
    return _Key(f"a number >= {lo:g}{upper}", check)


_BOOL = _Key("true or false", lambda v: isinstance(v, bool))
_STATUS = _Key('"ok"', lambda v: v == "ok")
_COUNT = _Key(
    "an integer >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0
)
_ACTORS = _Key(
    "a list of benign actor ids (strings)",
    lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
)

_RULE_KEYS: Final[dict[str, _Key]] = {
    "required_status": _STATUS,
    "allow_not_evaluable": _BOOL,
    "max_errors": _COUNT,
    "min_detection_rate": _number(0.0, 1.0),
    "use_ci_low": _BOOL,
    "max_false_alerts_per_100_host_days": _number(0.0),
    "max_latency_p95_s": _number(0.0),
    "max_bytes_before_alert_median": _number(0.0),
    "required_negative_tests": _ACTORS,
}
_TOLERANCE_KEYS: Final[dict[str, _Key]] = {
    "detection_rate_drop": _number(0.0, 1.0),
    "false_alerts_rise": _number(0.0),
    "latency_p95_increase_pct": _number(0.0),
    "bytes_before_alert_median_increase_pct": _number(0.0),
}
_TOP_KEYS: Final = ("version", "baseline", "defaults", "analytics")


def _unknown(key: str, where: str, known: Sequence[str], source: str) -> PolicyError:
    close = get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
    return PolicyError(f"{source}: unknown key {where}{key!r}; {hint}")


def _check_table(
    table: Mapping[str, Any], keys: Mapping[str, _Key], where: str, source: str
) -> None:
    for key, value in table.items():
        spec = keys.get(key)
        if spec is None:
            raise _unknown(key, where, list(keys), source)
        if not spec.check(value):
            raise PolicyError(
                f"{source}: {where}{key} = {value!r} is invalid: expected {spec.expected}"
            )


def _rules_table(table: object, where: str, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate one ``[defaults]`` or ``[analytics.X]`` table: (rules, tolerance)."""
    if not isinstance(table, dict):
        raise PolicyError(f"{source}: [{where}] must be a table, got {table!r}")
    rules = {k: v for k, v in table.items() if k != "tolerance"}
    _check_table(rules, _RULE_KEYS, f"{where}.", source)
    tolerance = table.get("tolerance", {})
    if not isinstance(tolerance, dict):
        raise PolicyError(f"{source}: {where}.tolerance must be a table, got {tolerance!r}")
    _check_table(tolerance, _TOLERANCE_KEYS, f"{where}.tolerance.", source)
    return rules, tolerance


def parse_policy(data: Mapping[str, Any], *, source: str, base_dir: Path | None = None) -> Policy:
    """Validate a decoded policy and merge ``[defaults]`` into each analytic's rules."""
    for key in data:
        if key not in _TOP_KEYS:
            raise _unknown(key, "", list(_TOP_KEYS), source)
    version = data.get("version", POLICY_VERSION)
    if version != POLICY_VERSION or isinstance(version, bool):
        raise PolicyError(f"{source}: version = {version!r} is invalid: expected {POLICY_VERSION}")
    baseline: Path | None = None
    if "baseline" in data:
        raw = data["baseline"]
        if not isinstance(raw, str) or not raw:
            raise PolicyError(f"{source}: baseline = {raw!r} is invalid: expected a path string")
        baseline = Path(raw) if base_dir is None else base_dir / raw
    default_rules, default_tol = _rules_table(data.get("defaults", {}), "defaults", source)
    analytics = data.get("analytics")
    if not isinstance(analytics, dict) or not analytics:
        raise PolicyError(
            f"{source}: no [analytics.<id>] table: name the analytics to gate, e.g. "
            "[analytics.AN0144] (an empty table takes the [defaults])"
        )
    policies = []
    for aid, table in analytics.items():
        if aid not in ANALYTICS:
            raise _unknown(aid, "analytics.", list(ANALYTICS), source)
        rules, tol = _rules_table(table, f"analytics.{aid}", source)
        merged = {**default_rules, **rules}
        merged["required_negative_tests"] = tuple(merged.get("required_negative_tests", ()))
        policies.append(
            AnalyticPolicy(analytic=aid, tolerance=Tolerance(**{**default_tol, **tol}), **merged)
        )
    return Policy(source=source, analytics=tuple(policies), baseline=baseline)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file (:class:`PolicyError` or :class:`InputError`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read policy {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
    return parse_policy(data, source=str(path), base_dir=path.parent)


def load_results(path: Path, *, what: str = "results") -> dict[str, Any]:
    """A results document from a ``results.json`` file or a run folder holding one.

    A missing file is a usage error (exit 2); a file that is not a valid results document is a
    :class:`SchemaError` (exit 3).
    """
    file = path / "results.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {file}: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{what} {file} is not JSON: {exc}") from exc
    try:
        validate(doc)
    except SchemaError as exc:
        raise SchemaError(f"{what} {file}: {exc}") from exc
    if not isinstance(doc, dict):  # validate() requires an object; this narrows the type
        raise SchemaError(f"{what} {file} is not a JSON object")
    return doc


# --------------------------------------------------------------------------- evaluation


def _fmt(value: float | None) -> str:
    """Four significant digits; whole numbers from 10,000 up with thousands separators."""
    if value is None:
        return "n/a"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _limit_check(
    aid: str, rule: str, observed: float | None, limit: float, *, upper: bool, detail: str = ""
) -> Check:
    sign = "<=" if upper else ">="
    if observed is None:
        return Check(
            analytic=aid,
            rule=rule,
            passed=False,
            observed="n/a",
            limit=f"{sign} {_fmt(limit)}",
            detail=(detail + "; " if detail else "") + "figure undefined: nothing was measured",
        )
    ok = observed <= limit if upper else observed >= limit
    return Check(
        analytic=aid,
        rule=rule,
        passed=ok,
        observed=_fmt(observed),
        limit=f"{sign} {_fmt(limit)}",
        detail=detail,
    )


def _negative_checks(pol: AnalyticPolicy, doc: Mapping[str, Any]) -> list[Check]:
    aid = pol.analytic
    out = []
    for actor_id in pol.required_negative_tests:
        seen = total = 0
        kinds: set[str] = set()
        fired: list[str] = []
        for scen_id, scen in doc["scenarios"].items():
            for actor in scen["actors"]:
                if actor["actor_id"] != actor_id:
                    continue
                kinds.add(actor["kind"])
                for run in actor["runs"]:
                    seen += 1
                    n = run["false_alerts"].get(aid, 0)
                    if n:
                        total += n
                        fired.append(f"{scen_id} seed {run['seed']}: {n}")
        rule = f"required_negative_tests[{actor_id}]"
        if not seen:
            out.append(
                Check(
                    analytic=aid,
                    rule=rule,
                    passed=False,
                    observed="actor absent",
                    limit="0 false alerts",
                    detail="the actor is in no scenario of the results: the negative test did "
                    "not run",
                )
            )
        elif "malicious" in kinds:
            out.append(
                Check(
                    analytic=aid,
                    rule=rule,
                    passed=False,
                    observed="malicious actor",
                    limit="a benign actor",
                    detail="a negative test needs a benign actor",
                )
            )
        else:
            out.append(
                Check(
                    analytic=aid,
                    rule=rule,
                    passed=not fired,
                    observed=f"{total} false alerts",
                    limit="0 false alerts",
                    detail=("; ".join(fired) if fired else f"quiet in {seen} actor runs"),
                )
            )
    return out


def _tolerance_checks(
    pol: AnalyticPolicy, cur: Mapping[str, Any], base: Mapping[str, Any], notes: list[str]
) -> list[Check]:
    """The baseline comparisons: (rule, figure, allowance, limit from the baseline figure)."""
    tol = pol.tolerance
    rules: tuple[tuple[str, str, str, float | None, Callable[[float, float], float], str], ...] = (
        (
            "detection_rate_drop",
            "detection_rate",
            "value",
            tol.detection_rate_drop,
            lambda then, x: max(0.0, then - x),
            "detection rate",
        ),
        (
            "false_alerts_rise",
            "false_alerts_per_100_host_days",
            "value",
            tol.false_alerts_rise,
            lambda then, x: then + x,
            "false-alert rate",
        ),
        (
            "latency_p95_increase_pct",
            "latency_s",
            "p95",
            tol.latency_p95_increase_pct,
            lambda then, x: then * (1 + x / 100),
            "latency p95",
        ),
        (
            "bytes_before_alert_median_increase_pct",
            "bytes_before_alert",
            "median",
            tol.bytes_before_alert_median_increase_pct,
            lambda then, x: then * (1 + x / 100),
            "bytes-before-alert median",
        ),
    )
    out: list[Check] = []
    for rule, section, part, allowance, limit_of, what in rules:
        if allowance is None:
            continue
        then = base[section][part]
        if then is None:
            notes.append(f"{pol.analytic} tolerance.{rule} skipped: the baseline has no {what}")
            continue
        out.append(
            _limit_check(
                pol.analytic,
                f"tolerance.{rule}",
                cur[section][part],
                limit_of(then, allowance),
                upper=rule != "detection_rate_drop",
                detail=f"baseline {_fmt(then)}",
            )
        )
    return out


def _has_tolerance(tol: Tolerance) -> bool:
    return any(getattr(tol, name) is not None for name in Tolerance.__dataclass_fields__)


def _analytic_checks(
    pol: AnalyticPolicy,
    doc: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    notes: list[str],
) -> list[Check]:
    aid = pol.analytic
    a = doc["analytics"][aid]
    status = a["status"]
    out: list[Check] = []
    if status == "not_evaluable":
        missing = ", ".join(a["missing_fields"]) or "unknown fields"
        if pol.allow_not_evaluable:
            notes.append(f"{aid} not evaluable (allowed by the policy): missing {missing}")
            return []
        return [
            Check(
                analytic=aid,
                rule="allow_not_evaluable",
                passed=False,
                observed="not_evaluable",
                limit="evaluable",
                detail=f"the telemetry lacks {missing}",
            )
        ]
    if pol.required_status is not None:
        out.append(
            Check(
                analytic=aid,
                rule="required_status",
                passed=status == pol.required_status,
                observed=status,
                limit=pol.required_status,
                detail="; ".join(a["errors"][:3]),
            )
        )
    if pol.max_errors is not None:
        out.append(
            _limit_check(
                aid,
                "max_errors",
                a["counts"]["errors"],
                pol.max_errors,
                upper=True,
                detail="; ".join(a["errors"][:3]),
            )
        )
    if pol.min_detection_rate is not None:
        rate = a["detection_rate"]
        c = a["counts"]
        observed = rate["ci_low"] if pol.use_ci_low else rate["value"]
        which = "Wilson 95% lower bound" if pol.use_ci_low else "rate"
        out.append(
            _limit_check(
                aid,
                "min_detection_rate",
                observed,
                pol.min_detection_rate,
                upper=False,
                detail=f"{which}; {c['detected_actors']}/{c['expected_actors']} actors",
            )
        )
    if pol.max_false_alerts_per_100_host_days is not None:
        c = a["counts"]
        out.append(
            _limit_check(
                aid,
                "max_false_alerts_per_100_host_days",
                a["false_alerts_per_100_host_days"]["value"],
                pol.max_false_alerts_per_100_host_days,
                upper=True,
                detail=f"{c['false_alerts']} false alerts in {c['host_days']:g} host-days",
            )
        )
    if pol.max_latency_p95_s is not None:
        out.append(
            _limit_check(
                aid, "max_latency_p95_s", a["latency_s"]["p95"], pol.max_latency_p95_s, upper=True
            )
        )
    if pol.max_bytes_before_alert_median is not None:
        out.append(
            _limit_check(
                aid,
                "max_bytes_before_alert_median",
                a["bytes_before_alert"]["median"],
                pol.max_bytes_before_alert_median,
                upper=True,
            )
        )
    out += _negative_checks(pol, doc)
    if _has_tolerance(pol.tolerance):
        if baseline is None:
            notes.append(f"{aid} tolerance rules skipped: no baseline")
        else:
            base = baseline["analytics"][aid]
            if base["status"] != "ok":
                notes.append(
                    f"{aid} tolerance rules skipped: baseline status is {base['status']!r}"
                )
            else:
                out += _tolerance_checks(pol, a, base, notes)
    return out


def _comparability(doc: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Warnings when the baseline was run on other scenarios, seeds or profile."""
    notes = []
    cur, base = doc["run"], baseline["run"]
    if cur["profile"] != base["profile"]:
        notes.append(
            f"warning: profile {cur['profile']!r} differs from the baseline's {base['profile']!r}"
        )
    if cur["seeds"] != base["seeds"]:
        notes.append(f"warning: seeds {cur['seeds']} differ from the baseline's {base['seeds']}")
    ours = sorted(s["id"] for s in cur["scenarios"])
    theirs = sorted(s["id"] for s in base["scenarios"])
    if ours != theirs:
        notes.append(f"warning: scenarios {ours} differ from the baseline's {theirs}")
    return notes


def evaluate(
    policy: Policy,
    doc: Mapping[str, Any],
    *,
    baseline: Mapping[str, Any] | None = None,
    results_name: str = "results",
    baseline_name: str | None = None,
) -> GateReport:
    """Evaluate every rule of ``policy`` on ``doc`` (and against ``baseline``)."""
    notes: list[str] = []
    checks: list[Check] = []
    if baseline is not None:
        notes += _comparability(doc, baseline)
    for pol in policy.analytics:
        checks += _analytic_checks(pol, doc, baseline, notes)
    gated = {p.analytic for p in policy.analytics}
    for aid, a in doc["analytics"].items():
        if aid not in gated and a["status"] != "no_detector":
            notes.append(f"{aid} has a detector ({a['detector']}) but is not gated by the policy")
    return GateReport(
        checks=tuple(checks),
        notes=tuple(notes),
        policy=policy.source,
        results=results_name,
        baseline=(baseline_name or "given") if baseline is not None else None,
    )
