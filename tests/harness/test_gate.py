"""The gate: policy parsing, every rule on hand-made results, every exit code of the command,
and the project gating its own detectors against the committed policy and baseline."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import main
from harness.gate import (
    Check,
    GateReport,
    PolicyError,
    evaluate,
    load_policy,
    parse_policy,
)
from harness.results import validate
from tests.harness.resultdocs import actor, analytic, default_actors, make_doc, run

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "reports" / "policy.toml"
BASELINE = REPO / "reports" / "baseline.json"


def _policy(text: str, tmp_path: Path, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _gate(rules: str, doc: dict[str, Any], baseline: dict[str, Any] | None = None) -> GateReport:
    policy = parse_policy(tomllib.loads(rules), source="test.toml")
    return evaluate(policy, doc, baseline=baseline, baseline_name="base" if baseline else None)


def _only(report: GateReport, rule_prefix: str) -> Check:
    found = [c for c in report.checks if c.rule.startswith(rule_prefix)]
    assert len(found) == 1, report.text(verbose=True)
    return found[0]


# --------------------------------------------------------------------------- policy parsing


def test_defaults_merge_into_each_analytic_and_baseline_is_relative(tmp_path: Path) -> None:
    path = _policy(
        """
        version = 1
        baseline = "base/results.json"
        [defaults]
        min_detection_rate = 0.8
        max_errors = 0
        [defaults.tolerance]
        detection_rate_drop = 0.1
        false_alerts_rise = 2.0
        [analytics.AN0144]
        min_detection_rate = 0.9
        [analytics.AN0144.tolerance]
        false_alerts_rise = 0.5
        [analytics.AN0030]
        """,
        tmp_path,
    )
    policy = load_policy(path)
    assert policy.baseline == tmp_path / "base" / "results.json"
    by_id = {p.analytic: p for p in policy.analytics}
    assert by_id["AN0144"].min_detection_rate == 0.9
    assert by_id["AN0144"].max_errors == 0
    assert by_id["AN0144"].tolerance.detection_rate_drop == 0.1
    assert by_id["AN0144"].tolerance.false_alerts_rise == 0.5
    assert by_id["AN0030"].min_detection_rate == 0.8
    assert by_id["AN0030"].tolerance.false_alerts_rise == 2.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[analytics.AN0144]\nmin_detection_rat = 0.9", "'min_detection_rat'; did you mean"),
        ("[analytics.AN0144]\nmin_detection_rate = '0.9'", "min_detection_rate = '0.9'"),
        ("[analytics.AN0144]\nmin_detection_rate = 1.5", "<= 1"),
        ("[analytics.AN0144]\nuse_ci_low = 1", "use_ci_low = 1 is invalid: expected true"),
        ("[analytics.AN0144]\nmax_errors = true", "max_errors = True"),
        ("[analytics.AN0144]\nmax_errors = 0.5", "an integer"),
        ("[analytics.AN0144]\nmax_latency_p95_s = -1", "max_latency_p95_s = -1"),
        ("[analytics.AN0144]\nrequired_status = 'error'", 'expected "ok"'),
        ("[analytics.AN0144]\nrequired_negative_tests = 'backup'", "list of benign actor ids"),
        ("[analytics.AN0144.tolerance]\nlatency_p95_pct = 5", "latency_p95_increase_pct"),
        ("[analytics.AN0144]\ntolerance = 3", "tolerance must be a table"),
        ("[analytics.AN0145]", "unknown key analytics.'AN0145'; did you mean 'AN0144'"),
        ("[analytic.AN0144]", "unknown key 'analytic'; did you mean 'analytics'"),
        ("version = 2\n[analytics.AN0144]", "version = 2"),
        ("baseline = 3\n[analytics.AN0144]", "baseline = 3"),
        ("[defaults]\nmin_detection_rate = 0.5", "no [analytics.<id>] table"),
        ("[analytics.AN0144\n", "not valid TOML"),
    ],
)
def test_bad_policy_is_a_usage_error_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = _policy(text, tmp_path)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(make_doc()), encoding="utf-8")
    code = main(["gate", "--policy", str(path), str(results)])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err


def test_committed_policy_parses_and_gates_every_analytic() -> None:
    policy = load_policy(POLICY)
    assert {p.analytic for p in policy.analytics} == {
        "AN0988",
        "AN0030",
        "AN1225",
        "AN0144",
        "AN1962",
    }
    assert policy.baseline == BASELINE
    for p in policy.analytics:
        assert p.min_detection_rate is not None
        assert p.max_false_alerts_per_100_host_days is not None
        assert p.required_negative_tests, p.analytic


# --------------------------------------------------------------------------- each rule


def test_required_status_fails_on_an_erroring_detector() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", status="error", errors=["https-exfil seed 0: x"])})
    check = _only(_gate("[analytics.AN0144]\nrequired_status = 'ok'", doc), "required_status")
    assert not check.passed
    assert check.observed == "error"
    assert "https-exfil seed 0: x" in check.detail
    ok = _only(_gate("[analytics.AN0144]\nrequired_status = 'ok'", make_doc()), "required_status")
    assert ok.passed


def test_no_detector_fails_required_status() -> None:
    report = _gate("[analytics.AN0988]\nrequired_status = 'ok'", make_doc())
    assert [c.observed for c in report.violations] == ["no_detector"]


def test_not_evaluable_fails_unless_allowed() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", status="not_evaluable", missing=["flow.process"])})
    rules = "[analytics.AN0144]\nmin_detection_rate = 0.9\n"
    report = _gate(rules, doc)
    (check,) = report.checks
    assert (check.rule, check.passed) == ("allow_not_evaluable", False)
    assert "flow.process" in check.detail
    allowed = _gate(rules + "allow_not_evaluable = true", doc)
    assert allowed.passed
    assert allowed.checks == ()
    assert any("not evaluable (allowed" in n and "flow.process" in n for n in allowed.notes)


def test_max_errors_counts_erroring_runs() -> None:
    errs = ["https-exfil seed 0: boom", "https-exfil seed 1: boom"]
    doc = make_doc({"AN0144": analytic("AN0144", errors=errs)})
    check = _only(_gate("[analytics.AN0144]\nmax_errors = 1", doc), "max_errors")
    assert not check.passed
    assert (check.observed, check.limit) == ("2", "<= 1")
    assert _only(_gate("[analytics.AN0144]\nmax_errors = 2", doc), "max_errors").passed


def test_min_detection_rate_on_value_and_on_wilson_lower_bound() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", detected=9, expected=10)})
    rules = "[analytics.AN0144]\nmin_detection_rate = 0.85\n"
    check = _only(_gate(rules, doc), "min_detection_rate")
    assert check.passed
    assert check.observed == "0.9"
    assert "9/10 actors" in check.detail
    low = _only(_gate(rules + "use_ci_low = true", doc), "min_detection_rate")
    # Wilson lower bound of 9/10 is 0.596: the same run fails when the interval must clear it
    assert not low.passed
    assert low.observed == "0.5958"
    assert "lower bound" in low.detail
    failing = _only(_gate("[analytics.AN0144]\nmin_detection_rate = 0.95", doc), "min_")
    assert not failing.passed
    assert failing.limit == ">= 0.95"


def test_undefined_figure_fails_its_rule() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", detected=0, expected=0, latency=(None, None))})
    report = _gate("[analytics.AN0144]\nmin_detection_rate = 0.5\nmax_latency_p95_s = 60", doc)
    assert len(report.violations) == 2
    assert all(v.observed == "n/a" and "undefined" in v.detail for v in report.violations)


def test_max_false_alerts_per_100_host_days() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", false_alerts=3, host_days=50.0)})
    rules = "[analytics.AN0144]\nmax_false_alerts_per_100_host_days = {}"
    bad = _only(_gate(rules.format(5.0), doc), "max_false")
    assert not bad.passed
    assert bad.observed == "6"
    assert "3 false alerts in 50 host-days" in bad.detail
    assert _only(_gate(rules.format(6.0), doc), "max_false").passed


def test_max_latency_p95() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", latency=(30.0, 700.0))})
    bad = _only(_gate("[analytics.AN0144]\nmax_latency_p95_s = 600", doc), "max_latency")
    assert (bad.passed, bad.observed, bad.limit) == (False, "700", "<= 600")
    assert _only(_gate("[analytics.AN0144]\nmax_latency_p95_s = 700", doc), "max_lat").passed


def test_max_bytes_before_alert_median() -> None:
    doc = make_doc({"AN0144": analytic("AN0144", bytes_before=(12_000_000.0, 20_000_000.0))})
    rules = "[analytics.AN0144]\nmax_bytes_before_alert_median = {}"
    bad = _only(_gate(rules.format("1e7"), doc), "max_bytes")
    assert (bad.passed, bad.observed, bad.limit) == (False, "12,000,000", "<= 10,000,000")
    assert _only(_gate(rules.format("2e7"), doc), "max_bytes").passed


def test_required_negative_tests() -> None:
    seeds = (0, 1)
    actors = default_actors(seeds)
    actors[2] = actor(
        "software-rollout",
        "benign",
        [run(0), run(1, false_alerts={"AN0144": 2})],
        trap_for=("AN0144",),
    )
    doc = make_doc(actors=actors, seeds=seeds)
    rules = "[analytics.AN0144]\nrequired_negative_tests = {}"
    report = _gate(rules.format('["backup-agent", "software-rollout", "print-spooler"]'), doc)
    by_rule = {c.rule: c for c in report.checks}
    quiet = by_rule["required_negative_tests[backup-agent]"]
    assert quiet.passed
    assert "quiet in 2 actor runs" in quiet.detail
    fired = by_rule["required_negative_tests[software-rollout]"]
    assert not fired.passed
    assert fired.observed == "2 false alerts"
    assert "https-exfil seed 1: 2" in fired.detail
    absent = by_rule["required_negative_tests[print-spooler]"]
    assert not absent.passed
    assert absent.observed == "actor absent"
    malicious = _only(_gate(rules.format('["exfil-curl"]'), doc), "required_negative")
    assert (malicious.passed, malicious.observed) == (False, "malicious actor")


TOLERANCE_CASES = [
    # rule, baseline figures, current figures, limit, passes at the limit
    ("detection_rate_drop = 0.1", {"detected": 10}, {"detected": 8}, ">= 0.9"),
    ("false_alerts_rise = 1.0", {"false_alerts": 1}, {"false_alerts": 3}, "<= 2"),
    (
        "latency_p95_increase_pct = 50",
        {"latency": (30.0, 100.0)},
        {"latency": (30.0, 160.0)},
        "<= 150",
    ),
    (
        "bytes_before_alert_median_increase_pct = 100",
        {"bytes_before": (1e6, 2e6)},
        {"bytes_before": (3e6, 4e6)},
        "<= 2,000,000",
    ),
]


@pytest.mark.parametrize(("rule", "base", "cur", "limit"), TOLERANCE_CASES)
def test_tolerance_against_baseline(
    rule: str, base: dict[str, Any], cur: dict[str, Any], limit: str
) -> None:
    rules = f"[analytics.AN0144.tolerance]\n{rule}"
    baseline = make_doc({"AN0144": analytic("AN0144", **base)})
    current = make_doc({"AN0144": analytic("AN0144", **cur)})
    report = _gate(rules, current, baseline)
    (check,) = report.checks
    assert check.rule == "tolerance." + rule.split(" =")[0]
    assert not check.passed
    assert check.limit == limit
    assert check.detail.startswith("baseline ")
    # the baseline against itself passes
    assert _gate(rules, baseline, baseline).passed
    # no baseline: skipped with a note, never silently passed as checked
    alone = _gate(rules, current)
    assert alone.checks == ()
    assert any("tolerance rules skipped: no baseline" in n for n in alone.notes)


def test_tolerance_skipped_when_baseline_has_no_figure() -> None:
    baseline = make_doc({"AN0144": analytic("AN0144", latency=(None, None))})
    report = _gate(
        "[analytics.AN0144.tolerance]\nlatency_p95_increase_pct = 10", make_doc(), baseline
    )
    assert report.checks == ()
    assert any("baseline has no latency p95" in n for n in report.notes)


def test_notes_warn_about_incomparable_baseline_and_ungated_detectors() -> None:
    doc = make_doc({"AN0988": analytic("AN0988")})
    baseline = make_doc(seeds=(0, 1, 2))
    report = _gate("[analytics.AN0144]\nmax_errors = 0", doc, baseline)
    assert report.passed
    assert any("seeds [0, 1] differ" in n for n in report.notes)
    assert any(n.startswith("AN0988 has a detector") for n in report.notes)


# --------------------------------------------------------------------------- the command


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "run"
    good.mkdir()
    (good / "results.json").write_text(json.dumps(make_doc()), encoding="utf-8")
    weak = tmp_path / "weak.json"
    weak.write_text(
        json.dumps(make_doc({"AN0144": analytic("AN0144", detected=5, false_alerts=9)})),
        encoding="utf-8",
    )
    policy = _policy(
        """
        baseline = "run/results.json"
        [analytics.AN0144]
        required_status = "ok"
        min_detection_rate = 0.8
        max_false_alerts_per_100_host_days = 5
        required_negative_tests = ["backup-agent"]
        [analytics.AN0144.tolerance]
        detection_rate_drop = 0.05
        """,
        tmp_path,
    )
    return {"good": good, "weak": weak, "policy": policy}


def test_exit_0_on_pass(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["gate", "--policy", str(files["policy"]), str(files["good"])])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[-1].startswith("gate: PASS (5 checks on 1 analytics; baseline ")


def test_exit_1_prints_every_violation_one_per_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["gate", "--policy", str(files["policy"]), str(files["weak"])])
    out, err = capsys.readouterr()
    assert code == 1
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert fails == [
        "FAIL AN0144  min_detection_rate: observed 0.5, limit >= 0.8 (rate; 5/10 actors)",
        "FAIL AN0144  max_false_alerts_per_100_host_days: observed 9, limit <= 5 "
        "(9 false alerts in 100 host-days)",
        "FAIL AN0144  tolerance.detection_rate_drop: observed 0.5, limit >= 0.85 (baseline 0.9)",
    ]
    assert out.splitlines()[-1].startswith("gate: FAIL (3 of 5 checks failed in 1 analytic(s)")
    assert "3 policy violation(s)" in err


def test_verbose_and_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["gate", "--policy", str(files["policy"]), str(files["weak"])]
    assert main([*args, "-v"]) == 1
    out = capsys.readouterr().out
    assert out.count("ok   AN0144") == 2
    assert main([*args, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "fail"
    assert sum(not c["passed"] for c in doc["checks"]) == 3


def test_no_baseline_flag_skips_tolerances(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["gate", "--policy", str(files["policy"]), "--no-baseline", str(files["weak"])])
    out = capsys.readouterr().out
    assert code == 1
    assert "tolerance rules skipped: no baseline" in out
    assert "tolerance.detection_rate_drop" not in out


@pytest.mark.parametrize(
    ("which", "needle"),
    [
        ("policy", "cannot read policy"),
        ("results", "cannot read results"),
        ("baseline", "cannot read baseline"),
        ("no-policy", "gate needs --policy"),
        ("no-results", "gate needs RESULTS"),
    ],
)
def test_exit_2_on_missing_input(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    which: str,
    needle: str,
) -> None:
    missing = str(tmp_path / "nope.json")
    args = {
        "policy": ["--policy", missing, str(files["good"])],
        "results": ["--policy", str(files["policy"]), missing],
        "baseline": ["--policy", str(files["policy"]), "--baseline", missing, str(files["good"])],
        "no-policy": [str(files["good"])],
        "no-results": ["--policy", str(files["policy"])],
    }[which]
    code = main(["gate", *args])
    assert code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("which", ["results", "baseline", "not-json"])
def test_exit_3_on_invalid_results(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    doc = make_doc()
    doc["schema_version"] = "2.0"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json" if which == "not-json" else json.dumps(doc), encoding="utf-8")
    args = ["--baseline", str(bad), str(files["good"])] if which == "baseline" else [str(bad)]
    code = main(["gate", "--policy", str(files["policy"]), *args])
    err = capsys.readouterr().err
    assert code == 3
    assert str(bad) in err
    assert ("not JSON" if which == "not-json" else "invalid at schema_version") in err


def test_junit_and_summary_files(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    code = main(
        [
            "gate",
            "--policy",
            str(files["policy"]),
            "--junit",
            str(junit),
            "--summary",
            str(summary),
            str(files["weak"]),
        ]
    )
    capsys.readouterr()
    assert code == 1
    xml = junit.read_text(encoding="utf-8")
    assert '<testsuite name="egress-harness.gate" tests="5" failures="3"' in xml
    assert 'classname="egress-harness.gate.AN0144" name="min_detection_rate"' in xml
    md = summary.read_text(encoding="utf-8")
    assert md.startswith("## egress-harness gate: FAIL")
    assert "| AN0144 | `min_detection_rate` | 0.5 | >= 0.8 | rate; 5/10 actors |" in md
    # the baseline's figure in brackets: 0.90 -> 0.50
    assert "0.50 [0.24, 0.76] (5/10) (-0.40)" in md


def test_summary_appends_to_github_step_summary(
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    step = tmp_path / "step.md"
    step.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert main(["gate", "--policy", str(files["policy"]), str(files["good"])]) == 0
    capsys.readouterr()
    text = step.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## egress-harness gate: PASS")


def test_unwritable_report_is_a_harness_error(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "gate.xml"
    code = main(
        ["gate", "--policy", str(files["policy"]), "--junit", str(target), str(files["good"])]
    )
    assert code == 3
    assert "cannot write a gate report" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "file"), [("github", "github-actions.yml"), ("gitlab", "gitlab-ci.yml")]
)
def test_ci_templates_ship_and_gate(
    capsys: pytest.CaptureFixture[str], name: str, file: str
) -> None:
    assert main(["gate", "--ci-template", name]) == 0
    text = capsys.readouterr().out
    assert text == (REPO / "harness" / "templates" / "ci" / file).read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    steps = json.dumps(doc)
    for needle in ("egress-harness run", "egress-harness gate", "--policy reports/policy.toml"):
        assert needle in steps
    assert "gate-junit.xml" in steps
    assert "reports/ci" in steps


def test_help_points_to_the_ci_templates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "harness/templates/ci/github-actions.yml" in out
    assert "Exit codes: 0 pass, 1 fail" in out


# --------------------------------------------------------------------------- self-gating


@pytest.mark.slow
def test_project_passes_its_own_gate(
    default_suite_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default suite, run now, meets the committed policy and the committed baseline."""
    validate(json.loads(BASELINE.read_text(encoding="utf-8")))
    code = main(["gate", "--policy", str(POLICY), str(default_suite_results)])
    out = capsys.readouterr().out
    violations = "\n".join(line for line in out.splitlines() if line.startswith("FAIL"))
    assert code == 0, "the project fails its own gate:\n" + violations + "\n" + out
    assert f"baseline {BASELINE}" in out.splitlines()[-1]


