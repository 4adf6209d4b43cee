"""The function asset as the synth stages it: functions/ without the stack's ASSET_EXCLUDES, with bytecode beside
the source, made by the same functions as the synth's bundling (ami_guard_cdk/components/bytecode.py) and the same
compileall options, for the interpreter that runs the benchmark. The synth compiles for Lambda's Python 3.13, whose
bytecode another Python ignores; the benchmark's Python needs its own to measure what Lambda pays: a cold start that
loads the asset's bytecode and compiles none of it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

from ami_guard_cdk.components import bytecode

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"


def build(zip_path: Path, source: Path = FUNCTIONS_DIR, python: str = sys.executable) -> list[str]:
    """Zip `source` as the synth stages it, bytecode compiled by `python`; returns the archived paths."""
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ami-guard-asset-") as staging:
        staged = Path(staging)
        bytecode.build(python, source, staged)
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for directory, subdirectories, files in os.walk(staged):
                subdirectories.sort()
                for name in sorted(files):
                    path = Path(directory) / name
                    relative = path.relative_to(staged).as_posix()
                    archive.write(path, relative)
                    names.append(relative)
    return names
