"""What the Lambda Python runtime and the Powertools layer put on a function's import path, from local packages.

Lambda imports a function from its deployment package (/var/task) first, then its layers (/opt/python), then the
runtime's own packages (boto3 and its dependencies). The emulator cannot fetch the Powertools public layer, so
the layer directory is made of the locally installed aws-lambda-powertools, which requirements-dev.txt pins to the
layer's version (ami_guard_cdk/components/guard_function.py: POWERTOOLS_VERSION); the runtime directory is the locally
installed boto3. Only these distributions and their dependencies are linked in, so a function that needs anything
else fails here as it would in Lambda. (The interpreter is this one, not python3.13 on arm64.)
"""

from __future__ import annotations

import importlib.metadata as metadata
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

RUNTIME_DISTRIBUTIONS = ("boto3",)
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools",)
# The public layer bundles the library's optional dependencies; those installed here are linked in too.
LAYER_EXTRAS = frozenset({"all", "tracer", "validation", "parser"})


@dataclass(frozen=True)
class ImportPath:
    layer: Path
    runtime: Path
    missing: tuple[str, ...] = field(default=())

    def as_list(self) -> list[str]:
        return [str(self.layer), str(self.runtime)]


def _closure(roots: tuple[str, ...], extras: frozenset[str], missing: list[str]) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    pending = [(root, extras) for root in roots]
    while pending:
        name, wanted_extras = pending.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            applies = marker is None or any(marker.evaluate({"extra": extra}) for extra in (*wanted_extras, ""))
            if applies:
                pending.append((requirement.name, frozenset(requirement.extras)))
    return list(seen.values())


def _link(distributions: list[metadata.Distribution], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for dist in distributions:
        tops = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] not in ("..", "bin", "__pycache__")}
        for top in sorted(tops):
            source = Path(str(dist.locate_file(top)))
            link = target / top
            if source.exists() and not link.exists():
                link.symlink_to(source)


def build(target: Path) -> ImportPath:
    """Link the layer and runtime packages under `target` (once; reused by every invocation)."""
    missing: list[str] = []
    runtime = _closure(RUNTIME_DISTRIBUTIONS, frozenset(), missing)
    runtime_names = {d.metadata["Name"].lower() for d in runtime}
    layer_closure = _closure(LAYER_DISTRIBUTIONS, LAYER_EXTRAS, missing)
    layer = [d for d in layer_closure if d.metadata["Name"].lower() not in runtime_names]
    paths = ImportPath(layer=target / "opt-python", runtime=target / "var-runtime", missing=tuple(sorted(missing)))
    _link(layer, paths.layer)
    _link(runtime, paths.runtime)
    return paths
