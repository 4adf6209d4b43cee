"""An SNS topic that carries messages to people: KMS-encrypted with its own key, TLS-only, one email subscription
per address. The stack makes two: the alert topic (findings) and the guard-health topic (alarms, and changes to the
alert topic, its key and the idempotency table), so that neither path depends on the other's topic or key."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# The CDK default key policy grants the account "kms:*"; this one spells the actions out, so that no statement in the
# template carries a wildcard action. The account (and through IAM, the deployment role) may administer the key, and
# may use it to publish; IAM policies then decide which principals actually can.
KEY_ADMINISTRATION_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
PUBLISH_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
"""What a principal needs on the key to publish to a topic encrypted with it."""


class AlertTopic(Construct):
    """An encrypted topic with a customer managed key; publishers are granted through `grant_publish`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alert_emails: Sequence[str],
        display_name: str = "AMI Guard alerts",
        key_description: str = "AMI Guard alert topic encryption",
    ) -> None:
        super().__init__(scope, construct_id)

        account = iam.AccountRootPrincipal()
        self.key = kms.Key(
            self,
            "Key",
            description=key_description,
            enable_key_rotation=True,
            # The key protects messages in flight only; a retained orphan key would cost money and protect nothing.
            removal_policy=RemovalPolicy.DESTROY,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersKey",
                        principals=[account],
                        actions=list(KEY_ADMINISTRATION_ACTIONS),
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="AccountIamPoliciesMayGrantPublishing",
                        principals=[account],
                        actions=list(PUBLISH_KEY_ACTIONS),
                        resources=["*"],
                        conditions={"StringEquals": {"kms:CallerAccount": Stack.of(self).account}},
                    ),
                ]
            ),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=display_name,
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in alert_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """sns:Publish on this topic only, and the two key operations that publishing to an encrypted topic needs.

        Not `Topic.grant_publish`: it grants kms:GenerateDataKey*, and no action in this stack carries a wildcard.
        """
        iam.Grant.add_to_principal(grantee=grantee, actions=["sns:Publish"], resource_arns=[self.topic.topic_arn])
        iam.Grant.add_to_principal(grantee=grantee, actions=list(PUBLISH_KEY_ACTIONS), resource_arns=[self.key.key_arn])

    def allow_alarms(self, alarm_name_prefix: str) -> None:
        """CloudWatch may publish here for this account's alarms in this region whose names start with the prefix.

        Both the topic policy (without an Allow, the TLS-only policy leaves CloudWatch no way in) and the key policy
        carry aws:SourceAccount and aws:SourceArn: CloudWatch sends both when an alarm action publishes.
        """
        stack = Stack.of(self)
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
                f"{alarm_name_prefix}*"
            },
        }
        principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsMayPublish",
                principals=[principal],
                actions=list(PUBLISH_KEY_ACTIONS),
                resources=["*"],
                conditions=conditions,
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsMayPublish",
                principals=[principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )

    def allow_rule(self, rule: events.IRule) -> None:
        """This one EventBridge rule may publish here (the topic policy names it through aws:SourceArn).

        The key statement for EventBridge carries no source condition: EventBridge does not send aws:SourceArn or
        aws:SourceAccount to KMS when it delivers to an encrypted topic, so such a condition would drop every
        message. The key encrypts this topic only, and the topic policy admits this rule only.
        """
        principal = iam.ServicePrincipal("events.amazonaws.com")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesMayPublish",
                principals=[principal],
                actions=list(PUBLISH_KEY_ACTIONS),
                resources=["*"],
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="GuardRuleMayPublish",
                principals=[principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
            )
        )
