"""scenarios.render: event ids to actors without a dict, and the rendering's order."""

from __future__ import annotations

import numpy as np
import pytest

from harness.fields import Profile
from harness.telemetry import sort_events
from scenarios.office import OfficeBaseline
from scenarios.render import EventActors
from tests.conftest import SMALL


def test_event_actors_is_a_mapping_of_the_given_numbers() -> None:
    labels = EventActors(np.array([7, 3, 10]), np.array([1, 0, 1]), ["x", "y"])
    assert dict(labels) == {"e3": "x", "e7": "y", "e10": "y"}
    assert len(labels) == 3
    assert "e7" in labels
    assert labels.get("e4") is None
    for missing in ("e4", "e007", "f7", "e", 7, "e-1"):
        assert missing not in labels
    with pytest.raises(KeyError):
        labels["e007"]


@pytest.mark.parametrize("profile", [Profile.EDR, Profile.NETWORK_ONLY, Profile.SYSMON_ZEEK])
def test_rendered_events_are_in_sort_events_order_and_all_labelled(profile: Profile) -> None:
    scenario = OfficeBaseline()
    run = scenario.generate(scenario.params(SMALL), 2, profile)
    events = list(run.telemetry.events)
    assert events == sort_events(events)
    assert all(e.event_id in run.truth.event_actor for e in events)
