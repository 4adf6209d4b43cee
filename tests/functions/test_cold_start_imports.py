"""Each guard function, cold, imports the code of its own domain and nothing of the others' (issue 8: the
permission guard paid for launch and image code it never ran). Measured the way the benchmark measures a cold
start: a fresh interpreter handles the function's representative event with every AWS call answered locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ami_guard import contract
from bench import scenarios

REPO = Path(__file__).resolve().parents[2]

# What every function loads: its handler, the guard layer, the record as an ApiCall, the engine's core, alerts,
# settings, what it watches for tampering, and the registry that routes its calls; and, since every representative
# event raises an alert and the stack gives every function the findings bus, that alert's finding event.
COMMON = {
    "ami_guard",
    "ami_guard.alerts",
    "ami_guard.aws",
    "ami_guard.aws_outputs",
    "ami_guard.config",
    "ami_guard.contract",
    "ami_guard.engine",
    "ami_guard.events",
    "ami_guard.events.calls",
    "ami_guard.events.fields",
    "ami_guard.finding_events",
    "ami_guard.findings",
    "ami_guard.guard",
    "ami_guard.handlers",
    "ami_guard.rules",
    "ami_guard.rules.catalog",
    "ami_guard.rules.spec",
    "ami_guard.settings",
    "ami_guard.watched",
}
# What no function loads for an alert that fits whole at the FULL level (every representative event's alert):
# the smaller levels, the full-finding log and the SHORTENED section, split out of alerts to spare the compile.
RARE = {"ami_guard.alerts_oversize"}
# Organization mode's adapters (member-role sessions, the organization's account list): never in a standalone cold
# start, which the stack's standalone environment (no AMI_GUARD_ORGANIZATION) gives every function here.
ORGANIZATION_ONLY = {"ami_guard.aws_organization", "ami_guard.organization"}
EXPECTED = {
    "permission": COMMON
    | {
        "ami_guard.handlers.permission_guard",
        "ami_guard.engine.permissions",
        "ami_guard.events.permissions",
        "ami_guard.events.principals",
        "ami_guard.rules.common",
        "ami_guard.rules.permissions",
        # its calls: the rules of both its domains (the account-settings rules are decided from the record alone)
        "ami_guard.rules.account_settings",
        "ami_guard.events.settings",
        # its alert is a standing finding: recorded as open for the posture sweep
        "ami_guard.lifecycle",
        "ami_guard.aws_findings",
    },
    "launch": COMMON
    | {
        "ami_guard.handlers.launch_guard",
        "ami_guard.engine.launches",
        "ami_guard.events.run_instances",
        "ami_guard.instance_types",
        "ami_guard.rules.common",
        "ami_guard.rules.launches",
    },
    "image": COMMON
    | {
        "ami_guard.handlers.image_guard",
        "ami_guard.engine.images",
        "ami_guard.events.images",
        "ami_guard.rules.common",
        "ami_guard.rules.images",
        "ami_guard.rules.copies",  # its calls: the rules of both its domains
        # its alert is a standing finding: recorded as open for the posture sweep
        "ami_guard.lifecycle",
        "ami_guard.aws_findings",
    },
    "tamper": COMMON
    | {
        "ami_guard.handlers.tamper_guard",
        "ami_guard.events.guard",
        "ami_guard.rules.common",
        "ami_guard.rules.guard",
    },
}


@pytest.mark.parametrize("function", scenarios.FUNCTIONS, ids=lambda f: f.name)
def test_a_cold_start_imports_only_its_own_domain(function: scenarios.Function, tmp_path: Path) -> None:
    # Given the function's representative event and the environment the stack gives it
    event = tmp_path / "event.json"
    event.write_text(json.dumps(function.representative()))
    spec = tmp_path / "spec.json"
    code_dir = str(REPO / "functions")
    spec.write_text(
        json.dumps({"mode": "cold", "code_dir": code_dir, "event": str(event), "handler": function.handler})
    )
    out = tmp_path / "out.json"
    environment = {**os.environ, **scenarios.environment(), "PYTHONPATH": str(REPO)}

    # When a fresh interpreter handles it
    subprocess.run([sys.executable, "-m", "bench.child", str(spec), str(out)], env=environment, check=True, timeout=120)
    result = json.loads(out.read_text())

    # Then it raised its alert having loaded exactly the modules of its own domain
    assert result["result"]["published"] == [function.alert]
    loaded = {name for name in result["modules"] if name == "ami_guard" or name.startswith("ami_guard.")}
    assert loaded & RARE == set()
    assert not loaded & ORGANIZATION_ONLY
    assert loaded == EXPECTED[function.name]


def test_an_alert_that_does_not_fit_whole_loads_the_rare_path(tmp_path: Path) -> None:
    # Given the permission guard's representative event with a value longer than the FULL level keeps
    event = scenarios.PERMISSION.representative()
    event["detail"]["userAgent"] = "u" * 2000
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    spec = tmp_path / "spec.json"
    code_dir = str(REPO / "functions")
    spec.write_text(
        json.dumps({"mode": "cold", "code_dir": code_dir, "event": str(path), "handler": contract.PERMISSION_HANDLER})
    )
    out = tmp_path / "out.json"
    environment = {**os.environ, **scenarios.environment(), "PYTHONPATH": str(REPO)}

    # When a fresh interpreter handles it
    completed = subprocess.run(
        [sys.executable, "-m", "bench.child", str(spec), str(out)],
        env=environment,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.read_text())

    # Then the alert went out cut, the full finding was logged, and only then was the rare path imported
    assert result["result"]["published"] == ["ami-public"]
    logged = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert [entry["part"] for entry in logged if entry.get("message") == "Full finding"] == [1]
    assert "ami_guard.alerts_oversize" in result["modules"]


# The outputs: the bus always (every deployed function is given one), Security Hub and chat only when on. (The
# Security Hub path itself is not run here: the benchmark's canned answers, bench/answers.py, have no
# BatchImportFindings; tests/functions/test_outputs.py runs it.) (The
# Security Hub path itself is not run here: the benchmark's canned answers (bench/answers.py) have no
# BatchImportFindings; tests/functions/test_outputs.py runs it.)
BUS = "arn:aws:events:eu-west-1:123456789012:event-bus/default"
CHAT_TOPIC = "arn:aws:sns:eu-west-1:123456789012:AmiGuard-ChatTopic"
OUTPUT_MODULES = {"ami_guard.finding_events", "ami_guard.asff", "ami_guard.chat"}


@pytest.mark.parametrize(
    ("extra", "outputs"),
    [
        ({contract.ENV_FINDINGS_BUS: BUS}, {"ami_guard.finding_events"}),
        (
            {contract.ENV_FINDINGS_BUS: BUS, contract.ENV_CHAT_TOPIC_ARN: CHAT_TOPIC},
            {"ami_guard.finding_events", "ami_guard.chat"},
        ),
    ],
    ids=["bus-only", "bus-and-chat"],
)
def test_the_outputs_modules_are_loaded_only_when_on(extra: dict[str, str], outputs: set[str], tmp_path: Path) -> None:
    # Given the permission guard's representative event and the environment with the outputs `extra` turns on
    function = scenarios.PERMISSION
    event = tmp_path / "event.json"
    event.write_text(json.dumps(function.representative()))
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {"mode": "cold", "code_dir": str(REPO / "functions"), "event": str(event), "handler": function.handler}
        )
    )
    out = tmp_path / "out.json"
    environment = {**os.environ, **scenarios.environment(), **extra, "PYTHONPATH": str(REPO)}

    # When a fresh interpreter handles it
    subprocess.run([sys.executable, "-m", "bench.child", str(spec), str(out)], env=environment, check=True, timeout=120)
    result = json.loads(out.read_text())

    # Then its alert went out and the modules of exactly the outputs that are on were loaded
    assert result["result"]["published"] == [function.alert]
    loaded = {name for name in result["modules"] if name == "ami_guard" or name.startswith("ami_guard.")}
    assert loaded & OUTPUT_MODULES == outputs
    assert loaded == EXPECTED["permission"] | outputs
