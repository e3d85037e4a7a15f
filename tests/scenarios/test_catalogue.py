"""The checked-in catalogue (scenarios/CATALOGUE.md) must be what the code generates now."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import Scenario
from harness.truth import ActorKind, ActorTruth
from scenarios import catalogue

Found = list[tuple[type[Scenario], tuple[ActorTruth, ...]]]


@pytest.fixture(scope="module")
def found() -> Found:
    return catalogue.discover()


@pytest.fixture(scope="module")
def rendered(found: Found) -> str:
    return catalogue.render(found)


def test_checked_in_catalogue_is_current(rendered: str) -> None:
    current = catalogue.CATALOGUE_PATH.read_text(encoding="utf-8")
    assert current == rendered, "stale catalogue: run `python -m scenarios.catalogue`"


def test_catalogue_lists_every_discovered_actor_and_knob(found: Found, rendered: str) -> None:
    for cls, actors in found:
        assert f"### `{cls.id}`" in rendered
        for a in actors:
            assert f"`{a.actor_id}`" in rendered, a.actor_id
        assert any(a.kind is ActorKind.BENIGN for a in actors)
        for name in cls.Params.__dataclass_fields__:
            assert f"| `{name}` |" in rendered, (cls.id, name)


def test_check_flag_fails_on_a_stale_file(
    tmp_path: Path, rendered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "render", lambda: rendered)
    stale = tmp_path / "CATALOGUE.md"
    stale.write_text(rendered + "edited by hand\n", encoding="utf-8")
    assert catalogue.main(["--check", "--out", str(stale)]) == 1
    stale.write_text(rendered, encoding="utf-8")
    assert catalogue.main(["--check", "--out", str(stale)]) == 0
