"""The project's Atomic Red Team-format tests: load and validate them, and run one with
atomic-operator inside a lab client.

The tests live in ``scenarios/atomics/<TECHNIQUE>/<TECHNIQUE>.yaml``, Atomic Red Team's own
layout and schema (``attack_technique``, ``display_name``, ``atomic_tests`` with ``name``,
``auto_generated_guid``, ``description``, ``supported_platforms``, ``input_arguments``
(``description``, ``type``, ``default``) and ``executor`` (``name``, ``command``)), so that
atomic-operator, Invoke-AtomicRedTeam's loaders and the ATT&CK tooling read them unchanged.
Each test's command runs a lab program under a chosen executable name:
``#{bin_dir}/<name> -m scenarios.programs.<program> ...``.

:func:`load_atomics` parses and checks every file (errors name the file and the field).
:func:`main` is the runner the orchestrator starts on a lab client::

    python -m harness.lab.atomics --atomics DIR --technique T1071.004 \\
        --test "DNS tunnel in dns2tcp style" --bin-dir DIR --arg run_id=r1 --arg bind=...

It fills the test's inputs (defaults, then ``--arg``; ``bin_dir`` is its own), makes the
``<bin_dir>/<name>`` symlinks to the harness's Python that the command names
(:func:`harness.lab.launch.named_python`), makes the harness importable in the children, and
runs the test through ``atomic_operator.AtomicOperator().run`` (that one test by GUID, no
prompts, no download). The test's shell and program are its descendants; the runner is a child
subreaper, so a program whose shell is gone stays its descendant, and it waits for all of them
before it exits: the lab attributes everything below it to the atomic actor.

atomic-operator 0.9's local runner ignores ``command_timeout`` (its ``LocalRunner.run`` has a
fixed 5-second default and kills the shell after it); the runner passes its ``--timeout`` there.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import difflib
import json
import os
import re
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analytics import TechniqueId, technique_id
from harness.errors import HarnessError, InputError, InvalidParameterError
from harness.lab.launch import child_env, named_python
from harness.lab.spec import LabActor, expand

__all__ = [
    "ATOMICS_DIR",
    "AtomicFile",
    "AtomicInput",
    "AtomicTest",
    "AtomicsError",
    "find_test",
    "load_atomics",
    "main",
    "runner_argv",
]

#: The project's atomics, shipped with the scenarios.
ATOMICS_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "atomics"

_INPUT_TYPES = frozenset({"string", "integer", "float", "path", "url", "bool"})
_EXECUTORS = frozenset({"sh", "bash"})
_TOP_KEYS = frozenset({"attack_technique", "display_name", "atomic_tests"})
_TEST_KEYS = frozenset(
    {
        "name",
        "auto_generated_guid",
        "description",
        "supported_platforms",
        "input_arguments",
        "executor",
        "dependency_executor_name",
        "dependencies",
    }
)
_REQUIRED_TEST_KEYS = ("name", "auto_generated_guid", "description", "supported_platforms")
_INPUT_KEYS = frozenset({"description", "type", "default"})
_EXECUTOR_KEYS = frozenset({"name", "command", "cleanup_command", "elevation_required", "steps"})
_PLACEHOLDER = re.compile(r"#\{([A-Za-z0-9_]+)\}")
_PR_SET_CHILD_SUBREAPER = 36


class AtomicsError(InputError):
    """An atomics file does not follow the schema; the message names the file and field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicInput:
    name: str
    description: str
    type: str
    default: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicTest:
    technique: TechniqueId
    name: str
    guid: str
    description: str
    platforms: tuple[str, ...]
    inputs: Mapping[str, AtomicInput]
    executor: str
    command: str

    def placeholders(self) -> tuple[str, ...]:
        """The ``#{input}`` names the command uses, in order of first use."""
        return tuple(dict.fromkeys(_PLACEHOLDER.findall(self.command)))


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicFile:
    path: Path
    technique: TechniqueId
    display_name: str
    tests: tuple[AtomicTest, ...]


# -- loading and validation ----------------------------------------------------------------


def _fail(path: Path, where: str, problem: str) -> AtomicsError:
    return AtomicsError(f"{path}: {where}: {problem}")


