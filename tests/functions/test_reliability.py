"""Reliability promises, through the deployed entry points on an emulated account: exactly-once effects
under redelivery, retry on transient failure, and the tamper rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ami_guard import contract
from ami_guard.config import parse_policy, to_environment
from ami_guard.events import Envelope, guard_change, parse_call
from ami_guard.handlers import image_guard, launch_guard, permission_guard, tamper_guard
from tests import records as r
from tests.functions.conftest import TABLE, Account
from tests.functions.test_handlers import FakeContext

GUARDS = (permission_guard, launch_guard, image_guard, tamper_guard)
FUNCTIONS = {"permission": "AmiGuard-PermissionGuard", "tamper": "AmiGuard-TamperGuard"}
RULES = {"permission": "AmiGuard-PermissionRule", "tamper": "AmiGuard-TamperRule"}


@pytest.fixture
def deployed(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    env = {
        **to_environment(parse_policy({"remediate": True, "trustedAccounts": ["555566667777"]})),
        contract.ENV_TOPIC_ARN: account.topic_arn,
        contract.ENV_IDEMPOTENCY_TABLE: TABLE,
        "POWERTOOLS_SERVICE_NAME": contract.POWERTOOLS_SERVICE_NAME,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for module in GUARDS:
        module._guard.reset()
    yield account
    for module in GUARDS:
        module._guard.reset()


def count_calls(operation: str) -> list[dict[str, Any]]:
    """Every `operation` request the default boto3 session's clients make from now on."""
    calls: list[dict[str, Any]] = []
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register(f"provide-client-params.ec2.{operation}", lambda params, **_: calls.append(params))
    return calls


def test_three_deliveries_make_one_alert_and_one_remediation(deployed: Account) -> None:
    # Given an AMI made public, and EventBridge delivering that one CloudTrail event three times
    image = deployed.make_image()
    deployed.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    modifications = count_calls("ModifyImageAttribute")
    event = r.envelope(r.modify_image_attribute(image, [{"group": "all"}]))
    # When the permission guard receives every delivery
    results = [permission_guard.lambda_handler(dict(event, id=f"delivery-{n}"), FakeContext()) for n in range(3)]
    # Then one alert went out and the AMI was made private once; the duplicates got the first summary back
    assert len(deployed.received()) == 1
    assert len(modifications) == 1
    assert results[1] == results[2] == results[0]


def test_copy_delivered_twice_tags_once_and_alerts_once(deployed: Account) -> None:
    source = deployed.make_image(r.OTHER_REGION, tags={"Owner": "platform"})
    copy = deployed.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    tagging = count_calls("CreateTags")
    event = r.envelope(r.copy_image(copy, source))
    for _ in range(2):
        image_guard.lambda_handler(event, FakeContext())
    assert len(tagging) == 1
    assert len(deployed.received()) == 1


def test_transient_publish_failure_fails_the_invocation_so_the_retry_alerts_once(deployed: Account) -> None:
    # Given SNS throttling the first Publish (as botocore raises it once its own retries gave up)
    failures = [ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")]

    def throttle(**_: Any) -> None:
        if failures:
            raise failures.pop()

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.sns.Publish", throttle)
    event = r.envelope(r.modify_snapshot_attribute("snap-0123456789abcdef0", [{"group": "all"}]))
    # When the first invocation meets the failure, it fails (Lambda retries it) instead of dropping the event
    with pytest.raises(ClientError, match="Throttling"):
        permission_guard.lambda_handler(event, FakeContext())
    assert deployed.received() == []
    # Then the retry is not mistaken for a duplicate: it alerts, once
    permission_guard.lambda_handler(event, FakeContext())
    permission_guard.lambda_handler(event, FakeContext())
    assert [n["MessageAttributes"]["rule_id"]["Value"] for n in deployed.received()] == ["snapshot-public"]


def table_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=r.REGION).scan(TableName=TABLE)["Items"]
    return items


def idempotency_records() -> list[dict[str, Any]]:
    """The table's idempotency records (Powertools'), not the open findings the guard also keeps there."""
    return [item for item in table_items() if not item["id"]["S"].startswith("finding#")]


