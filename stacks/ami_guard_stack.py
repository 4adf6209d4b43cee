"""AmiGuardStack: three guard functions, each fed by its own EventBridge rule, alerting through one topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

from ami_guard import contract
from ami_guard.config import Policy, to_environment
from stacks.components.alert_topic import AlertTopic
from stacks.components.guard_function import GuardFunction
from stacks.components.guard_rule import GuardRule

RUNTIME_PINNED = (
    "Pinned to python3.13 on purpose: the Powertools public layer attached to the function is built for python3.13 "
    "(AWSLambdaPowertoolsPythonV3-python313-arm64), and a layer's compiled dependencies must match the runtime."
)
NO_RESOURCE_LEVEL_PERMISSIONS = (
    "{actions} support no resource-level permissions, so IAM only accepts Resource '*' for them; "
    "the statement holds these read-only Describe actions and nothing else."
)
IMAGES_IN_REGION = (
    "Image ARNs carry no account (arn:<partition>:ec2:<region>::image/<ami-id>) and the AMI id is only known from the "
    "CloudTrail event at run time, so the statement is scoped to every image in the stack's region."
)
IMAGES_IN_ANY_REGION = (
    "A CopyImage event names its source image in another region; the guard reads that source image's attributes, so "
    "the read-only ec2:DescribeImageAttribute is allowed on images in every region (image ARNs carry no account)."
)
SNAPSHOTS_IN_REGION = (
    "Snapshot ARNs carry no account and the snapshots behind a new image are only known at run time, so ec2:CreateTags "
    "is scoped to every snapshot (and image) in the stack's region and to no other resource type."
)


class AmiGuardStack(Stack):
    """Environment-agnostic: every ARN is built from the partition, region and account of the deployment."""

    def __init__(self, scope: Construct, construct_id: str, *, policy: Policy, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        alerts = AlertTopic(self, "Alerts", alert_emails=policy.alert_emails)
        environment = {**to_environment(policy), contract.ENV_TOPIC_ARN: alerts.topic.topic_arn}

        permission = GuardFunction(
            self,
            "PermissionGuard",
            handler=contract.PERMISSION_HANDLER,
            description="AMI Guard: checks image and snapshot sharing changes"
            + (" and reverts them" if policy.remediate else ""),
            environment=environment,
        )
        launch = GuardFunction(
            self,
            "LaunchGuard",
            handler=contract.LAUNCH_HANDLER,
            description="AMI Guard: checks the images that new instances are launched from",
            environment=environment,
        )
        image = GuardFunction(
            self,
            "ImageGuard",
            handler=contract.IMAGE_HANDLER,
            description="AMI Guard: checks newly registered, copied and created images",
            environment=environment,
        )

        GuardRule(
            self,
            "PermissionRule",
            description="AMI Guard: image and snapshot permission changes",
            event_names=contract.PERMISSION_EVENTS,
            target=permission.function,
        )
        GuardRule(
            self,
            "LaunchRule",
            description="AMI Guard: instance launches",
            event_names=contract.LAUNCH_EVENTS,
            target=launch.function,
        )
        GuardRule(
            self,
            "ImageRule",
            description="AMI Guard: new images",
            event_names=contract.IMAGE_EVENTS,
            target=image.function,
        )

        images_here = f"arn:{self.partition}:ec2:{self.region}::image/*"
        snapshots_here = f"arn:{self.partition}:ec2:{self.region}::snapshot/*"
        images_anywhere = f"arn:{self.partition}:ec2:*::image/*"

        permission.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadImageAttributes", actions=["ec2:DescribeImageAttribute"], resources=[images_here]
            )
        )
        if policy.remediate:
            permission.role.add_to_policy(
                iam.PolicyStatement(
                    sid="RevertImageSharing",
                    actions=["ec2:ModifyImageAttribute"],
                    resources=[images_here],
                    conditions={"StringEquals": {"ec2:Owner": self.account}},
                )
            )
        _acknowledge_wildcards(
            permission.role, {"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": IMAGES_IN_REGION}
        )

        launch_describes = ["ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions"]
        launch.role.add_to_policy(
            iam.PolicyStatement(sid="DescribeLaunchInputs", actions=launch_describes, resources=["*"])
        )
        _acknowledge_wildcards(
            launch.role, {"Resource::*": NO_RESOURCE_LEVEL_PERMISSIONS.format(actions=", ".join(launch_describes))}
        )

        image.role.add_to_policy(
            iam.PolicyStatement(sid="DescribeImages", actions=["ec2:DescribeImages"], resources=["*"])
        )
        image.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadImageAttributesInAnyRegion",
                actions=["ec2:DescribeImageAttribute"],
                resources=[images_anywhere],
            )
        )
        image.role.add_to_policy(
            iam.PolicyStatement(sid="TagNewImages", actions=["ec2:CreateTags"], resources=[images_here, snapshots_here])
        )
        _acknowledge_wildcards(
            image.role,
            {
                "Resource::*": NO_RESOURCE_LEVEL_PERMISSIONS.format(actions="ec2:DescribeImages"),
                "Resource::arn:<AWS::Partition>:ec2:*::image/*": IMAGES_IN_ANY_REGION,
                "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": IMAGES_IN_REGION,
                "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*": SNAPSHOTS_IN_REGION,
            },
        )

        for guard in (permission, launch, image):
            alerts.grant_publish(guard.role)
            Validations.of(guard.function).acknowledge(Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_PINNED))

        CfnOutput(self, "AlertTopicArn", value=alerts.topic.topic_arn)
        CfnOutput(self, "PermissionGuardFunctionName", value=permission.function.function_name)
        CfnOutput(self, "LaunchGuardFunctionName", value=launch.function.function_name)
        CfnOutput(self, "ImageGuardFunctionName", value=image.function.function_name)


def _acknowledge_wildcards(role: iam.Role, reasons: Mapping[str, str]) -> None:
    """Acknowledge cdk-nag IAM5 for exactly the listed wildcard findings on this role, each with its own reason."""
    Validations.of(role).acknowledge(
        *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
    )
