"""JSON reporter: the canonical results document itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from harness.results import canonical_json

__all__ = ["JsonReporter"]


class JsonReporter:
    id: ClassVar[str] = "json"
    filename: ClassVar[str | None] = "results.json"

    def render(self, doc: Mapping[str, Any]) -> str:
        return canonical_json(doc)