@pytest.mark.parametrize(
    ("guard", "record"),
    [
        (permission_guard, r.modify_image_attribute("ami-0123456789abcdef0", [{"userId": "555566667777"}])),
        (
            permission_guard,
            r.modify_snapshot_attribute("snap-0123456789abcdef0", [{"group": "all"}], error_code="AuthFailure"),
        ),
        (launch_guard, r.run_instances("ami-0123456789abcdef0", "t3.micro")),
        (image_guard, r.register_image("ami-0fedcba9876543210", virtualization_type="hvm")),
    ],
)
def test_an_event_that_raises_nothing_is_settled_without_an_idempotency_record(
    deployed: Account, guard: Any, record: dict[str, Any]
) -> None:
    # Given an event that is decided from the record alone and raises nothing, delivered twice
    event = r.envelope(record)
    # When the guard receives both deliveries
    results = [guard.lambda_handler(event, FakeContext()) for _ in range(2)]
    # Then both report nothing found, nothing was published, and the idempotency table was not written
    assert results[0] == results[1] and results[0]["status"] == "evaluated" and results[0]["published"] == []
    assert deployed.received() == []
    assert idempotency_records() == []


def test_an_event_that_alerts_is_recorded_once(deployed: Account) -> None:
    event = r.envelope(r.modify_snapshot_attribute("snap-0123456789abcdef0", [{"group": "all"}]))
    for _ in range(2):
        permission_guard.lambda_handler(event, FakeContext())
    assert len(deployed.received()) == 1
    assert len(idempotency_records()) == 1
    # and the standing finding it alerted is open, once: the posture sweep alerts it no second time
    (opened,) = [item for item in table_items() if item["id"]["S"].startswith("finding#")]
    assert opened["id"]["S"] == f"finding#{r.ACCOUNT}/{r.REGION}/snapshot-public/snapshot:snap-0123456789abcdef0"
    assert (opened["scope"]["S"], opened["status"]["S"], opened["origin"]["S"]) == (
        f"{r.ACCOUNT}/{r.REGION}",
        "open",
        "event",
    )


# --- tamper rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "function_name"),
    [
        ("UpdateFunctionConfiguration20150331v2", FUNCTIONS["permission"]),
        ("UpdateFunctionCode20150331v2", f"arn:aws:lambda:{r.REGION}:{r.ACCOUNT}:function:{FUNCTIONS['permission']}"),
        ("DeleteFunction20150331", f"{r.ACCOUNT}:function:{FUNCTIONS['permission']}"),
        ("PutFunctionConcurrency20171031", FUNCTIONS["permission"]),
        ("RemovePermission20150331v2", f"arn:aws:lambda:{r.REGION}:{r.ACCOUNT}:function:{FUNCTIONS['permission']}:1"),
    ],
)
def test_lambda_event_names_with_api_version_suffixes_are_recognised(event_name: str, function_name: str) -> None:
    change = guard_change(parse_call(Envelope(r.lambda_call(event_name, function_name)), (contract.LAMBDA_SOURCE,)))
    assert change is not None and change.target == FUNCTIONS["permission"]


@pytest.mark.parametrize(
    ("event_name", "rule"),
    [
        ("DisableRule", RULES["permission"]),
        ("DeleteRule", f"arn:aws:events:{r.REGION}:{r.ACCOUNT}:rule/{RULES['permission']}"),
        ("RemoveTargets", RULES["permission"]),
        ("PutTargets", RULES["permission"]),
        ("PutRule", RULES["permission"]),
    ],
)
def test_tamper_guard_alerts_on_changes_to_the_guards_rules(
    deployed: Account, monkeypatch: pytest.MonkeyPatch, event_name: str, rule: str
) -> None:
    monkeypatch.setenv(contract.ENV_WATCHED_RULES, RULES["permission"])
    monkeypatch.setenv(contract.ENV_WATCHED_FUNCTIONS, FUNCTIONS["permission"])
    result = tamper_guard.lambda_handler(r.envelope_for_source(r.events_call(event_name, rule)), FakeContext())
    assert result["published"] == ["guard-tampered"]
    (notification,) = deployed.received()
    body = json.loads(notification["Message"])
    assert body["severity"] == "CRITICAL" and body["resources"][0]["id"] == RULES["permission"]
    assert body["actor"]["arn"] == r.ROLE_ARN


