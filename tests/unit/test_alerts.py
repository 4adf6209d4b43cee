"""What a reader gets: subject, JSON document, email text."""

from __future__ import annotations

import json

import pytest

from ami_guard import alerts
from ami_guard.events import Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from tests import records as r

CALL = parse_call(Envelope(r.modify_image_attribute("ami-0abc", [{"group": "all"}])))


def finding(title: str, **kw: object) -> Finding:
    return Finding(
        rule_id="ami-public",
        severity=Severity.CRITICAL,
        title=title,
        description="d",
        resources=(Resource("image", "ami-0abc", r.REGION),),
        **kw,  # type: ignore[arg-type]
    )


def test_subject_reads_like_the_documented_example() -> None:
    subject = alerts.subject(finding(f"AMI ami-0abc made public in {r.REGION}"), CALL)
    assert subject == f"[CRITICAL] AMI ami-0abc made public in {r.REGION} ({r.ACCOUNT})"


@pytest.mark.parametrize("title", ["x" * 300, "AMI \u00e9t\u00e9 \U0001f600 made\npublic\tnow", ""])
def test_subject_is_one_ascii_line_under_100_characters(title: str) -> None:
    subject = alerts.subject(finding(title), CALL)
    assert len(subject) < 100
    assert subject.isascii() and "\n" not in subject and "\t" not in subject
    assert subject.startswith("[CRITICAL] ") and subject.endswith(f"({r.ACCOUNT})")


def test_sns_message_has_json_default_and_text_email() -> None:
    alert = alerts.render(finding("AMI ami-0abc made public", evidence={"added": {"groups": ["all"]}}), CALL)
    structure = json.loads(alert.sns_message())
    assert set(structure) == {"default", "email"}
    document = json.loads(structure["default"])
    for key in ("rule_id", "severity", "title", "account", "region", "resources", "actor", "event", "evidence"):
        assert key in document
    assert document["action"] == {"status": "none", "detail": "this rule only reports"}
    assert 'EVIDENCE\n  added: {"groups": ["all"]}' in structure["email"]
    assert alert.attributes == {
        "severity": "CRITICAL",
        "rule_id": "ami-public",
        "account": r.ACCOUNT,
        "region": r.REGION,
    }


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        (Resource("image", "ami-1", "eu-west-1"), "ec2/home?region=eu-west-1#ImageDetails:imageId=ami-1"),
        (Resource("snapshot", "snap-1", "eu-west-1"), "#SnapshotDetails:snapshotId=snap-1"),
        (Resource("instance", "i-1", "cn-north-1", "1"), "console.amazonaws.cn/ec2/home?region=cn-north-1#Inst"),
    ],
)
def test_console_links(resource: Resource, fragment: str) -> None:
    assert fragment in resource.console_url


def test_arns_follow_the_partition() -> None:
    assert Resource("image", "ami-1", "us-gov-west-1").arn == "arn:aws-us-gov:ec2:us-gov-west-1::image/ami-1"
    assert Resource("instance", "i-1", "eu-west-1", "123456789012").arn == (
        "arn:aws:ec2:eu-west-1:123456789012:instance/i-1"
    )