def _text(path: Path, where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, where, f"a non-empty string is required, got {value!r}")
    return value


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _inputs(path: Path, where: str, raw: object) -> dict[str, AtomicInput]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, where, "a mapping of input names to {description, type, default}")
    out: dict[str, AtomicInput] = {}
    for name, spec in raw.items():
        here = f"{where}.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise _fail(path, here, "input names are letters, digits and '_'")
        if not isinstance(spec, dict):
            raise _fail(path, here, "a mapping with description, type and default")
        unknown = set(spec) - _INPUT_KEYS
        if unknown:
            raise _fail(path, here, f"unknown field(s) {sorted(unknown)}")
        for key in sorted(_INPUT_KEYS):
            if key not in spec:
                raise _fail(path, f"{here}.{key}", "missing")
        kind = _text(path, f"{here}.type", spec["type"]).lower()
        if kind not in _INPUT_TYPES:
            raise _fail(path, f"{here}.type", f"one of {sorted(_INPUT_TYPES)}, got {kind!r}")
        default = spec["default"]
        if not isinstance(default, str | int | float | bool):
            raise _fail(path, f"{here}.default", f"a scalar, got {default!r}")
        out[name] = AtomicInput(
            name=name,
            description=_text(path, f"{here}.description", spec["description"]),
            type=kind,
            default=_scalar(default),
        )
    return out


def _test(path: Path, technique: TechniqueId, index: int, raw: object) -> AtomicTest:
    where = f"atomic_tests[{index}]"
    if not isinstance(raw, dict):
        raise _fail(path, where, "a mapping")
    unknown = set(raw) - _TEST_KEYS
    if unknown:
        raise _fail(path, where, f"unknown field(s) {sorted(unknown)}")
    for key in _REQUIRED_TEST_KEYS:
        if key not in raw:
            raise _fail(path, f"{where}.{key}", "missing")
    name = _text(path, f"{where}.name", raw["name"])
    where = f"atomic_tests[{index}] ({name!r})"
    guid = _text(path, f"{where}.auto_generated_guid", raw["auto_generated_guid"])
    try:
        uuid.UUID(guid)
    except ValueError:
        raise _fail(path, f"{where}.auto_generated_guid", f"a UUID, got {guid!r}") from None
    platforms = raw["supported_platforms"]
    if (
        not isinstance(platforms, list)
        or not platforms
        or not all(isinstance(p, str) for p in platforms)
    ):
        raise _fail(path, f"{where}.supported_platforms", "a non-empty list of platform names")
    if "linux" not in platforms:
        raise _fail(path, f"{where}.supported_platforms", "must include linux (the lab's OS)")
    inputs = _inputs(path, f"{where}.input_arguments", raw.get("input_arguments"))
    executor = raw.get("executor")
    if not isinstance(executor, dict):
        raise _fail(path, f"{where}.executor", "a mapping with name and command")
    unknown = set(executor) - _EXECUTOR_KEYS
    if unknown:
        raise _fail(path, f"{where}.executor", f"unknown field(s) {sorted(unknown)}")
    kind = _text(path, f"{where}.executor.name", executor.get("name"))
    if kind not in _EXECUTORS:
        raise _fail(path, f"{where}.executor.name", f"one of {sorted(_EXECUTORS)}, got {kind!r}")
    command = _text(path, f"{where}.executor.command", executor.get("command"))
    if not isinstance(executor.get("elevation_required", False), bool):
        raise _fail(path, f"{where}.executor.elevation_required", "true or false")
    test = AtomicTest(
        technique=technique,
        name=name,
        guid=guid.lower(),
        description=_text(path, f"{where}.description", raw["description"]),
        platforms=tuple(platforms),
        inputs=inputs,
        executor=kind,
        command=command,
    )
    undeclared = [p for p in test.placeholders() if p not in inputs]
    if undeclared:
        raise _fail(path, f"{where}.executor.command", f"uses undeclared input(s) {undeclared}")
    if "bin_dir" not in inputs or "#{bin_dir}/" not in command:
        raise _fail(
            path,
            f"{where}.executor.command",
            "must run a program as #{bin_dir}/<name> (the executable name the lab sees)",
        )
    return test


