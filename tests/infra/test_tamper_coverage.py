"""Everything that can silence the guard raises guard-tampered through what is deployed.

Each case is a real-shaped CloudTrail record (field names from the services' API models and their documented
CloudTrail examples). It goes through the synthesized template only: every rule's EventPattern, with its
intrinsics replaced by made-up physical ids, is matched by moto's EventBridge pattern engine; each function that a
matching rule targets runs `guard.process` with the environment the template gives it (resolved the same way).
Calls on resources that are not the guard's own raise nothing and reach no topic, except trails: any trail counts.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from moto.events.models import EventPattern

from ami_guard import alerts, contract
from ami_guard.guard import Dependencies, process
from ami_guard.rules.catalog import routes
from ami_guard.settings import load_settings
from tests import records as r
from tests.fakes import FakeAccount
from tests.infra.conftest import ALERT_TOPIC, HANDLERS, HEALTH_TOPIC, Synthesized, resolve

REGION, ACCOUNT = r.REGION, r.ACCOUNT
ALERT_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:AmiGuard-AlertsTopicCF7C81C9-Q1W2E3R4T5Y6"
HEALTH_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:AmiGuard-HealthTopic252048D3-A1S2D3F4G5H6"
OTHER_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:billing-alerts"
ALERT_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
HEALTH_KEY = "0987dcba-09ba-87dc-65fe-0987654321ba"
OTHER_KEY = "aaaabbbb-cccc-dddd-eeee-ffff00001111"
TABLE = "AmiGuard-IdempotencyTable48612DF4-Z9X8C7V6B5N4"
QUEUES = {
    contract.PERMISSION_HANDLER: "AmiGuard-PermissionGuardFailedEvents86EE40D5-P1",
    contract.LAUNCH_HANDLER: "AmiGuard-LaunchGuardFailedEventsD2782EC6-L1",
    contract.IMAGE_HANDLER: "AmiGuard-ImageGuardFailedEventsA5BBAC74-I1",
    contract.TAMPER_HANDLER: "AmiGuard-TamperGuardFailedEvents7ADA3CBE-T1",
}
PERMISSION, TAMPER = contract.PERMISSION_HANDLER, contract.TAMPER_HANDLER
GLOBAL = "us-east-1"
"""Where IAM records its calls."""


def key_arn(key: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"


def queue_url(name: str) -> str:
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def physical_ids(stack: Synthesized) -> dict[tuple[str, str], str]:
    """(logical id, "Ref" or attribute) -> the made-up physical value CloudFormation would substitute."""
    from tests.infra.test_guard_functions import failed_events_id

    ids: dict[tuple[str, str], str] = {
        ("AWS::Region", "Ref"): REGION,
        ("AWS::AccountId", "Ref"): ACCOUNT,
        ("AWS::Partition", "Ref"): "aws",
        (stack.topic_id(ALERT_TOPIC), "Ref"): ALERT_TOPIC_ARN,
        (stack.topic_id(HEALTH_TOPIC), "Ref"): HEALTH_TOPIC_ARN,
    }
    for display, key in ((ALERT_TOPIC, ALERT_KEY), (HEALTH_TOPIC, HEALTH_KEY)):
        ids[(stack.key_id(display), "Ref")] = key
        ids[(stack.key_id(display), "Arn")] = key_arn(key)
    table = stack.only("AWS::DynamoDB::Table")
    ids[(table, "Ref")] = TABLE
    ids[(table, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
    for handler, name in QUEUES.items():
        ids[(failed_events_id(stack, handler), "QueueName")] = name
    return ids


class Publisher:
    def __init__(self) -> None:
        self.sent: list[alerts.Alert] = []

    def publish(self, alert: alerts.Alert) -> str:
        self.sent.append(alert)
        return "message-id"


class Deployed:
    """The template's rules and functions, resolved: what EventBridge would invoke, and what each function says."""

    def __init__(self, stack: Synthesized) -> None:
        ids = physical_ids(stack)
        self.rules = {
            props["Name"]: (EventPattern.load(json.dumps(resolve(props["EventPattern"], ids))), props["Targets"])
            for props in (rule["Properties"] for rule in stack.resources("AWS::Events::Rule").values())
        }
        self.function_ids = {stack.function_id(handler): handler for handler in HANDLERS}
        self.environments = {
            handler: {
                **{k: str(v) for k, v in resolve(stack.function(handler)["Environment"]["Variables"], ids).items()},
                "AWS_REGION": REGION,
            }
            for handler in HANDLERS
        }
        self.health_topic_id = stack.topic_id(HEALTH_TOPIC)

    def matching_rules(self, event: dict[str, Any]) -> list[str]:
        return sorted(name for name, (pattern, _) in self.rules.items() if pattern.matches_event(event))

    def reported_by(self, event: dict[str, Any]) -> set[str]:
        """The handlers that publish guard-tampered for `event`, each run only if a matching rule targets it."""
        reporters = set()
        for name in self.matching_rules(event):
            for target in self.rules[name][1]:
                arn = target["Arn"]
                if "Fn::GetAtt" not in arn:
                    continue
                handler = self.function_ids[arn["Fn::GetAtt"][0]]
                settings = load_settings(self.environments[handler])
                publisher = Publisher()
                deps = Dependencies(
                    policy=settings.policy,
                    lookups=FakeAccount(),
                    actions=None,
                    publisher=publisher,
                    routes=routes("tamper"),
                    watched=settings.watched,
                )
                summary = process(event, deps, Logger(service=f"tamper-{uuid.uuid4()}", stream=io.StringIO()))
                assert summary.get("findings", []) in ([], ["guard-tampered"]), summary
                if [alert.attributes["rule_id"] for alert in publisher.sent] == ["guard-tampered"]:
                    reporters.add(handler)
        return reporters

    def tells_health_topic(self, event: dict[str, Any]) -> bool:
        return any(
            target["Arn"] == {"Ref": self.health_topic_id}
            for name in self.matching_rules(event)
            for target in self.rules[name][1]
        )


