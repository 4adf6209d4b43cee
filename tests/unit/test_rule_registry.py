"""The rules, split by domain, keep their public ids and severities, and the packages load a domain only when one
of its names is used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ami_guard import rules
from ami_guard.rules import catalog

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
        "snapshot-block-public-access-disabled": "HIGH",
        "snapshot-block-public-access-weakened": "MEDIUM",
        "allowed-images-disabled": "HIGH",
        "allowed-images-audit-only": "MEDIUM",
        "allowed-images-criteria-changed": "MEDIUM",
        "deregistration-protection-disabled": "LOW",
        "snapshot-unlocked": "HIGH",
        "recycle-bin-rule-weakened": "HIGH",
        "image-exported": "MEDIUM",
        "launch-untrusted-image": "MEDIUM",
        "copy-untrusted-image": "MEDIUM",
        "instance-paravirtual": "LOW",
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


# Which function receives which call, written out: what the EventBridge patterns and the member forwarding follow.
EC2 = "ec2.amazonaws.com"
ROUTES = {
    "permission": {
        (EC2, "ModifyImageAttribute"),
        (EC2, "ModifySnapshotAttribute"),
        (EC2, "DisableImageBlockPublicAccess"),
        (EC2, "DisableSnapshotBlockPublicAccess"),
        (EC2, "EnableSnapshotBlockPublicAccess"),
        (EC2, "DisableAllowedImagesSettings"),
        (EC2, "EnableAllowedImagesSettings"),
        (EC2, "ReplaceImageCriteriaInAllowedImagesSettings"),
        (EC2, "DisableImageDeregistrationProtection"),
        (EC2, "UnlockSnapshot"),
        (EC2, "CreateStoreImageTask"),
        (EC2, "ExportImage"),
        ("rbin.amazonaws.com", "DeleteRule"),
        ("rbin.amazonaws.com", "UpdateRule"),
        ("rbin.amazonaws.com", "UnlockRule"),
    },
    "launch": {(EC2, "RunInstances")},
    "image": {(EC2, "RegisterImage"), (EC2, "CreateImage"), (EC2, "CopyImage")},
    "tamper": set(),
}


@pytest.mark.parametrize("guard", sorted(ROUTES))
def test_each_function_receives_the_calls_its_rules_read(guard: str) -> None:
    assert set(catalog.routes(guard).calls) == ROUTES[guard]


def test_no_call_reaches_two_functions() -> None:
    seen = [call for guard in ROUTES for call in catalog.routes(guard).calls]
    assert len(seen) == len(set(seen))


def test_the_rule_table_in_the_docs_is_the_registrys() -> None:
    # docs/rules.md's table is generated: `python -m ami_guard.rules.catalog` prints it
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    start = text.index("| rule_id |")
    table = text[start : text.index("\n\n", start) + 1]
    assert table == catalog.markdown_table(), "regenerate it: python -m ami_guard.rules.catalog"


def _expected_ids(module: object) -> set[str]:
    """The rule ids a test module's parametrized tables expect to be raised (argument `expected`)."""
    found: set[str] = set()
    for value in vars(module).values():
        for mark in getattr(value, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            names = [n.strip() for n in mark.args[0].split(",")] if isinstance(mark.args[0], str) else mark.args[0]
            if "expected" not in names:
                continue
            index = names.index("expected")
            for row in mark.args[1]:
                values = row.values if hasattr(row, "values") else row
                found.update(values[index])
    return found


def test_every_rule_has_rows_in_the_rule_tables() -> None:
    from tests.unit import test_rules, test_rules_guardrails, test_sweep_evaluate

    tabled = _expected_ids(test_rules) | _expected_ids(test_rules_guardrails) | _expected_ids(test_sweep_evaluate)
    assert {rule.id for rule in catalog.all_rules()} - tabled == set()


def test_every_rules_security_hub_source_url_lands_on_its_row_of_docs_rules() -> None:
    from ami_guard.asff import source_url

    page = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    rows = {line.split("`")[1]: line for line in page.splitlines() if line.startswith("| <a id=")}

    for rule in catalog.all_rules():
        url = source_url("https://docs.example.com/ami-guard", rule.id)
        assert url == f"https://docs.example.com/ami-guard/docs/rules.md#{rule.id}"
        assert rows[rule.id].startswith(f'| <a id="{rule.id}"></a>`{rule.id}` |')
    assert sorted(rows) == sorted(rule.id for rule in catalog.all_rules())
