"""The function asset as `Code.from_asset` builds it: functions/ zipped without the stack's ASSET_EXCLUDES.

The excludes are read from stacks/components/guard_function.py as written (importing it would start the CDK).
"""

from __future__ import annotations

import ast
import fnmatch
import os
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
STACK_FILE = ROOT / "stacks" / "components" / "guard_function.py"


def asset_excludes(stack_file: Path = STACK_FILE) -> tuple[str, ...]:
    for node in ast.parse(stack_file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ASSET_EXCLUDES" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return tuple(str(pattern) for pattern in value)
    raise LookupError(f"ASSET_EXCLUDES not found in {stack_file}")


def excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    """The CDK's glob excludes: `**/` matches any number of directories, including none."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatchcase("/".join(parts[i:]), tail) for i in range(len(parts))):
                return True
        elif fnmatch.fnmatchcase(relative, pattern):
            return True
    return False


def build(zip_path: Path, source: Path = FUNCTIONS_DIR) -> list[str]:
    """Zip `source` as the stack ships it; returns the archived paths."""
    patterns = asset_excludes()
    names: list[str] = []
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for directory, subdirectories, files in os.walk(source):
            base = Path(directory).relative_to(source).as_posix()
            prefix = "" if base == "." else base + "/"
            subdirectories[:] = sorted(d for d in subdirectories if not excluded(prefix + d, patterns))
            for name in sorted(files):
                if not excluded(prefix + name, patterns):
                    archive.write(Path(directory) / name, prefix + name)
                    names.append(prefix + name)
    return names