@pytest.fixture(scope="module")
def deployed(default_stack: Synthesized) -> Deployed:
    return Deployed(default_stack)


def call(source: str, event_name: str, request: dict[str, Any] | None, **kw: Any) -> dict[str, Any]:
    return r.envelope_for_source(r.service_call(source, event_name, request, **kw))


SNS, KMS, IAM, SQS, DDB, TRAIL = (
    contract.SNS_SOURCE,
    contract.KMS_SOURCE,
    contract.IAM_SOURCE,
    contract.SQS_SOURCE,
    contract.DYNAMODB_SOURCE,
    contract.CLOUDTRAIL_SOURCE,
)
SUBSCRIPTION = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
FILTER_EVERYTHING_OUT = json.dumps({"rule_id": ["no-such-rule"]})
DENY_ALL = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]})
ROLE_POLICY = json.dumps({"Statement": [{"Effect": "Deny", "Action": "sns:Publish", "Resource": "*"}]})
DENY_BOUNDARY = "arn:aws:iam::aws:policy/AWSDenyAll"


def iam_calls(role: str) -> list[tuple[str, dict[str, Any]]]:
    """The eight IAM calls that change a role, each with the parameters its API takes."""
    return [
        ("PutRolePolicy", {"roleName": role, "policyName": "x", "policyDocument": ROLE_POLICY}),
        ("DeleteRolePolicy", {"roleName": role, "policyName": "PermissionGuardRoleDefaultPolicy"}),
        ("AttachRolePolicy", {"roleName": role, "policyArn": DENY_BOUNDARY}),
        ("DetachRolePolicy", {"roleName": role, "policyArn": DENY_BOUNDARY}),
        ("UpdateAssumeRolePolicy", {"roleName": role, "policyDocument": DENY_ALL}),
        ("DeleteRole", {"roleName": role}),
        ("PutRolePermissionsBoundary", {"roleName": role, "permissionsBoundary": DENY_BOUNDARY}),
        ("DeleteRolePermissionsBoundary", {"roleName": role}),
    ]


