"""Each guard function's role holds exactly the statements its work needs, and no wildcard action anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Capture

from ami_guard import contract
from tests.infra.conftest import HANDLERS, Synthesized, action_values, render

IMAGES_HERE = "arn:${AWS::Partition}:ec2:${AWS::Region}::image/*"
SNAPSHOTS_HERE = "arn:${AWS::Partition}:ec2:${AWS::Region}::snapshot/*"
IMAGES_ANYWHERE = "arn:${AWS::Partition}:ec2:*::image/*"
DESCRIBES_WITHOUT_RESOURCE_LEVEL_PERMISSIONS = {
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
}

Grant = tuple[frozenset[str], frozenset[str], str]
"""(actions, resources, conditions) of one Allow statement, with intrinsics rendered as text."""


def grants(stack: Synthesized, handler: str) -> set[Grant]:
    document = Capture()
    stack.template.has_resource_properties(
        "AWS::IAM::Policy", {"Roles": [{"Ref": stack.role_id(handler)}], "PolicyDocument": document}
    )
    out: set[Grant] = set()
    for statement in document.as_object()["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        out.add(
            (
                frozenset([actions] if isinstance(actions, str) else actions),
                frozenset(render(r) for r in (resources if isinstance(resources, list) else [resources])),
                render_conditions(statement.get("Condition", {})),
            )
        )
    return out


def render_conditions(conditions: dict[str, Any]) -> str:
    return ";".join(
        f"{operator}:{key}={render(value)}"
        for operator, pairs in sorted(conditions.items())
        for key, value in sorted(pairs.items())
    )


def failed_events_queue(stack: Synthesized, handler: str) -> str:
    """The queue the function's asynchronous invoke configuration sends failed events to."""
    function_id = stack.function_id(handler)
    (config,) = [
        c["Properties"]
        for c in stack.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    destination: str = render(config["DestinationConfig"]["OnFailure"]["Destination"])
    return destination


def common(stack: Synthesized, handler: str) -> set[Grant]:
    """What every guard needs: its own log group, publishing to the encrypted alert topic, the idempotency
    records, and sending what it could not handle to its own failed-events queue."""
    log_group = stack.function(handler)["LoggingConfig"]["LogGroup"]["Ref"]
    return {
        (
            frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}),
            frozenset({f"${{{stack.only('AWS::DynamoDB::Table')}.Arn}}"}),
            "",
        ),
        (
            frozenset({"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}),
            frozenset({failed_events_queue(stack, handler)}),
            "",
        ),
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), frozenset({f"${{{log_group}.Arn}}"}), ""),
        (frozenset({"sns:Publish"}), frozenset({f"${{{stack.topic_id()}}}"}), ""),
        (
            frozenset({"kms:GenerateDataKey", "kms:Decrypt"}),
            frozenset({f"${{{stack.key_id()}.Arn}}"}),
            "",
        ),
    }


def test_permission_guard_only_reads_image_attributes_when_not_remediating(default_stack: Synthesized) -> None:
    assert grants(default_stack, contract.PERMISSION_HANDLER) == common(default_stack, contract.PERMISSION_HANDLER) | {
        (frozenset({"ec2:DescribeImageAttribute"}), frozenset({IMAGES_HERE}), ""),
    }


def test_permission_guard_may_revert_sharing_of_own_images_when_remediating(remediate_stack: Synthesized) -> None:
    handler = contract.PERMISSION_HANDLER
    assert grants(remediate_stack, handler) == common(remediate_stack, handler) | {
        (frozenset({"ec2:DescribeImageAttribute"}), frozenset({IMAGES_HERE}), ""),
        (
            frozenset({"ec2:ModifyImageAttribute"}),
            frozenset({IMAGES_HERE}),
            "StringEquals:ec2:Owner=${AWS::AccountId}",
        ),
    }


@pytest.mark.parametrize("stack_name", ["default_stack", "remediate_stack"])
def test_launch_guard_only_describes(stack_name: str, request: pytest.FixtureRequest) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)
    assert grants(stack, contract.LAUNCH_HANDLER) == common(stack, contract.LAUNCH_HANDLER) | {
        (frozenset(DESCRIBES_WITHOUT_RESOURCE_LEVEL_PERMISSIONS), frozenset({"*"}), ""),
    }


@pytest.mark.parametrize("stack_name", ["default_stack", "remediate_stack"])
def test_image_guard_reads_images_and_tags_new_ones_in_its_region(
    stack_name: str, request: pytest.FixtureRequest
) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)
    assert grants(stack, contract.IMAGE_HANDLER) == common(stack, contract.IMAGE_HANDLER) | {
        (frozenset({"ec2:DescribeImages"}), frozenset({"*"}), ""),
        (frozenset({"ec2:DescribeImageAttribute"}), frozenset({IMAGES_ANYWHERE}), ""),
        (
            frozenset({"ec2:CreateTags"}),
            frozenset({IMAGES_HERE, SNAPSHOTS_HERE}),
            "StringEquals:ec2:Owner=${AWS::AccountId}",
        ),
    }


def test_modify_image_attribute_is_granted_only_when_remediating(
    default_stack: Synthesized, remediate_stack: Synthesized
) -> None:
    def holders(stack: Synthesized) -> list[str]:
        return [
            handler for handler in HANDLERS if any("ec2:ModifyImageAttribute" in g[0] for g in grants(stack, handler))
        ]

    assert "ec2:ModifyImageAttribute" not in set(action_values(default_stack.template.to_json()))
    assert holders(default_stack) == []
    assert holders(remediate_stack) == [contract.PERMISSION_HANDLER]


@pytest.mark.parametrize("stack_name", ["default_stack", "remediate_stack"])
def test_no_allowed_action_anywhere_in_the_template_has_a_wildcard(
    stack_name: str, request: pytest.FixtureRequest
) -> None:
    # Role policies, trust policies, the key policy and the topic and queue policies alike. Deny statements
    # (the TLS-only policies deny sqs:* / sns:* over plain HTTP) only ever narrow access, so they may.
    stack: Synthesized = request.getfixturevalue(stack_name)
    actions = list(action_values(stack.template.to_json()))

    assert "sns:Publish" in actions and "kms:PutKeyPolicy" in actions
    assert [action for action in actions if "*" in action] == []


@pytest.mark.parametrize("stack_name", ["default_stack", "remediate_stack"])
def test_resource_star_only_for_describes_without_resource_level_permissions(
    stack_name: str, request: pytest.FixtureRequest
) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)
    for handler in HANDLERS:
        for actions, resources, _ in grants(stack, handler):
            if "*" in resources:
                assert resources == {"*"}
                assert actions <= DESCRIBES_WITHOUT_RESOURCE_LEVEL_PERMISSIONS


def test_every_guard_has_its_own_role_and_no_managed_policy(default_stack: Synthesized) -> None:
    roles = default_stack.resources("AWS::IAM::Role")

    assert {default_stack.role_id(handler) for handler in HANDLERS} == set(roles)
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]


def test_tamper_guard_needs_no_aws_permission_beyond_the_common_ones(default_stack: Synthesized) -> None:
    assert grants(default_stack, contract.TAMPER_HANDLER) == common(default_stack, contract.TAMPER_HANDLER)
