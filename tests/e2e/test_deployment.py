"""What `cdk deploy` left in the emulated account, in each region: the resources the guard needs, wired together."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from ami_guard import contract
from demo.records import DETAIL_TYPE
from demo.runner import events_may_invoke
from demo.scenario import HOME, OTHER, TRUSTED_ACCOUNT
from tests.e2e.harness import Played

pytestmark = pytest.mark.e2e

REGIONS = (HOME, OTHER)
# The watched calls, written out, and the function each one must reach.
ROUTES = [
    ("ec2.amazonaws.com", "ModifyImageAttribute", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "ModifySnapshotAttribute", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "DisableImageBlockPublicAccess", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "DisableSnapshotBlockPublicAccess", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "EnableSnapshotBlockPublicAccess", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "DisableAllowedImagesSettings", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "EnableAllowedImagesSettings", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "ReplaceImageCriteriaInAllowedImagesSettings", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "DisableImageDeregistrationProtection", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "UnlockSnapshot", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "CreateStoreImageTask", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "ExportImage", contract.PERMISSION_HANDLER),
    ("rbin.amazonaws.com", "DeleteRule", contract.PERMISSION_HANDLER),
    ("rbin.amazonaws.com", "UpdateRule", contract.PERMISSION_HANDLER),
    ("rbin.amazonaws.com", "UnlockRule", contract.PERMISSION_HANDLER),
    ("ec2.amazonaws.com", "RunInstances", contract.LAUNCH_HANDLER),
    ("ec2.amazonaws.com", "RegisterImage", contract.IMAGE_HANDLER),
    ("ec2.amazonaws.com", "CopyImage", contract.IMAGE_HANDLER),
    ("ec2.amazonaws.com", "CreateImage", contract.IMAGE_HANDLER),
]
EC2_HANDLERS = (contract.PERMISSION_HANDLER, contract.LAUNCH_HANDLER, contract.IMAGE_HANDLER)


def _functions(played: Played, region: str) -> list[dict[str, Any]]:
    """The region's deployed functions; before a test loops over them, that the EC2 guards are among them."""
    found: list[dict[str, Any]] = played.session.emulator.client("lambda", region).list_functions()["Functions"]
    assert {contract.PERMISSION_HANDLER, contract.LAUNCH_HANDLER, contract.IMAGE_HANDLER} <= {
        f["Handler"] for f in found
    }, [f["Handler"] for f in found]
    return found


def _envelope(event_name: str, region: str, event_source: str = contract.EVENT_SOURCE) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e2e",
        "detail-type": DETAIL_TYPE,
        "source": "aws." + event_source.split(".", 1)[0],
        "account": "111122223333",
        "time": "2026-11-26T09:00:00Z",
        "region": region,
        "resources": [],
        "detail": {"eventSource": event_source, "eventName": event_name, "awsRegion": region},
    }


@pytest.mark.parametrize("region", REGIONS)
def test_one_function_per_guard_with_its_handler(played: Played, region: str) -> None:
    # Given the deployment in the region
    handlers = [f["Handler"] for f in _functions(played, region)]

    # Then each EC2 guard's handler is deployed exactly once
    for handler in EC2_HANDLERS:
        assert handlers.count(handler) == 1, handlers


@pytest.mark.parametrize("region", REGIONS)
def test_functions_get_the_configuration_and_the_topic(played: Played, region: str) -> None:
    # Given the deployed functions and the alert topic they name
    emulator = played.session.emulator
    for function in _functions(played, region):
        env = function["Environment"]["Variables"]
        topic = env[contract.ENV_TOPIC_ARN]

        # Then the topic exists in the same region, encrypted, and the amiGuard configuration reached the function
        attributes = emulator.client("sns", region).get_topic_attributes(TopicArn=topic)["Attributes"]
        assert topic.split(":")[3] == region
        assert attributes.get("KmsMasterKeyId"), f"{topic} is not encrypted"
        assert TRUSTED_ACCOUNT in env[contract.ENV_TRUSTED_ACCOUNTS]
        assert env[contract.ENV_MIN_SEVERITY] == "LOW"
        assert env[contract.ENV_REMEDIATE] == "false"


