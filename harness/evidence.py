"""The evidence manifest (``evidence.json``) of a run folder, and its verification.

An auditor needs a run to stand on its own: what went in, what came out, with which code and
settings, and how to do it again. :func:`write_manifest` records, in the run folder:

* ``inputs``: SHA-256 and size of every input file by absolute path and role: the harness's own
  code (every file of the ``harness``, ``scenarios`` and ``detectors`` packages, which generate
  the synthetic telemetry and judge it), the source of any plugin class from elsewhere, and
  whatever the command read (recorded telemetry and labels for ``evaluate``, a policy or a
  baseline results document for ``gate``);
* ``outputs``: SHA-256 and size of every other file of the run folder, by path relative to it;
* ``configuration``: the settings that determine the results (for ``run``: the results
  document's ``run`` section with seeds, profile, scenario overrides, every detector tunable and
  the config digest, plus each scenario's effective parameters), with its own digest;
* ``environment``: Python, platform, the harness version and the version of every installed
  distribution the harness depends on (the transitive closure of its requirements, through
  :mod:`importlib.metadata`);
* ``git``: the commit the harness runs from, read from ``.git`` without needing git (``git``
  itself is asked only whether the tree has uncommitted changes, when it is installed), or
  ``null`` outside a checkout;
* ``command``: the command line that reproduces the run, every option explicit (defaults
  included; output location, worker count and verbosity left out, as they do not change
  results), and the folder it ran in (relative input paths are relative to it);
* ``manifest_digest``: SHA-256 of the canonical JSON of everything above.

:func:`verify` re-hashes every listed file and reports each changed, missing or extra one. The
manifest is checked too: it must be in canonical form (so no byte can change unnoticed, not even
whitespace) and match its digest. The digest only proves integrity against accidental change: a
forger can rewrite it. For tamper evidence keep the digest somewhere the run cannot write (a CI
log, a signed tag) and pass it as ``verify --expect-digest``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import platform
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.errors import HarnessError, InputError
from harness.results import canonical_json

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "EvidenceMismatch",
    "InputFile",
    "VerifyReport",
    "code_inputs",
    "command_configuration",
    "dependency_versions",
    "environment",
    "file_inputs",
    "git_info",
    "load_manifest",
    "reproduce_command",
    "run_configuration",
    "sha256_file",
    "verify",
    "write_manifest",
]

MANIFEST_NAME = "evidence.json"
MANIFEST_VERSION = "1.0"
DISTRIBUTION = "egress-harness"
#: The packages whose code produces and judges the telemetry of a run.
CODE_PACKAGES = ("harness", "scenarios", "detectors")
#: ``run``/``evaluate`` options that do not change results; left out of the reproduce command.
NOT_REPRODUCED = frozenset({"out", "quiet", "workers"})
_CHUNK = 1 << 20
_SKIP_DIRS = frozenset({"__pycache__"})


class EvidenceMismatch(HarnessError):
    """A file listed in an evidence manifest changed, went missing or appeared, or the manifest
    itself was altered (exit 1: a verdict, not a fault)."""

    exit_code = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InputFile:
    """A file a run read, and the part it played (``code``, ``telemetry``, ``labels``,
    ``policy``, ``baseline``, ...)."""

    path: Path
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """What :func:`verify` found; ``ok`` when nothing changed, went missing or appeared."""

    manifest: Path
    manifest_digest: str | None
    manifest_problems: tuple[str, ...]
    checked: int
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.manifest_problems or self.changed or self.missing or self.extra)

    def lines(self) -> list[str]:
        """One line per finding, then a verdict line."""
        out = [f"manifest  {self.manifest}: {p}" for p in self.manifest_problems]
        out += [f"changed   {p}" for p in self.changed]
        out += [f"missing   {p}" for p in self.missing]
        out += [f"extra     {p}" for p in self.extra]
        if self.ok:
            out.append(f"OK: {self.checked} files match {self.manifest} ({self.manifest_digest})")
        else:
            out.append(
                f"FAILED: {len(self.changed)} changed, {len(self.missing)} missing, "
                f"{len(self.extra)} extra"
                + (", manifest altered" if self.manifest_problems else "")
                + f" ({self.checked} files listed)"
            )
        return out


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path, name: str) -> dict[str, Any]:
    try:
        return {"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    except OSError as exc:
        raise HarnessError(f"cannot hash {path}: {exc.strerror or exc}") from exc


def _files_under(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not _SKIP_DIRS.intersection(p.relative_to(root).parts)
        and p.suffix != ".pyc"
    )


def code_inputs(classes: Iterable[type] = ()) -> list[InputFile]:
    """Every file of the harness's code packages, plus the source file of each plugin class in
    ``classes`` that lives outside them (a user's detector or scenario)."""
    files: list[Path] = []
    roots: list[Path] = []
    for name in CODE_PACKAGES:
        spec = importlib.util.find_spec(name)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations))).resolve()
        roots.append(root)
        files += _files_under(root)
    for cls in classes:
        try:
            source = inspect.getsourcefile(cls)
        except TypeError:
            continue
        if source is None:
            continue
        path = Path(source).resolve()
        if not any(path.is_relative_to(r) for r in roots):
            files.append(path)
    return [InputFile(path=p, role="code") for p in dict.fromkeys(files)]


