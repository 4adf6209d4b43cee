"""AmiGuardStack: three guard functions, each fed by its own EventBridge rule, alerting through one topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from ami_guard import contract
from ami_guard.config import Policy, to_environment
from stacks.components.alert_path_watch import AlertPathWatch
from stacks.components.alert_topic import AlertTopic
from stacks.components.guard_alarms import GuardAlarms
from stacks.components.guard_function import GuardFunction
from stacks.components.guard_rule import GuardRule, cloudtrail_pattern, tamper_pattern
from stacks.components.idempotency_table import IdempotencyTable

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


GUARDS = {
    "PermissionGuard": (contract.PERMISSION_HANDLER, "AMI Guard: checks image and snapshot sharing changes"),
    "LaunchGuard": (contract.LAUNCH_HANDLER, "AMI Guard: checks the images that new instances are launched from"),
    "ImageGuard": (contract.IMAGE_HANDLER, "AMI Guard: checks newly registered, copied and created images"),
    "TamperGuard": (contract.TAMPER_HANDLER, "AMI Guard: reports changes to the guard's own resources"),
}
ROLE_NAME_MAX = 64
REGION_NAME_MAX = 16
"""The longest region name the role names leave room for (ap-southeast-7 and us-gov-west-1 are 14 and 13)."""


class AmiGuardStack(Stack):
    """Environment-agnostic: every ARN is built from the partition, region and account of the deployment."""

    def __init__(self, scope: Construct, construct_id: str, *, policy: Policy, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        alerts = AlertTopic(self, "Alerts", alert_emails=policy.alert_emails)
        # Alarms, and changes that break the alert path, go through a second topic with its own key, so that they
        # still reach someone when the alert topic or its key is what was broken.
        health = AlertTopic(
            self,
            "Health",
            alert_emails=policy.alert_emails,
            display_name="AMI Guard health",
            key_description="AMI Guard health topic encryption",
        )
        idempotency = IdempotencyTable(self, "Idempotency")
        environment = {
            **to_environment(policy),
            contract.ENV_TOPIC_ARN: alerts.topic.topic_arn,
            contract.ENV_IDEMPOTENCY_TABLE: idempotency.table.table_name,
        }
        # Physical names, so that each guard can name the others it watches without a reference cycle.
        names = {guard: f"{self.stack_name}-{guard}" for guard in GUARDS}
        rule_names = {guard: f"{self.stack_name}-{guard.removesuffix('Guard')}Rule" for guard in GUARDS}
        rule_names["TamperWatch"] = f"{self.stack_name}-TamperWatchRule"
        rule_names["AlertPathWatch"] = f"{self.stack_name}-AlertPathWatchRule"
        # IAM records role changes in us-east-1 only, and role names are global: each role is named
        # <stack>-<Guard>-<region>, so that the deployment in us-east-1 recognises the roles of the guard in any region.
        role_prefixes = {guard: contract.guard_role_prefix(self.stack_name, guard) for guard in GUARDS}
        for prefix in role_prefixes.values():
            if len(prefix) + REGION_NAME_MAX > ROLE_NAME_MAX:
                raise ValueError(
                    f"stack name {self.stack_name!r} is too long for the guard's role names "
                    f"({prefix}<region> must fit IAM's {ROLE_NAME_MAX} characters)"
                )

        # The watch lists are added once every guard exists: they name each other's queues.
        guards: dict[str, GuardFunction] = {}
        for guard_name, (handler, description) in GUARDS.items():
            guards[guard_name] = GuardFunction(
                self,
                guard_name,
                function_name=names[guard_name],
                role_name=f"{role_prefixes[guard_name]}{self.region}",
                handler=handler,
                description=description
                + (" and reverts them" if guard_name == "PermissionGuard" and policy.remediate else ""),
                environment=environment,
            )
        permission, launch, image, tamper = (guards[g] for g in GUARDS)

        # The tamper guard watches everything else; the permission guard watches the tamper guard's own function,
        # rule, role and queue, so that no function is the only witness of a change to itself. Each role is watched
        # by one function only (the one in us-east-1 of whichever deployment sees it).
        others = [g for g in GUARDS if g != "TamperGuard"]
        watch: dict[str, dict[str, str]] = {
            "PermissionGuard": {
                contract.ENV_WATCHED_FUNCTIONS: names["TamperGuard"],
                contract.ENV_WATCHED_RULES: rule_names["TamperGuard"],
                contract.ENV_WATCHED_ROLE_PREFIXES: role_prefixes["TamperGuard"],
                contract.ENV_WATCHED_QUEUES: tamper.failed_events.queue_name,
            },
            "TamperGuard": {
                contract.ENV_WATCHED_FUNCTIONS: ",".join(names[g] for g in others),
                contract.ENV_WATCHED_RULES: ",".join(rule_names[g] for g in (*others, "TamperWatch", "AlertPathWatch")),
                contract.ENV_WATCHED_TOPICS: ",".join((alerts.topic.topic_arn, health.topic.topic_arn)),
                contract.ENV_WATCHED_KEYS: ",".join((alerts.key.key_arn, health.key.key_arn)),
                contract.ENV_WATCHED_ROLE_PREFIXES: ",".join(role_prefixes[g] for g in others),
                contract.ENV_WATCHED_QUEUES: ",".join(guards[g].failed_events.queue_name for g in others),
                contract.ENV_WATCHED_TABLES: idempotency.table.table_name,
                contract.ENV_WATCH_TRAILS: "true",
            },
        }
        for guard_name, variables in watch.items():
            for key, value in variables.items():
                guards[guard_name].function.add_environment(key, value)

        for key, construct_id, description, pattern, target in (
            (
                "PermissionGuard",
                "PermissionRule",
                "AMI Guard: image and snapshot permission changes",
                cloudtrail_pattern(contract.PERMISSION_EVENTS),
                permission,
            ),
            (
                "LaunchGuard",
                "LaunchRule",
                "AMI Guard: instance launches",
                cloudtrail_pattern(contract.LAUNCH_EVENTS),
                launch,
            ),
            ("ImageGuard", "ImageRule", "AMI Guard: new images", cloudtrail_pattern(contract.IMAGE_EVENTS), image),
            (
                "TamperGuard",
                "TamperRule",
                "AMI Guard: changes to the guard's own resources and to trails",
                tamper_pattern(),
                tamper,
            ),
            (
                "TamperWatch",
                "TamperWatchRule",
                "AMI Guard: changes to the tamper guard itself, seen by another function",
                # what the permission guard watches: the tamper guard's function, rule, roles and queue
                tamper_pattern((contract.IAM_SOURCE, contract.SQS_SOURCE)),
                permission,
            ),
        ):
            GuardRule(
                self,
                construct_id,
                rule_name=rule_names[key],
                description=description,
                pattern=pattern,
                target=target.function,
                dead_letter_queue=target.failed_events,
            )

        images_here = f"arn:{self.partition}:ec2:{self.region}::image/*"
        snapshots_here = f"arn:{self.partition}:ec2:{self.region}::snapshot/*"
        images_anywhere = f"arn:{self.partition}:ec2:*::image/*"
        own = {"StringEquals": {"ec2:Owner": self.account}}

        # Each EC2 grant exists only when a configured feature makes the call (tests/functions/
        # test_calls_against_grants.py records the calls per configuration and compares them with these statements).
        # The permission guard only reads or changes images to remediate: with remediate off it calls no EC2 API.
        if policy.remediate:
            permission.role.add_to_policy(
                iam.PolicyStatement(
                    sid="RevertImageSharing",
                    actions=["ec2:ModifyImageAttribute"],
                    resources=[images_here],
                    conditions=own,
                )
            )
            permission.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadBackImageAttributes", actions=["ec2:DescribeImageAttribute"], resources=[images_here]
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

        # The image guard reads images whatever the configuration (a copy's source tags, the copy's launch
        # permissions, required tags); it tags, and reads the snapshots it would tag, only with copyTags on.
        image_describes = ["ec2:DescribeImages", *(["ec2:DescribeSnapshots"] if policy.copy_tags else [])]
        image.role.add_to_policy(iam.PolicyStatement(sid="DescribeImages", actions=image_describes, resources=["*"]))
        image.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadImageAttributesInAnyRegion",
                actions=["ec2:DescribeImageAttribute"],
                resources=[images_anywhere],
            )
        )
        image_wildcards = {
            "Resource::*": NO_RESOURCE_LEVEL_PERMISSIONS.format(actions=", ".join(image_describes)),
            "Resource::arn:<AWS::Partition>:ec2:*::image/*": IMAGES_IN_ANY_REGION,
        }
        if policy.copy_tags:
            image.role.add_to_policy(
                iam.PolicyStatement(
                    sid="TagOwnNewImages",
                    actions=["ec2:CreateTags"],
                    resources=[images_here, snapshots_here],
                    conditions=own,
                )
            )
            image_wildcards.update(
                {
                    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*": IMAGES_IN_REGION,
                    "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*": SNAPSHOTS_IN_REGION,
                }
            )
        _acknowledge_wildcards(image.role, image_wildcards)

        AlertPathWatch(
            self,
            "AlertPathWatch",
            rule_name=rule_names["AlertPathWatch"],
            alerts=alerts,
            table=idempotency.table,
            health=health,
        )
        alarm_prefix = f"{self.stack_name}-"
        if policy.operations_topic_arn:
            alarm_topic: sns.ITopic = sns.Topic.from_topic_arn(self, "OperationsTopic", policy.operations_topic_arn)
        else:
            alarm_topic = health.topic
            health.allow_alarms(alarm_prefix)
        for name, guard in guards.items():
            alerts.grant_publish(guard.role)
            idempotency.grant(guard.role)
            GuardAlarms(self, f"{name}Alarms", guard=guard, topic=alarm_topic, name_prefix=f"{alarm_prefix}{name}-")
            Validations.of(guard.function).acknowledge(Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_PINNED))

        CfnOutput(self, "AlertTopicArn", value=alerts.topic.topic_arn)
        CfnOutput(self, "HealthTopicArn", value=health.topic.topic_arn)
        CfnOutput(self, "IdempotencyTableName", value=idempotency.table.table_name)
        for name, guard in guards.items():
            CfnOutput(self, f"{name}FunctionName", value=guard.function.function_name)


def _acknowledge_wildcards(role: iam.Role, reasons: Mapping[str, str]) -> None:
    """Acknowledge cdk-nag IAM5 for exactly the listed wildcard findings on this role, each with its own reason."""
    Validations.of(role).acknowledge(
        *(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items())
    )
