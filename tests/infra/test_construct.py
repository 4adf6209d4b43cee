"""The AmiGuard construct: one property per configuration key, validated by the configuration's own code with its
messages, in a stack of the user's own (ids under the user's construct id, names after the user's stack), one per
stack, and the hub only in the hub's account and region.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from ami_guard import config
from ami_guard.config import ConfigError, Policy, parse_policy
from ami_guard_cdk.ami_guard_construct import (
    ORGANIZATION_PROPERTY_KEYS,
    PROPERTY_KEYS,
    AmiGuard,
    OrganizationProps,
    configuration_block,
    property_value,
)
from tests.infra.conftest import DEFAULT_BLOCK, REMEDIATE_BLOCK, SWEEP_BLOCK
from tests.infra.test_logical_ids import ORGANIZATION_BLOCK

ORGANIZATION = OrganizationProps(
    organization_id="o-a1b2c3d4e5",
    hub_account="222233334444",
    hub_region="eu-west-1",
    regions=["eu-west-1", "us-east-1"],
    organizational_units=["ou-ab12-cdefgh34"],
)


def defaults() -> dict[str, Any]:
    """Each property's default, read from the constructor's signature."""
    parameters = inspect.signature(AmiGuard.__init__).parameters
    return {name: parameters[name].default for name in PROPERTY_KEYS}


def test_every_configuration_key_has_exactly_one_property() -> None:
    # A key added to the configuration without a property of the construct fails here: add one line to
    # AmiGuard.__init__, `name: Annotated[type, ConfigKey("key")] = default`.
    assert sorted(key.name for key in PROPERTY_KEYS.values()) == sorted(config.KNOWN_KEYS)
    assert sorted(key.name for key in ORGANIZATION_PROPERTY_KEYS.values()) == sorted(config.ORGANIZATION_KEYS)
    # and each property is named like the Policy field it becomes (AmiGuard.from_policy reads them by name)
    assert sorted(PROPERTY_KEYS) == sorted(Policy._fields)
    keyword_only = [
        name
        for name, parameter in inspect.signature(AmiGuard.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert keyword_only == list(PROPERTY_KEYS)


def test_the_defaults_are_the_configurations() -> None:
    assert parse_policy(configuration_block(defaults())) == parse_policy({}) == Policy()
    assert defaults()["sweep_schedule"] == "rate(1 day)"


def test_the_block_is_the_configurations_dict_form() -> None:
    properties = {
        **defaults(),
        "trusted_accounts": ("111122223333",),
        "min_severity": "HIGH",
        "organization": ORGANIZATION,
        "sweep_schedule": None,
    }

    assert configuration_block(properties) == {
        "trustedAccounts": ["111122223333"],
        "trustedOrganizations": [],
        "alertEmails": [],
        "minSeverity": "HIGH",
        "remediate": False,
        "copyTags": True,
        "requiredTags": [],
        "organization": {
            "organizationId": "o-a1b2c3d4e5",
            "hubAccount": "222233334444",
            "hubRegion": "eu-west-1",
            "regions": ["eu-west-1", "us-east-1"],
            "organizationalUnits": ["ou-ab12-cdefgh34"],
        },
        "trustedImageOwners": [],
        "sweepSchedule": None,
        "securityHub": False,
        "chat": False,
    }
    assert parse_policy(configuration_block(properties)).sweep_schedule is None


@pytest.mark.parametrize(
    "block",
    [
        DEFAULT_BLOCK,
        REMEDIATE_BLOCK,
        SWEEP_BLOCK,
        ORGANIZATION_BLOCK,
        {**ORGANIZATION_BLOCK, "trustOwnOrganization": False, "trustedImageOwners": ["amazon", "123456789012"]},
        {"operationsTopicArn": "arn:aws:sns:eu-west-1:111122223333:ops", "sweepSchedule": None},
        {"securityHub": True, "chat": True, "documentationUrl": "https://docs.example.com/ami-guard"},
    ],
    ids=["default", "remediate", "sweep", "organization", "organization-untrusted", "operations-no-sweep", "outputs"],
)
def test_a_policy_becomes_the_properties_that_give_it_back(block: dict[str, Any]) -> None:
    # Given a policy read from a configuration block
    policy = parse_policy(dict(block))

    # When it is turned into the construct's properties, as AmiGuard.from_policy does
    properties = {name: property_value(getattr(policy, name)) for name in PROPERTY_KEYS}

    # Then those properties validate into the same policy
    assert parse_policy(configuration_block(properties)) == policy


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"trusted_accounts": ["12345"]}, "trustedAccounts: '12345' is not a 12-digit AWS account id"),
        ({"trusted_accounts": "111122223333"}, "trustedAccounts: expected a list of strings, got '111122223333'"),
        (
            {"min_severity": "URGENT"},
            "minSeverity: 'URGENT' is not a severity (allowed: INFO, LOW, MEDIUM, HIGH, CRITICAL)",
        ),
        ({"alert_emails": ["secops.example.com"]}, "alertEmails: 'secops.example.com' is not an email address"),
        (
            {"required_tags": ["aws:createdBy"]},
            "requiredTags: 'aws:createdBy' is not a tag key users can set (the aws: prefix is reserved)",
        ),
        ({"remediate": "yes"}, "remediate: expected true or false, got 'yes'"),
        (
            {"trust_own_organization": True},
            "trustOwnOrganization: true needs the organization block (the accounts come from its Organizations)",
        ),
        (
            {
                "organization": OrganizationProps(
                    organization_id="o-a1b2c3d4e5",
                    hub_account="222233334444",
                    hub_region="eu-west-1",
                    regions=["us-east-1"],
                    organizational_units=["ou-ab12-cdefgh34"],
                )
            },
            "organization.regions: must include the hubRegion 'eu-west-1'",
        ),
        (
            {"sweep_schedule": "daily"},
            "sweepSchedule: 'daily' is not an EventBridge Scheduler expression: rate(<n> <unit>) with minute, hour or "
            "day for 1 and minutes, hours or days above (rate(1 day), rate(12 hours)), or cron(<minutes> <hours> "
            "<day-of-month> <month> <day-of-week> <year>) with ? in day-of-month or day-of-week (cron(0 6 * * ? *)); "
            "false (or null) turns the sweep off",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_a_bad_property_raises_the_configurations_message(properties: dict[str, Any], message: str) -> None:
    # Given a user's stack
    stack = Stack(App(), "Platform")

    # When the guard is added with a malformed property
    with pytest.raises(ConfigError) as raised:
        AmiGuard(stack, "Guard", **properties)

    # Then the message is the one the cdk.json context gives, and nothing was built
    assert str(raised.value) == message
    assert stack.node.find_child("Guard").node.children == []


@pytest.mark.parametrize(
    ("env", "where"),
    [
        (None, "an unspecified account and an unspecified region"),
        (Environment(account="222233334444", region="us-east-1"), "'222233334444' and 'us-east-1'"),
        (Environment(account="111122223333", region="eu-west-1"), "'111122223333' and 'eu-west-1'"),
    ],
    ids=["environment-agnostic", "other-region", "other-account"],
)
def test_the_hub_is_refused_outside_the_hub_account_and_region(env: Environment | None, where: str) -> None:
    stack = Stack(App(), "Security", env=env)

    with pytest.raises(ConfigError) as raised:
        AmiGuard(stack, "Guard", organization=ORGANIZATION)

    assert str(raised.value) == (
        "organization: the hub is deployed in organization.hubAccount '222233334444' and organization.hubRegion "
        f"'eu-west-1', but stack 'Security' is in {where}: create the stack with "
        "env=Environment(account='222233334444', region='eu-west-1')"
    )


class UserStack:
    """A user's own stack with a bucket of its own and the guard, the sweep off, synthesized once."""

    def __init__(self, outdir: Path) -> None:
        self.app = App(outdir=str(outdir))
        self.stack = Stack(self.app, "Platform")
        s3.Bucket(self.stack, "Artifacts", enforce_ssl=True)
        self.guard = AmiGuard(
            self.stack,
            "Guard",
            trusted_accounts=["111122223333"],
            alert_emails=["secops@example.com"],
            min_severity="HIGH",
            sweep_schedule=None,
        )
        self.template = Template.from_stack(self.stack)


