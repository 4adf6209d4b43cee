"""The rules, split by domain, keep their public ids and severities, and the packages load a domain only when one
of its names is used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ami_guard import rules

REPO = Path(__file__).resolve().parents[2]


def test_every_rule_keeps_its_id_and_severity() -> None:
    # Then the registry gathered from the domain modules is the public list of rule ids, each at its severity
    assert {rule_id: severity.name for rule_id, severity in rules.RULE_SEVERITY.items()} == {
        "ami-public": "CRITICAL",
        "ami-shared-untrusted": "HIGH",
        "ami-share-denied": "LOW",
        "snapshot-public": "CRITICAL",
        "snapshot-shared-untrusted": "HIGH",
        "ami-block-public-access-disabled": "HIGH",
        "launch-virtualization-mismatch": "MEDIUM",
        "launch-paravirtual": "MEDIUM",
        "launch-previous-generation": "LOW",
        "image-paravirtual": "MEDIUM",
        "image-instance-store": "LOW",
        "copy-tags-missing": "MEDIUM",
        "copy-permissions-not-copied": "LOW",
        "image-missing-required-tags": "MEDIUM",
        "guard-tampered": "CRITICAL",
    }


def test_a_name_from_the_package_loads_its_domain_only() -> None:
    # Given a fresh interpreter
    script = """
import sys
from ami_guard.events import parse_call
from ami_guard.rules import ami_public
from ami_guard.engine import evaluate
domains = ("ami_guard.events.", "ami_guard.rules.", "ami_guard.engine.")
print(" ".join(sorted(m for m in sys.modules if m.startswith(domains))))
"""
    environment = dict(os.environ, PYTHONPATH=str(REPO / "functions"))

    # When it takes the parser, one permission rule and the engine from the packages
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True, timeout=60
    )

    # Then it has loaded the calls and the permission domain, and nothing of launches, images or the guard
    assert result.stdout.split() == [
        "ami_guard.events.calls",
        "ami_guard.events.fields",
        "ami_guard.events.principals",
        "ami_guard.rules.common",
        "ami_guard.rules.permissions",
        "ami_guard.rules.spec",
    ]
