"""Start a lab program under a chosen executable name.

A Windows-looking actor such as ``rundll32.exe`` is really the harness's Python running a module
of :mod:`scenarios.programs`. To make the operating system report the chosen name, the program
is started through a symlink ``<bin_dir>/<name>`` that points at the real executable:

* ``/proc/PID/comm`` is the basename of the path given to ``execve`` (the symlink), so it shows
  ``name``. The kernel keeps at most 15 characters of it (``TASK_COMM_LEN`` is 16 with the
  terminating NUL): ``svchost-updater.exe`` shows as ``svchost-updater``.
* ``argv[0]`` (``/proc/PID/cmdline``) is the symlink's path, which attribution reports as the
  process image; ``/proc/PID/exe`` still resolves to the real interpreter.

A virtual environment's interpreter run through a symlink outside the environment does not find
the environment's ``pyvenv.cfg`` and so does not see its site-packages (nor the editable install
of the harness). The child therefore gets ``PYTHONPATH`` built from the parent's ``sys.path``
(plus the directory holding the :mod:`harness` package), which makes the same modules importable.

``argv[0] == "python"`` stands for the harness's own interpreter; any other ``argv[0]`` is a
program looked up on ``PATH`` (or a path) and symlinked the same way. Every process starts in a
new session (its own process group), with stdout and stderr appended to a log file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import InvalidParameterError, LabError
from harness.lab.backend import LabHost, LabProcess
from harness.lab.image import project_root

__all__ = [
    "COMM_LEN",
    "PYTHON",
    "PopenLabProcess",
    "child_env",
    "harness_pythonpath",
    "launch",
    "named_executable",
    "named_python",
    "signal_group",
    "validate_name",
]

#: The longest ``/proc/PID/comm`` the kernel keeps.
COMM_LEN = 15
#: ``argv[0]`` that stands for the harness's own Python interpreter.
PYTHON = "python"


def validate_name(name: str) -> str:
    """``name`` if it can name an executable in a bin directory, else
    :class:`InvalidParameterError`: a plain file name, or a relative path of plain names
    (``Users/Public/chrome.exe``: a disguised copy in an unusual folder) without ``.``/``..``
    components. The process name (``comm``) is the last component."""
    parts = name.split("/") if isinstance(name, str) else []
    if (
        not parts
        or any(p in {"", ".", ".."} for p in parts)
        or "\0" in name
        or len(parts[-1].encode()) > 255
    ):
        raise InvalidParameterError(
            "executable name", name, "a file name, or a relative path of plain names"
        )
    return name


def named_executable(bin_dir: Path, name: str, target: str | os.PathLike[str]) -> Path:
    """A symlink ``bin_dir/name`` -> ``target`` (created or replaced atomically); ``name`` may
    be a relative path, whose folders are created."""
    validate_name(name)
    link = bin_dir / name
    link.parent.mkdir(parents=True, exist_ok=True)
    target_s = os.fspath(target)
    try:
        if os.readlink(link) == target_s:
            return link
    except OSError:
        pass
    tmp = link.parent / f".{link.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target_s, tmp)
    os.replace(tmp, link)
    return link


def named_python(bin_dir: Path, name: str) -> Path:
    """A symlink ``bin_dir/name`` to the harness's Python (``sys.executable``): run it with
    :func:`child_env` so the harness is importable in the child."""
    return named_executable(bin_dir, name, sys.executable)


def harness_pythonpath() -> str:
    """A ``PYTHONPATH`` that makes the parent's modules importable in a child interpreter: the
    directory of the :mod:`harness` package first, then the parent's ``sys.path`` entries."""
    entries = [project_root(), *(p for p in sys.path if p and os.path.exists(p))]
    return os.pathsep.join(dict.fromkeys(entries))


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a lab process: the harness's, unbuffered output, then ``env`` on top;
    ``PYTHONPATH`` is ``env``'s own (if any) followed by :func:`harness_pythonpath`."""
    out = dict(os.environ)
    out["PYTHONUNBUFFERED"] = "1"
    out.pop("PYTHONHOME", None)
    if env:
        out.update(env)
    extra = env.get("PYTHONPATH", "") if env else ""
    out["PYTHONPATH"] = os.pathsep.join(p for p in (extra, harness_pythonpath()) if p)
    return out


def _resolve_argv(argv: Sequence[str], name: str, bin_dir: Path) -> list[str]:
    if not argv:
        raise InvalidParameterError("argv", list(argv), "a program and its arguments")
    program = argv[0]
    if program == PYTHON:
        exe = named_python(bin_dir, name)
    else:
        found = shutil.which(program)
        if found is None:
            raise InvalidParameterError("program", program, "an executable on PATH or a path")
        exe = named_executable(bin_dir, name, os.path.realpath(found))
    return [str(exe), *argv[1:]]


def launch(
    argv: Sequence[str],
    *,
    name: str,
    bin_dir: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` under the executable name ``name`` (see the module docstring), output
    appended to ``log``, in a new session. ``prefix`` is a command that execs the program
    (``ip netns exec NS``): it must not fork, so the pid returned is the program's own."""
    validate_name(name)
    resolved = _resolve_argv(argv, name, bin_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(  # noqa: S603 (argv comes from the lab plan)
                [*prefix, *resolved],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise LabError(f"cannot start {resolved[0]!r} as {name!r}: {exc}") from exc


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group that ``pid`` leads (a lab program started in its own
    session), else to ``pid`` alone; a process or group already gone is fine."""
    # Signal the whole group so helpers the program forked go too; fall back to the process
    # itself if the group is gone.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class PopenLabProcess(LabProcess):
    """A :class:`LabProcess` backed by a :class:`subprocess.Popen` started by :func:`launch`."""

    def __init__(self, popen: subprocess.Popen[bytes], *, name: str, host: LabHost) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.name = name
        self.host = host

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def stop(self, grace_s: float = 3.0) -> int | None:
        code = self.popen.poll()
        if code is None:
            signal_group(self.pid, signal.SIGTERM)
            try:
                code = self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                signal_group(self.pid, signal.SIGKILL)
                try:
                    code = self.popen.wait(grace_s)
                except subprocess.TimeoutExpired:
                    return None
        # Whatever the group leader left behind in its group goes as well.
        signal_group(self.pid, signal.SIGKILL)
        return code

    def __repr__(self) -> str:
        return f"PopenLabProcess(pid={self.pid}, name={self.name!r}, host={self.host.name!r})"
