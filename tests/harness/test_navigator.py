"""The ATT&CK Navigator layer: valid against the layer-format 4.5 schema, scored from ground
truth, honest about what was not evaluable."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.fields import Profile
from harness.navigator import NOT_EVALUABLE_COLOR, build_layer
from harness.registry import DETECTORS, REPORTERS, SCENARIOS
from harness.results import build_results, canonical_json
from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan
from tests.conftest import SMALL

SCHEMA_PATH = Path(__file__).parent / "data" / "navigator-layer-4.5.schema.json"


def _doc(profile: Profile, detectors: list[str] | None = None) -> dict[str, Any]:
    plan = RunPlan(
        scenarios=(ScenarioSpec(scenario=SCENARIOS.load("dns-tunnels"), overrides=SMALL),),
        detectors=tuple(
            DetectorSpec(detector=DETECTORS.load(d)) for d in detectors or DETECTORS.names()
        ),
        seeds=(0,),
        profile=profile,
    )
    return build_results(plan, run_plan(plan))


@pytest.fixture(scope="module")
def edr_doc() -> dict[str, Any]:
    return _doc(Profile.EDR)


@pytest.fixture(scope="module")
def network_doc() -> dict[str, Any]:
    return _doc(Profile.NETWORK_ONLY)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, layer: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(layer)]


def _by_id(layer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["techniqueID"]: t for t in layer["techniques"]}


def _meta(technique: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in technique["metadata"]:
        if "name" in m:
            out.setdefault(m["name"], []).append(m["value"])
    return out


#: The first example of MITRE's layerformat.md (v4.5), abridged: the schema must accept it.
SPEC_EXAMPLE: dict[str, Any] = {
    "name": "example layer",
    "versions": {"attack": "18", "navigator": "5.2.0", "layer": "4.5"},
    "domain": "enterprise-attack",
    "description": "hello, world",
    "filters": {"platforms": ["Windows", "macOS"]},
    "sorting": 2,
    "layout": {
        "layout": "side",
        "showName": True,
        "showID": False,
        "showAggregateScores": True,
        "countUnscored": True,
        "aggregateFunction": "average",
        "expandedSubtechniques": "annotated",
    },
    "hideDisabled": False,
    "techniques": [
        {"techniqueID": "T1110", "score": 0, "color": "#fd8d3c", "showSubtechniques": True},
        {
            "techniqueID": "T1110.001",
            "score": 100,
            "links": [
                {
                    "label": "Navigator GitHub",
                    "url": "https://github.com/mitre-attack/attack-navigator",
                }
            ],
        },
        {"techniqueID": "T1134", "tactic": "defense-evasion", "score": 75},
        {"techniqueID": "T1078", "tactic": "discovery", "enabled": False},
        {
            "techniqueID": "T1053",
            "tactic": "privilege-escalation",
            "metadata": [
                {"name": "m1", "value": "v1"},
                {"divider": True},
                {"name": "m2", "value": "v2"},
            ],
        },
    ],
    "gradient": {"colors": ["#ff6666ff", "#ffe766ff", "#8ec843ff"], "minValue": 0, "maxValue": 100},
    "legendItems": [{"label": "Legend Item Label", "color": "#FF00FF"}],
    "showTacticRowBackground": True,
    "tacticRowBackground": "#dddddd",
    "selectTechniquesAcrossTactics": False,
    "selectSubtechniquesWithParent": False,
    "selectVisibleTechniques": False,
    "metadata": [{"name": "layer metadata 1", "value": "v"}, {"divider": True}],
}


def test_schema_accepts_the_specification_example(
    validator: jsonschema.Draft202012Validator,
) -> None:
    assert _errors(validator, SPEC_EXAMPLE) == []
    assert _errors(validator, [SPEC_EXAMPLE, SPEC_EXAMPLE]) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("versions", "layer"), "4.4"),
        (("versions", "navigator"), "4.8.2"),
        (("domain",), "enterprise"),
        (("techniques", 0, "techniqueID"), "T110"),
        (("techniques", 4, "metadata", 0, "value"), 3),
        (("techniques", 1, "links", 0, "url"), "github.com/mitre-attack"),
        (("gradient", "colors"), ["#ff6666"]),
        (("layout", "aggregateFunction"), "median"),
        (("techniques", 0, "scoer"), 10),
    ],
)
def test_schema_rejects_what_the_specification_forbids(
    validator: jsonschema.Draft202012Validator, path: tuple[Any, ...], value: Any
) -> None:
    bad = copy.deepcopy(SPEC_EXAMPLE)
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert _errors(validator, bad)


def test_schema_requires_name_and_domain(validator: jsonschema.Draft202012Validator) -> None:
    for key in ("name", "domain"):
        bad = {k: v for k, v in SPEC_EXAMPLE.items() if k != key}
        assert _errors(validator, bad)


@pytest.mark.parametrize("which", ["edr_doc", "network_doc"])
def test_layer_validates_against_the_published_format(
    which: str, request: pytest.FixtureRequest, validator: jsonschema.Draft202012Validator
) -> None:
    layer = build_layer(request.getfixturevalue(which))
    assert _errors(validator, layer) == []
    assert layer["versions"]["layer"] == "4.5"
    assert layer["domain"] == "enterprise-attack"
    assert layer["gradient"]["minValue"] == 0
    assert layer["gradient"]["maxValue"] == 100
    assert layer["gradient"]["maxValue"] > layer["gradient"]["minValue"]  # not expressible


def test_score_is_the_ground_truth_rate_of_actors_using_the_technique(
    edr_doc: dict[str, Any],
) -> None:
    layer = _by_id(build_layer(edr_doc))
    # every actor dns-tunnels expects AN1225 to fire on tunnels DNS (T1071.004): the technique's
    # rate is then the analytic's rate
    an1225 = edr_doc["analytics"]["AN1225"]
    assert an1225["counts"]["expected_actors"] >= 4
    tunnel = layer["T1071.004"]
    assert tunnel["score"] == pytest.approx(100 * an1225["detection_rate"]["value"], abs=0.01)
    assert "AN1225" in tunnel["comment"]
    assert f"{an1225['counts']['expected_actors']} actor-runs" in tunnel["comment"]
    meta = _meta(tunnel)
    assert "iodine-tunnel" in meta["actors exercising it"][0]
    assert meta["detector"] == ["an1225-abnormal-app-protocol"]
    assert meta["analytic"][0].startswith("AN1225 ")
    assert "95% CI" in meta["detection rate"][0]
    assert "host-days" in meta["false alerts per 100 host-days"][0]
    assert set(meta) >= {"latency median / p95", "bytes before alert median / p95", "precision"}
    # the parent technique shows its sub-techniques and counts their actors
    assert layer["T1071"]["showSubtechniques"] is True
    assert layer["T1071"]["score"] == tunnel["score"]


def test_declared_but_unexercised_technique_is_not_evaluable_not_green(
    edr_doc: dict[str, Any],
) -> None:
    layer = _by_id(build_layer(edr_doc))
    web = layer["T1071.001"]  # AN1225 declares it; no dns-tunnels actor uses web protocols
    assert "score" not in web
    assert web["color"] == NOT_EVALUABLE_COLOR
    assert web["comment"].startswith("not evaluable")


def test_not_evaluable_analytic_gives_no_score_and_says_why(network_doc: dict[str, Any]) -> None:
    assert network_doc["analytics"]["AN0988"]["status"] == "not_evaluable"
    exfil = _by_id(build_layer(network_doc))["T1041"]  # AN0988 only
    assert "score" not in exfil
    assert exfil["comment"].startswith("not evaluable")
    assert "AN0988 not evaluable, missing" in exfil["comment"]
    assert _meta(exfil)["status"][0].startswith("not_evaluable (missing ")


def test_only_analytics_with_a_detector_in_the_run_appear() -> None:
    doc = _doc(Profile.EDR, ["an1225-abnormal-app-protocol"])
    ids = set(_by_id(build_layer(doc)))
    assert ids == set(DETECTORS.load("an1225-abnormal-app-protocol").techniques)


def test_declared_techniques_cover_unregistered_detectors(edr_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(edr_doc)
    doc["analytics"]["AN1962"]["detector"] = "my-private-rule"
    layer = _by_id(build_layer(doc, declared={"my-private-rule": ["T1095"]}))
    assert "T1095" in layer
    assert "T1571" not in layer  # the registered AN1962 detector's claim no longer applies


def test_reporter_is_registered_and_deterministic(edr_doc: dict[str, Any]) -> None:
    reporter = REPORTERS.load("navigator")()
    assert reporter.filename == "navigator-layer.json"
    text = reporter.render(edr_doc)
    assert text == reporter.render(copy.deepcopy(edr_doc))
    assert text == canonical_json(build_layer(edr_doc))
    assert json.loads(text)["name"]
