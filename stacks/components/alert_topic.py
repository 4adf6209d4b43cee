"""The SNS topic that carries findings to people: KMS-encrypted, TLS-only, one email subscription per address."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
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

    def __init__(self, scope: Construct, construct_id: str, *, alert_emails: Sequence[str]) -> None:
        super().__init__(scope, construct_id)

        account = iam.AccountRootPrincipal()
        self.key = kms.Key(
            self,
            "Key",
            description="AMI Guard alert topic encryption",
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
                        sid="CloudWatchAlarmsMayPublish",
                        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                        actions=list(PUBLISH_KEY_ACTIONS),
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
            display_name="AMI Guard alerts",
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
