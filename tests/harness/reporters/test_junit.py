"""The JUnit XML reporter: test cases per analytic x scenario and per benign trap, validated
against the Jenkins/Ant-style JUnit schema (``data/junit.xsd``)."""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from harness.cli import main
from harness.gate import evaluate, parse_policy
from harness.registry import REPORTERS
from harness.reporters.junit import JunitReporter, render_junit
from tests.conftest import SMALL
from tests.harness.resultdocs import actor, analytic, hit, make_doc, run

XSD = Path(__file__).parent / "data" / "junit.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def _doc() -> dict[str, Any]:
    """AN0144 misses one of two exfiltration runs and fires on one trap; AN0988 is not
    evaluable; AN1225 raised in one run; the rest have no detector."""
    actors = [
        actor(
            "backup-agent",
            "benign",
            [run(0), run(1)],
            trap_for=("AN0144", "AN0988", "AN1225"),
        ),
        actor(
            "exfil-curl",
            "malicious",
            [
                run(0, {"AN0144": hit(True, 12.5, 2_000_000), "AN1225": hit(True, 3.0, 900)}),
                run(1, {"AN0144": hit(False), "AN1225": hit(True, 4.0, 1200)}),
            ],
            expected=("AN0144", "AN1225"),
        ),
        actor(
            "software-rollout",
            "benign",
            [run(0, false_alerts={"AN0144": 2}), run(1)],
            trap_for=("AN0144",),
        ),
    ]
    return make_doc(
        {
            "AN0144": analytic("AN0144", detected=1, expected=2, false_alerts=2),
            "AN0988": analytic("AN0988", status="not_evaluable", missing=["file.bytes"]),
            "AN1225": analytic(
                "AN1225", detected=2, expected=2, errors=["https-exfil seed 1: ValueError: x"]
            ),
        },
        actors=actors,
    )


def _cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def test_validates_against_the_junit_schema(schema: xmlschema.XMLSchema) -> None:
    xml = render_junit(_doc())
    schema.validate(xml)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')


def test_cases_per_analytic_scenario_and_trap() -> None:
    root = ET.fromstring(render_junit(_doc()))
    cases = _cases(root)
    missed = cases[("egress-harness.AN0144", "https-exfil")].find("failure")
    assert missed is not None
    assert missed.get("type") == "missed-detection"
    assert missed.get("message") == "missed 1 of 2 expected actor runs: exfil-curl seed 1"
    out = cases[("egress-harness.AN0144", "https-exfil")].findtext("system-out") or ""
    assert "exfil-curl seed 0: detected after 12.5 s and 2,000,000 bytes" in out
    trap = cases[("egress-harness.AN0144", "must-not-fire: software-rollout")].find("failure")
    assert trap is not None
    assert trap.get("type") == "false-alert"
    assert "https-exfil seed 0: 2" in (trap.get("message") or "")
    quiet = cases[("egress-harness.AN0144", "must-not-fire: backup-agent")]
    assert list(quiet) == [quiet.find("system-out")]  # passed: no failure, error or skip
    # not evaluable: every case of the analytic skipped, with the missing fields
    skipped = cases[("egress-harness.AN0988", "https-exfil")].find("skipped")
    assert skipped is not None
    assert "file.bytes" in (skipped.get("message") or "")
    assert (
        cases[("egress-harness.AN0988", "must-not-fire: backup-agent")].find("skipped") is not None
    )
    # a detector that raised is an error, never a miss
    err = cases[("egress-harness.AN1225", "https-exfil")].find("error")
    assert err is not None
    assert "ValueError: x" in (err.text or "")
    # no detector: skipped; analytic without expected actors in the scenario: skipped
    assert cases[("egress-harness.AN0030", "https-exfil")].find("skipped") is not None
    assert set(cases) >= {
        ("egress-harness.AN0144", "https-exfil"),
        ("egress-harness.AN0144", "must-not-fire: backup-agent"),
        ("egress-harness.AN0144", "must-not-fire: software-rollout"),
    }


