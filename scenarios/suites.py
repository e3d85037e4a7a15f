"""Named scenario suites. ``default`` is what ``egress-harness run`` runs with no options."""

from __future__ import annotations

__all__ = ["DEFAULT"]


class _Suite(tuple[str, ...]):
    """A tuple of scenario ids with an ``id``, so the registry can check its name."""

    id: str

    def __new__(cls, name: str, scenario_ids: tuple[str, ...]) -> _Suite:
        obj = super().__new__(cls, scenario_ids)
        obj.id = name
        return obj


DEFAULT = _Suite(
    "default",
    (
        "office-baseline",
        "https-exfil",
        "dns-tunnels",
        "dns-exfil-evasive",
        "quiet-process-exfil",
        "staging-and-beacons",
        "custom-port-exfil",
        "protocol-anomalies",
    ),
)
