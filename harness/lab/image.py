"""The Docker lab image, built locally from this machine's own Python runtime (no registry).

No registry is reachable where the lab runs, so the image is assembled from files already on the
machine: a build context whose Dockerfile starts ``FROM scratch`` and copies a root filesystem the
harness lays out itself. Two images, so that editing the harness does not recopy the runtime:

* the **runtime** image ``egress-harness-lab:rt-<hash>``: the interpreter that runs the harness
  (``sys.executable`` resolved), the shared libraries it and every extension module need (found
  with ``ldd``, the loader included), the standard library (without its test suite, IDLE and
  Tk), the third-party packages of the harness's environment (its ``site-packages`` minus
  developer tools: pip, mypy, ruff), and a minimal ``/etc`` (passwd, group, hosts,
  nsswitch.conf, resolv.conf) with ``/tmp``, and ``/bin/sh`` (the host's, for Atomic tests'
  ``sh`` executor). Every file keeps its absolute host path (the
  interpreter's run path and prefix are compiled in), and the environment's packages move into the
  base installation's ``site-packages``, so the container's ``python`` needs no virtualenv.
* the **lab** image ``egress-harness-lab:<hash>``: ``FROM`` the runtime image, plus the
  project's own packages (``harness``, ``scenarios``, ``detectors``, data files included) at
  the project's host path (:func:`project_root`), which ``PYTHONPATH`` names: paths into the
  project (the Atomic tests in ``scenarios/atomics``) are valid in the containers too.

Tags are content hashes: the runtime's over the path, size, mode and modification time of every
file it takes (and the dynamic loader's cache, which changes when system libraries do), the lab's
over the runtime tag and the bytes of the project's files. :func:`ensure_image` builds only what
is missing, so a second call is a cache hit that costs a directory walk; older tags are removed
after a build (unless a container still uses them). There are no other tools in the image (no
``ip``, no coreutils): the lab backend configures the containers' network from the host and runs
everything in them through their Python.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import LabUnavailableError

__all__ = [
    "IMAGE_REPOSITORY",
    "LABEL",
    "BuildReport",
    "docker_sdk",
    "ensure_image",
    "ensure_image_report",
    "interpreter_path",
    "project_root",
]

IMAGE_REPOSITORY = "egress-harness-lab"
#: Image label set on every image the harness builds (``docker images -f label=...``).
LABEL = "org.egress-harness.lab"
#: Bumped when the layout below changes, so old tags are not reused.
_FORMAT = "1"
_PROJECT_PACKAGES = ("harness", "scenarios", "detectors")
#: Developer tools of the environment that no lab program imports (saves ~90 MB).
_DEV_PACKAGES = frozenset({"pip", "mypy", "mypyc", "librt", "ast_serialize", "ruff"})
#: Standard-library parts no lab program needs.
_STDLIB_SKIP = frozenset(
    {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages"}
)
_LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")
_ETC = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"
    ),
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    # The lab backend mounts its own over this one (the lab resolver).
    "etc/resolv.conf": "",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    """What :func:`ensure_image` did."""

    tag: str
    runtime_tag: str
    #: False when both images already existed.
    built: bool
    seconds: float
    #: Size of the lab image as the engine reports it.
    size_bytes: int


def docker_sdk() -> Any:
    """The ``docker`` SDK module, imported quietly: paramiko, which it imports, warns about
    ciphers that newer cryptography releases moved (a warning is an error in the tests)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"paramiko(\.|$)")
        import docker  # type: ignore[import-untyped]
    return docker


def interpreter_path() -> str:
    """The interpreter that runs the harness, symlinks resolved: the same path in the image."""
    return os.path.realpath(sys.executable)


# -- what goes into the runtime image ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    """One file of the image: where it is on the host, where it goes in the image."""

    source: Path
    target: str  # absolute path in the image
    #: An executable whose shared libraries the image needs (extension modules are found by
    #: their names).
    executable: bool = False


