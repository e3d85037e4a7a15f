"""The scenario contract: parameters and a seed in, telemetry and ground truth out.

A scenario is a class with an ``id``, a description, a frozen dataclass of parameters (its knobs,
with defaults) and :meth:`Scenario.generate`. The same parameters and seed must give the same
events, byte for byte; the conformance kit in :mod:`harness.testing` checks it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import InvalidParameterError, UnknownPluginError
from harness.fields import Profile
from harness.telemetry import Telemetry
from harness.truth import GroundTruth

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["Scenario", "ScenarioRun"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioRun:
    """What one generation produced: sensor telemetry, and the truth kept beside it."""

    telemetry: Telemetry
    truth: GroundTruth


class Scenario:
    """Base class for scenarios. Subclasses set the class variables and implement ``generate``."""

    id: ClassVar[str]
    description: ClassVar[str]
    #: A frozen dataclass type whose fields are the knobs, every one with a default.
    Params: ClassVar[type[Any]]
    #: Difficulty ladders for the evasion frontier (:mod:`harness.frontier`): knob name to the
    #: values to try, from the easiest (usually the default) to the hardest to detect (lower
    #: rate, smaller volume, more disguise). Empty: the scenario has no frontier.
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {}

    def params(self, overrides: Mapping[str, object] | None = None) -> Any:
        """Default parameters with ``overrides`` applied; unknown knobs raise a usage error."""
        names = {f.name: f for f in dataclasses.fields(self.Params)}
        overrides = dict(overrides or {})
        for key in overrides:
            if key not in names:
                raise UnknownPluginError(f"parameter of scenario {self.id!r}", key, names)
        try:
            return self.Params(**overrides)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"parameters of {self.id!r}", overrides, str(exc)) from exc

    @classmethod
    def knob_strategy(cls) -> SearchStrategy[dict[str, Any]] | None:
        """A Hypothesis strategy of knob overrides over the whole valid range, for property
        tests and held-out evaluation (:mod:`harness.holdout`); ``None``: none published."""
        return None

    def generate(self, params: Any, seed: int, profile: Profile = Profile.EDR) -> ScenarioRun:
        raise NotImplementedError
