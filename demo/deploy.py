"""`cdk synth`, `cdk bootstrap` and `cdk deploy` of this repository's app into the emulated account.

The pinned CDK CLI (`npx --no-install cdk`, as `make synth` runs it) with the venv first on PATH. The app is
synthesized once with the demo's amiGuard configuration; the environment-agnostic assembly is then deployed
into each region, as a pipeline would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.emulator import REPO_ROOT, Emulator

CDK = ("npx", "--no-install", "cdk", "--no-notices", "--no-version-reporting")
CONTEXT_KEY = "amiGuard"


class DeployError(Exception):
    """A CDK command failed; the message ends with the tail of its output."""


@dataclass
class Deployment:
    config: dict[str, Any]
    regions: tuple[str, ...]
    assembly: Path
    stacks: tuple[str, ...]
    seconds: dict[str, float] = field(default_factory=dict)


def demo_config(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The repository's amiGuard block (cdk.json) with the demo's values on top: `-c amiGuard=` replaces it whole."""
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    return {**cdk_json.get("context", {}).get(CONTEXT_KEY, {}), **overrides}


class Cdk:
    def __init__(self, emulator: Emulator, *, log: Callable[[str], None]) -> None:
        self.emulator = emulator
        self.log_path = emulator.work_dir / "cdk.log"
        self._log = log

    def run(self, args: Sequence[str], *, region: str, what: str) -> float:
        venv_bin = str(Path(sys.executable).parent)
        env = {
            **self.emulator.environment(region),
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_VERSION_CHECK": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            # the CLI caches the account behind each access key in ~/.cdk: keep that cache with this emulator
            "CDK_HOME": str(self.emulator.work_dir / "cdk-home"),
            "NODE_NO_WARNINGS": "1",
            "CI": "true",
        }
        started = time.monotonic()
        with self.log_path.open("a") as log:
            log.write(f"\n$ {' '.join([*CDK, *args])}   # AWS_REGION={region}\n")
            log.flush()
            completed = subprocess.run(
                [*CDK, *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        seconds = time.monotonic() - started
        if completed.returncode != 0:
            last = f"last lines of {self.log_path}:\n{self.tail()}"
            raise DeployError(f"{what} failed (exit {completed.returncode}); {last}")
        self._log(f"  {what}: done in {seconds:.1f} s")
        return seconds

    def tail(self, lines: int = 30) -> str:
        with self.log_path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines))


def synth(cdk: Cdk, assembly: Path, config: Mapping[str, Any], *, region: str, what: str) -> float:
    """`cdk synth` of the app with this amiGuard block into `assembly`; its seconds."""
    return cdk.run(
        ["synth", "--quiet", "--output", str(assembly), "-c", f"{CONTEXT_KEY}={json.dumps(dict(config))}"],
        region=region,
        what=what,
    )


def deploy(
    emulator: Emulator, *, config: Mapping[str, Any], regions: Sequence[str], log: Callable[[str], None]
) -> Deployment:
    cdk = Cdk(emulator, log=log)
    assembly = emulator.work_dir / "cdk.out"
    home = regions[0]
    seconds = {"synth": synth(cdk, assembly, config, region=home, what="cdk synth")}
    stacks = _stack_names(assembly)
    environments = [f"aws://{emulator.account}/{region}" for region in regions]
    seconds["bootstrap"] = cdk.run(
        ["bootstrap", "--app", str(assembly), *environments], region=home, what=f"cdk bootstrap {' '.join(regions)}"
    )
    for region in regions:
        seconds[f"deploy {region}"] = cdk.run(
            ["deploy", "--app", str(assembly), "--require-approval", "never", "--all"],
            region=region,
            what=f"cdk deploy {', '.join(stacks)} into {region}",
        )
    return Deployment(config=dict(config), regions=tuple(regions), assembly=assembly, stacks=stacks, seconds=seconds)


def _stack_names(assembly: Path) -> tuple[str, ...]:
    manifest = json.loads((assembly / "manifest.json").read_text())
    return tuple(
        name
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    )