def test_counts_and_properties() -> None:
    root = ET.fromstring(render_junit(_doc()))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    an0144 = suites["egress-harness.AN0144"]
    assert (an0144.get("tests"), an0144.get("failures"), an0144.get("errors")) == ("3", "2", "0")
    props = {p.get("name"): p.get("value") for p in an0144.iter("property")}
    assert props["detection_rate"] == "0.5"
    assert props["counts.detected_actors"] == "1"
    assert props["counts.expected_actors"] == "2"
    assert props["status"] == "ok"
    assert props["tunable.min_bytes"] == "2e+06"
    assert float(props["detection_rate.ci_low"] or "nan") < 0.5
    totals = {k: sum(int(s.get(k, "0")) for s in suites.values()) for k in ("tests", "failures")}
    assert root.get("tests") == str(totals["tests"])
    assert root.get("failures") == str(totals["failures"])
    assert an0144.get("skipped") == "0"
    assert suites["egress-harness.AN0988"].get("skipped") == suites["egress-harness.AN0988"].get(
        "tests"
    )


def test_gate_suite_has_one_case_per_rule(schema: xmlschema.XMLSchema) -> None:
    doc = _doc()
    policy = parse_policy(
        tomllib.loads(
            "[analytics.AN0144]\nmin_detection_rate = 0.9\nmax_errors = 0\n"
            'required_negative_tests = ["software-rollout"]'
        ),
        source="p.toml",
    )
    report = evaluate(policy, doc)
    xml = render_junit(doc, gate=report)
    schema.validate(xml)
    root = ET.fromstring(xml)
    gate = next(s for s in root.iter("testsuite") if s.get("name") == "egress-harness.gate")
    assert (gate.get("tests"), gate.get("failures")) == ("3", "2")
    names = [c.get("name") for c in gate.iter("testcase")]
    assert names == [
        "max_errors",
        "min_detection_rate",
        "required_negative_tests[software-rollout]",
    ]


def test_deterministic_and_sanitised(schema: xmlschema.XMLSchema) -> None:
    doc = _doc()
    doc["analytics"]["AN1225"]["errors"] = ["https-exfil seed 1: bad \x00\x1b byte <&>"]
    first, second = render_junit(doc), render_junit(doc)
    assert first == second
    schema.validate(first)
    assert "bad \ufffd\ufffd byte &lt;&amp;&gt;" in first


def test_registered_reporter() -> None:
    cls = REPORTERS.load("junit")
    assert cls is JunitReporter
    assert cls.filename == "junit.xml"


def test_run_writes_valid_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schema: xmlschema.XMLSchema
) -> None:
    params = [f"--param=https-exfil.{k}={v}" for k, v in SMALL.items()]
    code = main(
        [
            "run",
            "--quiet",
            "--scenario",
            "https-exfil",
            "--detector",
            "an0144-unseen-process-https",
            "--seeds",
            "1",
            "--workers",
            "1",
            *params,
            "--out",
            str(tmp_path),
        ]
    )
    capsys.readouterr()
    assert code == 0
    xml = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    schema.validate(xml)
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    root = ET.fromstring(xml)
    cases = _cases(root)
    case = cases[("egress-harness.AN0144", "https-exfil")]
    counts = doc["analytics"]["AN0144"]["counts"]
    missed = counts["expected_actors"] - counts["detected_actors"]
    assert (case.find("failure") is not None) == (missed > 0)
    traps = {
        a["actor_id"]
        for a in doc["scenarios"]["https-exfil"]["actors"]
        if a["kind"] == "benign" and "AN0144" in a["trap_for"]
    }
    assert {n for c, n in cases if c == "egress-harness.AN0144" and n.startswith("must")} == {
        f"must-not-fire: {t}" for t in traps
    }
    assert (
        (tmp_path / "summary.md")
        .read_text(encoding="utf-8")
        .startswith("## egress-harness results")
    )
