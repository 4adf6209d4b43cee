"""A finding is never lost to its size: ~250 KB records through the deployed entry points on an emulated account.

moto refuses a Message over 262,144 characters but counts neither bytes nor attributes: each test measures the
Publish request the function sends itself (message as UTF-8, subject, each attribute's name, type and value).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ami_guard import contract
from ami_guard.config import parse_policy, to_environment
from ami_guard.handlers import image_guard, launch_guard, permission_guard, tamper_guard
from tests import records as r
from tests.functions.conftest import TABLE, Account
from tests.functions.test_handlers import FakeContext

SNS_LIMIT = 262_144
LOG_GROUP = "/aws/lambda/AmiGuard-PermissionGuard"
GUARD_RULE = "AmiGuard-PermissionRule"
GUARDS = (permission_guard, launch_guard, image_guard, tamper_guard)


@pytest.fixture
def deployed(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    env = {
        **to_environment(parse_policy({"minSeverity": "LOW"})),
        contract.ENV_TOPIC_ARN: account.topic_arn,
        contract.ENV_IDEMPOTENCY_TABLE: TABLE,
        contract.ENV_WATCHED_RULES: GUARD_RULE,
        contract.ENV_WATCHED_FUNCTIONS: "AmiGuard-PermissionGuard",
        "POWERTOOLS_SERVICE_NAME": contract.POWERTOOLS_SERVICE_NAME,
        "AWS_LAMBDA_LOG_GROUP_NAME": LOG_GROUP,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for module in GUARDS:
        module._guard.reset()
    yield account
    for module in GUARDS:
        module._guard.reset()


@pytest.fixture
def published() -> list[dict[str, Any]]:
    """The parameters of every SNS Publish the functions make from now on."""
    calls: list[dict[str, Any]] = []
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("provide-client-params.sns.Publish", lambda params, **_: calls.append(dict(params)))
    return calls


def publish_bytes(params: dict[str, Any]) -> int:
    size = len(params["Message"].encode()) + len(params.get("Subject", "").encode())
    for name, attribute in params.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(attribute["DataType"].encode()) + len(attribute["StringValue"].encode())
    return size


def handle(module: Any, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The entry point's summary and its log lines."""
    stream = io.StringIO()
    handler = module.logger.logger_handler
    previous = handler.setStream(stream)
    try:
        summary = module.lambda_handler(event, FakeContext())
    finally:
        handler.setStream(previous)
    return summary, [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def full_finding(logs: list[dict[str, Any]], rule_id: str) -> dict[str, Any]:
    parts = [line for line in logs if line["message"] == "Full finding" and line["rule_id"] == rule_id]
    assert [p["part"] for p in parts] == list(range(1, parts[0]["parts"] + 1))
    assert all(p["level"] == "WARNING" for p in parts)
    whole: dict[str, Any] = json.loads("".join(p["finding"] for p in parts))
    return whole


def delivered(account: Account) -> dict[str, dict[str, Any]]:
    return {n["MessageAttributes"]["rule_id"]["Value"]: n for n in account.received()}


def test_a_share_with_9000_accounts_alerts(deployed: Account, published: list[dict[str, Any]]) -> None:
    # Given a successful ModifyImageAttribute that shares an AMI with 9,000 accounts (a 250 KB record)
    ids = [f"{n:012d}" for n in range(200000000000, 200000009000)]
    record = r.modify_image_attribute("ami-0123456789abcdef0", [{"userId": i} for i in ids])
    event = r.envelope(record)
    assert 240_000 < len(json.dumps(event)) <= 256 * 1024
    # When the permission guard handles it
    summary, logs = handle(permission_guard, event)
    # Then the alert was published within SNS's limit, and a subscriber got it
    assert summary["published"] == ["ami-shared-untrusted"]
    (params,) = published
    assert publish_bytes(params) < SNS_LIMIT
    notification = delivered(deployed)["ami-shared-untrusted"]
    assert notification["MessageAttributes"]["severity"]["Value"] == "HIGH"
    body = json.loads(notification["Message"])
    assert (body["rule_id"], body["severity"], body["event_id"]) == ("ami-shared-untrusted", "HIGH", record["eventID"])
    assert body["evidence"]["added"]["userIds"][:25] == ids[:25]
    assert body["evidence"]["added"]["userIds"][25] == "…[9000 items, first 25 shown]"
    assert LOG_GROUP in body["truncated"]["full"] and record["eventID"] in body["truncated"]["full"]
    # And the function's log holds the finding whole
    whole = full_finding(logs, "ami-shared-untrusted")
    assert whole["evidence"]["added"]["userIds"] == ids and whole["event_id"] == record["eventID"]


def test_a_failed_call_with_a_30_kb_image_id_alerts(deployed: Account, published: list[dict[str, Any]]) -> None:
    image_id = ("ami-" + "f" * 30_000)[:30_000]
    record = r.modify_image_attribute(
        image_id, [{"group": "all"}], error_code="Client.InvalidAMIID.Malformed", error_message="x" * 30_000
    )
    summary, logs = handle(permission_guard, r.envelope(record))
    assert summary["published"] == ["ami-share-denied"]
    (params,) = published
    assert publish_bytes(params) < 50_000
    assert image_id[:1025] not in params["Message"]
    body = json.loads(delivered(deployed)["ami-share-denied"]["Message"])
    assert (body["rule_id"], body["severity"], body["event_id"]) == ("ami-share-denied", "LOW", record["eventID"])
    assert body["resources"][0]["id"].endswith("…[truncated, 30000 chars]")
    assert full_finding(logs, "ami-share-denied")["resources"][0]["id"] == image_id


def test_put_targets_on_a_guard_rule_with_large_inputs_alerts(
    deployed: Account, published: list[dict[str, Any]]
) -> None:
    # Given PutTargets on the guard's own rule with four 60 KB inputs (the request is copied into the evidence)
    record = r.events_call("PutTargets", GUARD_RULE)
    targets = [{"id": f"t{n}", "arn": "arn:aws:lambda:eu-west-1:1:function:x", "input": "{" * 60_000} for n in range(4)]
    record["requestParameters"]["targets"] = targets
    event = r.envelope_for_source(record)
    assert 240_000 < len(json.dumps(event)) <= 256 * 1024
    # When the tamper guard handles it
    summary, logs = handle(tamper_guard, event)
    # Then the CRITICAL alert goes out within the limit, saying what was cut
    assert summary["published"] == ["guard-tampered"]
    (params,) = published
    assert publish_bytes(params) < SNS_LIMIT
    body = json.loads(delivered(deployed)["guard-tampered"]["Message"])
    assert (body["rule_id"], body["severity"], body["event_id"]) == ("guard-tampered", "CRITICAL", record["eventID"])
    shown = body["evidence"]["request"]["targets"][0]
    assert shown["input"] == "{" * 1024 + "…[truncated, 60000 chars]"
    assert body["truncated"]["count"] == 4
    assert full_finding(logs, "guard-tampered")["evidence"]["request"]["targets"] == targets


def test_a_request_too_wide_for_the_full_level_is_tightened(deployed: Account, published: list[dict[str, Any]]) -> None:
    # Given a tamper event whose request is 40 objects of 40 strings of 150 characters (every one within the
    # FULL level's limits, 240 KB in all: with the email beside the document, over 256 KB)
    record = r.events_call("PutRule", GUARD_RULE)
    record["requestParameters"]["tags"] = {f"k{i}": {f"j{j}": "v" * 150 for j in range(40)} for i in range(40)}
    summary, _ = handle(tamper_guard, r.envelope_for_source(record))
    assert summary["published"] == ["guard-tampered"]
    (params,) = published
    assert publish_bytes(params) < SNS_LIMIT
    body = json.loads(delivered(deployed)["guard-tampered"]["Message"])
    tags = body["evidence"]["request"]["tags"]  # the TIGHT level: 10 keys, 3 levels
    assert list(tags) == [f"k{i}" for i in range(10)] + ["…"]
    assert tags["k0"] == "…[object of 40 keys, not shown]" and tags["…"] == "[40 keys, first 10 shown]"
    assert body["truncated"]["reduced"] is False


def test_an_alert_that_fits_is_not_logged_in_full(deployed: Account, published: list[dict[str, Any]]) -> None:
    summary, logs = handle(permission_guard, r.envelope(r.modify_image_attribute("ami-1", [{"group": "all"}])))
    assert summary["published"] == ["ami-public"]
    assert [line for line in logs if line["message"] == "Full finding"] == []
    assert json.loads(published[0]["Message"])["default"].count('"truncated": null') == 1
