"""Each guard function's role holds exactly the statements its configured work needs, and no wildcard action anywhere.

The default stack has remediate off, copyTags on and requiredTags set; the remediate stack has remediate on and
copyTags off. Which of these grants are actually called is checked by tests/functions/test_calls_against_grants.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Capture

from tests.infra.conftest import (
    HANDLERS,
    IMAGE_HANDLER,
    LAUNCH_HANDLER,
    PERMISSION_HANDLER,
    TAMPER_HANDLER,
    Synthesized,
    action_values,
    render,
)

IMAGES_HERE = "arn:${AWS::Partition}:ec2:${AWS::Region}::image/*"
SNAPSHOTS_HERE = "arn:${AWS::Partition}:ec2:${AWS::Region}::snapshot/*"
IMAGES_ANYWHERE = "arn:${AWS::Partition}:ec2:*::image/*"
# Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2": no resource type.
DESCRIBES_WITHOUT_RESOURCE_LEVEL_PERMISSIONS = {
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeSnapshots",
}
OWN = "StringEquals:ec2:Owner=${AWS::AccountId}"

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
    records, sending what it could not handle to its own failed-events queue, and putting its findings as events on
    the account's default bus."""
    log_group = stack.function(handler)["LoggingConfig"]["LogGroup"]["Ref"]
    return {
        (
            frozenset({"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}),
            frozenset({f"${{{stack.only('AWS::DynamoDB::Table')}.Arn}}"}),
            "",
        ),
        (frozenset({"sqs:SendMessage"}), frozenset({failed_events_queue(stack, handler)}), ""),
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), frozenset({f"${{{log_group}.Arn}}"}), ""),
        (frozenset({"sns:Publish"}), frozenset({f"${{{stack.topic_id()}}}"}), ""),
        (
            frozenset({"events:PutEvents"}),
            frozenset({"arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}),
            "",
        ),
        (
            frozenset({"kms:GenerateDataKey", "kms:Decrypt"}),
            frozenset({f"${{{stack.key_id()}.Arn}}"}),
            "",
        ),
    }


def test_permission_guard_holds_no_ec2_permission_when_not_remediating(default_stack: Synthesized) -> None:
    assert grants(default_stack, PERMISSION_HANDLER) == common(default_stack, PERMISSION_HANDLER)


def test_permission_guard_may_revert_sharing_of_own_images_and_read_them_back_when_remediating(
    remediate_stack: Synthesized,
) -> None:
    assert grants(remediate_stack, PERMISSION_HANDLER) == common(remediate_stack, PERMISSION_HANDLER) | {
        (frozenset({"ec2:DescribeImageAttribute"}), frozenset({IMAGES_HERE}), ""),
        (frozenset({"ec2:ModifyImageAttribute"}), frozenset({IMAGES_HERE}), OWN),
    }


@pytest.mark.parametrize("stack_name", ["default_stack", "remediate_stack"])
def test_launch_guard_only_describes(stack_name: str, request: pytest.FixtureRequest) -> None:
    stack: Synthesized = request.getfixturevalue(stack_name)
    assert grants(stack, LAUNCH_HANDLER) == common(stack, LAUNCH_HANDLER) | {
        (
            frozenset({"ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions"}),
            frozenset({"*"}),
            "",
        ),
    }


def test_image_guard_reads_images_and_snapshots_and_tags_own_new_ones_when_copying_tags(
    default_stack: Synthesized,
) -> None:
    assert grants(default_stack, IMAGE_HANDLER) == common(default_stack, IMAGE_HANDLER) | {
        (frozenset({"ec2:DescribeImages", "ec2:DescribeSnapshots"}), frozenset({"*"}), ""),
        (frozenset({"ec2:DescribeImageAttribute"}), frozenset({IMAGES_ANYWHERE}), ""),
        (frozenset({"ec2:CreateTags"}), frozenset({IMAGES_HERE, SNAPSHOTS_HERE}), OWN),
    }


def test_image_guard_only_reads_images_when_not_copying_tags(remediate_stack: Synthesized) -> None:
    assert grants(remediate_stack, IMAGE_HANDLER) == common(remediate_stack, IMAGE_HANDLER) | {
        (frozenset({"ec2:DescribeImages"}), frozenset({"*"}), ""),
        (frozenset({"ec2:DescribeImageAttribute"}), frozenset({IMAGES_ANYWHERE}), ""),
    }


def holders(stack: Synthesized, action: str) -> list[str]:
    return [handler for handler in HANDLERS if any(action in grant[0] for grant in grants(stack, handler))]


def test_writes_to_images_are_granted_only_with_the_feature_that_makes_them(
    default_stack: Synthesized, remediate_stack: Synthesized
) -> None:
    # remediate: off in the default stack, on in the remediate stack; copyTags: the other way round
    assert "ec2:ModifyImageAttribute" not in set(action_values(default_stack.template.to_json()))
    assert holders(default_stack, "ec2:ModifyImageAttribute") == []
    assert holders(remediate_stack, "ec2:ModifyImageAttribute") == [PERMISSION_HANDLER]
    assert "ec2:CreateTags" not in set(action_values(remediate_stack.template.to_json()))
    assert holders(remediate_stack, "ec2:CreateTags") == []
    assert holders(default_stack, "ec2:CreateTags") == [IMAGE_HANDLER]


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
    assert grants(default_stack, TAMPER_HANDLER) == common(default_stack, TAMPER_HANDLER)
