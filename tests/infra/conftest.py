"""Builders shared by the infrastructure tests: the stack "AmiGuard" synthesized exactly as `cdk synth` builds it.

Each test module builds its stacks once (module-scoped fixtures); a synthesis costs about a second.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import py_compile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

import app as cdk_app
from ami_guard_cdk.components.guard_function import PACKAGE_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]

TRUSTED_ACCOUNT = "111122223333"
TRUSTED_ORGANIZATION = "arn:aws:organizations::111122223333:organization/o-abcdefghij"
DEFAULT_BLOCK: Mapping[str, Any] = {
    "trustedAccounts": [TRUSTED_ACCOUNT],
    "trustedOrganizations": [TRUSTED_ORGANIZATION],
    "alertEmails": [],
    "minSeverity": "LOW",
    "remediate": False,
    "copyTags": True,
    "requiredTags": ["Owner", "CostCenter"],
    # The standalone template as it was before the posture sweep; SWEEP_BLOCK deploys it. false, not null: the
    # CDK drops null-valued keys from context objects (null would read as absent: the default, daily)
    "sweepSchedule": False,
}
SWEEP_SCHEDULE = "cron(0 6 * * ? *)"
SWEEP_BLOCK: Mapping[str, Any] = {**DEFAULT_BLOCK, "sweepSchedule": SWEEP_SCHEDULE}
REMEDIATE_BLOCK: Mapping[str, Any] = {
    **DEFAULT_BLOCK,
    "alertEmails": ["secops@example.com", "cloud-team@example.org"],
    "minSeverity": "HIGH",
    "remediate": True,
    "copyTags": False,
}

ALERT_TOPIC = "AMI Guard alerts"
HEALTH_TOPIC = "AMI Guard health"
"""Display names of the two topics: findings, and alarms plus changes to the alert path."""

# The handler strings the template must carry, written out: they are how Lambda finds each guard's entry point.
PERMISSION_HANDLER = "ami_guard.handlers.permission_guard.lambda_handler"
LAUNCH_HANDLER = "ami_guard.handlers.launch_guard.lambda_handler"
IMAGE_HANDLER = "ami_guard.handlers.image_guard.lambda_handler"
TAMPER_HANDLER = "ami_guard.handlers.tamper_guard.lambda_handler"
HANDLERS = (PERMISSION_HANDLER, LAUNCH_HANDLER, IMAGE_HANDLER, TAMPER_HANDLER)


@dataclass(frozen=True)
class Synthesized:
    app: App
    stack: Stack
    template: Template

    def resources(self, kind: str) -> dict[str, Any]:
        return dict(self.template.find_resources(kind))

    def only(self, kind: str) -> str:
        """The logical id of the one resource of this type."""
        (logical_id,) = self.resources(kind)
        return logical_id

    def topic_id(self, display_name: str = ALERT_TOPIC) -> str:
        (logical_id,) = self.template.find_resources("AWS::SNS::Topic", {"Properties": {"DisplayName": display_name}})
        return str(logical_id)

    def key_id(self, display_name: str = ALERT_TOPIC) -> str:
        """The logical id of the KMS key that encrypts the topic with this display name."""
        topic = self.resources("AWS::SNS::Topic")[self.topic_id(display_name)]
        return str(topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0])

    def function_id(self, handler: str) -> str:
        (logical_id,) = self.template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
        return str(logical_id)

    def function(self, handler: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources("AWS::Lambda::Function")[self.function_id(handler)]["Properties"]
        return props

    def role_id(self, handler: str) -> str:
        return str(self.function(handler)["Role"]["Fn::GetAtt"][0])


def synthesize(block: Mapping[str, Any], outdir: Path) -> Synthesized:
    """Build the app through app.build, as `cdk synth` does, with `block` as the amiGuard context."""
    # Python writes bytecode next to the sources on import; make sure some is there so that the asset tests are
    # meaningful whatever PYTHONDONTWRITEBYTECODE says.
    py_compile.compile(str(PACKAGE_DIR / "contract.py"), doraise=True)
    app = App(context={"amiGuard": dict(block)}, outdir=str(outdir))
    stack = cdk_app.build(app)
    return Synthesized(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="module")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(DEFAULT_BLOCK, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def sweep_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(SWEEP_BLOCK, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def remediate_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(REMEDIATE_BLOCK, tmp_path_factory.mktemp("cdk.out"))


def action_values(node: Any) -> Iterator[str]:
    """Every value of every Action/NotAction key of every statement that is not a Deny, anywhere in a fragment."""
    if isinstance(node, Mapping):
        if node.get("Effect") == "Deny":
            return
        for key, value in node.items():
            if key in ("Action", "NotAction"):
                yield from [value] if isinstance(value, str) else value
            else:
                yield from action_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from action_values(item)


def render(value: Any) -> str:
    """A readable form of an intrinsic: Fn::Join of literals and ${Ref}, ${LogicalId.Attr} for Fn::GetAtt."""
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(render(part) for part in parts)
        if "Ref" in value:
            return "${" + str(value["Ref"]) + "}"
        if "Fn::GetAtt" in value:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return str(value)


def resolve(node: Any, ids: Mapping[tuple[str, str], str]) -> Any:
    """A template fragment with Ref, Fn::GetAtt and Fn::Join replaced by physical values (KeyError if unknown)."""
    if isinstance(node, Mapping):
        if set(node) == {"Ref"}:
            return ids[(node["Ref"], "Ref")]
        if set(node) == {"Fn::GetAtt"}:
            return ids[(node["Fn::GetAtt"][0], node["Fn::GetAtt"][1])]
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return str(separator).join(str(resolve(part, ids)) for part in parts)
        return {key: resolve(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, ids) for item in node]
    return node
