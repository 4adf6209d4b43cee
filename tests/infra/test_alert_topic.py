"""The alert topic: encrypted with a rotating customer managed key, TLS only, one email subscription per address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import DEFAULT_BLOCK, Synthesized, synthesize

TWO_EMAILS = ["secops@example.com", "cloud-team@example.org"]


@pytest.fixture(scope="module")
def two_emails(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize({**DEFAULT_BLOCK, "alertEmails": TWO_EMAILS}, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def no_emails(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    block: Mapping[str, Any] = {key: value for key, value in DEFAULT_BLOCK.items() if key != "alertEmails"}
    return synthesize(block, tmp_path_factory.mktemp("cdk.out"))


def test_topic_is_encrypted_with_its_own_rotating_key(two_emails: Synthesized) -> None:
    key = two_emails.only("AWS::KMS::Key")

    two_emails.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})
    two_emails.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_key_policy_lets_the_account_administer_the_key_and_iam_grant_publishing(two_emails: Synthesized) -> None:
    statements = two_emails.resources("AWS::KMS::Key")[two_emails.only("AWS::KMS::Key")]["Properties"]["KeyPolicy"][
        "Statement"
    ]
    account_root = {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    }

    assert {statement["Sid"] for statement in statements} == {
        "AccountAdministersKey",
        "AccountIamPoliciesMayGrantPublishing",
        "CloudWatchAlarmsMayPublish",
    }
    for statement in statements:
        assert statement["Effect"] == "Allow"
        if statement["Sid"] != "CloudWatchAlarmsMayPublish":
            assert statement["Principal"] == account_root
    alarms = next(s for s in statements if s["Sid"] == "CloudWatchAlarmsMayPublish")
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    publishing = next(s for s in statements if s["Sid"] == "AccountIamPoliciesMayGrantPublishing")
    assert sorted(publishing["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert publishing["Condition"] == {"StringEquals": {"kms:CallerAccount": {"Ref": "AWS::AccountId"}}}
    administering = next(s for s in statements if s["Sid"] == "AccountAdministersKey")
    assert "kms:PutKeyPolicy" in administering["Action"]
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(administering["Action"])


def test_topic_policy_denies_publishing_without_tls(two_emails: Synthesized) -> None:
    topic = two_emails.only("AWS::SNS::Topic")

    two_emails.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": Match.any_value(),
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sns:Publish",
                            "Resource": {"Ref": topic},
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                )
            },
        },
    )


def test_two_alert_emails_make_two_email_subscriptions(two_emails: Synthesized) -> None:
    topic = two_emails.only("AWS::SNS::Topic")
    subscriptions = two_emails.resources("AWS::SNS::Subscription").values()

    assert sorted(
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"], s["Properties"]["TopicArn"]["Ref"])
        for s in subscriptions
    ) == sorted(("email", email, topic) for email in TWO_EMAILS)


def test_no_alert_emails_make_no_subscription(no_emails: Synthesized) -> None:
    no_emails.template.resource_count_is("AWS::SNS::Subscription", 0)
    no_emails.template.resource_count_is("AWS::SNS::Topic", 1)
