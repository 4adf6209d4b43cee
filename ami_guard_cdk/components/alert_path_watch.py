"""Changes to the alert path itself, told without it: an EventBridge rule that publishes straight to the
guard-health topic.

When the alert topic, its key or the idempotency table is what was broken, a guard function can no longer publish
(the topic is gone, the key refuses) or even run (every event first writes its idempotency record). The tamper guard
still reports these calls through the alert topic when it can; this rule reports them a second way that needs no
function, no alert topic and no alert key: EventBridge itself publishes a fixed JSON notice to the guard-health topic.
"""

from __future__ import annotations

from typing import cast

import jsii
from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from constructs import Construct

from ami_guard import contract
from ami_guard_cdk.components.alert_topic import AlertTopic

NOTICE_SCHEMA = "ami-guard/tamper-notice/v1"
NOTICE_SUMMARY = (
    "A call changed the AMI Guard alert topic, its KMS key or its idempotency table. Until it is restored, the guard's "
    "alerts may not be delivered. This notice is sent by EventBridge directly, without the guard's functions. "
    "Expected during a deployment of the guard (cdk deploy); otherwise restore it with cdk deploy."
)
WATCHED_SOURCES = (contract.SNS_SOURCE, contract.KMS_SOURCE, contract.DYNAMODB_SOURCE)
RETRY_ATTEMPTS = 185  # EventBridge's maximum: a notice about a broken alert path is worth every retry
MAX_EVENT_AGE = Duration.hours(24)


def alert_path_pattern(alerts: AlertTopic, table: dynamodb.ITable) -> events.EventPattern:
    """Successful calls on watched SNS, KMS and DynamoDB actions that name the alert topic (or one of its
    subscriptions), its key (by id or ARN) or the table in their request parameters.

    Not matched here: a RetireGrant by grant token, whose record names the key only in its `resources` list of
    objects (moto's pattern engine, which the tests use, cannot match inside such a list, so the branch could not be
    shown to work). The guard uses no grant, so retiring one cannot silence it; the tamper guard still reports it.
    """
    topic = alerts.topic.topic_arn
    key = alerts.key
    return events.EventPattern(
        source=[f"aws.{source.split('.', 1)[0]}" for source in WATCHED_SOURCES],
        detail_type=[contract.DETAIL_TYPE],
        detail={
            "eventSource": list(WATCHED_SOURCES),
            "eventName": [name for source in WATCHED_SOURCES for name in contract.INFRASTRUCTURE_TAMPER_EVENTS[source]],
            "errorCode": [{"exists": False}],
            "$or": [
                {"requestParameters": {"topicArn": [topic]}},
                {"requestParameters": {"subscriptionArn": [{"prefix": f"{topic}:"}]}},
                {"requestParameters": {"resourceArn": [topic, table.table_arn]}},
                {"requestParameters": {"keyId": [key.key_id, key.key_arn]}},
                {"requestParameters": {"tableName": [table.table_name]}},
            ],
        },
    )


def notice() -> events.RuleTargetInput:
    """A JSON document (values from the record are JSON strings or objects in it, never layout)."""
    field = events.EventField.from_path
    return events.RuleTargetInput.from_object(
        {
            "schema": NOTICE_SCHEMA,
            "rule_id": "guard-tampered",
            "severity": "CRITICAL",
            "summary": NOTICE_SUMMARY,
            "account": field("$.account"),
            "region": field("$.detail.awsRegion"),
            "time": field("$.detail.eventTime"),
            "event_id": field("$.detail.eventID"),
            "event_source": field("$.detail.eventSource"),
            "event_name": field("$.detail.eventName"),
            "actor": field("$.detail.userIdentity.arn"),
            "request": field("$.detail.requestParameters"),
        }
    )


@jsii.implements(events.IRuleTarget)
class _PublishNotice:
    """The topic as a rule target, with the notice as its input. Not `targets.SnsTopic`: that grants
    kms:GenerateDataKey* (a wildcard action) and admits any rule through the topic policy; `AlertTopic.allow_rule`
    admits this rule only."""

    def __init__(self, topic: AlertTopic) -> None:
        self._topic = topic

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self._topic.topic.topic_arn,
            input=notice(),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=RETRY_ATTEMPTS, maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds())
            ),
            target_resource=self._topic.topic,
        )


class AlertPathWatch(Construct):
    """One rule: calls that break the alert path -> a notice on the guard-health topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rule_name: str,
        alerts: AlertTopic,
        table: dynamodb.ITable,
        health: AlertTopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name,
            description="AMI Guard: changes to the alert topic, its key or the idempotency table, told directly",
            event_pattern=alert_path_pattern(alerts, table),
            targets=[cast(events.IRuleTarget, _PublishNotice(health))],
        )
        health.allow_rule(self.rule)
