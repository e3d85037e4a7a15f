"""Navigator reporter: the run's ATT&CK Navigator layer (``navigator-layer.json``), coloured by
detection rate; see :mod:`harness.navigator` for what the layer holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from harness.navigator import build_layer
from harness.results import canonical_json

__all__ = ["NavigatorReporter"]


class NavigatorReporter:
    id: ClassVar[str] = "navigator"
    filename: ClassVar[str | None] = "navigator-layer.json"

    def render(self, doc: Mapping[str, Any]) -> str:
        return canonical_json(build_layer(doc))
