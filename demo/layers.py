"""Which Powertools a deployed function was given: its layer ARN, mapped to the library version through the mapping
the stack deploys from (ami_guard_cdk/components/guard_function.py: POWERTOOLS_LAYER_VERSIONS, POWERTOOLS_LAYER_NAME,
POWERTOOLS_LAYER_ACCOUNT).

The emulator cannot download a layer; the runner links the locally installed aws-lambda-powertools in its place
(demo.lambda_runtime), and only when the deployed layer is the public Powertools layer of exactly that version.
Any other layer is refused: the function would run with code the runner cannot supply.

The mapping is read from the module's source with `ast`, not imported: importing it would import aws_cdk and
start its jsii kernel in the harness for three constants.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GUARD_FUNCTION_SOURCE = Path(__file__).resolve().parents[1] / "ami_guard_cdk" / "components" / "guard_function.py"
MAPPING_NAMES = ("POWERTOOLS_LAYER_VERSIONS", "POWERTOOLS_LAYER_NAME", "POWERTOOLS_LAYER_ACCOUNT")
POWERTOOLS_DISTRIBUTION = "aws-lambda-powertools"
LAYER_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"layer:(?P<name>[A-Za-z0-9_-]+):(?P<version>\d+)$"
)


class LayerRefused(Exception):
    """The runner cannot supply what this layer holds."""


@dataclass(frozen=True)
class PowertoolsLayers:
    """The public layer's account and name, and its layer version of each library version."""

    account: str
    name: str
    versions: Mapping[str, int]


def sourced_mapping(source: Path = GUARD_FUNCTION_SOURCE) -> PowertoolsLayers:
    """The module-level literals MAPPING_NAMES of the stack's guard function module."""
    found: dict[str, object] = {}
    for node in ast.parse(source.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in MAPPING_NAMES
        ):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    missing = [name for name in MAPPING_NAMES if name not in found]
    if missing:
        raise LayerRefused(f"{source}: no literal {', '.join(missing)}: the layer mapping cannot be read")
    versions = found["POWERTOOLS_LAYER_VERSIONS"]
    if not isinstance(versions, dict) or not all(isinstance(v, int) for v in versions.values()):
        raise LayerRefused(f"{source}: POWERTOOLS_LAYER_VERSIONS is not a {{version: layer number}} dict")
    return PowertoolsLayers(
        account=str(found["POWERTOOLS_LAYER_ACCOUNT"]),
        name=str(found["POWERTOOLS_LAYER_NAME"]),
        versions={str(k): int(v) for k, v in versions.items()},
    )


def powertools_version(layer_arn: str, *, region: str, layers: PowertoolsLayers) -> str:
    """The Powertools version the layer ARN holds, or LayerRefused saying why it is not one the mapping knows."""
    match = LAYER_ARN.match(layer_arn)
    if match is None:
        raise LayerRefused(f"{layer_arn!r} is not a layer version ARN")
    if match["region"] != region:
        raise LayerRefused(f"{layer_arn}: a layer of {match['region']}, the function is in {region}")
    if match["account"] != layers.account or match["name"] != layers.name:
        raise LayerRefused(
            f"{layer_arn}: not the Powertools public layer ({layers.account}:layer:{layers.name}); the runner cannot "
            "supply its code"
        )
    number = int(match["version"])
    known = [version for version, layer_number in layers.versions.items() if layer_number == number]
    if len(known) != 1:
        raise LayerRefused(
            f"{layer_arn}: layer version {number} is not in POWERTOOLS_LAYER_VERSIONS "
            f"({', '.join(f'{v} -> {n}' for v, n in sorted(layers.versions.items()))})"
        )
    return known[0]


def installed_powertools() -> str | None:
    try:
        return metadata.version(POWERTOOLS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def check_layers(layer_arns: list[str], *, region: str, layers: PowertoolsLayers, installed: str | None) -> str | None:
    """The Powertools version to supply for these layers (None: no layer, nothing supplied), or LayerRefused."""
    if not layer_arns:
        return None
    if len(layer_arns) > 1:
        raise LayerRefused(f"{len(layer_arns)} layers ({', '.join(layer_arns)}): the runner supplies Powertools only")
    version = powertools_version(layer_arns[0], region=region, layers=layers)
    if installed != version:
        raise LayerRefused(
            f"{layer_arns[0]} is Powertools {version}; the runner can supply only the installed "
            f"{POWERTOOLS_DISTRIBUTION} {installed or '(not installed)'}"
        )
    return version