@pytest.fixture(scope="module")
def user_stack(tmp_path_factory: pytest.TempPathFactory) -> UserStack:
    return UserStack(tmp_path_factory.mktemp("cdk.out"))


def test_in_a_users_stack_ids_are_under_the_construct_and_names_after_the_stack(user_stack: UserStack) -> None:
    functions = user_stack.template.find_resources("AWS::Lambda::Function")

    assert sorted(props["Properties"]["FunctionName"] for props in functions.values()) == [
        "Platform-ImageGuard",
        "Platform-LaunchGuard",
        "Platform-PermissionGuard",
        "Platform-TamperGuard",
    ]
    assert sorted(re.sub(r"[0-9A-F]{8}$", "", logical_id) for logical_id in functions) == [
        "GuardImageGuardFunction",
        "GuardLaunchGuardFunction",
        "GuardPermissionGuardFunction",
        "GuardTamperGuardFunction",
    ]
    user_stack.template.resource_count_is("AWS::S3::Bucket", 1)
    # sweep_schedule=None: no sweep, as "sweepSchedule": null in cdk.json
    user_stack.template.resource_count_is("AWS::Scheduler::Schedule", 0)
    user_stack.template.resource_count_is("AWS::StepFunctions::StateMachine", 0)
    user_stack.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "secops@example.com"}
    )
    assert user_stack.guard.policy.min_severity.name == "HIGH"
    assert sorted(user_stack.guard.functions) == ["ImageGuard", "LaunchGuard", "PermissionGuard", "TamperGuard"]


def test_a_second_guard_in_the_same_stack_is_refused(user_stack: UserStack) -> None:
    with pytest.raises(ValueError) as raised:
        AmiGuard(user_stack.stack, "SecondGuard")

    assert str(raised.value) == (
        "stack 'Platform' already holds an AmiGuard (Platform/Guard): the guard's functions, roles, rules, state "
        "machine and schedule are named after the stack (Platform-PermissionGuard, ...), so a second one would "
        "collide with it. Add each AmiGuard to a stack of its own."
    )
