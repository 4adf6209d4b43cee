"""The guard functions against an emulated account: remediation, cross-region tag copy, lookups, and the
SNS message exactly as a subscriber receives it."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from moto.ec2 import ec2_backends
from moto.sns import sns_backends

from ami_guard import contract
from ami_guard.config import Policy, parse_policy, to_environment
from ami_guard.guard import process
from ami_guard.handlers import image_guard, launch_guard, permission_guard, tamper_guard
from tests import records as r
from tests.corpus import SAMPLES, needs_corpus
from tests.functions.conftest import TABLE, Account

TRUSTED = "555566667777"
OUTSIDER = "444455556666"
logger = permission_guard.logger


def permission_event(image_id: str, add: list[dict[str, str]]) -> dict[str, Any]:
    return r.envelope(r.modify_image_attribute(image_id, add))


def test_public_ami_is_remediated_and_the_alert_says_what_was_removed(account: Account) -> None:
    # Given an AMI made public and shared with a trusted and an untrusted account in one call
    image = account.make_image()
    add = [{"Group": "all"}, {"UserId": TRUSTED}, {"UserId": OUTSIDER}]
    account.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": add})
    policy = parse_policy({"trustedAccounts": [TRUSTED], "remediate": True})
    event = permission_event(image, [{"group": "all"}, {"userId": TRUSTED}, {"userId": OUTSIDER}])
    # When the permission guard handles the event
    summary = process(event, account.deps(policy, "permission"), logger)
    # Then only the offending principals are gone
    now = account.ec2().describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    assert now == [{"UserId": TRUSTED}]
    assert summary["published"] == ["ami-public", "ami-shared-untrusted"]
    # And the subscriber reads what happened, who did it and what was done
    notifications = {n["MessageAttributes"]["rule_id"]["Value"]: n for n in account.received()}
    public = notifications["ami-public"]
    assert public["Subject"] == f"[CRITICAL] AMI {image} made public in {r.REGION} ({r.ACCOUNT})"
    assert len(public["Subject"]) < 100
    attributes = {k: v["Value"] for k, v in public["MessageAttributes"].items()}
    assert attributes == {
        "severity": "CRITICAL",
        "rule_id": "ami-public",
        "status": "open",
        "account": r.ACCOUNT,
        "region": r.REGION,
    }
    body = json.loads(public["Message"])
    assert body["rule_id"] == "ami-public" and body["severity"] == "CRITICAL"
    assert body["actor"]["arn"] == r.ROLE_ARN and body["actor"]["source_ip"] == "203.0.113.7"
    assert body["event"]["id"] == event["detail"]["eventID"]
    assert body["resources"][0]["arn"] == f"arn:aws:ec2:{r.REGION}::image/{image}"
    assert body["console_url"].endswith(f"#ImageDetails:imageId={image}")
    assert body["action"]["status"] == "removed"
    assert body["action"]["removed"] == {"groups": ["all"], "userIds": [OUTSIDER]}
    assert body["action"]["launchPermissionsNow"] == {"userIds": [TRUSTED]}
    assert body["recommendation"]


def test_email_body_is_plain_readable_text(account: Account) -> None:
    image = account.make_image()
    process(permission_event(image, [{"group": "all"}]), account.deps(Policy(), "permission"), logger)
    sent = sns_backends[r.ACCOUNT][r.REGION].topics[account.topic_arn].sent_notifications
    (_, message, subject, _, _) = sent[0]
    email = json.loads(message)["email"]
    assert subject.startswith("[CRITICAL] AMI ")
    assert not email.lstrip().startswith("{")
    for heading in ("WHAT HAPPENED", "WHO", "WHEN", "RESOURCES", "EVIDENCE", "ACTION TAKEN", "WHAT TO DO"):
        assert heading in email
    assert r.ROLE_ARN in email and "console.aws.amazon.com" in email
    assert "off: amiGuard.remediate is false" in email


def test_filter_policy_on_rule_id_reaches_only_matching_subscribers(account: Account) -> None:
    critical_only = account.subscribe_queue("pager", {"severity": ["CRITICAL"]})
    image = account.make_image()
    deps = account.deps(Policy(), "permission")
    process(permission_event(image, [{"userId": OUTSIDER}]), deps, logger)
    process(permission_event(image, [{"group": "all"}]), deps, logger)
    assert [n["MessageAttributes"]["rule_id"]["Value"] for n in account.received(critical_only)] == ["ami-public"]
    assert len(account.received()) == 2


def test_min_severity_holds_back_lower_findings(account: Account) -> None:
    deps = account.deps(parse_policy({"minSeverity": "HIGH"}), "launch")
    summary = process(r.envelope(r.run_instances("ami-1", "m3.medium")), deps, logger)
    assert summary["findings"] == ["launch-previous-generation"] and summary["published"] == []
    assert account.received() == []


def test_copy_gets_source_tags_across_regions_onto_image_and_snapshots(account: Account) -> None:
    # Given a tagged source AMI in another region and a copy that already carries its own Name
    source = account.make_image(r.OTHER_REGION, tags={"Name": "golden", "Owner": "platform", "CostCenter": "42"})
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    account.ec2().create_tags(Resources=[copy], Tags=[{"Key": "Name", "Value": "mine"}])
    snapshot = account.ec2().describe_images(ImageIds=[copy])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    event = r.envelope(r.copy_image(copy, source, tags={"Name": "mine"}))
    deps = account.deps(parse_policy({"requiredTags": ["Owner"]}), "image")
    # When the image guard handles the CopyImage event
    summary = process(event, deps, logger)
    # Then the copy and its snapshot carry the source's user tags and provenance; Name is not overwritten
    expected = {
        "Name": "mine",
        "Owner": "platform",
        "CostCenter": "42",
        "ami-guard:source-image-id": source,
        "ami-guard:source-region": r.OTHER_REGION,
    }
    assert account.tags(copy) == expected
    # the snapshot is checked on its own: it had no Name, so it gets the source's
    assert account.tags(snapshot) == {**expected, "Name": "golden"}
    assert summary["findings"] == ["copy-tags-missing"], "Owner was restored, so no required-tag finding"
    (notification,) = account.received()
    body = json.loads(notification["Message"])
    assert body["action"]["status"] == "applied"
    assert body["action"]["applied"] == {k: v for k, v in expected.items() if k != "Name"}
    assert body["action"]["snapshots"] == [snapshot]
    assert body["action"]["notOverwritten"] == {copy: ["Name"]}
    # And running again changes nothing more
    process(event, deps, logger)
    assert account.tags(copy) == expected
    assert json.loads(account.received()[0]["Message"])["action"]["status"] == "nothing to apply"


def _snapshot_of(account: Account, image: str) -> str:
    mappings = account.ec2().describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"]
    snapshot: str = mappings[0]["Ebs"]["SnapshotId"]
    return snapshot


def _tags(count: int) -> dict[str, str]:
    return {f"Tag{n:02d}": f"value-{n}" for n in range(count)}


@pytest.mark.parametrize(
    ("source_count", "did_not_fit"),
    [(50, ["ami-guard:source-image-id", "ami-guard:source-region"]), (49, ["ami-guard:source-region"])],
)
def test_a_source_with_49_or_50_tags_is_copied_without_losing_its_alert(
    account: Account, source_count: int, did_not_fit: list[str]
) -> None:
    # Given a source with 49 or 50 user tags, copied here (EC2, and moto, refuse a 51st tag)
    source = account.make_image(r.OTHER_REGION, tags=_tags(source_count))
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    snapshot = _snapshot_of(account, copy)
    # When the image guard handles the CopyImage event
    summary = process(r.envelope(r.copy_image(copy, source)), account.deps(Policy(), "image"), logger)
    # Then the alert goes out, the copy and its snapshot carry all 50 tags they can, and the alert names the rest
    assert summary["published"] == ["copy-tags-missing"]
    provenance = {"ami-guard:source-image-id": source, "ami-guard:source-region": r.OTHER_REGION}
    fits = {**_tags(source_count), **{k: v for k, v in provenance.items() if k not in did_not_fit}}
    assert account.tags(copy) == fits and account.tags(snapshot) == fits
    action = json.loads(account.received()[0]["Message"])["action"]
    assert action["status"] == "applied"
    assert action["didNotFit"] == {copy: did_not_fit, snapshot: did_not_fit}
    assert "EC2 allows 50 user tags per resource" in action["detail"]


def test_a_forged_copy_event_tags_nothing(account: Account) -> None:
    # Given a tagged image in another region and an image here that is no copy of it (made from an instance)
    source = account.make_image(r.OTHER_REGION, tags={"Owner": "attacker-chosen"})
    victim = account.make_image(tags={"Owner": "platform"})
    other_source = account.make_image(r.OTHER_REGION, tags={"Owner": "someone"})
    real_copy = account.ec2().copy_image(SourceImageId=other_source, SourceRegion=r.OTHER_REGION, Name="copy-1")[
        "ImageId"
    ]
    before = {image: account.tags(image) for image in (victim, real_copy)}
    deps = account.deps(Policy(), "image")
    # When someone invokes the guard with CopyImage events that claim they are copies of `source`
    for image in (victim, real_copy):
        process(r.envelope(r.copy_image(image, source)), deps, logger)
    # Then neither image (nor its snapshot) got a tag, and each alert says why
    assert {image: account.tags(image) for image in (victim, real_copy)} == before
    assert account.tags(_snapshot_of(account, victim)) == {}
    actions = [json.loads(n["Message"])["action"] for n in account.received() if "copy-tags" in n["Message"]]
    assert [a["status"] for a in actions] == ["not applied", "not applied"]
    claimed = f"not applied: the image is not a copy of {source} ({r.OTHER_REGION}) according to EC2"
    assert all(a["detail"].startswith(claimed) for a in actions)
    assert actions[1]["detail"].endswith(f"{real_copy} is a copy of {other_source} ({r.OTHER_REGION})")


def test_a_snapshots_existing_tag_survives(account: Account) -> None:
    source = account.make_image(r.OTHER_REGION, tags={"Owner": "platform", "CostCenter": "42"})
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    snapshot = _snapshot_of(account, copy)
    account.ec2().create_tags(Resources=[snapshot], Tags=[{"Key": "Owner", "Value": "storage-team"}])
    process(r.envelope(r.copy_image(copy, source)), account.deps(Policy(), "image"), logger)
    provenance = {"ami-guard:source-image-id": source, "ami-guard:source-region": r.OTHER_REGION}
    assert account.tags(snapshot) == {"Owner": "storage-team", "CostCenter": "42", **provenance}
    assert account.tags(copy) == {"Owner": "platform", "CostCenter": "42", **provenance}


def test_tag_limit_exceeded_from_ec2_is_a_failed_action_in_a_published_alert(account: Account) -> None:
    # Given a copy that someone fills with 50 tags between the guard's read and its CreateTags
    source = account.make_image(r.OTHER_REGION, tags={"Owner": "platform"})
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]

    def race(**_: Any) -> None:
        ec2_backends[r.ACCOUNT][r.REGION].create_tags([copy], {f"Late{n}": "x" for n in range(50)})

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.ec2.CreateTags", race)
    try:
        # When the guard handles the CopyImage event, EC2 refuses its CreateTags with TagLimitExceeded
        summary = process(r.envelope(r.copy_image(copy, source)), account.deps(Policy(), "image"), logger)
    finally:
        boto3.setup_default_session()
    # Then the alert is published all the same, and says the tag restore failed and why
    assert summary["published"] == ["copy-tags-missing"]
    action = json.loads(account.received()[0]["Message"])["action"]
    assert action["status"] == "failed"
    assert action["failed"][copy].startswith("TagLimitExceeded")
    assert action["wanted"] == {
        "Owner": "platform",
        "ami-guard:source-image-id": source,
        "ami-guard:source-region": r.OTHER_REGION,
    }


def test_an_undecided_check_is_logged_as_a_structured_warning_and_counted(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    event = r.envelope(r.record("ModifyImageAttribute", None, {"_return": True}))
    summary = process(
        event,
        account.deps(Policy(), "permission"),
        Logger(service=f"ami-guard-test-{uuid.uuid4()}", stream=stream),
    )
    assert summary["findings"] == []
    warnings = [json.loads(line) for line in stream.getvalue().splitlines() if "Check not decided" in line]
    assert [(w["rules"], w["cause"], w["reason"], w["level"]) for w in warnings] == [
        ("ami-public", "record", "the record carries no requestParameters", "WARNING"),
        ("ami-shared-untrusted", "record", "the record carries no requestParameters", "WARNING"),
    ]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"UndecidedChecks"' in line]
    assert sorted(m["rules"] for m in emf) == ["ami-public", "ami-shared-untrusted"]
    assert all(m["UndecidedChecks"] == [1.0] for m in emf)


def test_copy_permissions_not_copied_is_found_by_lookup(account: Account) -> None:
    source = account.make_image(r.OTHER_REGION)
    account.ec2(r.OTHER_REGION).modify_image_attribute(ImageId=source, LaunchPermission={"Add": [{"UserId": TRUSTED}]})
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    summary = process(
        r.envelope(r.copy_image(copy, source, copy_image_tags=True)),
        account.deps(Policy(), "image"),
        logger,
    )
    assert summary["findings"] == ["copy-permissions-not-copied"]


def test_copy_of_a_vanished_source_still_alerts_and_says_why(account: Account) -> None:
    source = account.make_image(r.OTHER_REGION)
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    account.ec2(r.OTHER_REGION).deregister_image(ImageId=source)
    summary = process(r.envelope(r.copy_image(copy, source)), account.deps(Policy(), "image"), logger)
    assert summary["findings"] == ["copy-tags-missing"]
    body = json.loads(account.received()[0]["Message"])
    assert body["action"]["status"] == "not possible"


def test_launch_guard_looks_up_the_virtualization_type(account: Account) -> None:
    image = account.make_image(virtualization_type="paravirtual")
    event = r.envelope(r.run_instances(image, "m1.small", virtualization_type=None))
    summary = process(event, account.deps(Policy(), "launch"), logger)
    assert summary["findings"] == ["launch-paravirtual", "launch-previous-generation"]


def test_function_skips_events_routed_to_another_guard(account: Account) -> None:
    summary = process(r.envelope(r.run_instances("ami-1", "m1.small")), account.deps(Policy(), "image"), logger)
    assert summary == {
        "status": "skipped",
        "reason": "RunInstances is not routed to this function (expects CopyImage, CreateImage, RegisterImage)",
    }


# --- through the real entry points --------------------------------------------------------------------


@dataclass
class FakeContext:
    function_name: str = "ami-guard-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{r.REGION}:{r.ACCOUNT}:function:ami-guard-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def deployed_env(account: Account, monkeypatch: pytest.MonkeyPatch) -> Account:
    env = {
        **to_environment(parse_policy({"minSeverity": "LOW"})),
        contract.ENV_TOPIC_ARN: account.topic_arn,
        contract.ENV_IDEMPOTENCY_TABLE: TABLE,
        "POWERTOOLS_SERVICE_NAME": contract.POWERTOOLS_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": contract.METRICS_NAMESPACE,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for module in (permission_guard, launch_guard, image_guard, tamper_guard):
        module._guard.reset()
    return account


def test_lambda_handler_with_own_record(deployed_env: Account, capsys: pytest.CaptureFixture[str]) -> None:
    event = r.envelope(r.modify_snapshot_attribute("snap-0123456789abcdef0", [{"group": "all"}]))
    result = permission_guard.lambda_handler(event, FakeContext())  # type: ignore[arg-type]
    assert result["published"] == ["snapshot-public"]
    # One Findings metric (CloudWatch embedded metric format) with the rule and severity as dimensions
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (metric,) = [m for m in emf if "Findings" in m]
    assert metric["Findings"] == [1.0]
    assert (metric["rule_id"], metric["severity"]) == ("snapshot-public", "CRITICAL")
    directive = metric["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == contract.METRICS_NAMESPACE
    assert sorted(directive["Dimensions"][0]) == ["rule_id", "service", "severity"]


@needs_corpus
def test_lambda_handler_with_a_real_record(deployed_env: Account) -> None:
    detail = json.loads((SAMPLES / "stratus__ModifyImageAttribute__share-userId.json").read_text())
    event = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": detail}
    result = permission_guard.lambda_handler(event, FakeContext())  # type: ignore[arg-type]
    assert result["published"] == ["ami-shared-untrusted"]
    (notification,) = deployed_env.received()
    assert notification["MessageAttributes"]["account"]["Value"] == "118238665043"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"detail-type": "AWS API Call via CloudTrail", "detail": "not an object"},
        {"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {"State": "available"}},
        {"detail-type": "AWS API Call via CloudTrail", "detail": {"eventSource": "ec2.amazonaws.com"}},
    ],
)
def test_malformed_event_is_logged_once_and_skipped(deployed_env: Account, event: dict[str, Any]) -> None:
    # The entry point returns instead of raising ...
    assert launch_guard.lambda_handler(event, FakeContext())["status"] == "skipped"  # type: ignore[arg-type]
    # ... and says why in exactly one structured line
    stream = io.StringIO()
    result = process(
        event, launch_guard._guard.dependencies(), Logger(service=f"ami-guard-test-{uuid.uuid4()}", stream=stream)
    )
    logs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in logs] == ["Skipped event"]
    assert logs[0]["reason"] == result["reason"] and logs[0]["level"] == "WARNING"
    assert deployed_env.received() == []
