"""The alert topic and the health topic: each encrypted with its own rotating customer managed key, TLS only, one
email subscription per address; only the health topic admits CloudWatch alarms (by source account and alarm ARN)
and the one EventBridge rule that tells it of changes to the alert path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ALERT_TOPIC, DEFAULT_BLOCK, HEALTH_TOPIC, Synthesized, synthesize

TWO_EMAILS = ["secops@example.com", "cloud-team@example.org"]


@pytest.fixture(scope="module")
def two_emails(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize({**DEFAULT_BLOCK, "alertEmails": TWO_EMAILS}, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def no_emails(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    block: Mapping[str, Any] = {key: value for key, value in DEFAULT_BLOCK.items() if key != "alertEmails"}
    return synthesize(block, tmp_path_factory.mktemp("cdk.out"))


TOPICS = [ALERT_TOPIC, HEALTH_TOPIC]
ACCOUNT_ROOT = {
    "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
}
ALARMS_OF_THIS_STACK = {
    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    "ArnLike": {
        "aws:SourceArn": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":cloudwatch:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":alarm:AmiGuard-*",
                ],
            ]
        }
    },
}


def key_statements(stack: Synthesized, topic: str) -> dict[str, Any]:
    statements = stack.resources("AWS::KMS::Key")[stack.key_id(topic)]["Properties"]["KeyPolicy"]["Statement"]
    return {statement["Sid"]: statement for statement in statements}


def topic_statements(stack: Synthesized, topic: str) -> list[dict[str, Any]]:
    (statements,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in stack.resources("AWS::SNS::TopicPolicy").values()
        if policy["Properties"]["Topics"] == [{"Ref": stack.topic_id(topic)}]
    ]
    return list(statements)


@pytest.mark.parametrize("topic", TOPICS)
def test_each_topic_is_encrypted_with_its_own_rotating_key(two_emails: Synthesized, topic: str) -> None:
    two_emails.template.resource_count_is("AWS::KMS::Key", 2)
    assert two_emails.key_id(ALERT_TOPIC) != two_emails.key_id(HEALTH_TOPIC)
    key = two_emails.resources("AWS::KMS::Key")[two_emails.key_id(topic)]
    assert key["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("topic", TOPICS)
def test_key_policy_lets_the_account_administer_the_key_and_iam_grant_publishing(
    two_emails: Synthesized, topic: str
) -> None:
    statements = key_statements(two_emails, topic)

    for sid in ("AccountAdministersKey", "AccountIamPoliciesMayGrantPublishing"):
        assert statements[sid]["Effect"] == "Allow" and statements[sid]["Principal"] == ACCOUNT_ROOT
    publishing = statements["AccountIamPoliciesMayGrantPublishing"]
    assert sorted(publishing["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert publishing["Condition"] == {"StringEquals": {"kms:CallerAccount": {"Ref": "AWS::AccountId"}}}
    administering = statements["AccountAdministersKey"]
    assert "kms:PutKeyPolicy" in administering["Action"]
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(administering["Action"])


def test_only_the_health_key_admits_services_and_cloudwatch_only_for_this_stacks_alarms(
    two_emails: Synthesized,
) -> None:
    assert set(key_statements(two_emails, ALERT_TOPIC)) == {
        "AccountAdministersKey",
        "AccountIamPoliciesMayGrantPublishing",
    }
    health = key_statements(two_emails, HEALTH_TOPIC)
    assert set(health) == {
        "AccountAdministersKey",
        "AccountIamPoliciesMayGrantPublishing",
        "CloudWatchAlarmsMayPublish",
        "EventBridgeRulesMayPublish",
    }
    alarms = health["CloudWatchAlarmsMayPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert alarms["Condition"] == ALARMS_OF_THIS_STACK
    rules = health["EventBridgeRulesMayPublish"]
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(rules["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


@pytest.mark.parametrize("topic", TOPICS)
def test_topic_policy_denies_publishing_without_tls(two_emails: Synthesized, topic: str) -> None:
    topic_id = two_emails.topic_id(topic)

    assert {
        "Sid": "AllowPublishThroughSSLOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": {"Ref": topic_id},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in topic_statements(two_emails, topic)


def test_alert_topic_policy_admits_no_service(two_emails: Synthesized) -> None:
    assert [s["Effect"] for s in topic_statements(two_emails, ALERT_TOPIC)] == ["Deny"]


def test_health_topic_admits_this_stacks_alarms_and_the_alert_path_rule_only(two_emails: Synthesized) -> None:
    topic = {"Ref": two_emails.topic_id(HEALTH_TOPIC)}
    (rule,) = two_emails.template.find_resources(
        "AWS::Events::Rule", {"Properties": {"Name": "AmiGuard-AlertPathWatchRule"}}
    )
    allows = [s for s in topic_statements(two_emails, HEALTH_TOPIC) if s["Effect"] == "Allow"]

    assert sorted(allows, key=lambda s: str(s["Sid"])) == [
        {
            "Sid": "CloudWatchAlarmsMayPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": ALARMS_OF_THIS_STACK,
        },
        {
            "Sid": "GuardRuleMayPublish",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}},
        },
    ]


def test_with_an_operations_topic_the_health_topic_admits_no_alarm(tmp_path: Path) -> None:
    stack = synthesize({**DEFAULT_BLOCK, "operationsTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"}, tmp_path)

    assert "CloudWatchAlarmsMayPublish" not in key_statements(stack, HEALTH_TOPIC)
    assert [s["Sid"] for s in topic_statements(stack, HEALTH_TOPIC)] == [
        "AllowPublishThroughSSLOnly",
        "GuardRuleMayPublish",
    ]


@pytest.mark.parametrize("topic", TOPICS)
def test_two_alert_emails_make_two_email_subscriptions_on_each_topic(two_emails: Synthesized, topic: str) -> None:
    topic_id = two_emails.topic_id(topic)
    subscriptions = [
        s["Properties"]
        for s in two_emails.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]

    assert sorted((s["Protocol"], s["Endpoint"]) for s in subscriptions) == sorted(
        ("email", email) for email in TWO_EMAILS
    )
    two_emails.template.resource_count_is("AWS::SNS::Subscription", 4)


def test_no_alert_emails_make_no_subscription(no_emails: Synthesized) -> None:
    no_emails.template.resource_count_is("AWS::SNS::Subscription", 0)
    no_emails.template.resource_count_is("AWS::SNS::Topic", 2)
