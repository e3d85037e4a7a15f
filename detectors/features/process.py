"""Process identity features: the normalised executable path used as a process's identity.

A process is identified by its full image path, case-folded, with the per-user part of
profile paths replaced by ``*`` so that ``C:\\Users\\alice\\AppData\\...\\OneDrive.exe`` and
Bob's copy are one application (per-user installs are common: OneDrive, Teams, Zoom, Slack).
``C:\\Users\\Public`` and ``C:\\Users\\Default`` are kept as they are: they are shared folders,
and software that runs from there is itself notable.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["image_key"]

_SHARED_PROFILES = frozenset({"public", "default", "all users"})


@lru_cache(maxsize=65_536)
def image_key(image: str) -> str:
    """Normalised identity of an executable path (see the module docstring)."""
    path = image.replace("/", "\\").casefold()
    marker = "\\users\\"
    i = path.find(marker)
    if i != -1:
        start = i + len(marker)
        end = path.find("\\", start)
        user = path[start:end] if end != -1 else path[start:]
        if end != -1 and user not in _SHARED_PROFILES:
            path = path[:start] + "*" + path[end:]
    return path