# (case id, event, the functions that report it, whether the health topic is told directly)
OWN: list[tuple[str, Callable[[], dict[str, Any]], set[str], bool]] = [
    ("sns-delete-alert-topic", lambda: call(SNS, "DeleteTopic", {"topicArn": ALERT_TOPIC_ARN}), {TAMPER}, True),
    ("sns-delete-health-topic", lambda: call(SNS, "DeleteTopic", {"topicArn": HEALTH_TOPIC_ARN}), {TAMPER}, False),
    (
        "sns-topic-key-replaced",
        lambda: call(
            SNS,
            "SetTopicAttributes",
            {"topicArn": ALERT_TOPIC_ARN, "attributeName": "KmsMasterKeyId", "attributeValue": "alias/aws/sns"},
        ),
        {TAMPER},
        True,
    ),
    (
        "sns-topic-policy-replaced",
        lambda: call(
            SNS,
            "SetTopicAttributes",
            {"topicArn": ALERT_TOPIC_ARN, "attributeName": "Policy", "attributeValue": DENY_ALL},
        ),
        {TAMPER},
        True,
    ),
    (
        "sns-permission-removed",
        lambda: call(SNS, "RemovePermission", {"topicArn": ALERT_TOPIC_ARN, "label": "AllowPublish"}),
        {TAMPER},
        True,
    ),
    (
        "sns-alert-subscription-removed",
        lambda: call(SNS, "Unsubscribe", {"subscriptionArn": f"{ALERT_TOPIC_ARN}:{SUBSCRIPTION}"}),
        {TAMPER},
        True,
    ),
    (
        "sns-health-subscription-removed",
        lambda: call(SNS, "Unsubscribe", {"subscriptionArn": f"{HEALTH_TOPIC_ARN}:{SUBSCRIPTION}"}),
        {TAMPER},
        False,
    ),
    (
        "sns-subscription-filters-everything-out",
        lambda: call(
            SNS,
            "SetSubscriptionAttributes",
            {
                "subscriptionArn": f"{ALERT_TOPIC_ARN}:{SUBSCRIPTION}",
                "attributeName": "FilterPolicy",
                "attributeValue": FILTER_EVERYTHING_OUT,
            },
        ),
        {TAMPER},
        True,
    ),
    (
        "sns-data-protection-policy",
        lambda: call(
            SNS, "PutDataProtectionPolicy", {"resourceArn": ALERT_TOPIC_ARN, "dataProtectionPolicy": DENY_ALL}
        ),
        {TAMPER},
        True,
    ),
    (
        "kms-disable-alert-key-by-id",
        lambda: call(KMS, "DisableKey", {"keyId": ALERT_KEY}, resources=[key_arn(ALERT_KEY)]),
        {TAMPER},
        True,
    ),
    (
        "kms-schedule-deletion-by-arn",
        lambda: call(
            KMS,
            "ScheduleKeyDeletion",
            {"keyId": key_arn(ALERT_KEY), "pendingWindowInDays": 7},
            resources=[key_arn(ALERT_KEY)],
        ),
        {TAMPER},
        True,
    ),
    (
        "kms-health-key-policy-replaced",
        lambda: call(
            KMS,
            "PutKeyPolicy",
            {"keyId": HEALTH_KEY, "policyName": "default", "policy": DENY_ALL, "bypassPolicyLockoutSafetyCheck": False},
            resources=[key_arn(HEALTH_KEY)],
        ),
        {TAMPER},
        False,
    ),
    (
        "kms-grant-revoked",
        lambda: call(
            KMS, "RevokeGrant", {"keyId": ALERT_KEY, "grantId": "abcde1237f76e4ba"}, resources=[key_arn(ALERT_KEY)]
        ),
        {TAMPER},
        True,
    ),
    (
        "kms-grant-retired-by-key-and-grant-id",
        lambda: call(
            KMS,
            "RetireGrant",
            {"keyId": key_arn(ALERT_KEY), "grantId": "abcde1237f76e4ba"},
            resources=[key_arn(ALERT_KEY)],
        ),
        {TAMPER},
        True,
    ),
    (
        # Named only in `resources`: the tamper guard reads it there; the direct rule does not (see alert_path_pattern)
        "kms-grant-retired-by-token",
        lambda: call(
            KMS, "RetireGrant", None, resources=[key_arn(ALERT_KEY)], additional={"grantId": "abcde1237f76e4ba"}
        ),
        {TAMPER},
        False,
    ),
    *(
        (
            f"iam-{name}-image-guard-role-of-another-region",
            lambda name=name, request=request: call(IAM, name, request, region=GLOBAL),
            {TAMPER},
            False,
        )
        for name, request in iam_calls("AmiGuard-ImageGuard-ap-southeast-2")
    ),
    (
        "iam-permission-guard-role-here",
        lambda: call(IAM, "DeleteRolePolicy", {"roleName": f"AmiGuard-PermissionGuard-{REGION}"}, region=GLOBAL),
        {TAMPER},
        False,
    ),
    (
        "iam-tamper-guard-role-seen-by-the-permission-guard",
        lambda: call(IAM, "PutRolePolicy", iam_calls(f"AmiGuard-TamperGuard-{REGION}")[0][1], region=GLOBAL),
        {PERMISSION},
        False,
    ),
    (
        "sqs-permission-queue-deleted",
        lambda: call(SQS, "DeleteQueue", {"queueUrl": queue_url(QUEUES[PERMISSION])}),
        {TAMPER},
        False,
    ),
    (
        "sqs-launch-queue-retention-cut",
        lambda: call(
            SQS,
            "SetQueueAttributes",
            {"queueUrl": queue_url(QUEUES[contract.LAUNCH_HANDLER]), "attributes": {"MessageRetentionPeriod": "60"}},
        ),
        {TAMPER},
        False,
    ),
    (
        "sqs-image-queue-permission-removed",
        lambda: call(
            SQS, "RemovePermission", {"queueUrl": queue_url(QUEUES[contract.IMAGE_HANDLER]), "label": "events"}
        ),
        {TAMPER},
        False,
    ),
    (
        "sqs-tamper-queue-purged-seen-by-the-permission-guard",
        lambda: call(SQS, "PurgeQueue", {"queueUrl": queue_url(QUEUES[TAMPER])}),
        {PERMISSION},
        False,
    ),
    ("dynamodb-table-deleted", lambda: call(DDB, "DeleteTable", {"tableName": TABLE}), {TAMPER}, True),
    (
        "dynamodb-table-throttled",
        lambda: call(
            DDB,
            "UpdateTable",
            {
                "tableName": TABLE,
                "billingMode": "PROVISIONED",
                "provisionedThroughput": {"readCapacityUnits": 1, "writeCapacityUnits": 1},
            },
        ),
        {TAMPER},
        True,
    ),
    (
        "dynamodb-resource-policy-denies",
        lambda: call(
            DDB,
            "PutResourcePolicy",
            {"resourceArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}", "policy": DENY_ALL},
        ),
        {TAMPER},
        True,
    ),
    (
        "cloudtrail-stop-logging-by-arn",
        lambda: call(TRAIL, "StopLogging", {"name": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/management"}),
        {TAMPER},
        False,
    ),
    ("cloudtrail-delete-trail", lambda: call(TRAIL, "DeleteTrail", {"name": "any-trail"}), {TAMPER}, False),
    (
        "cloudtrail-update-trail",
        lambda: call(TRAIL, "UpdateTrail", {"name": "management", "isMultiRegionTrail": False}),
        {TAMPER},
        False,
    ),
    (
        "cloudtrail-event-selectors",
        lambda: call(
            TRAIL,
            "PutEventSelectors",
            {
                "trailName": "management",
                "eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": True}],
            },
        ),
        {TAMPER},
        False,
    ),
]