def test_no_alert_for_functions_it_does_not_watch(deployed: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_WATCHED_FUNCTIONS, FUNCTIONS["permission"])
    for name in ("someone-elses-function", FUNCTIONS["tamper"]):
        event = r.envelope_for_source(r.lambda_call("UpdateFunctionConfiguration20150331v2", name))
        assert tamper_guard.lambda_handler(event, FakeContext())["findings"] == []
    failed = r.lambda_call("DeleteFunction20150331", FUNCTIONS["permission"], error_code="AccessDenied")
    assert tamper_guard.lambda_handler(r.envelope_for_source(failed), FakeContext())["findings"] == []


def test_changes_to_the_tamper_guard_are_reported_by_another_function(
    deployed: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The permission guard watches the tamper guard's function and rule; the tamper guard never reports itself
    monkeypatch.setenv(contract.ENV_WATCHED_FUNCTIONS, FUNCTIONS["tamper"])
    monkeypatch.setenv(contract.ENV_WATCHED_RULES, RULES["tamper"])
    event = r.envelope_for_source(r.lambda_call("DeleteFunction20150331", FUNCTIONS["tamper"]))
    assert permission_guard.lambda_handler(event, FakeContext())["published"] == ["guard-tampered"]


KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("record", "resource"),
    [
        (
            r.service_call(
                contract.KMS_SOURCE,
                "ScheduleKeyDeletion",
                {"keyId": KEY, "pendingWindowInDays": 7},
                resources=[f"arn:aws:kms:{r.REGION}:{r.ACCOUNT}:key/{KEY}"],
            ),
            {"type": "kms-key", "id": KEY, "arn": f"arn:aws:kms:{r.REGION}:{r.ACCOUNT}:key/{KEY}", "region": r.REGION},
        ),
        (
            r.service_call(
                contract.IAM_SOURCE,
                "AttachRolePolicy",
                {"roleName": "AmiGuard-LaunchGuard-eu-central-2", "policyArn": "arn:aws:iam::aws:policy/AWSDenyAll"},
                region="us-east-1",
            ),
            {
                "type": "iam-role",
                "id": "AmiGuard-LaunchGuard-eu-central-2",
                "arn": f"arn:aws:iam::{r.ACCOUNT}:role/AmiGuard-LaunchGuard-eu-central-2",
                "region": "us-east-1",
            },
        ),
        (
            r.service_call(contract.CLOUDTRAIL_SOURCE, "StopLogging", {"name": "management-events"}),
            {
                "type": "cloudtrail-trail",
                "id": "management-events",
                "arn": f"arn:aws:cloudtrail:{r.REGION}:{r.ACCOUNT}:trail/management-events",
                "region": r.REGION,
            },
        ),
    ],
)
def test_tamper_guard_publishes_changes_to_what_can_silence_the_guard(
    deployed: Account, monkeypatch: pytest.MonkeyPatch, record: dict[str, Any], resource: dict[str, str]
) -> None:
    monkeypatch.setenv(contract.ENV_WATCHED_KEYS, f"arn:aws:kms:{r.REGION}:{r.ACCOUNT}:key/{KEY}")
    monkeypatch.setenv(contract.ENV_WATCHED_ROLE_PREFIXES, "AmiGuard-PermissionGuard-,AmiGuard-LaunchGuard-")
    monkeypatch.setenv(contract.ENV_WATCH_TRAILS, "true")

    result = tamper_guard.lambda_handler(r.envelope_for_source(record), FakeContext())

    assert result["published"] == ["guard-tampered"]
    (notification,) = deployed.received()
    body = json.loads(notification["Message"])
    assert (body["rule_id"], body["severity"]) == ("guard-tampered", "CRITICAL")
    # (console links are left to the alert's own tests)
    assert [{key: found[key] for key in resource} for found in body["resources"]] == [resource]


def test_a_malformed_watch_flag_is_refused_at_cold_start() -> None:
    from ami_guard.config import ConfigError
    from ami_guard.settings import load_settings

    env = {contract.ENV_TOPIC_ARN: "arn:aws:sns:eu-west-1:1:t", contract.ENV_IDEMPOTENCY_TABLE: "t"}
    with pytest.raises(ConfigError, match="AMI_GUARD_WATCH_TRAILS"):
        load_settings({**env, contract.ENV_WATCH_TRAILS: "yes"})
    assert load_settings({**env, contract.ENV_WATCH_TRAILS: "TRUE"}).watched.trails is True
    assert load_settings(env).watched.trails is False
