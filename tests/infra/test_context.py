"""`"sweepSchedule": null` in cdk.json turns the sweep off: app.py reads the amiGuard block from the raw context JSON
the CDK CLI passes (CDK_CONTEXT_JSON, and the overflow file it names in CONTEXT_OVERFLOW_LOCATION_ENV), because
jsii drops null values from the context objects the App hands to Python (the key would vanish: the default, daily).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import DEFAULT_BLOCK, REPO_ROOT

TIMEOUT_SECONDS = 300
SCHEDULE = "AWS::Scheduler::Schedule"
OFF: dict[str, Any] = {**DEFAULT_BLOCK, "sweepSchedule": None}
DAILY: dict[str, Any] = {key: value for key, value in DEFAULT_BLOCK.items() if key != "sweepSchedule"}


def resource_types(outdir: Path) -> list[str]:
    template = json.loads((outdir / "AmiGuard.template.json").read_text(encoding="utf-8"))
    return [resource["Type"] for resource in template["Resources"].values()]


def run_app(env: dict[str, str], outdir: Path) -> list[str]:
    """`python app.py` as the CDK CLI starts it, with these context variables; the template's resource types."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CDK_CONTEXT_JSON", "CONTEXT_OVERFLOW_LOCATION_ENV")
    }
    completed = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env={**inherited, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_OUTDIR": str(outdir), **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return resource_types(outdir)


def test_null_in_the_context_json_turns_the_sweep_off(tmp_path: Path) -> None:
    off = run_app({"CDK_CONTEXT_JSON": json.dumps({"amiGuard": OFF})}, tmp_path / "off")
    daily = run_app({"CDK_CONTEXT_JSON": json.dumps({"amiGuard": DAILY})}, tmp_path / "daily")

    assert SCHEDULE not in off
    assert daily.count(SCHEDULE) == 1


def test_null_in_the_context_overflow_file_turns_the_sweep_off(tmp_path: Path) -> None:
    # Given a context too large for the environment: the CLI moves keys into a file and names it
    overflow = tmp_path / "context-overflow.json"
    overflow.write_text(json.dumps({"amiGuard": OFF}), encoding="utf-8")

    types = run_app(
        {"CDK_CONTEXT_JSON": json.dumps({"other": 1}), "CONTEXT_OVERFLOW_LOCATION_ENV": str(overflow)},
        tmp_path / "out",
    )

    assert SCHEDULE not in types
    assert "AWS::Lambda::Function" in types


@pytest.mark.skipif(
    not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists(), reason="the pinned CDK CLI is not installed"
)
def test_null_in_cdk_json_turns_the_sweep_off_through_the_cdk_cli(tmp_path: Path) -> None:
    # Given a cdk.json whose amiGuard block says "sweepSchedule": null, the app being this repository's
    project = tmp_path / "project"
    project.mkdir()
    (project / "cdk.json").write_text(
        json.dumps({"app": f"{sys.executable} {REPO_ROOT / 'app.py'}", "context": {"amiGuard": OFF}}),
        encoding="utf-8",
    )
    outdir = tmp_path / "cdk.out"

    # When the real CLI synthesizes it
    completed = subprocess.run(
        [str(REPO_ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--no-notices", "-o", str(outdir)],
        cwd=project,
        env={
            **os.environ,
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_VERSION_CHECK": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )

    # Then no schedule (and no sweep) is deployed
    assert completed.returncode == 0, completed.stderr[-4000:]
    types = resource_types(outdir)
    assert "AWS::Lambda::Function" in types
    assert SCHEDULE not in types
    assert "AWS::StepFunctions::StateMachine" not in types
