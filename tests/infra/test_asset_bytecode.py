"""The function asset ships CPython 3.13 bytecode, and Python 3.13 (Lambda's python3.13 runtime) loads it instead of
compiling the source: the asset as synthesized into cdk.out, imported by a real 3.13.

A machine without Python 3.13 fails these tests, unless AMIGUARD_BYTECODE_PYTHON=none says it has none (then the
asset ships its source alone, and they are skipped).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from ami_guard_cdk.components import bytecode, guard_function
from bench import asset as bench_asset
from tests.infra.conftest import HANDLERS, Synthesized

PYC_MAGIC_313 = b"\xf3\x0d\r\n"
"""CPython 3.13's bytecode magic number, 3571 (Lib/importlib/_bootstrap_external.py), as the pyc header holds it."""
UNCHECKED_HASH = 0b01
"""PEP 552 flags: bit 0 hash-based, bit 1 check_source; an unchecked-hash pyc is 0b01."""
HANDLER_MODULES = (
    "ami_guard.handlers.permission_guard",
    "ami_guard.handlers.launch_guard",
    "ami_guard.handlers.image_guard",
    "ami_guard.handlers.tamper_guard",
)
RUNTIME_PACKAGES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
    "aws_lambda_powertools",
    "typing_extensions",
)
"""What Lambda's python3.13 runtime (boto3 and its dependencies) and the Powertools layer put on the path: the
handlers import some of these. All pure Python, so this environment's copies import under 3.13 too."""

IMPORT_SCRIPT = r"""
import importlib, json, os, sys
asset, packages, *modules = sys.argv[1:]
sys.path[:0] = [asset, packages]
compiled = []

def record(event, args):
    # builtins.compile, which importlib's SourceLoader calls when it finds no usable bytecode
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(asset + os.sep):
        compiled.append(os.path.relpath(args[1], asset))

sys.addaudithook(record)
for name in modules:
    importlib.import_module(name)
loaded = {
    name: os.path.relpath(module.__file__, asset)
    for name, module in sys.modules.items()
    if (getattr(module, "__file__", None) or "").startswith(asset + os.sep)
}
print(json.dumps({"version": list(sys.version_info[:2]), "compiled": sorted(set(compiled)), "loaded": loaded}))
"""


def python313() -> str:
    """The CPython 3.13 the synth compiles with; no 3.13 fails the test unless AMIGUARD_BYTECODE_PYTHON=none."""
    if os.environ.get(bytecode.PYTHON_ENV, "").strip().lower() == bytecode.NO_PYTHON:
        pytest.skip(f"{bytecode.PYTHON_ENV}={bytecode.NO_PYTHON}: this machine has no Python 3.13, no bytecode ships")
    found = bytecode.interpreter()
    if found is None:
        pytest.fail(
            "no Python 3.13 found (AMIGUARD_BYTECODE_PYTHON, python3.13 on PATH, pyenv): the synthesized asset has "
            f"no bytecode. Install one, or set {bytecode.PYTHON_ENV}={bytecode.NO_PYTHON} to say this machine has none"
        )
    return found.path


def asset_dir(stack: Synthesized) -> Path:
    """The staged directory of the functions' code, found from the template's S3 key through the asset manifest."""
    codes = {json.dumps(stack.function(handler)["Code"], sort_keys=True) for handler in HANDLERS}
    assert len(codes) == 1, codes
    key = stack.function(HANDLERS[0])["Code"]["S3Key"]
    assert key.endswith(".zip"), key
    outdir = Path(stack.app.outdir)
    manifest = json.loads((outdir / f"{stack.stack.artifact_id}.assets.json").read_text(encoding="utf-8"))
    source = manifest["files"][key.removesuffix(".zip")]["source"]
    assert source["packaging"] == "zip"
    return outdir / source["path"]


