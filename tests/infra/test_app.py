"""`python app.py` as the CDK CLI runs it: bad configuration stops synthesis with a message, good one synthesizes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ami_guard_cdk import summary
from tests.infra.conftest import DEFAULT_BLOCK, REPO_ROOT

TIMEOUT_SECONDS = 120


def run(module_or_script: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *module_or_script],
        cwd=REPO_ROOT,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def synth(block: object, outdir: Path) -> subprocess.CompletedProcess[str]:
    # The CDK CLI hands context to the app in CDK_CONTEXT_JSON and the output directory in CDK_OUTDIR
    return run(["app.py"], {"CDK_CONTEXT_JSON": json.dumps({"amiGuard": block}), "CDK_OUTDIR": str(outdir)})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trustedAccounts", "12345"),
        ("trustedOrganizations", "arn:aws:organizations::111122223333:ou/o-abcdefghij"),
        ("alertEmails", "secops.example.com"),
        ("minSeverity", "URGENT"),
        ("requiredTags", "aws:createdBy"),
    ],
)
def test_bad_configuration_stops_synthesis_naming_key_and_value(key: str, value: str, tmp_path: Path) -> None:
    block = {**DEFAULT_BLOCK, key: value if key == "minSeverity" else [value]}

    result = synth(block, tmp_path)

    assert result.returncode == 1
    assert "amiGuard" in result.stderr and key in result.stderr and value in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_good_configuration_synthesizes_and_the_summary_describes_it(tmp_path: Path) -> None:
    result = synth({**DEFAULT_BLOCK, "alertEmails": ["secops@example.com"]}, tmp_path)
    assert result.returncode == 0, result.stderr

    described = run(["-m", "ami_guard_cdk.summary", str(tmp_path)], {})

    assert described.returncode == 0, described.stderr
    out = described.stdout
    assert f"Stack AmiGuard: {tmp_path / 'AmiGuard.template.json'}" in out
    # One subscription on the alert topic and one on the health topic
    assert "      4  AWS::Lambda::Function" in out and "      2  AWS::SNS::Subscription" in out
    assert "UpdateFunctionConfiguration*" in out and "-> TamperGuardFunction" in out
    permission_calls = (
        "CreateStoreImageTask, DisableAllowedImagesSettings, DisableImageBlockPublicAccess, "
        "DisableImageDeregistrationProtection, DisableSnapshotBlockPublicAccess, EnableAllowedImagesSettings, "
        "EnableSnapshotBlockPublicAccess, ExportImage, ModifyImageAttribute, ModifySnapshotAttribute, "
        "ReplaceImageCriteriaInAllowedImagesSettings, UnlockSnapshot, DeleteRule, UnlockRule, UpdateRule"
    )
    assert f"{permission_calls} -> PermissionGuardFunction" in out
    assert "ami_guard.handlers.launch_guard.lambda_handler (python3.13, arm64, 256 MB, 60 s;" in out
    assert "AWSLambdaPowertoolsPythonV3-python313-arm64:" in out
    assert "subscriptions: email:secops@example.com" in out


def test_summary_fails_clearly_when_nothing_was_synthesized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert summary.main([str(tmp_path)]) == 1
    assert "no manifest.json" in capsys.readouterr().err

    (tmp_path / "manifest.json").write_text(json.dumps({"version": "1", "artifacts": {}}))
    assert summary.main([str(tmp_path)]) == 1
    assert "contains no CloudFormation stack" in capsys.readouterr().err


def documented_organization_block() -> dict[str, object]:
    """The amiGuard block of the cdk.json example in docs/organization.md, as a reader would copy it."""
    text = (REPO_ROOT / "docs" / "organization.md").read_text()
    (example,) = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    block: dict[str, object] = json.loads(example)["context"]["amiGuard"]
    return block


def test_documented_organization_example_synthesizes_hub_member_and_stack_set_template(tmp_path: Path) -> None:
    result = synth(documented_organization_block(), tmp_path)
    assert result.returncode == 0, result.stderr

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {
        name: artifact["environment"]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    described = run(["-m", "ami_guard_cdk.summary", str(tmp_path)], {})

    assert stacks == {
        "AmiGuard": "aws://222233334444/eu-west-1",
        "AmiGuardMember": "aws://unknown-account/unknown-region",
    }
    (stack_set_template,) = tmp_path.glob("*.stackset.template.json")
    assert described.returncode == 0, described.stderr
    out = described.stdout
    assert f"Stack (StackSet template): {stack_set_template}" in out
    assert "      1  AWS::CloudFormation::StackSet" in out and "      1  AWS::Events::EventBus" in out
    assert "RunInstances -> LaunchGuardFunction" in out
    hub_bus = "arn:${AWS::Partition}:events:eu-west-1:222233334444:event-bus/AmiGuard-Hub"
    forwarded = (
        "CopyImage, CreateImage, CreateStoreImageTask, DisableAllowedImagesSettings, DisableImageBlockPublicAccess, "
        "DisableImageDeregistrationProtection, DisableSnapshotBlockPublicAccess, EnableAllowedImagesSettings, "
        "EnableSnapshotBlockPublicAccess, ExportImage, ModifyImageAttribute, ModifySnapshotAttribute, RegisterImage, "
        "ReplaceImageCriteriaInAllowedImagesSettings, RunInstances, UnlockSnapshot, DeleteRule, UnlockRule, "
        "UpdateRule, DisableRule, PutRule, RemoveTargets, PutTargets"
    )
    assert f"{forwarded} -> {hub_bus}" in out


def test_standalone_synthesis_loads_nothing_of_organization_mode() -> None:
    script = (
        "import json, sys; from aws_cdk import App; import app; "
        f"app.build(App(context={{'amiGuard': json.loads({json.dumps(json.dumps(DEFAULT_BLOCK))})}})); "
        "print(sorted(m for m in ('cdk_stacksets', 'ami_guard_cdk.hub_stack', 'ami_guard_cdk.member_stack') "
        "if m in sys.modules))"
    )

    result = run(["-c", script], {})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
