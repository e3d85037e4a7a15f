from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.an0144 import UnseenProcessHttpsVolume
from harness.errors import SchemaError
from harness.results import build_results, canonical_json, validate
from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan
from scenarios.https_exfil import HttpsExfil
from scenarios.office import OfficeBaseline
from tests.conftest import SMALL

GOLDEN = Path(__file__).parent / "golden" / "results_small.json"


def _small_doc() -> dict:  # type: ignore[type-arg]
    plan = RunPlan(
        scenarios=(
            ScenarioSpec(scenario=OfficeBaseline, overrides=SMALL),
            ScenarioSpec(scenario=HttpsExfil, overrides=SMALL),
        ),
        detectors=(DetectorSpec(detector=UnseenProcessHttpsVolume),),
        seeds=(0, 1),
    )
    return build_results(plan, run_plan(plan))


@pytest.fixture(scope="module")
def small_doc() -> dict:  # type: ignore[type-arg]
    return _small_doc()


def test_document_validates_against_the_schema(small_doc: dict) -> None:  # type: ignore[type-arg]
    validate(small_doc)
    assert set(small_doc["analytics"]) == {"AN0988", "AN0030", "AN1225", "AN0144", "AN1962"}
    a = small_doc["analytics"]["AN0144"]
    assert a["evaluable"] is True
    assert a["status"] == "ok"
    assert a["counts"]["expected_actors"] == 4  # two malicious actors x two seeds
    assert small_doc["analytics"]["AN0988"]["status"] == "no_detector"
    assert small_doc["analytics"]["AN0988"]["detection_rate"]["value"] is None


def test_schema_rejects_a_broken_document(small_doc: dict) -> None:  # type: ignore[type-arg]
    broken = json.loads(json.dumps(small_doc))
    broken["analytics"]["AN0144"]["detection_rate"]["value"] = 1.5
    with pytest.raises(SchemaError, match="analytics/AN0144"):
        validate(broken)
    del broken["analytics"]["AN1962"]
    with pytest.raises(SchemaError):
        validate(broken)


def test_overall_counts_are_the_sum_of_scenario_counts(small_doc: dict) -> None:  # type: ignore[type-arg]
    for aid, overall in small_doc["analytics"].items():
        for key in ("expected_actors", "detected_actors", "true_alerts", "false_alerts", "runs"):
            per_scenario = sum(
                s["analytics"][aid]["counts"][key] for s in small_doc["scenarios"].values()
            )
            assert overall["counts"][key] == per_scenario, (aid, key)


def test_golden_canonical_json(small_doc: dict, update_golden: bool) -> None:  # type: ignore[type-arg]
    text = canonical_json(small_doc)
    if update_golden:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; create it with --update-golden"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "results changed; if intended, rerun with --update-golden and review the diff"
    )


def test_canonical_json_is_stable_text() -> None:
    doc = {"b": 1.0000004, "a": [0.1 + 0.2, -0.0], "c": None}
    assert (
        canonical_json(doc) == '{\n  "a": [\n    0.3,\n    0.0\n  ],\n  "b": 1.0,\n  "c": null\n}\n'
    )
    with pytest.raises(ValueError, match="Out of range float"):
        canonical_json({"x": float("nan")})


def test_identical_across_processes_and_hash_seeds() -> None:
    code = (
        "from tests.harness.test_results import _small_doc;"
        "from harness.results import canonical_json;"
        "import sys; sys.stdout.write(canonical_json(_small_doc()))"
    )
    outs = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        outs.append(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env=env,
                cwd=Path(__file__).parents[2],
            ).stdout
        )
    assert outs[0] == outs[1]
    assert outs[0].startswith("{")
