"""``office-baseline``: a benign office, the false-positive reference for every analytic.

Twenty workstations and two servers over three baseline days and one detection day, with
browsing, Windows Update, file sync, a backup agent and a software rollout during the detection
window. There is no malicious actor: every alert on this scenario is a false alert.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import InvalidParameterError
from harness.events import NS_PER_S
from harness.fields import Profile
from harness.scenario import Scenario, ScenarioRun
from scenarios import benign
from scenarios.knobs import knob, validate
from scenarios.world import MAX_SERVERS, MAX_WORKSTATIONS, World, build_environment

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["AttackScenario", "OfficeBaseline", "OfficeParams", "add_background", "new_world"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OfficeParams:
    """Knobs of the synthetic office."""

    workstations: int = knob(
        20,
        "Workstations, one user each (192.0.2.100 upwards).",
        low=1,
        high=MAX_WORKSTATIONS,
        test_range=(5, 6),
    )
    servers: int = knob(
        2,
        "Servers besides the resolver; the first is the file and backup server.",
        low=0,
        high=MAX_SERVERS,
        test_range=(1, 2),
    )
    baseline_days: int = knob(
        3, "Days of baseline before the detection window.", low=1, high=365, test_range=(1, 1)
    )
    detection_days: int = knob(
        1, "Days of detection window (attacks start on its first day).", low=1, high=365,
        test_range=(1, 1),
    )  # fmt: skip
    browsing_sessions_per_day: float = knob(
        30.0,
        "Browsing sessions per user per working day.",
        low=0,
        high=10_000,
        test_range=(1, 5),
    )

    def __post_init__(self) -> None:
        validate(self)


def new_world(scenario: str, seed: int, params: OfficeParams) -> tuple[World, random.Random]:
    """A world with the office environment; the same seed gives the same office."""
    rng = random.Random(f"{scenario}:{seed}")
    env = build_environment(
        rng,
        workstations=params.workstations,
        servers=params.servers,
        baseline_days=params.baseline_days,
        detection_days=params.detection_days,
    )
    return World(scenario, seed, env), rng


def add_background(world: World, rng: random.Random, params: OfficeParams) -> None:
    """Every benign actor of the office. Each draws from its own child generator so that adding
    an actor to a scenario does not change what the others do."""

    def browsing(r: random.Random) -> None:
        benign.browsers(world, r, sessions_per_day=params.browsing_sessions_per_day)

    steps: tuple[tuple[str, Callable[[random.Random], None]], ...] = (
        ("browsers", browsing),
        ("windows-update", partial(benign.windows_update, world)),
        ("onedrive-sync", partial(benign.onedrive_sync, world)),
        ("new-app-rollout", partial(benign.new_app_rollout, world)),
        ("backup-agent", partial(benign.backup_agent, world)),
        ("teams-media", partial(benign.teams_media, world)),
        ("av-reputation", partial(benign.av_reputation, world)),
        ("cdn-telemetry", partial(benign.cdn_telemetry, world)),
        ("admin-smb", partial(benign.admin_smb, world)),
        ("vendor-updaters", partial(benign.vendor_updaters, world)),
        ("resolver-dnssec", partial(benign.resolver_dnssec, world)),
        ("quiet-desktop", partial(benign.quiet_desktop, world)),
        ("time-and-printing", partial(benign.time_and_printing, world)),
        ("web-proxy", partial(benign.web_proxy, world)),
    )
    base = rng.getrandbits(64)
    for name, step in steps:
        step(random.Random(f"{base}:{name}"))


class AttackScenario(Scenario):
    """An office with its benign background plus the actors :meth:`attack` adds. Attacks start
    in the detection window, on distinct workstations chosen by the seed."""

    #: Distinct workstations the attack needs (``workstations`` must be at least this).
    victims: ClassVar[int] = 1

    def generate(self, params: Any, seed: int, profile: Profile = Profile.EDR) -> ScenarioRun:
        return self.build(params, seed).finish(profile)

    def build(self, params: Any, seed: int) -> World:
        """The world with every actor recorded, before :meth:`World.finish` (for tests that
        look at what the actors carried, such as DNS tunnel payloads)."""
        if params.workstations < self.victims:
            raise InvalidParameterError(
                "workstations",
                params.workstations,
                f"at least {self.victims}: {self.id!r} attacks that many distinct workstations",
            )
        world, rng = new_world(self.id, seed, params)
        add_background(world, rng, params)
        self.attack(world, random.Random(f"{self.id}:{seed}:attack"), params)
        return world

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        raise NotImplementedError

    @classmethod
    def knob_strategy(cls) -> SearchStrategy[dict[str, Any]]:
        """The attack knobs (not the office's) around their defaults
        (:func:`scenarios.strategies.overrides_around_defaults`): what ``run --holdout``
        evaluates beside the defaults."""
        from scenarios.strategies import overrides_around_defaults  # imports every scenario

        return overrides_around_defaults(cls)

    @staticmethod
    def attack_time(world: World, rng: random.Random) -> int:
        """A start during working hours of the first detection day (09:00 to 15:00)."""
        day = world.env.baseline_until_ns
        return day + (9 * 3600 + rng.randint(0, 6 * 3600)) * NS_PER_S


class OfficeBaseline(Scenario):
    id: ClassVar[str] = "office-baseline"
    description: ClassVar[str] = "Benign office traffic with false-positive traps; no attacker."
    Params: ClassVar[type[Any]] = OfficeParams

    def generate(self, params: Any, seed: int, profile: Profile = Profile.EDR) -> ScenarioRun:
        return self.build(params, seed).finish(profile)

    def build(self, params: Any, seed: int) -> World:
        """The world with every actor recorded, before :meth:`World.finish`."""
        world, rng = new_world(self.id, seed, params)
        add_background(world, rng, params)
        return world
