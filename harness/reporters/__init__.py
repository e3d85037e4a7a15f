"""Reporters render the canonical results document into other formats.

A reporter is a class with an ``id``, the ``filename`` it writes in the run folder (``None`` for
console-only output) and ``render(doc) -> str``. They register under the entry-point group
``egress_harness.reporters``; the built-ins (console, markdown, json) use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

__all__ = ["Reporter"]


class Reporter(Protocol):
    id: ClassVar[str]
    filename: ClassVar[str | None]

    def render(self, doc: Mapping[str, Any]) -> str: ...