def file_inputs(paths: Iterable[str | Path], role: str) -> list[InputFile]:
    """Input files of ``role``: each path, or every file under it when it is a folder."""
    out: list[InputFile] = []
    for item in paths:
        path = Path(item).resolve()
        found = _files_under(path) if path.is_dir() else [path]
        out += [InputFile(path=p, role=role) for p in found]
    return out


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQ_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def dependency_versions(root: str = DISTRIBUTION) -> dict[str, str]:
    """Installed version of ``root`` and of every distribution it requires, transitively
    (requirements of optional extras are left out; ones not installed, e.g. for another
    platform, are skipped)."""
    versions: dict[str, str] = {}
    todo = [root]
    while todo:
        name = _normalise(todo.pop())
        if name in versions:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        versions[name] = dist.version
        for req in dist.requires or ():
            spec, _, marker = req.partition(";")
            if "extra" in marker:
                continue
            match = _REQ_NAME.match(spec)
            if match:
                todo.append(match.group(1))
    return dict(sorted(versions.items()))


def environment() -> dict[str, Any]:
    """Python, platform and dependency versions of this process."""
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "harness_version": __version__,
        "distributions": dependency_versions(),
    }


def _git_dir(start: Path) -> tuple[Path, Path] | None:
    """(work tree, git dir) of the checkout containing ``start``, following ``gitdir:`` files."""
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return folder, dot
        if dot.is_file():
            text = dot.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                target = Path(text.removeprefix("gitdir:").strip())
                return folder, (target if target.is_absolute() else folder / target).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and not line.startswith(("#", "^")):
                return sha
    return None


def _git(args: Sequence[str], cwd: Path) -> str | None:
    exe = shutil.which("git")
    if exe is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed git sub-commands, no shell
            [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_info(start: Path | None = None) -> dict[str, Any] | None:
    """Commit, ref and dirty flag of the checkout the harness runs from, or ``None``.

    The commit is read from ``.git`` (HEAD, loose refs, packed-refs; worktrees and ``gitdir:``
    files followed); ``git rev-parse HEAD`` is the fallback for layouts this does not know.
    ``dirty`` (uncommitted changes to tracked files) needs git, and is ``None`` without it."""
    here = (start or Path(__file__)).resolve()
    found = _git_dir(here if here.is_dir() else here.parent)
    if found is None:
        return None
    tree, git_dir = found
    ref: str | None = None
    commit: str | None = None
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref:"):
            ref = head.removeprefix("ref:").strip()
            commit = _resolve_ref(git_dir, ref)
        else:
            commit = head
    except OSError:
        pass
    if commit is None or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit):
        out = _git(["rev-parse", "HEAD"], tree)
        commit = out.strip() if out else None
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], tree)
    return {
        "commit": commit,
        "ref": ref,
        "work_tree": str(tree),
        "dirty": None if status is None else bool(status.strip()),
    }


def reproduce_command(ctx: click.Context, *, exclude: frozenset[str] = NOT_REPRODUCED) -> list[str]:
    """The command line of the running click command with every parameter explicit (its
    parsed value, defaults included) except ``exclude``: rerunning it gives the same results."""
    root = ctx.find_root().info_name or "egress-harness"
    argv = [root, ctx.info_name or ctx.command.name or ""]
    positional: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name is None or name in exclude:
            continue
        value = ctx.params.get(name)
        if isinstance(param, click.Argument):
            values = value if isinstance(value, tuple | list) else [value]
            positional += [str(v) for v in values if v is not None]
            continue
        if not isinstance(param, click.Option):
            continue
        flag = max(param.opts, key=len)
        if param.is_flag and not param.secondary_opts:
            if value:
                argv.append(flag)
        elif param.is_flag:
            argv.append(flag if value else max(param.secondary_opts, key=len))
        elif param.multiple:
            for item in value or ():
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, str(value)]
    if positional:
        argv += ["--", *positional] if any(p.startswith("-") for p in positional) else positional
    return argv


def run_configuration(doc: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The configuration section for a ``run``: the results document's ``run`` section (seeds,
    profile, overrides, every tunable, config digest) and each scenario's effective parameters."""
    return {
        "run": doc["run"],
        "scenario_parameters": {
            name: entry["parameters"] for name, entry in sorted(doc["scenarios"].items())
        },
        **extra,
    }