@pytest.mark.parametrize(("case", "event", "reporters", "direct"), OWN, ids=[case[0] for case in OWN])
def test_each_watched_call_on_the_guards_own_resources_raises_guard_tampered_through_the_deployed_rules(
    deployed: Deployed, case: str, event: Callable[[], dict[str, Any]], reporters: set[str], direct: bool
) -> None:
    envelope = event()

    assert deployed.reported_by(envelope) == reporters
    assert deployed.tells_health_topic(envelope) is direct


NOT_OURS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("sns-other-topic", lambda: call(SNS, "DeleteTopic", {"topicArn": OTHER_TOPIC_ARN})),
    (
        "sns-topic-whose-name-extends-ours",
        lambda: call(SNS, "Unsubscribe", {"subscriptionArn": f"{ALERT_TOPIC_ARN}-copy:{SUBSCRIPTION}"}),
    ),
    (
        "sns-other-data-protection",
        lambda: call(SNS, "PutDataProtectionPolicy", {"resourceArn": OTHER_TOPIC_ARN, "dataProtectionPolicy": "{}"}),
    ),
    ("kms-other-key", lambda: call(KMS, "DisableKey", {"keyId": OTHER_KEY}, resources=[key_arn(OTHER_KEY)])),
    ("kms-other-key-retired", lambda: call(KMS, "RetireGrant", None, resources=[key_arn(OTHER_KEY)])),
    ("iam-other-role", lambda: call(IAM, "DeleteRole", {"roleName": "PlatformAdmin"}, region=GLOBAL)),
    (
        "iam-role-that-only-starts-like-ours",
        lambda: call(IAM, "PutRolePolicy", {"roleName": f"AmiGuard-LaunchGuard-{REGION}-backdoor"}, region=GLOBAL),
    ),
    ("sqs-other-queue", lambda: call(SQS, "PurgeQueue", {"queueUrl": queue_url("orders-dlq")})),
    ("dynamodb-other-table", lambda: call(DDB, "DeleteTable", {"tableName": "orders"})),
    (
        "dynamodb-other-table-policy",
        lambda: call(
            DDB,
            "PutResourcePolicy",
            {"resourceArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders", "policy": "{}"},
        ),
    ),
    (
        "failed-stop-logging",
        lambda: call(TRAIL, "StopLogging", {"name": "management"}, error_code="AccessDenied", error_message="no"),
    ),
    (
        "failed-delete-of-our-topic",
        lambda: call(SNS, "DeleteTopic", {"topicArn": ALERT_TOPIC_ARN}, error_code="AuthorizationError"),
    ),
]