def _walk(root: Path, skip_top: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Files and symlinks under ``root`` in a stable order (top-level names in ``skip_top``
    and ``__pycache__`` of skipped trees left out)."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in skip_top]
        dirnames.sort()
        for name in sorted(filenames):
            yield here / name
        # os.walk does not descend into symlinked directories: keep them as links.
        for d in list(dirnames):
            if (here / d).is_symlink():
                yield here / d
                dirnames.remove(d)


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _skip_site(name: str) -> bool:
    if name.startswith(("_editable_impl_", "__editable__")):
        return True  # the editable install points at the host's work tree
    base = name.split("-", 1)[0].split(".", 1)[0].lower()
    return base in _DEV_PACKAGES or "__mypyc" in name


def _runtime_entries() -> list[_Entry]:
    prefix = Path(sys.base_prefix)
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(prefix)})["stdlib"])
    exe = Path(interpreter_path())
    entries = [_Entry(source=exe, target=str(exe), executable=True)]
    # atomic-operator runs Atomic tests' "sh" executor as /bin/sh.
    shell = shutil.which("sh") or "/bin/sh"
    if os.path.exists(shell):
        entries.append(
            _Entry(source=Path(os.path.realpath(shell)), target="/bin/sh", executable=True)
        )
    # The stdlib, lib-dynload included, minus what no lab program uses.
    skip = _STDLIB_SKIP | {d for d in os.listdir(stdlib) if d.startswith("config-")}
    for path in _walk(stdlib, skip):
        if path.name.startswith("_tkinter"):
            continue
        entries.append(_Entry(source=path, target=str(path)))
    # The environment's packages, moved into the base installation's site-packages.
    site = _site_packages()
    target_site = stdlib / "site-packages"
    for top in sorted(os.listdir(site)):
        if _skip_site(top):
            continue
        src = site / top
        paths = [src] if not src.is_dir() or src.is_symlink() else list(_walk(src))
        for path in paths:
            entries.append(_Entry(source=path, target=str(target_site / path.relative_to(site))))
    return entries


def _elf_files(entries: Iterable[_Entry]) -> list[str]:
    found = []
    for e in entries:
        name = e.source.name
        if e.executable or e.source.is_symlink() or not (name.endswith(".so") or ".so." in name):
            continue
        found.append(str(e.source))
    return found


