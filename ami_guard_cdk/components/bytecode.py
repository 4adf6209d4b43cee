"""The function asset with CPython 3.13 bytecode beside its source, for Lambda's python3.13 runtime.

/var/task is read-only, so a runtime that finds no bytecode compiles every module of the asset on every cold start
and keeps nothing. The asset therefore ships `__pycache__/<module>.cpython-313.pyc` for each source file, compiled
at synth by a CPython 3.13 found on this machine, in unchecked-hash mode: the pyc holds a hash of its source instead
of the source's mtime (which the zip would not keep) and the runtime loads it without checking it against the
source, which ships beside it for tracebacks. The asset hash covers the source, so a changed source is a new asset
with new bytecode: stale bytecode cannot ship.

Stdlib only: bench/ builds its measured asset with these same functions without starting the CDK.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ASSET_EXCLUDES = (
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
    "**/.mypy_cache",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.hypothesis",
    "**/.DS_Store",
)
"""What never ships from functions/ (CDK glob syntax): a developer's own bytecode among it."""

TARGET_VERSION = (3, 13)
"""The Lambda runtime's Python (guard_function.RUNTIME): bytecode of another version would be ignored there."""

PYTHON_ENV = "AMIGUARD_BYTECODE_PYTHON"
"""A CPython 3.13 to compile with, or `none`: this machine has none, ship the source alone (and skip the tests
that need one)."""
NO_PYTHON = "none"

TASK_ROOT = "/var/task"
"""Where Lambda unpacks the asset: the file name compiled into each pyc (importlib puts the real path back on
load), so that the bytecode does not depend on the directory it was built in."""

COMPILE_OPTIONS = ("-q", "-o", "0", "--invalidation-mode", "unchecked-hash", "-d", TASK_ROOT)
"""`python -m compileall` options: quiet, in one process (0.09 s for the asset here; `-j 0` spends 0.2 s starting
workers), no optimization (the runtime runs without -O, so it
reads `.cpython-313.pyc`, not `.opt-1.pyc`), hash-based pycs it does not check against the source."""

_COMPILE_ENV_DROPPED = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONOPTIMIZE", "PYTHONHOME", "PYTHONPATH")
"""Settings of the caller's Python that would stop compileall writing beside the source or change what it loads."""

SOURCE_COMPILE_MS = "15 to 25"
"""What compiling the asset adds to a cold start when it ships no bytecode (bench/RESULTS.md, 2 CPUs)."""


class BytecodeError(Exception):
    """The configured interpreter cannot make the bytecode, or compiling failed."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython of TARGET_VERSION: its path, its full version, and how it was found."""

    path: str
    version: str
    found_by: str


