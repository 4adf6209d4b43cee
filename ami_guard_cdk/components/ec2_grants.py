"""The EC2 statements each guard's calls need for a configuration: one definition for every role that makes them.

Standalone, each guard's own role holds its statements; in organization mode, the member access role holds those of
the guards that act through it, in the member's account and region. Each grant exists only when a configured feature
makes the call (tests/functions/test_calls_against_grants.py records the calls per configuration and compares them
with these statements).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from ami_guard.config import Policy

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

TAG_OWN_WILDCARDS = {
    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": IMAGES_IN_REGION,
    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*": SNAPSHOTS_IN_REGION,
}
"""The cdk-nag IAM5 findings of a tag restore's grant (_tag_own), with their reasons."""


class Grants(NamedTuple):
    """The statements of one guard, and the cdk-nag IAM5 findings they raise with the reason each is needed."""

    statements: tuple[iam.PolicyStatement, ...]
    wildcards: Mapping[str, str]


def ec2_grants(policy: Policy, stack: Stack) -> dict[str, Grants]:
    """Guard name -> its EC2 statements in `stack`'s partition, region and account (no entry: no EC2 call), and with
    securityHub its Security Hub import (`_grant_security_hub_import`)."""
    images_here = f"arn:{stack.partition}:ec2:{stack.region}::image/*"
    snapshots_here = f"arn:{stack.partition}:ec2:{stack.region}::snapshot/*"
    images_anywhere = f"arn:{stack.partition}:ec2:*::image/*"
    own = {"StringEquals": {"ec2:Owner": stack.account}}
    grants: dict[str, Grants] = {}

    # The permission guard only reads or changes images to remediate: with remediate off it calls no EC2 API.
    if policy.remediate:
        grants["PermissionGuard"] = Grants(
            statements=(
                iam.PolicyStatement(
                    sid="RevertImageSharing",
                    actions=["ec2:ModifyImageAttribute"],
                    resources=[images_here],
                    conditions=own,
                ),
                iam.PolicyStatement(
                    sid="ReadBackImageAttributes", actions=["ec2:DescribeImageAttribute"], resources=[images_here]
                ),
            ),
            wildcards={"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": IMAGES_IN_REGION},
        )

    launch_describes = ["ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions"]
    grants["LaunchGuard"] = Grants(
        statements=(iam.PolicyStatement(sid="DescribeLaunchInputs", actions=launch_describes, resources=["*"]),),
        wildcards={"Resource::*": NO_RESOURCE_LEVEL_PERMISSIONS.format(actions=", ".join(launch_describes))},
    )

    # The image guard reads images whatever the configuration (a copy's source tags, the copy's launch
    # permissions, required tags); it tags, and reads the snapshots it would tag, only with copyTags on.
    image_describes = ["ec2:DescribeImages", *(["ec2:DescribeSnapshots"] if policy.copy_tags else [])]
    image_statements = [
        iam.PolicyStatement(sid="DescribeImages", actions=image_describes, resources=["*"]),
        iam.PolicyStatement(
            sid="ReadImageAttributesInAnyRegion",
            actions=["ec2:DescribeImageAttribute"],
            resources=[images_anywhere],
        ),
    ]
    image_wildcards = {
        "Resource::*": NO_RESOURCE_LEVEL_PERMISSIONS.format(actions=", ".join(image_describes)),
        "Resource::arn:<AWS::Partition>:ec2:*::image/*": IMAGES_IN_ANY_REGION,
    }
    if policy.copy_tags:
        image_statements.append(_tag_own("TagOwnNewImages", images_here, snapshots_here, own))
        image_wildcards.update(TAG_OWN_WILDCARDS)
    grants["ImageGuard"] = Grants(statements=tuple(image_statements), wildcards=image_wildcards)

    # The posture sweep reads, never changes: the account-region's images, snapshots, their attributes where a share
    # can hide, instances, and the three account settings (ami_guard.sweep.collect). Only with a sweepSchedule.
    # With copyTags it restores, as the image guard does, the tags of the copies it finds without their source's.
    if policy.sweep_schedule is not None:
        sweep_statements = [iam.PolicyStatement(sid="ReadPosture", actions=list(SWEEP_READS), resources=["*"])]
        sweep_wildcards = {"Resource::*": SWEEP_READS_ANYWHERE}
        if policy.copy_tags:
            sweep_statements.append(_tag_own("TagOwnCopies", images_here, snapshots_here, own))
            sweep_wildcards.update(TAG_OWN_WILDCARDS)
        grants["SweepGuard"] = Grants(statements=tuple(sweep_statements), wildcards=sweep_wildcards)
    if policy.security_hub:
        _grant_security_hub_import(grants, policy, stack)
    return grants


def _tag_own(sid: str, images_here: str, snapshots_here: str, own: Mapping[str, object]) -> iam.PolicyStatement:
    """ec2:CreateTags on the account's own images and snapshots in this region: the tag restore of copies."""
    return iam.PolicyStatement(
        sid=sid, actions=["ec2:CreateTags"], resources=[images_here, snapshots_here], conditions=own
    )


ALERTING = ("PermissionGuard", "LaunchGuard", "ImageGuard", "TamperGuard")
"""Every guard that alerts (and the sweep, when deployed): with securityHub, each imports its findings."""


def security_hub_product_arn(stack: Stack) -> str:
    """The account's default Security Hub product in the stack's region: the only ARN BatchImportFindings is granted
    on (the findings an account imports about itself)."""
    return f"arn:{stack.partition}:securityhub:{stack.region}:{stack.account}:product/{stack.account}/default"


def _grant_security_hub_import(grants: dict[str, Grants], policy: Policy, stack: Stack) -> None:
    """securityhub:BatchImportFindings on the account's own default product, for each guard that alerts. Standalone,
    on the guards' roles; in organization mode, on the member role of each account and region (findings are imported
    by the account they belong to), which then trusts these hub guards."""
    for guard in (*ALERTING, *(["SweepGuard"] if policy.sweep_schedule is not None else [])):
        statement = iam.PolicyStatement(
            sid="ImportFindings",
            actions=["securityhub:BatchImportFindings"],
            resources=[security_hub_product_arn(stack)],
        )
        held = grants.get(guard, Grants(statements=(), wildcards={}))
        grants[guard] = Grants(statements=(*held.statements, statement), wildcards=held.wildcards)


SWEEP_READS = (
    "ec2:DescribeImages",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSnapshotAttribute",
    "ec2:DescribeInstances",
    "ec2:GetImageBlockPublicAccessState",
    "ec2:GetSnapshotBlockPublicAccessState",
    "ec2:GetAllowedImagesSettings",
)
SWEEP_READS_ANYWHERE = (
    "The posture sweep reads the whole account-region: the Describe list calls and the three account-setting reads "
    "(Get*BlockPublicAccessState, GetAllowedImagesSettings) support no resource-level permissions, so IAM only "
    "accepts Resource '*'; the two attribute reads follow the lists to every image and snapshot they return. "
    "The statement holds these eight read-only actions and nothing else."
)


def acknowledge_wildcards(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    """Acknowledge cdk-nag IAM5 for exactly the listed wildcard findings on this construct, each with its reason."""
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
    )
