"""What the synthesized template promises for reliability: the tamper rules (matched with a real EventBridge
pattern engine), the idempotency table, failed-events queues, asynchronous retries, and the alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests import records as r
from tests.corpus import needs_corpus, sample_files
from tests.infra.conftest import (
    DEFAULT_BLOCK,
    HANDLERS,
    HEALTH_TOPIC,
    IMAGE_HANDLER,
    LAUNCH_HANDLER,
    PERMISSION_HANDLER,
    TAMPER_HANDLER,
    Synthesized,
    render,
    synthesize,
)

OPS_TOPIC = "arn:aws:sns:eu-west-1:123456789012:platform-operations"


def rules(stack: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in stack.resources("AWS::Events::Rule").items()}


def matching_targets(stack: Synthesized, event: dict[str, Any]) -> list[str]:
    """The functions EventBridge would invoke for `event`, by deployed pattern (moto's pattern engine)."""
    targets = []
    for rule in rules(stack).values():
        if EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event):
            targets += [t["Arn"]["Fn::GetAtt"][0] for t in rule["Targets"]]
    return sorted(targets)


@pytest.mark.parametrize(
    "event_name",
    [
        "UpdateFunctionConfiguration20150331v2",
        "UpdateFunctionCode20150331v2",
        "DeleteFunction20150331",
        "PutFunctionConcurrency20171031",
        "RemovePermission20150331v2",
    ],
)
def test_tamper_rules_match_lambda_event_names_with_api_version_suffixes(
    default_stack: Synthesized, event_name: str
) -> None:
    event = r.envelope_for_source(r.lambda_call(event_name, "AmiGuard-PermissionGuard"))
    assert matching_targets(default_stack, event) == sorted(
        [default_stack.function_id(TAMPER_HANDLER), default_stack.function_id(PERMISSION_HANDLER)]
    )


@pytest.mark.parametrize("event_name", ["DisableRule", "DeleteRule", "PutRule", "PutTargets", "RemoveTargets"])
def test_tamper_rules_match_rule_changes(default_stack: Synthesized, event_name: str) -> None:
    event = r.envelope_for_source(r.events_call(event_name, "AmiGuard-LaunchRule"))
    assert len(matching_targets(default_stack, event)) == 2


@pytest.mark.parametrize("event_name", ["GetFunction20150331v2", "Invoke", "ListRules", "DescribeRule"])
def test_reads_of_functions_and_rules_do_not_match(default_stack: Synthesized, event_name: str) -> None:
    source = r.lambda_call if event_name.startswith(("Get", "Invoke")) else r.events_call
    event = r.envelope_for_source(source(event_name, "AmiGuard-LaunchGuard"))
    assert matching_targets(default_stack, event) == []


@pytest.mark.parametrize(
    ("record", "handler"),
    [
        (r.modify_image_attribute("ami-1", [{"group": "all"}]), PERMISSION_HANDLER),
        (r.run_instances("ami-1", "m5.large"), LAUNCH_HANDLER),
        (r.copy_image("ami-1", "ami-2"), IMAGE_HANDLER),
    ],
)
def test_each_ec2_call_reaches_exactly_its_guard(default_stack: Synthesized, record: Any, handler: str) -> None:
    assert matching_targets(default_stack, r.envelope(record)) == [default_stack.function_id(handler)]


@needs_corpus
@pytest.mark.parametrize("path", [p for p in sample_files() if p.name.startswith("awsdocs__")], ids=lambda p: p.name)
def test_ami_state_change_events_match_no_rule(default_stack: Synthesized, path: Path) -> None:
    # Real EventBridge envelopes of detail-type "EC2 AMI State Change": not API calls
    assert matching_targets(default_stack, json.loads(path.read_text())) == []


def test_idempotency_table_is_on_demand_encrypted_recoverable_and_expires(default_stack: Synthesized) -> None:
    default_stack.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


@pytest.mark.parametrize("handler", HANDLERS)
def test_failed_invocations_are_retried_then_kept_in_an_encrypted_tls_only_queue(
    default_stack: Synthesized, handler: str
) -> None:
    function_id = default_stack.function_id(handler)
    (config,) = [
        c["Properties"]
        for c in default_stack.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 6 * 3600
    queue_id = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    queue = default_stack.resources("AWS::SQS::Queue")[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (statements,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in default_stack.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    assert statements[0] == {
        "Effect": "Deny",
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Principal": {"AWS": "*"},
        "Resource": queue_arn,
    }
    # The rules that target this function may dead-letter into its queue, and nothing else may write to it
    feeding = sorted(
        rule_id
        for rule_id, rule in rules(default_stack).items()
        if rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    )
    assert (
        feeding
        and sorted(st["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for st in statements[1:]) == feeding
    )
    for statement in statements[1:]:
        assert statement["Effect"] == "Allow" and statement["Action"] == "sqs:SendMessage"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Resource"] == queue_arn
    for rule_id in feeding:
        assert rules(default_stack)[rule_id]["Targets"][0]["DeadLetterConfig"] == {"Arn": queue_arn}


def alarms(stack: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in stack.resources("AWS::CloudWatch::Alarm").values()]


def test_every_function_has_error_throttle_and_failed_events_alarms(default_stack: Synthesized) -> None:
    found = {(a["Namespace"], a["MetricName"], render(a["Dimensions"][0]["Value"])) for a in alarms(default_stack)}
    for handler in HANDLERS:
        function = f"${{{default_stack.function_id(handler)}}}"
        assert ("AWS/Lambda", "Errors", function) in found
        assert ("AWS/Lambda", "Throttles", function) in found
    queues = {f"${{{q}.QueueName}}" for q in default_stack.resources("AWS::SQS::Queue")}
    assert {v for ns, m, v in found if m == "ApproximateNumberOfMessagesVisible"} == queues
    # and one on the finding events that did not reach EventBridge (tests/infra/test_finding_outputs.py)
    assert len(alarms(default_stack)) == 3 * len(HANDLERS) + 1
    for alarm in alarms(default_stack):
        assert alarm["Threshold"] == 1 and alarm["EvaluationPeriods"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarms_go_to_the_health_topic_by_default_not_through_the_alert_topic(default_stack: Synthesized) -> None:
    # The alert topic or its key may be what is broken: the alarms must not depend on them
    topic = {"Ref": default_stack.topic_id(HEALTH_TOPIC)}
    assert alarms(default_stack) and all(alarm["AlarmActions"] == [topic] for alarm in alarms(default_stack))


def test_alarm_names_start_with_the_prefix_the_health_topic_admits(default_stack: Synthesized) -> None:
    assert sorted(alarm["AlarmName"] for alarm in alarms(default_stack)) == sorted(
        [
            *(
                f"AmiGuard-{guard}-{kind}"
                for guard in ("PermissionGuard", "LaunchGuard", "ImageGuard", "TamperGuard")
                for kind in ("Errors", "Throttles", "FailedEvents")
            ),
            "AmiGuard-EventbridgeFailures",
        ]
    )


def test_alarms_go_to_the_operations_topic_when_configured(tmp_path: Path) -> None:
    stack = synthesize({**DEFAULT_BLOCK, "operationsTopicArn": OPS_TOPIC}, tmp_path)
    assert all(alarm["AlarmActions"] == [OPS_TOPIC] for alarm in alarms(stack))