def _version(python: str) -> tuple[tuple[int, int], str] | None:
    """(major, minor) and the full version of a CPython, or None if it does not run."""
    try:
        completed = subprocess.run(
            [python, "-c", "import sys; print(sys.implementation.name, *sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = completed.stdout.split()
    if completed.returncode != 0 or len(fields) != 4 or fields[0] != "cpython":
        return None
    major, minor, micro = (int(field) for field in fields[1:])
    return (major, minor), f"{major}.{minor}.{micro}"


def _pyenv_candidates(environ: Mapping[str, str]) -> list[str]:
    """pyenv's installed 3.13.x, newest first: its `python3.13` shim refuses when 3.13 is not the selected version."""
    root = environ.get("PYENV_ROOT", "")
    if not root and shutil.which("pyenv", path=environ.get("PATH")):
        try:
            root = subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, timeout=30, check=False, env=dict(environ)
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = ""
    if not root:
        root = str(Path.home() / ".pyenv")
    wanted = "{}.{}".format(*TARGET_VERSION)
    name = f"python{wanted}"
    found = [path for path in (Path(root) / "versions").glob(f"{wanted}*") if (path / "bin" / name).is_file()]

    def key(path: Path) -> tuple[int, ...]:
        return tuple(int(part) if part.isdigit() else -1 for part in path.name.split("."))

    return [str(path / "bin" / name) for path in sorted(found, key=key, reverse=True)]


def find_interpreter(environ: Mapping[str, str] | None = None) -> Interpreter | None:
    """A CPython 3.13 to compile the asset with, or None when there is none (or PYTHON_ENV says `none`).

    In order: PYTHON_ENV (which must be a 3.13, or BytecodeError), `python3.13` on PATH if it runs, pyenv's
    installed 3.13.x. Each is run to read its version.
    """
    environ = os.environ if environ is None else environ
    wanted = "{}.{}".format(*TARGET_VERSION)
    configured = environ.get(PYTHON_ENV, "").strip()
    if configured.lower() == NO_PYTHON:
        return None
    if configured:
        version = _version(configured)
        if version is None:
            raise BytecodeError(f"{PYTHON_ENV}={configured}: does not run as a CPython (expected Python {wanted})")
        if version[0] != TARGET_VERSION:
            raise BytecodeError(
                f"{PYTHON_ENV}={configured} is Python {version[1]}; the functions run on Python {wanted} and need "
                f"its bytecode (unset it to search for one, or set it to `{NO_PYTHON}` to ship the source alone)"
            )
        return Interpreter(configured, version[1], PYTHON_ENV)
    on_path = shutil.which(f"python{wanted}", path=environ.get("PATH"))
    candidates = [(on_path, "PATH")] if on_path else []
    candidates += [(path, "pyenv") for path in _pyenv_candidates(environ)]
    for path, found_by in candidates:
        version = _version(path)
        if version is not None and version[0] == TARGET_VERSION:
            return Interpreter(path, version[1], found_by)
    return None


@functools.cache
def interpreter() -> Interpreter | None:
    """find_interpreter() in this process's environment, looked for once per process (a synth makes many stacks)."""
    return find_interpreter()


def recipe() -> str:
    """How the bytecode is made, in one line: what the asset hash covers besides the source."""
    return "CPython {}.{}: python -m compileall ".format(*TARGET_VERSION) + " ".join(COMPILE_OPTIONS)


def excluded(relative: str, patterns: Sequence[str] = ASSET_EXCLUDES) -> bool:
    """The CDK's glob excludes on a path relative to the asset: `**/` matches any number of directories, even none."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatchcase("/".join(parts[i:]), tail) for i in range(len(parts))):
                return True
        elif fnmatch.fnmatchcase(relative, pattern):
            return True
    return False


def copy_source(source: Path, target: Path, patterns: Sequence[str] = ASSET_EXCLUDES) -> list[str]:
    """Copy `source` into `target` without what `patterns` exclude; the copied paths, relative and sorted."""
    names: list[str] = []
    for directory, subdirectories, files in os.walk(source):
        base = Path(directory).relative_to(source).as_posix()
        prefix = "" if base == "." else base + "/"
        subdirectories[:] = sorted(d for d in subdirectories if not excluded(prefix + d, patterns))
        for name in sorted(files):
            if not excluded(prefix + name, patterns):
                (target / prefix).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(directory) / name, target / prefix / name)
                names.append(prefix + name)
    return names


STAGING_PREFIX = "ami-guard-asset-"
"""The staged package's directory in the system's temporary directory: ami-guard-asset-<sha256 of its files>."""


def staged_package(package: Path, patterns: Sequence[str] = ASSET_EXCLUDES, root: Path | None = None) -> Path:
    """A directory holding a copy of `package` (a Python package directory) without `patterns`, and nothing else:
    the asset's source, wherever the package is installed (site-packages holds much else beside it).

    Named after the SHA-256 of the copied files' paths and contents under `root` (the system's temporary
    directory), made once and reused: the CDK reads it while the stack is built (and, with asset staging disabled,
    at deployment), and the same package is the same directory.
    """
    digest = hashlib.sha256()
    for directory, subdirectories, names in os.walk(package):
        base = Path(directory).relative_to(package).as_posix()
        prefix = "" if base == "." else base + "/"
        subdirectories[:] = sorted(d for d in subdirectories if not excluded(prefix + d, patterns))
        for name in sorted(names):
            if not excluded(prefix + name, patterns):
                digest.update(f"{prefix}{name}\0".encode())
                digest.update(hashlib.sha256((Path(directory) / name).read_bytes()).digest())
    target = Path(root or tempfile.gettempdir()) / f"{STAGING_PREFIX}{digest.hexdigest()}"
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}partial-", dir=target.parent))
        copy_source(package, partial / package.name, patterns)
        try:
            partial.rename(target)
        except OSError:  # another process staged the same package first
            shutil.rmtree(partial, ignore_errors=True)
    return target


def compile_tree(python: str, directory: Path) -> None:
    """Write `__pycache__/<module>.<cache tag>.pyc` beside every .py under `directory`, with `python`'s compileall."""
    completed = subprocess.run(
        [python, "-m", "compileall", *COMPILE_OPTIONS, str(directory)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env={key: value for key, value in os.environ.items() if key not in _COMPILE_ENV_DROPPED},
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-4000:]
        raise BytecodeError(f"{python} -m compileall failed on {directory} (exit {completed.returncode}):\n{output}")


def build(python: str, source: Path, target: Path, patterns: Sequence[str] = ASSET_EXCLUDES) -> list[str]:
    """The asset in `target`: `source` without `patterns`, then compiled by `python`; the copied source paths."""
    names = copy_source(source, target, patterns)
    compile_tree(python, target)
    return names


def missing_note(environ: Mapping[str, str] | None = None) -> str:
    """The one line a synth without Python 3.13 writes on stderr."""
    environ = os.environ if environ is None else environ
    target = "{}.{}".format(*TARGET_VERSION)
    if environ.get(PYTHON_ENV, "").strip().lower() == NO_PYTHON:
        why = f"{PYTHON_ENV}={NO_PYTHON}"
    else:
        why = f"no Python {target} found ({PYTHON_ENV}, python{target} on PATH, pyenv)"
    return (
        f"AMI Guard: {why}: the function asset ships its source without bytecode, so every cold start compiles it "
        f"(about {SOURCE_COMPILE_MS} ms more). To ship bytecode, install Python {target} or set {PYTHON_ENV} to "
        "one, then synthesize again."
    )


def warn_missing_once() -> None:
    """missing_note() on stderr, once per process however many stacks are built."""
    if not _warned:
        _warned.append(True)
        print(missing_note(), file=sys.stderr, flush=True)


_warned: list[bool] = []