def _shared_libraries(binaries: list[str], inside: tuple[str, ...]) -> list[str]:
    """Every shared library (and the loader) that ``binaries`` load, except those already
    under one of the ``inside`` directories (wheels' bundled libraries)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise LabUnavailableError(
            "cannot build the docker lab image: ldd is missing (install libc-bin), "
            "or use --backend netns"
        )
    libs: set[str] = set()
    for i in range(0, len(binaries), 200):
        batch = binaries[i : i + 200]
        # ldd exits 1 when one of many files is not dynamic; its output is still complete.
        out = subprocess.run(  # noqa: S603 - fixed tool, our own file list
            [ldd, *batch], capture_output=True, text=True, check=False
        ).stdout
        for line in out.splitlines():
            m = _LDD_LINE.match(line)
            if m and not m.group(1).startswith(inside):
                libs.add(m.group(1))
    return sorted(libs)


def _runtime_fingerprint(entries: list[_Entry]) -> str:
    h = hashlib.sha256(f"egress-harness-lab runtime {_FORMAT}\n".encode())
    # The layout is this module's: a change to it is a new runtime image.
    h.update(Path(__file__).read_bytes())
    for extra in ("/etc/ld.so.cache",):
        try:
            st = os.stat(extra)
            h.update(f"{extra} {st.st_size} {st.st_mtime_ns}\n".encode())
        except OSError:
            pass
    for e in entries:
        st = e.source.lstat()
        h.update(f"{e.target} {st.st_size} {st.st_mode} {st.st_mtime_ns}\n".encode())
    for name, text in sorted(_ETC.items()):
        h.update(f"{name}\n{text}".encode())
    return h.hexdigest()[:16]


def project_root() -> str:
    """The directory holding the :mod:`harness` package: the same path in the lab image, so that
    paths into the project (``scenarios/atomics``) mean the same inside the containers."""
    return str(Path(__file__).resolve().parents[2])


def _project_entries() -> list[_Entry]:
    root = Path(project_root())
    entries = []
    for package in _PROJECT_PACKAGES:
        for path in _walk(root / package):
            if "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
                continue
            rel = path.relative_to(root)
            entries.append(_Entry(source=path, target=f"{root}/{rel.as_posix()}"))
    return entries


def _project_fingerprint(runtime_tag: str, entries: list[_Entry]) -> str:
    h = hashlib.sha256(f"egress-harness-lab project {_FORMAT} {runtime_tag}\n".encode())
    for e in entries:
        h.update(f"{e.target}\n".encode())
        if e.source.is_symlink():
            h.update(os.readlink(e.source).encode())
        else:
            h.update(e.source.read_bytes())
    return h.hexdigest()[:16]


# -- build contexts ----------------------------------------------------------------------------


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_entry(tar: tarfile.TarFile, arcname: str, source: Path, *, dereference: bool) -> None:
    st = source.stat() if dereference else source.lstat()
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(source)
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        with source.open("rb") as f:
            tar.addfile(info, f)


def _parents(target: str) -> list[str]:
    parts = Path(target).parent.parts[1:]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _write_rootfs(tar: tarfile.TarFile, prefix: str, files: list[tuple[str, Path, bool]]) -> None:
    """Add ``files`` (image path, host path, dereference) under ``prefix`` with their parent
    directories first (real directories: the host's usr-merge symlinks are not copied)."""
    made: set[str] = set()
    for target, source, deref in files:
        for d in _parents(target):
            if d not in made:
                made.add(d)
                _add_dir(tar, f"{prefix}{d}")
        _add_entry(tar, f"{prefix}{target.lstrip('/')}", source, dereference=deref)


def _runtime_context(path: Path, entries: list[_Entry]) -> None:
    stdlib_site = str(Path(sysconfig.get_paths()["stdlib"]))
    # Libraries bundled inside the trees copied anyway (numpy.libs, ...) are not added twice.
    inside = (stdlib_site + "/", str(_site_packages()) + "/")
    binaries = [str(e.source) for e in entries if e.executable] + _elf_files(entries)
    libs = _shared_libraries(binaries, inside)
    files = [(e.target, e.source, False) for e in entries]
    files += [(lib, Path(lib), True) for lib in libs]
    lib_dirs = sorted({str(Path(lib).parent) for lib in libs})
    exe = interpreter_path()
    dockerfile = "\n".join(
        [
            "FROM scratch",
            "COPY rootfs/ /",
            f"ENV PATH={Path(exe).parent}:/bin LD_LIBRARY_PATH={':'.join(lib_dirs)} "
            f"PYTHONHOME={sys.base_prefix} PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8",
            f'LABEL {LABEL}="runtime" {LABEL}.python="{exe}" {LABEL}.stdlib="{stdlib_site}"',
            f'CMD ["{exe}"]',
            "",
        ]
    )
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        _add_text(tar, "Dockerfile", dockerfile)
        _add_dir(tar, "rootfs")
        _add_dir(tar, "rootfs/tmp", 0o1777)
        _add_dir(tar, "rootfs/root", 0o700)
        _add_dir(tar, "rootfs/etc")
        for name, text in sorted(_ETC.items()):
            _add_text(tar, f"rootfs/{name}", text)
        _write_rootfs(tar, "rootfs/", files)


def _project_context(path: Path, entries: list[_Entry], runtime_tag: str) -> None:
    dockerfile = "\n".join(
        [
            f"FROM {runtime_tag}",
            f"COPY src/ {project_root()}/",
            f"ENV PYTHONPATH={project_root()}",
            f'LABEL {LABEL}="lab" {LABEL}.runtime="{runtime_tag}"',
            "",
        ]
    )
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        _add_text(tar, "Dockerfile", dockerfile)
        files = [(e.target.removeprefix(project_root()), e.source, False) for e in entries]
        _write_rootfs(tar, "src/", files)


def _image_exists(client: Any, tag: str) -> bool:
    errors = docker_sdk().errors
    try:
        client.images.get(tag)
    except errors.ImageNotFound:
        return False
    return True


def _build(client: Any, tag: str, write: Callable[[Path], None]) -> None:
    errors = docker_sdk().errors
    with tempfile.TemporaryDirectory(prefix="eh-image-") as tmp:
        context = Path(tmp) / "context.tar"
        write(context)
        try:
            with context.open("rb") as f:
                client.images.build(
                    fileobj=f, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False
                )
        except (errors.BuildError, errors.APIError) as exc:
            raise LabUnavailableError(
                f"cannot build the docker lab image {tag}: {exc}; use --backend netns"
            ) from exc


def _prune(client: Any, keep: set[str]) -> None:
    """Remove the harness's older lab images (project layers first, then runtimes); an image a
    container still uses, or another image builds on, stays (the engine refuses)."""
    errors = docker_sdk().errors
    for kind in ("lab", "runtime"):
        for image in client.images.list(filters={"label": f"{LABEL}={kind}"}):
            for tag in image.tags:
                if tag.startswith(f"{IMAGE_REPOSITORY}:") and tag not in keep:
                    with contextlib.suppress(errors.APIError):
                        client.images.remove(tag, noprune=False)


def ensure_image(client: Any) -> str:
    """The tag of the lab image for the current runtime and project files, built if missing
    (a cache hit costs a walk of the files); :class:`LabUnavailableError` if the build fails."""
    return ensure_image_report(client).tag


def ensure_image_report(client: Any) -> BuildReport:
    """:func:`ensure_image` with what it did: built or not, seconds, image size."""
    start = time.monotonic()
    runtime = _runtime_entries()
    rt_tag = f"{IMAGE_REPOSITORY}:rt-{_runtime_fingerprint(runtime)}"
    project = _project_entries()
    tag = f"{IMAGE_REPOSITORY}:{_project_fingerprint(rt_tag, project)}"
    built = False
    if not _image_exists(client, tag):
        if not _image_exists(client, rt_tag):
            _build(client, rt_tag, lambda path: _runtime_context(path, runtime))
        _build(client, tag, lambda path: _project_context(path, project, rt_tag))
        built = True
        _prune(client, keep={tag, rt_tag})
    size = int(client.images.get(tag).attrs.get("Size", 0))
    return BuildReport(
        tag=tag,
        runtime_tag=rt_tag,
        built=built,
        seconds=time.monotonic() - start,
        size_bytes=size,
    )