def _load_file(path: Path) -> AtomicFile:
    import yaml  # type: ignore[import-untyped]  # PyYAML comes with atomic-operator

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AtomicsError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise AtomicsError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise _fail(
            path, "top level", "a mapping with attack_technique, display_name, atomic_tests"
        )
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise _fail(path, "top level", f"unknown field(s) {sorted(unknown)}")
    raw_id = _text(path, "attack_technique", doc.get("attack_technique"))
    try:
        technique = technique_id(raw_id)
    except HarnessError:
        raise _fail(
            path, "attack_technique", f"an ATT&CK id like T1071.004, got {raw_id!r}"
        ) from None
    if path.stem != technique or path.parent.name != technique:
        raise _fail(
            path, "attack_technique", f"{technique} must live in {technique}/{technique}.yaml"
        )
    display = _text(path, "display_name", doc.get("display_name"))
    tests_raw = doc.get("atomic_tests")
    if not isinstance(tests_raw, list) or not tests_raw:
        raise _fail(path, "atomic_tests", "a non-empty list of tests")
    tests = tuple(_test(path, technique, i, t) for i, t in enumerate(tests_raw))
    names = [t.name for t in tests]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail(path, "atomic_tests", f"duplicate test name(s) {duplicates}")
    return AtomicFile(path=path, technique=technique, display_name=display, tests=tests)


def load_atomics(directory: Path = ATOMICS_DIR) -> dict[TechniqueId, AtomicFile]:
    """Every ``<T>/<T>.yaml`` under ``directory``, validated; by technique id."""
    if not directory.is_dir():
        raise AtomicsError(f"{directory}: not a directory of atomics")
    files: dict[TechniqueId, AtomicFile] = {}
    guids: dict[str, Path] = {}
    for path in sorted(directory.glob("T*/T*.yaml")):
        atomic = _load_file(path)
        for test in atomic.tests:
            if test.guid in guids:
                raise _fail(
                    path,
                    f"test {test.name!r}.auto_generated_guid",
                    f"{test.guid} is also used in {guids[test.guid]}",
                )
            guids[test.guid] = path
        files[atomic.technique] = atomic
    if not files:
        raise AtomicsError(f"{directory}: no <technique>/<technique>.yaml files")
    return files


def find_test(atomics: Mapping[TechniqueId, AtomicFile], technique: str, name: str) -> AtomicTest:
    """The test ``name`` of ``technique``; unknown ones raise naming the closest."""
    atomic = next((a for t, a in atomics.items() if t == technique), None)
    if atomic is None:
        close = difflib.get_close_matches(technique, list(atomics), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (have {sorted(atomics)})"
        raise InvalidParameterError("technique", technique, "a technique with atomics" + hint)
    for test in atomic.tests:
        if test.name == name:
            return test
    names = [t.name for t in atomic.tests]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (have {names})"
    raise InvalidParameterError("test", name, f"a test of {technique}" + hint)


def runner_argv(
    actor: LabActor,
    values: Mapping[str, str],
    *,
    atomics_dir: Path = ATOMICS_DIR,
    bin_dir: Path,
    timeout_s: float | None = None,
) -> list[str]:
    """The argv (``"python"`` first, for :meth:`LabBackend.start`) that runs ``actor``'s atomic
    test: its ``args`` are ``key=value`` input templates, expanded with ``values``."""
    if actor.atomic is None:
        raise InvalidParameterError("actor", actor.actor_id, "an actor with an atomic test")
    argv = [
        "python",
        "-m",
        "harness.lab.atomics",
        "--atomics",
        str(atomics_dir),
        "--technique",
        actor.atomic.technique,
        "--test",
        actor.atomic.test_name,
        "--bin-dir",
        str(bin_dir),
    ]
    if timeout_s is not None:
        argv += ["--timeout", f"{timeout_s:g}"]
    for arg in expand(actor.args, values):
        argv += ["--arg", arg]
    return argv


# -- running -------------------------------------------------------------------------------


def _resolve_inputs(test: AtomicTest, given: Sequence[str], bin_dir: Path) -> dict[str, str]:
    values = {name: spec.default for name, spec in test.inputs.items()}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidParameterError("--arg", item, "key=value")
        if key not in test.inputs:
            raise InvalidParameterError(
                "--arg", item, f"an input of {test.name!r}: {sorted(test.inputs)}"
            )
        if key == "bin_dir":
            raise InvalidParameterError("--arg", item, "no bin_dir (use --bin-dir)")
        values[key] = value
    values["bin_dir"] = str(bin_dir)
    return values


def _fill(command: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), command)