def command_configuration(
    ctx: click.Context, detectors: Iterable[Any], *, exclude: frozenset[str] = NOT_REPRODUCED
) -> dict[str, Any]:
    """A configuration section from a click command's parsed options and the detector specs
    (:class:`harness.runner.DetectorSpec`) it runs, every tunable explicit: for commands such
    as ``evaluate`` that have no results-document ``run`` section."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Path) else value

    return {
        "options": {k: plain(v) for k, v in sorted(ctx.params.items()) if k not in exclude},
        "detectors": [
            {"id": d.detector.id, "tunables": d.detector(**d.tunables).tunables} for d in detectors
        ],
    }


def _digest(doc: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def write_manifest(
    folder: Path,
    *,
    command: Sequence[str],
    configuration: Mapping[str, Any],
    inputs: Sequence[InputFile] = (),
    created_utc: str | None = None,
) -> dict[str, Any]:
    """Hash every input and every file of ``folder`` and write ``folder/evidence.json``; the
    manifest, as written."""
    seen: set[Path] = set()
    input_entries = []
    for item in inputs:
        path = item.path.resolve()
        if path in seen:
            continue
        seen.add(path)
        input_entries.append({**_entry(path, str(path)), "role": item.role})
    outputs = [
        _entry(p, p.relative_to(folder).as_posix())
        for p in _files_under(folder)
        if p.relative_to(folder).as_posix() != MANIFEST_NAME
    ]
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "document": "egress-harness evidence",
        "created_utc": created_utc or datetime.now(UTC).isoformat(timespec="seconds"),
        "command": {"argv": list(command), "shell": shlex.join(command), "cwd": str(Path.cwd())},
        "configuration": dict(configuration),
        "configuration_digest": _digest(configuration),
        "environment": environment(),
        "git": git_info(),
        "inputs": sorted(input_entries, key=lambda e: (e["role"], e["path"])),
        "outputs": outputs,
    }
    manifest["manifest_digest"] = _digest(manifest)
    path = folder / MANIFEST_NAME
    try:
        path.write_text(canonical_json(manifest), encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return manifest


def load_manifest(target: Path) -> tuple[Path, bytes]:
    """The manifest path and its raw bytes for a manifest file or a run folder holding one."""
    path = target / MANIFEST_NAME if target.is_dir() else target
    if not path.is_file():
        where = f"{target} holds no {MANIFEST_NAME}" if target.is_dir() else f"{target} not found"
        raise InputError(f"no evidence manifest: {where}; give a run folder or its {MANIFEST_NAME}")
    try:
        return path, path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"unreadable ({exc})"]
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list):
        return None, ["not an egress-harness evidence manifest"]
    problems = []
    if canonical_json(doc).encode("utf-8") != raw:
        problems.append("not in canonical form: the file was edited")
    stored = doc.get("manifest_digest")
    body = {k: v for k, v in doc.items() if k != "manifest_digest"}
    if stored != _digest(body):
        problems.append(f"digest mismatch: records {stored!r}, content hashes to {_digest(body)}")
    return doc, problems


def verify(
    target: Path, *, check_inputs: bool = True, expect_digest: str | None = None
) -> VerifyReport:
    """Re-hash every file a manifest lists (see the module docstring)."""
    path, raw = load_manifest(target)
    doc, problems = _parse(raw)
    if doc is None:
        return VerifyReport(
            manifest=path,
            manifest_digest=None,
            manifest_problems=tuple(problems),
            checked=0,
            changed=(),
            missing=(),
            extra=(),
        )
    digest = doc.get("manifest_digest")
    if expect_digest is not None and digest != expect_digest:
        problems.append(f"digest {digest!r} is not the expected {expect_digest!r}")
    folder = path.parent
    changed: list[str] = []
    missing: list[str] = []
    listed: set[str] = set()
    entries = [(e, folder / e["path"], e["path"]) for e in doc["outputs"]]
    if check_inputs:
        entries += [(e, Path(e["path"]), e["path"]) for e in doc.get("inputs", [])]
    for entry, file, name in entries:
        if file.parent == folder or folder in file.parents:
            listed.add(file.relative_to(folder).as_posix())
        if not file.is_file():
            missing.append(name)
        elif _entry(file, name)["sha256"] != entry["sha256"]:
            changed.append(name)
    extra = [
        rel
        for p in _files_under(folder)
        if (rel := p.relative_to(folder).as_posix()) not in listed and p != path
    ]
    return VerifyReport(
        manifest=path,
        manifest_digest=digest,
        manifest_problems=tuple(problems),
        checked=len(entries),
        changed=tuple(changed),
        missing=tuple(missing),
        extra=tuple(extra),
    )