@pytest.mark.parametrize("region", REGIONS)
def test_every_table_a_function_names_exists(played: Played, region: str) -> None:
    # Given the deployed environments (the idempotency table reaches the functions as a variable)
    emulator = played.session.emulator
    named = {
        value
        for f in _functions(played, region)
        for key, value in f["Environment"]["Variables"].items()
        if key.endswith("_TABLE")
    }

    # Then each named table exists
    for table in named:
        emulator.client("dynamodb", region).describe_table(TableName=table)


@pytest.mark.parametrize("region", REGIONS)
def test_each_function_has_a_role_that_lambda_may_assume(played: Played, region: str) -> None:
    # Given the deployed functions
    iam = played.session.emulator.client("iam", region)
    for function in _functions(played, region):
        # When its role is read
        role = iam.get_role(RoleName=function["Role"].rsplit("/", 1)[-1])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust

        # Then Lambda may assume it, and it has a policy of its own
        principals = [s.get("Principal", {}).get("Service") for s in trust["Statement"]]
        assert "lambda.amazonaws.com" in principals, (function["FunctionName"], trust)
        policies = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
        assert policies or attached, f"{role['RoleName']} grants nothing"


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize(("event_source", "event_name", "handler"), ROUTES)
def test_each_event_reaches_its_guard_through_a_deployed_rule(
    played: Played, region: str, event_source: str, event_name: str, handler: str
) -> None:
    # Given the deployed rules, their patterns and targets
    emulator = played.session.emulator
    events = emulator.client("events", region)
    lambda_ = emulator.client("lambda", region)
    by_arn = {f["FunctionArn"]: f for f in _functions(played, region)}
    envelope = _envelope(event_name, region, event_source)

    # When the CloudTrail event is matched against every deployed pattern
    reached = []
    for rule in events.list_rules()["Rules"]:
        if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
            continue
        if not EventPattern.load(rule["EventPattern"]).matches_event(envelope):  # type: ignore[arg-type]
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            function = by_arn.get(target["Arn"])
            if function is None:
                continue
            policy = json.loads(lambda_.get_policy(FunctionName=function["FunctionName"])["Policy"])
            assert events_may_invoke(policy, rule["Arn"]), f"{rule['Name']} may not invoke {function['FunctionName']}"
            reached.append(function["Handler"])

    # Then it reaches its guard, and only its guard
    assert reached == [handler]


@pytest.mark.parametrize("region", REGIONS)
def test_dead_letter_queues_of_rule_targets_exist(played: Played, region: str) -> None:
    # Given the deployed rules' targets
    emulator = played.session.emulator
    events = emulator.client("events", region)
    sqs = emulator.client("sqs", region)
    rules = events.list_rules()["Rules"]
    assert rules, f"no rule deployed in {region}"
    for rule in rules:
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            arn = target.get("DeadLetterConfig", {}).get("Arn")
            if arn is None:
                continue
            # Then the queue an undeliverable event goes to exists
            try:
                sqs.get_queue_url(QueueName=arn.split(":")[5], QueueOwnerAWSAccountId=arn.split(":")[4])
            except ClientError as exc:
                pytest.fail(f"{rule['Name']}: dead-letter queue {arn} does not exist: {exc}")


def test_the_core_resource_types_are_modelled_by_the_emulator(played: Played) -> None:
    # Given what moto's CloudFormation skipped during the deployments
    skipped = set(played.session.emulator.unmodelled_resource_types())

    # Then none of the resources the guard runs on were skipped
    core = {"AWS::Lambda::Function", "AWS::Events::Rule", "AWS::SNS::Topic", "AWS::IAM::Role", "AWS::IAM::Policy"}
    assert not core & skipped