def import_with_313(python: str, asset: Path, packages: Path, modules: tuple[str, ...]) -> dict[str, Any]:
    """`modules` imported by `python` from `asset`: its version, the modules loaded from it, its files compiled."""
    completed = subprocess.run(
        [python, "-I", "-B", "-c", IMPORT_SCRIPT, str(asset), str(packages), *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.fixture(scope="module")
def runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of links to this environment's copies of RUNTIME_PACKAGES, and nothing else of it."""
    target = tmp_path_factory.mktemp("runtime-packages")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        origin = Path(spec.origin)
        path = origin.parent if origin.name == "__init__.py" else origin
        (target / path.name).symlink_to(path)
    return target


def test_every_source_file_of_the_asset_has_its_unchecked_313_bytecode_and_no_other(
    default_stack: Synthesized,
) -> None:
    # Given the asset the template deploys
    python313()
    asset = asset_dir(default_stack)
    sources = sorted(path.relative_to(asset) for path in asset.rglob("*.py"))
    pycs = sorted(path.relative_to(asset) for path in asset.rglob("*.pyc"))

    # Then each source has exactly one pyc, CPython 3.13's, beside it in __pycache__, and there is no other
    assert Path("ami_guard/handlers/permission_guard.py") in sources
    assert pycs == sorted(path.parent / "__pycache__" / f"{path.stem}.cpython-313.pyc" for path in sources)
    for pyc in pycs:
        header = (asset / pyc).read_bytes()[:16]
        assert header[:4] == PYC_MAGIC_313, pyc
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH, pyc


def test_python_313_imports_every_handler_from_the_assets_bytecode_and_compiles_nothing(
    default_stack: Synthesized, runtime_packages: Path, tmp_path: Path
) -> None:
    python = python313()
    asset = asset_dir(default_stack)
    # Given the recorder sees a compile: the same asset without its bytecode, imported by 3.13, is compiled
    bare = tmp_path / "bare"
    shutil.copytree(asset, bare, ignore=shutil.ignore_patterns("__pycache__"))
    from_source = import_with_313(python, bare, runtime_packages, HANDLER_MODULES)
    assert "ami_guard/handlers/permission_guard.py" in from_source["compiled"]
    assert "ami_guard/events/__init__.py" in from_source["compiled"]

    # When Python 3.13 imports the four handlers from the asset as synthesized
    result = import_with_313(python, asset, runtime_packages, HANDLER_MODULES)

    # Then it is 3.13, every handler and the modules they need came from the asset, and none was compiled
    assert result["version"] == [3, 13]
    loaded = result["loaded"]
    for name in (*HANDLER_MODULES, "ami_guard.events", "ami_guard.findings", "ami_guard.guard"):
        assert name in loaded, name
    assert set(loaded) == set(from_source["loaded"])
    assert result["compiled"] == []


def minimal_asset_hash(source: Path, outdir: Path) -> tuple[str, Path]:
    """The asset hash and staged directory of function_code(source) in a stack of its own."""
    app = App(outdir=str(outdir))
    stack = Stack(app, "AssetOnly")
    lambda_.Function(
        stack,
        "Function",
        runtime=guard_function.RUNTIME,
        handler="ami_guard.handlers.permission_guard.lambda_handler",
        code=guard_function.function_code(source),
    )
    app.synth()
    files = json.loads((outdir / "AssetOnly.assets.json").read_text(encoding="utf-8"))["files"]
    ((asset_hash, entry),) = [(h, f) for h, f in files.items() if f["source"]["packaging"] == "zip"]
    return asset_hash, outdir / entry["source"]["path"]


def test_a_changed_source_is_a_new_asset_with_new_bytecode(default_stack: Synthesized, tmp_path: Path) -> None:
    # Given the package as staged and a copy of it elsewhere, and a copy with one module changed
    python313()
    same = tmp_path / "same"
    changed = tmp_path / "changed"
    for copy in (same, changed):
        shutil.copytree(bytecode.staged_package(guard_function.PACKAGE_DIR), copy)
    contract = changed / "ami_guard" / "contract.py"
    contract.write_text(contract.read_text(encoding="utf-8") + "\nCHANGED = True\n", encoding="utf-8")

    # When each is synthesized
    original, _ = minimal_asset_hash(bytecode.staged_package(guard_function.PACKAGE_DIR), tmp_path / "out-original")
    copied, _ = minimal_asset_hash(same, tmp_path / "out-same")
    edited, edited_dir = minimal_asset_hash(changed, tmp_path / "out-changed")

    # Then the hash follows the content, not the place: the stack's own asset is the original's, the change is new
    assert original == copied == asset_dir(default_stack).name.removeprefix("asset.")
    assert edited != original
    # and the new asset's bytecode is that of the changed source
    assert b"CHANGED" in (edited_dir / "ami_guard" / "__pycache__" / "contract.cpython-313.pyc").read_bytes()


def test_the_benchmark_measures_the_asset_the_synth_stages(default_stack: Synthesized, tmp_path: Path) -> None:
    # Given the asset the template deploys and the one the benchmark builds (bytecode for its own Python)
    python313()
    staged = asset_dir(default_stack)
    names = bench_asset.build(tmp_path / "bench.zip")

    # Then they hold the same files, the benchmark's bytecode in place of 3.13's
    tag = sys.implementation.cache_tag
    assert sorted(name.replace(f".{tag}.pyc", ".cpython-313.pyc") for name in names) == sorted(
        path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file()
    )


# --- finding the interpreter --------------------------------------------------------------------------------------


def fake_python(path: Path, version: str, *, works: bool = True) -> Path:
    """An executable answering the version probe as a CPython `version` would (or failing, like a refusing shim)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    major, minor, micro = version.split(".")
    body = (
        f"echo cpython {major} {minor} {micro}"
        if works
        else "echo 'pyenv: python3.13: command not found' >&2; exit 127"
    )
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_the_configured_interpreter_must_be_313(tmp_path: Path) -> None:
    old = fake_python(tmp_path / "bin" / "python3", "3.11.7")
    with pytest.raises(bytecode.BytecodeError, match=r"AMIGUARD_BYTECODE_PYTHON=.*python3 is Python 3\.11\.7"):
        bytecode.find_interpreter({bytecode.PYTHON_ENV: str(old), "PATH": ""})
    with pytest.raises(bytecode.BytecodeError, match="does not run as a CPython"):
        bytecode.find_interpreter({bytecode.PYTHON_ENV: str(tmp_path / "missing"), "PATH": ""})
    new = fake_python(tmp_path / "bin" / "python3.13", "3.13.2")
    assert bytecode.find_interpreter({bytecode.PYTHON_ENV: str(new), "PATH": ""}) == bytecode.Interpreter(
        str(new), "3.13.2", "AMIGUARD_BYTECODE_PYTHON"
    )
    assert bytecode.find_interpreter({bytecode.PYTHON_ENV: "none", "PATH": str(new.parent)}) is None


def test_a_refusing_python313_on_path_falls_back_to_pyenvs_newest_313(tmp_path: Path) -> None:
    # Given a python3.13 shim that refuses (pyenv's, when 3.13 is not the selected version) and pyenv's installs
    shim = fake_python(tmp_path / "shims" / "python3.13", "3.13.0", works=False)
    root = tmp_path / "pyenv"
    fake_python(root / "versions" / "3.13.0" / "bin" / "python3.13", "3.13.0")
    newest = fake_python(root / "versions" / "3.13.10" / "bin" / "python3.13", "3.13.10")
    fake_python(root / "versions" / "3.12.1" / "bin" / "python3.12", "3.12.1")
    environ = {"PATH": str(shim.parent), "PYENV_ROOT": str(root)}

    # Then pyenv's newest 3.13 is taken (3.13.10 after 3.13.0: numbers, not strings)
    assert bytecode.find_interpreter(environ) == bytecode.Interpreter(str(newest), "3.13.10", "pyenv")
    # and a working python3.13 on PATH comes first
    working = fake_python(tmp_path / "bin" / "python3.13", "3.13.1")
    environ["PATH"] = f"{working.parent}{os.pathsep}{shim.parent}"
    assert bytecode.find_interpreter(environ) == bytecode.Interpreter(str(working), "3.13.1", "PATH")
    # and none anywhere is None
    assert bytecode.find_interpreter({"PATH": str(shim.parent), "PYENV_ROOT": str(tmp_path / "empty")}) is None


def test_without_313_the_synth_says_once_what_cold_starts_pay_and_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given no 3.13 on this machine
    monkeypatch.delenv(bytecode.PYTHON_ENV, raising=False)
    monkeypatch.setattr(bytecode, "interpreter", lambda: None)
    monkeypatch.setattr(bytecode, "_warned", [])

    # When two functions' code is made
    _, first_dir = minimal_asset_hash(bytecode.staged_package(guard_function.PACKAGE_DIR), tmp_path / "a")
    guard_function.function_code()

    # Then one line on stderr says it, the asset is the source alone
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("AMI Guard:")]
    assert lines == [bytecode.missing_note({})]
    assert "every cold start compiles it" in lines[0] and "install Python 3.13" in lines[0]
    assert not list(first_dir.rglob("*.pyc"))
    assert (first_dir / "ami_guard" / "handlers" / "permission_guard.py").is_file()