@pytest.mark.parametrize(("case", "event"), NOT_OURS, ids=[case[0] for case in NOT_OURS])
def test_calls_on_resources_that_are_not_the_guards_raise_nothing(
    deployed: Deployed, case: str, event: Callable[[], dict[str, Any]]
) -> None:
    envelope = event()

    assert deployed.reported_by(envelope) == set()
    assert not deployed.tells_health_topic(envelope)


@pytest.mark.parametrize(
    ("source", "event_name", "parameters"),
    [
        (SNS, "GetTopicAttributes", {"topicArn": ALERT_TOPIC_ARN}),
        (SNS, "Subscribe", {"topicArn": ALERT_TOPIC_ARN, "protocol": "email", "endpoint": "x@example.com"}),
        (KMS, "DescribeKey", {"keyId": ALERT_KEY}),
        (KMS, "EnableKey", {"keyId": ALERT_KEY}),
        (IAM, "GetRole", {"roleName": f"AmiGuard-TamperGuard-{REGION}"}),
        (SQS, "GetQueueAttributes", {"queueUrl": queue_url(QUEUES[TAMPER])}),
        (DDB, "DescribeTable", {"tableName": TABLE}),
        (TRAIL, "StartLogging", {"name": "management"}),
    ],
)
def test_reads_and_repairs_match_no_rule(deployed: Deployed, source: str, event_name: str, parameters: Any) -> None:
    assert deployed.matching_rules(call(source, event_name, parameters)) == []