@pytest.mark.slow
def test_weakened_detector_fails_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default suite with AN0144 alerting only after a gigabyte in its window: the
    exfiltration actors get away, and the gate fails (exit 1) on AN0144 and nowhere else."""
    out_dir = tmp_path / "weak"
    code = main(
        [
            "run",
            "--quiet",
            "--tunable",
            "an0144-unseen-process-https.min_bytes=1e9",
            "--out",
            str(out_dir),
        ]
    )
    assert code == 0
    capsys.readouterr()
    code = main(["gate", "--policy", str(POLICY), str(out_dir)])
    out = capsys.readouterr().out
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert "FAIL AN0144  min_detection_rate" in out
    assert "FAIL AN0144  tolerance.detection_rate_drop" in out
    assert all(line.startswith("FAIL AN0144 ") for line in fails), out


def test_documented_example_policy_parses() -> None:
    """The example in harness.gate's docstring is a valid policy with every key."""
    import textwrap

    import harness.gate

    doc = harness.gate.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\n\n    [analytics", 1)
    text = textwrap.dedent(block[0] + "\n\n    [analytics" + block[1].split("\n\n", 1)[0])
    policy = parse_policy(tomllib.loads(text), source="docstring")
    (an0144,) = policy.analytics
    assert an0144.min_detection_rate == 0.9
    assert an0144.max_bytes_before_alert_median == 5e6
    assert an0144.required_negative_tests == ("backup-agent",)
    assert an0144.tolerance.bytes_before_alert_median_increase_pct == 50
