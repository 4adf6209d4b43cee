"""The synthesized template passes cdk-nag (AwsSolutions) and cfn-lint, and every acknowledgment says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from tests.infra.conftest import Synthesized

STACKS = ["default_stack", "remediate_stack", "sweep_stack"]
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
MIN_REASON_WORDS = 12


@pytest.mark.parametrize("stack_name", STACKS)
def test_cdk_nag_aws_solutions_finds_no_error_or_warning(stack_name: str, request: pytest.FixtureRequest) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)

    report = AwsSolutionsChecks().validate_scope(stack.stack)

    found = [
        (violation.rule_name, violation.severity, [r.construct_path for r in violation.violating_resources])
        for violation in report.violations
    ]
    assert found == []
    assert report.success


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_acknowledged_rule_is_specific_and_explained(stack_name: str, request: pytest.FixtureRequest) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)
    acknowledged = {
        (construct.node.path, rule_id.removeprefix("Annotation::")): reason
        for construct in stack.stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id, reason in entry.data.items()
    }

    assert acknowledged, "expected the documented IAM5 and L1 acknowledgments"
    for (path, rule_id), reason in acknowledged.items():
        assert rule_id.startswith("AwsSolutions-"), (path, rule_id)
        if rule_id.startswith("AwsSolutions-IAM5"):
            assert rule_id.startswith("AwsSolutions-IAM5[Resource::"), f"{path}: acknowledge one finding, not the rule"
        assert len(reason.split()) >= MIN_REASON_WORDS, f"{path} {rule_id}: reason too thin: {reason!r}"


@pytest.mark.parametrize("stack_name", STACKS)
def test_cfn_lint_reports_no_error_or_warning(stack_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)
    template_file = tmp_path / "AmiGuard.template.json"
    template_file.write_text(json.dumps(stack.template.to_json(), indent=1))

    matches = lint_file(template_file, ManualArgs(regions=LINT_REGIONS))

    assert [f"{m.rule.id} {m.message}" for m in matches if not m.rule.id.startswith("I")] == []