def render_input(transformer: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """EventBridge's input transformer for a JSON template: each <name> becomes the JSON of the value at its path."""

    def at(path: str) -> Any:
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    values = {name: json.dumps(at(path)) for name, path in transformer["InputPathsMap"].items()}
    return re.sub(r"<([A-Za-z0-9_.-]+)>", lambda m: values[m.group(1)], transformer["InputTemplate"])


def test_the_health_topic_notice_is_exact_json_whatever_the_record_holds(default_stack: Synthesized) -> None:
    (rule,) = [
        rule["Properties"]
        for rule in default_stack.resources("AWS::Events::Rule").values()
        if rule["Properties"]["Name"] == "AmiGuard-AlertPathWatchRule"
    ]
    (target,) = rule["Targets"]
    hostile = 'policy"}\nACTION TAKEN: none <b>'
    event = call(
        SNS,
        "SetTopicAttributes",
        {"topicArn": ALERT_TOPIC_ARN, "attributeName": "Policy", "attributeValue": hostile},
    )

    notice = json.loads(render_input(target["InputTransformer"], event))

    assert notice == {
        "schema": "ami-guard/tamper-notice/v1",
        "rule_id": "guard-tampered",
        "severity": "CRITICAL",
        "summary": (
            "A call changed the AMI Guard alert topic, its KMS key or its idempotency table. Until it is restored, "
            "the guard's alerts may not be delivered. This notice is sent by EventBridge directly, without the "
            "guard's functions. Expected during a deployment of the guard (cdk deploy); otherwise restore it with "
            "cdk deploy."
        ),
        "account": ACCOUNT,
        "region": REGION,
        "time": "2026-11-20T09:15:42Z",
        "event_id": event["detail"]["eventID"],
        "event_source": "sns.amazonaws.com",
        "event_name": "SetTopicAttributes",
        "actor": r.ROLE_ARN,
        "request": {"topicArn": ALERT_TOPIC_ARN, "attributeName": "Policy", "attributeValue": hostile},
    }
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def test_each_guard_role_is_named_for_its_guard_and_region(default_stack: Synthesized) -> None:
    names = {
        handler: default_stack.resources("AWS::IAM::Role")[default_stack.role_id(handler)]["Properties"]["RoleName"]
        for handler in HANDLERS
    }

    assert names == {
        contract.PERMISSION_HANDLER: {"Fn::Join": ["", ["AmiGuard-PermissionGuard-", {"Ref": "AWS::Region"}]]},
        contract.LAUNCH_HANDLER: {"Fn::Join": ["", ["AmiGuard-LaunchGuard-", {"Ref": "AWS::Region"}]]},
        contract.IMAGE_HANDLER: {"Fn::Join": ["", ["AmiGuard-ImageGuard-", {"Ref": "AWS::Region"}]]},
        contract.TAMPER_HANDLER: {"Fn::Join": ["", ["AmiGuard-TamperGuard-", {"Ref": "AWS::Region"}]]},
    }


def test_a_stack_name_that_leaves_no_room_for_the_region_in_a_role_name_is_refused() -> None:
    from aws_cdk import App

    from ami_guard.config import parse_policy
    from ami_guard_cdk.ami_guard_stack import AmiGuardStack
    from tests.infra.conftest import DEFAULT_BLOCK

    policy = parse_policy(dict(DEFAULT_BLOCK))
    # "<stack>-PermissionGuard-" plus 16 characters of region must fit IAM's 64: 31 characters of stack name do
    AmiGuardStack(App(), "S" * 31, policy=policy)
    with pytest.raises(ValueError, match="too long for the guard's role names"):
        AmiGuardStack(App(), "S" * 32, policy=policy)


@pytest.mark.parametrize(
    ("event", "rules"),
    [
        (
            lambda: call(SNS, "DeleteTopic", {"topicArn": ALERT_TOPIC_ARN}),
            ["AmiGuard-AlertPathWatchRule", "AmiGuard-TamperRule"],
        ),
        (lambda: call(KMS, "DisableKey", {"keyId": HEALTH_KEY}), ["AmiGuard-TamperRule"]),
        (lambda: call(TRAIL, "StopLogging", {"name": "management"}), ["AmiGuard-TamperRule"]),
        (
            lambda: call(IAM, "DeleteRole", {"roleName": "anything"}, region=GLOBAL),
            ["AmiGuard-TamperRule", "AmiGuard-TamperWatchRule"],
        ),
        (
            lambda: call(SQS, "PurgeQueue", {"queueUrl": queue_url("anything")}),
            ["AmiGuard-TamperRule", "AmiGuard-TamperWatchRule"],
        ),
    ],
)
def test_the_permission_guard_is_invoked_only_for_the_services_it_watches(
    deployed: Deployed, event: Callable[[], dict[str, Any]], rules: list[str]
) -> None:
    # It watches the tamper guard's function, rule, roles and queue: Lambda, EventBridge, IAM and SQS calls only
    assert deployed.matching_rules(event()) == rules


# --- the posture sweep's own resources (deployed with a sweepSchedule) ---------------------------------------------

STATES, SCHEDULER, LAMBDA = contract.STATES_SOURCE, contract.SCHEDULER_SOURCE, contract.LAMBDA_SOURCE
SWEEP_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:AmiGuard-Sweep"


@pytest.fixture(scope="module")
def sweep_deployed(sweep_stack: Synthesized) -> Deployed:
    return Deployed(sweep_stack)


SWEEP_OWN: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("states-delete-sweep-machine", lambda: call(STATES, "DeleteStateMachine", {"stateMachineArn": SWEEP_MACHINE_ARN})),
    (
        "states-redefine-sweep-machine",
        lambda: call(
            STATES,
            "UpdateStateMachine",
            {"stateMachineArn": SWEEP_MACHINE_ARN, "definition": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        ),
    ),
    ("scheduler-delete-sweep-schedule", lambda: call(SCHEDULER, "DeleteSchedule", {"name": "AmiGuard-Sweep"})),
    (
        "scheduler-disable-sweep-schedule",
        lambda: call(
            SCHEDULER,
            "UpdateSchedule",
            {
                "name": "AmiGuard-Sweep",
                "groupName": "default",
                "state": "DISABLED",
                "scheduleExpression": "rate(365 days)",
            },
        ),
    ),
    (
        "lambda-sweep-function-changed",
        lambda: call(LAMBDA, "UpdateFunctionConfiguration20150331v2", {"functionName": "AmiGuard-SweepGuard"}),
    ),
    *(
        (
            f"iam-{name}-sweep-role-{role}",
            lambda name=name, request=request: call(IAM, name, request, region=GLOBAL),
        )
        for role in ("SweepGuard", "SweepMachine", "SweepSchedule")
        for name, request in iam_calls(f"AmiGuard-{role}-ap-southeast-2")[:1]
    ),
]


@pytest.mark.parametrize(("case", "event"), SWEEP_OWN, ids=[case[0] for case in SWEEP_OWN])
def test_each_call_on_the_sweeps_own_resources_raises_guard_tampered_from_the_tamper_guard(
    sweep_deployed: Deployed, case: str, event: Callable[[], dict[str, Any]]
) -> None:
    assert sweep_deployed.reported_by(event()) == {TAMPER}


@pytest.mark.parametrize(
    ("case", "event"),
    [
        (
            "other-state-machine",
            lambda: call(STATES, "DeleteStateMachine", {"stateMachineArn": SWEEP_MACHINE_ARN + "-Copy"}),
        ),
        ("other-schedule", lambda: call(SCHEDULER, "DeleteSchedule", {"name": "nightly-report"})),
        (
            "same-name-other-group",
            lambda: call(SCHEDULER, "DeleteSchedule", {"name": "AmiGuard-Sweep", "groupName": "reports"}),
        ),
        (
            "failed-delete",
            lambda: call(
                STATES,
                "DeleteStateMachine",
                {"stateMachineArn": SWEEP_MACHINE_ARN},
                error_code="AccessDeniedException",
            ),
        ),
    ],
)
def test_calls_on_state_machines_and_schedules_that_are_not_the_sweeps_raise_nothing(
    sweep_deployed: Deployed, case: str, event: Callable[[], dict[str, Any]]
) -> None:
    assert sweep_deployed.reported_by(event()) == set()


def test_the_sweeps_calls_reach_the_tamper_rule_only_when_the_sweep_is_deployed(
    deployed: Deployed, sweep_deployed: Deployed
) -> None:
    delete = call(STATES, "DeleteStateMachine", {"stateMachineArn": SWEEP_MACHINE_ARN})
    reads = [
        call(STATES, "DescribeStateMachine", {"stateMachineArn": SWEEP_MACHINE_ARN}),
        call(STATES, "StartExecution", {"stateMachineArn": SWEEP_MACHINE_ARN}),
        call(SCHEDULER, "GetSchedule", {"name": "AmiGuard-Sweep"}),
    ]

    assert sweep_deployed.matching_rules(delete) == ["AmiGuard-TamperRule"]
    assert deployed.matching_rules(delete) == []
    assert [sweep_deployed.matching_rules(read) for read in reads] == [[], [], []]
