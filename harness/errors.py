"""The one exception tree of egress-harness.

Every error the harness raises on purpose derives from :class:`HarnessError` and knows the exit
code the CLI turns it into, so a user mistake is one line on stderr, never a traceback::

    HarnessError (exit 3)                 something went wrong inside the harness or a plugin
    ├── UsageError (exit 2)               the user asked for something that cannot be done
    │   ├── UnknownPluginError            a scenario/detector/reporter id that is not registered
    │   ├── InvalidParameterError         a knob, seed list or tunable with a bad value
    │   ├── InputError                    an input file that is missing or unreadable
    │   └── LabUnavailableError           a lab backend cannot run here (no root, no engine)
    ├── PluginError                       a plugin failed to load or broke its contract
    ├── LabError                          the emulation lab failed while running
    └── SchemaError                       a results document that does not match the schema

Messages name the offending value, what was expected and, where one exists, a fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

__all__ = [
    "HarnessError",
    "InputError",
    "InvalidParameterError",
    "LabError",
    "LabUnavailableError",
    "PluginError",
    "SchemaError",
    "UnknownPluginError",
    "UsageError",
]


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""

    exit_code: int = 3


class UsageError(HarnessError):
    """The user asked for something that cannot be done; fixing the command line fixes it."""

    exit_code = 2


class InvalidParameterError(UsageError):
    """A parameter value is out of range or of the wrong form."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {name} {value!r}: expected {expected}")


class UnknownPluginError(UsageError):
    """A plugin id that is not registered, with the closest registered ids as suggestions."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        close = get_close_matches(name, self.known, n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
        else:
            hint = f"known {kind}s: " + (", ".join(self.known) or "none")
        super().__init__(f"unknown {kind} {name!r}; {hint}")


class InputError(UsageError):
    """An input file is missing, unreadable or not in the expected format."""


class LabUnavailableError(UsageError):
    """A lab backend cannot run on this machine (not root, no network namespaces, no Docker
    engine); the message says what is missing and which backend would run instead."""


class LabError(HarnessError):
    """The emulation lab failed while running (a sink or actor died, a capture broke)."""


class PluginError(HarnessError):
    """A plugin could not be loaded or broke the contract it declared."""


class SchemaError(HarnessError):
    """A results document does not validate against the results schema."""