def executable_names(test: AtomicTest, values: Mapping[str, str]) -> tuple[str, ...]:
    """The names the test's command runs as ``<bin_dir>/<name>``."""
    filled = _fill(test.command, values)
    prefix = re.escape(values["bin_dir"].rstrip("/") + "/")
    return tuple(dict.fromkeys(re.findall(prefix + r"([^\s/\"';&|]+)", filled)))


def _become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _reap_descendants(deadline_s: float) -> int:
    """Wait for every child (orphans included, as subreaper) until ``deadline_s`` (monotonic);
    then SIGKILL what is left. The number of children reaped."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid:
            reaped += 1
            continue
        if time.monotonic() >= deadline_s:
            break
        time.sleep(0.05)
    for child in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, 0)[0]:
            reaped += 1
    return reaped


def _children() -> list[int]:
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == me:
            out.append(int(entry.name))
    return out


def _patch_local_timeout(timeout_s: float) -> None:
    """atomic-operator 0.9 runs local commands with atomic_operator_runner's LocalRunner, whose
    ``run`` has ``timeout=5`` and is called without one: give it ours."""
    from atomic_operator_runner import local

    original = local.LocalRunner

    class _LocalRunner(original):  # type: ignore[misc, valid-type]
        def run(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            return super().run(*args, **kwargs)

    local.LocalRunner = _LocalRunner  # type: ignore[misc]


def _return_code(result: object, guid: str) -> int | None:
    if not isinstance(result, dict):
        return None
    entry = result.get(guid)
    if not isinstance(entry, dict):
        return None
    response = entry.get("response")
    if isinstance(response, list):  # several hosts or runs: the last one
        response = response[-1] if response else None
    try:
        last = json.loads(response) if isinstance(response, str) else response
    except json.JSONDecodeError:
        return None
    if not isinstance(last, dict):
        return None
    code = last.get("return_code", last.get("return-code"))
    return code if isinstance(code, int) else None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.lab.atomics",
        description="Run one of the project's Atomic Red Team-format tests with atomic-operator",
    )
    p.add_argument("--atomics", type=Path, default=ATOMICS_DIR, help="directory of atomics")
    p.add_argument("--technique", required=True)
    p.add_argument("--test", required=True, help="the test's name")
    p.add_argument("--bin-dir", type=Path, required=True, help="where the named symlinks go")
    p.add_argument("--arg", action="append", default=[], help="input argument key=value")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds the command may run")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one test; 0 when its command exited 0, 1 when it failed, 2 on bad arguments."""
    args = _parser().parse_args(None if argv is None else list(argv))
    try:
        atomics = load_atomics(args.atomics)
        test = find_test(atomics, args.technique, args.test)
        values = _resolve_inputs(test, args.arg, args.bin_dir.resolve())
    except HarnessError as exc:
        sys.stderr.write(f"atomics: {exc}\n")
        return 2
    for name in executable_names(test, values):
        named_python(args.bin_dir.resolve(), name)
    os.environ.update(child_env())
    _become_subreaper()
    deadline = time.monotonic() + args.timeout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paramiko's deprecation warnings at import
        from atomic_operator import AtomicOperator  # type: ignore[import-untyped]

        _patch_local_timeout(args.timeout)
        result = AtomicOperator().run(
            techniques=[],
            test_guids=[test.guid],
            atomics_path=str(args.atomics.resolve()),
            input_arguments=values,
            prompt_for_input_args=False,
            command_timeout=int(args.timeout),
        )
    _reap_descendants(deadline)
    if isinstance(result, BaseException):
        sys.stderr.write(f"atomics: atomic-operator: {result}\n")
        return 1
    code = _return_code(result, test.guid)
    if code != 0:
        sys.stderr.write(
            f"atomics: {test.technique} {test.name!r} "
            + ("did not finish" if code is None else f"exited {code}")
            + "\n"
        )
        return 1
    sys.stdout.write(
        json.dumps({"technique": test.technique, "test": test.name, "guid": test.guid}) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
