"""The default lab cast: well-formed, faithful to its synthetic twins, covering every analytic,
and every argument template expandable and accepted by the program it is for."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.analytics import ANALYTICS
from harness.lab.atomics import load_atomics, runner_argv
from harness.lab.backend import LabPlan
from harness.lab.plan import default_plan
from harness.lab.spec import LabActor, Phase, expand, placeholders
from harness.truth import ActorKind, ActorTruth
from scenarios.catalogue import discover
from scenarios.lab import CLIENTS, LAB_ACTORS, clients_needed
from scenarios.programs import PROGRAMS

MALICIOUS = [a for a in LAB_ACTORS if a.kind is ActorKind.MALICIOUS]
BENIGN = [a for a in LAB_ACTORS if a.kind is ActorKind.BENIGN]
#: How long the attack phase may last (the lab run must finish in minutes).
ATTACK_PHASE_S = 90.0


@pytest.fixture(scope="module")
def synthetic() -> dict[tuple[str, str], ActorTruth]:
    return {(cls.id, a.actor_id): a for cls, actors in discover() for a in actors}


@pytest.fixture(scope="module")
def plan() -> LabPlan:
    return default_plan("cast1", clients=clients_needed())


def _values(plan: LabPlan, actor: LabActor) -> dict[str, str]:
    return placeholders(
        plan,
        host=plan.clients[actor.client],
        actor=actor,
        duration_s=60,
        audit="/tmp/eh/audit.jsonl",
        workdir="/tmp/eh/work",
        ca="/tmp/eh/ca.pem",
    )


def test_actor_ids_are_unique_and_kinds_phases_fit() -> None:
    ids = [a.actor_id for a in LAB_ACTORS]
    assert len(ids) == len(set(ids))
    assert all(a.phases == {Phase.BASELINE, Phase.ATTACK} for a in BENIGN)
    assert all(a.phases == {Phase.ATTACK} for a in MALICIOUS)
    assert all(not a.expected_analytics and not a.techniques for a in BENIGN)
    assert all(a.expected_analytics and a.techniques and not a.trap_for for a in MALICIOUS)


def test_clients_cover_the_cast() -> None:
    assert clients_needed() == CLIENTS
    assert {a.client for a in LAB_ACTORS} == set(range(CLIENTS))
    # A browser-like fetcher on every client, in both phases.
    fetchers = {a.client for a in BENIGN if a.program == "scenarios.programs.fetcher"}
    assert fetchers == set(range(CLIENTS))
    assert {a.program.removeprefix("scenarios.programs.") for a in BENIGN} >= {
        "fetcher",
        "https_upload",
        "backup_pusher",
    }


def test_expected_analytics_and_traps_are_real_analytics() -> None:
    known = set(ANALYTICS)
    for actor in LAB_ACTORS:
        assert set(actor.expected_analytics) <= known, actor.actor_id
        assert set(actor.trap_for) <= known, actor.actor_id


def test_every_analytic_has_a_malicious_lab_actor() -> None:
    covered = {a for actor in MALICIOUS for a in actor.expected_analytics}
    assert covered == set(ANALYTICS)


def test_synthetic_counterparts_exist_and_share_their_truth(
    synthetic: Mapping[tuple[str, str], ActorTruth],
) -> None:
    for actor in LAB_ACTORS:
        assert actor.synthetic is not None, actor.actor_id
        twin = synthetic.get(actor.synthetic)
        assert twin is not None, f"{actor.actor_id}: no synthetic actor {actor.synthetic}"
        assert twin.kind is actor.kind, actor.actor_id
        if actor.kind is ActorKind.MALICIOUS:
            assert set(actor.expected_analytics) == set(twin.expected_analytics), actor.actor_id
        else:
            assert set(actor.trap_for) == set(twin.trap_for), actor.actor_id


def test_malicious_actors_cover_the_required_behaviours() -> None:
    twins = {a.synthetic[1] for a in MALICIOUS if a.synthetic}
    assert twins >= {
        "iodine-tunnel",
        "dnscat2-tunnel",
        "unseen-uploader",
        "disguised-browser",
        "beacon-constant-padding",
        "raw-tcp-exfil",
        "http-on-443",
        "tls-on-53",
        "dns-on-odd-port",
        "rundll32-dns",
    }
    disguised = next(a for a in MALICIOUS if a.actor_id == "disguised-browser")
    browsers = {a.exe_name for a in BENIGN if a.program == "scenarios.programs.fetcher"}
    assert disguised.exe_name not in browsers, "the impostor must run from its own folder"
    assert disguised.exe_name.rsplit("/", 1)[-1] in browsers
    assert len([a for a in MALICIOUS if a.atomic is not None]) >= 2


def test_attack_phase_stays_under_ninety_seconds() -> None:
    for actor in MALICIOUS:
        text = " ".join(actor.args)
        match = re.search(r"(?:--duration |duration=)(\d+(?:\.\d+)?)", text)
        assert match, f"{actor.actor_id} sets no explicit duration"
        assert actor.start_offset_s + float(match.group(1)) <= ATTACK_PHASE_S, actor.actor_id


@pytest.mark.parametrize(
    "actor", [a for a in LAB_ACTORS if a.atomic is None], ids=lambda a: a.actor_id
)
def test_program_actors_expand_and_parse(actor: LabActor, plan: LabPlan) -> None:
    assert actor.program.removeprefix("scenarios.programs.") in PROGRAMS
    argv = expand(actor.args, _values(plan, actor))  # KeyError on an unknown placeholder
    assert not any("{" in a or "}" in a for a in argv)
    module = importlib.import_module(actor.program)
    args = module._parser().parse_args(argv)
    assert args.run_id == "cast1"
    assert args.bind == plan.clients[actor.client].address
    comm = actor.exe_name.rsplit("/", 1)[-1]
    assert len(comm) <= 15, "longer names are cut in /proc/PID/comm"


@pytest.mark.parametrize(
    "actor", [a for a in LAB_ACTORS if a.atomic is not None], ids=lambda a: a.actor_id
)
def test_atomic_actors_name_a_test_and_its_inputs(actor: LabActor, plan: LabPlan) -> None:
    assert actor.atomic is not None
    atomics = load_atomics()
    test = next(
        t for t in atomics[actor.atomic.technique].tests if t.name == actor.atomic.test_name
    )
    filled = dict(a.split("=", 1) for a in expand(actor.args, _values(plan, actor)))
    assert set(filled) <= set(test.inputs) - {"bin_dir"}
    assert filled["exe_name"] == actor.exe_name
    assert filled["run_id"] == "cast1"
    assert filled["bind"] == plan.clients[actor.client].address
    assert f"{actor.program} " in test.command
    argv = runner_argv(actor, _values(plan, actor), bin_dir=Path("/tmp/eh/bin"))
    assert argv[:3] == ["python", "-m", "harness.lab.atomics"]
    assert argv[argv.index("--technique") + 1] == actor.atomic.technique
    assert argv[argv.index("--test") + 1] == actor.atomic.test_name
    assert argv.count("--arg") == len(actor.args)
