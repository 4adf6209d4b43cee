"""Organization mode, hub functions against an emulated organization (moto, in process, several accounts).

moto puts a call made with AssumeRole credentials for arn:aws:iam::<account>:role/... into that account: the hub
(moto's default account, which created the organization) reaches a member's images only through the member role,
and a resource made in a member is invisible from the hub. Every alert is read from the hub's topic, as a
subscriber (an SQS queue) receives it.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2 import ec2_backends
from moto.sts import models as moto_sts

from ami_guard import contract
from ami_guard.config import parse_policy
from ami_guard.guard import Dependencies, build_dependencies, process
from ami_guard.handlers import permission_guard
from ami_guard.organization import OrganizationScopes
from ami_guard.rules.catalog import routes
from ami_guard.settings import Settings
from ami_guard.watched import Watched
from demo.emulator_server import copies_name_their_source
from tests import records as r
from tests.functions.conftest import TABLE, create_table

HUB = DEFAULT_ACCOUNT_ID
OUTSIDER = "444455556666"
PREFIX = contract.member_role_prefix()
logger = permission_guard.logger


class Clock:
    """The functions' clock: real time, moved on by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class HubCalls:
    """Every call the hub's own clients make (botocore's before-call on the default session): STS, Organizations,
    SNS, DynamoDB. The member sessions are separate sessions: their EC2 calls are not seen here."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    refuse: dict[tuple[str, str], str] = field(default_factory=dict)

    def __call__(self, model: Any, **_: Any) -> None:
        key = (model.service_model.service_name, model.name)
        self.calls.append(key)
        if key in self.refuse:
            raise ClientError({"Error": {"Code": self.refuse[key], "Message": "refused by the test"}}, model.name)

    def count(self, service: str, operation: str) -> int:
        return self.calls.count((service, operation))


@dataclass
class Organization:
    organization_id: str
    member: str  # "Production"
    sibling: str  # "Sandbox"
    topic_arn: str
    queue_url: str
    hub_calls: HubCalls
    own: Any
    """The test's own boto3 session (its calls are not the hub's)."""
    clock: Clock = field(default_factory=Clock)
    hub: str = HUB
    _ec2: dict[tuple[str, str], Any] = field(default_factory=dict)

    def ec2(self, account: str, region: str = r.REGION) -> Any:
        """The test's own EC2 client in a member account (an administrator's role there)."""
        if (account, region) not in self._ec2:
            credentials = self.own.client("sts", region_name=r.REGION).assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="test"
            )["Credentials"]
            self._ec2[(account, region)] = self.own.client(
                "ec2",
                region_name=region,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return self._ec2[(account, region)]

    def make_image(self, account: str, region: str = r.REGION, *, tags: dict[str, str] | None = None) -> str:
        ec2 = self.ec2(account, region)
        base = next(iter(ec2_backends[account][region].amis))
        instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1, InstanceType="t3.micro")
        spec = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
        image: str = ec2.create_image(
            InstanceId=instance["Instances"][0]["InstanceId"],
            Name=f"golden-{time.time_ns()}",
            TagSpecifications=spec if tags else [],
        )["ImageId"]
        ec2_backends[account][region].amis[image].virtualization_type = "hvm"
        return image

    def tags(self, account: str, resource: str, region: str = r.REGION) -> dict[str, str]:
        found = self.ec2(account, region).describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])
        return {t["Key"]: t["Value"] for t in found["Tags"]}

    def launch_permissions(self, account: str, image: str) -> list[dict[str, str]]:
        described = self.ec2(account).describe_image_attribute(ImageId=image, Attribute="launchPermission")
        return list(described["LaunchPermissions"])

    def deps(
        self,
        guard: str,
        *,
        remediate: bool = True,
        copy_tags: bool = True,
        watched: Watched | None = None,
    ) -> Dependencies:
        policy = parse_policy(
            {
                "remediate": remediate,
                "copyTags": copy_tags,
                "minSeverity": "LOW",
                "organization": {
                    "organizationId": self.organization_id,
                    "hubAccount": HUB,
                    "hubRegion": r.REGION,
                    "regions": [r.REGION, r.OTHER_REGION],
                    "organizationalUnits": ["r-abcd"],
                },
            }
        )
        settings = Settings(
            topic_arn=self.topic_arn,
            region=r.REGION,
            policy=policy,
            idempotency_table=TABLE,
            watched=watched or Watched(),
            member_role_prefix=PREFIX,
        )
        return build_dependencies(settings, routes(guard), clock=self.clock)

    def received(self) -> list[dict[str, Any]]:
        sqs = self.own.client("sqs", region_name=r.REGION)
        out: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return out


def in_account(record: dict[str, Any], account: str) -> dict[str, Any]:
    """The record as CloudTrail writes it in `account`, in the envelope EventBridge delivers (account: `account`)."""
    record["recipientAccountId"] = account
    record["userIdentity"]["accountId"] = account
    record["userIdentity"]["arn"] = f"arn:aws:sts::{account}:assumed-role/PlatformAdmin/alice"
    return r.envelope(record)


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch) -> Iterator[Organization]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": r.REGION,
        "AWS_REGION": r.REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)  # several accounts: each call lands in its credentials'
    clock = Clock()
    # STS's credentials expire by the same clock as the functions' (moto stamps them with its utcnow)
    real_utcnow = moto_sts.utcnow
    monkeypatch.setattr(moto_sts, "utcnow", lambda: real_utcnow() + datetime.timedelta(seconds=clock.offset))
    undo = copies_name_their_source()
    try:
        with mock_aws():
            organizations = boto3.client("organizations", region_name=r.REGION)
            organization_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]

            def account(name: str) -> str:
                status = organizations.create_account(Email=f"{name.lower()}@example.com", AccountName=name)
                return str(status["CreateAccountStatus"]["AccountId"])

            member, sibling = account("Production"), account("Sandbox")
            sns = boto3.client("sns", region_name=r.REGION)
            topic_arn = sns.create_topic(Name="ami-guard-alerts")["TopicArn"]
            sqs = boto3.client("sqs", region_name=r.REGION)
            queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
            create_table()  # as the stack makes it, with the open findings' index (the hub's sweep queries it)
            boto3.setup_default_session()  # the hub functions' clients report to `calls` from here on
            assert boto3.DEFAULT_SESSION is not None
            calls = HubCalls()
            boto3.DEFAULT_SESSION.events.register("before-call", calls)
            yield Organization(
                organization_id, member, sibling, topic_arn, queue_url, calls, boto3.session.Session(), clock
            )
    finally:
        undo()
        boto3.setup_default_session()


def share(org: Organization, image: str, *accounts: str) -> dict[str, Any]:
    """The member shares its image with `accounts` (in EC2 and in the record)."""
    add = [{"UserId": a} for a in accounts]
    org.ec2(org.member).modify_image_attribute(ImageId=image, LaunchPermission={"Add": add})
    return in_account(r.modify_image_attribute(image, [{"userId": a} for a in accounts]), org.member)


def by_rule(notifications: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["MessageAttributes"]["rule_id"]["Value"]: n for n in notifications}


def test_a_share_with_another_account_of_the_organization_is_trusted(org: Organization) -> None:
    # Given a member's image shared with a sibling account of the organization (listed in no trustedAccounts)
    deps = org.deps("permission")
    image = org.make_image(org.member)
    # When the permission guard handles the share
    summary = process(share(org, image, org.sibling), deps, logger)
    # Then nothing is raised, and the sibling keeps its launch permission
    assert summary["findings"] == []
    assert org.received() == []
    assert org.launch_permissions(org.member, image) == [{"UserId": org.sibling}]


def test_a_share_outside_the_organization_is_raised_and_removed_in_the_member_account(org: Organization) -> None:
    # Given a member's image shared with a sibling and with an account outside the organization
    deps = org.deps("permission")
    image = org.make_image(org.member)
    # When the permission guard handles the share
    summary = process(share(org, image, org.sibling, OUTSIDER), deps, logger)
    # Then only the outsider is untrusted, and it is removed from the image in the member account
    assert summary["published"] == ["ami-shared-untrusted"]
    assert org.launch_permissions(org.member, image) == [{"UserId": org.sibling}]
    (notification,) = org.received()
    body = json.loads(notification["Message"])
    assert body["evidence"]["untrusted"] == {"userIds": [OUTSIDER]}
    assert body["action"]["status"] == "removed"
    # And the alert names the member account by id and by its name in the organization: JSON, attributes, email
    assert body["account"] == org.member and body["account_name"] == "Production"
    attributes = {k: v["Value"] for k, v in notification["MessageAttributes"].items()}
    assert attributes == {
        "severity": "HIGH",
        "rule_id": "ami-shared-untrusted",
        "status": "open",
        "account": org.member,
        "region": r.REGION,
        "account_name": "Production",
    }
    # And the email names it beside the WHO line, the console link and the footer
    recorded, sent = recording(deps)
    process(share(org, image, OUTSIDER), recorded, logger)
    email = sent[0].email
    assert f"  in account {org.member} Production, region {r.REGION}" in email.splitlines()
    assert f"(in account {org.member} Production: sign in to it first)" in email
    assert email.endswith(f"| account {org.member} Production | region {r.REGION}")


def recording(deps: Dependencies) -> tuple[Dependencies, list[Any]]:
    """The same dependencies publishing to a list (the email part of an alert never reaches an SQS subscriber)."""
    sent: list[Any] = []

    class Recording:
        def publish(self, alert: Any) -> str:
            sent.append(alert)
            return "recorded"

    return deps._replace(publisher=Recording()), sent


def test_the_hub_has_no_image_of_the_member_and_changes_nothing_of_its_own(org: Organization) -> None:
    # Given an image of the member made public
    deps = org.deps("permission")
    image = org.make_image(org.member)
    org.ec2(org.member).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    # When the permission guard handles it
    process(in_account(r.modify_image_attribute(image, [{"group": "all"}]), org.member), deps, logger)
    # Then the image is private again in the member account, and the hub account never had it
    assert org.launch_permissions(org.member, image) == []
    assert image not in ec2_backends[HUB][r.REGION].amis
    # And no EC2 call was made with the hub's own credentials
    assert not [call for call in org.hub_calls.calls if call[0] == "ec2"]


def test_an_account_that_left_the_organization_is_no_longer_trusted_after_the_refresh(org: Organization) -> None:
    # Given the sibling trusted (the organization listed once)
    deps = org.deps("permission")
    image = org.make_image(org.member)
    assert process(share(org, image, org.sibling), deps, logger)["findings"] == []
    # When the sibling leaves the organization and the list is older than its maximum age (15 minutes)
    org.own.client("organizations", region_name=r.REGION).remove_account_from_organization(AccountId=org.sibling)
    org.clock.advance(15 * 60 + 1)
    summary = process(share(org, image, org.sibling), deps, logger)
    # Then a share with it is raised
    assert summary["published"] == ["ami-shared-untrusted"]
    assert org.hub_calls.count("organizations", "ListAccounts") == 2


def test_a_new_account_is_trusted_within_a_minute_and_unknown_accounts_list_at_most_once_a_minute(
    org: Organization,
) -> None:
    deps = org.deps("permission", remediate=False)
    image = org.make_image(org.member)
    process(share(org, image, org.sibling), deps, logger)  # listed once
    # A minute later, a flood of shares with an account the list lacks: one listing
    org.clock.advance(61)
    for _ in range(5):
        assert process(share(org, image, OUTSIDER), deps, logger)["published"] == ["ami-shared-untrusted"]
    assert org.hub_calls.count("organizations", "ListAccounts") == 2
    # An account that joins now is not listed yet within that minute...
    newcomer = org.own.client("organizations", region_name=r.REGION).create_account(
        Email="new@example.com", AccountName="Newcomer"
    )["CreateAccountStatus"]["AccountId"]
    assert process(share(org, image, newcomer), deps, logger)["published"] == ["ami-shared-untrusted"]
    assert org.hub_calls.count("organizations", "ListAccounts") == 2
    # ...and a minute later a share with it makes the list current: trusted
    org.clock.advance(61)
    assert process(share(org, image, newcomer), deps, logger)["findings"] == []
    assert org.hub_calls.count("organizations", "ListAccounts") == 3


def test_a_copy_gets_its_tags_back_in_the_member_account_and_region(org: Organization) -> None:
    # Given a tagged image of the member in the other region, copied into the hub's region by the member
    deps = org.deps("image")
    source = org.make_image(org.member, r.OTHER_REGION, tags={"Owner": "platform", "CostCenter": "42"})
    copy = org.ec2(org.member).copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")[
        "ImageId"
    ]
    # When the image guard handles the CopyImage event
    summary = process(in_account(r.copy_image(copy, source), org.member), deps, logger)
    # Then the copy, in the member account, carries its source's tags (read in the member's other region)
    assert summary["published"] == ["copy-tags-missing"]
    tags = org.tags(org.member, copy)
    assert {k: tags[k] for k in ("Owner", "CostCenter")} == {"Owner": "platform", "CostCenter": "42"}
    assert tags["ami-guard:source-image-id"] == source
    body = json.loads(org.received()[0]["Message"])
    assert body["action"]["status"] == "applied"
    assert body["account_name"] == "Production"


def test_the_session_is_reused_and_renewed_before_it_expires(org: Organization) -> None:
    deps = org.deps("permission")
    first, second = org.make_image(org.member), org.make_image(org.member)
    # Two events of the same account and region: one AssumeRole
    for image in (first, second):
        org.ec2(org.member).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
        process(in_account(r.modify_image_attribute(image, [{"group": "all"}]), org.member), deps, logger)
    assert org.hub_calls.count("sts", "AssumeRole") == 1
    assert org.launch_permissions(org.member, first) == [] and org.launch_permissions(org.member, second) == []
    # 56 minutes later (an hour's credentials, renewed 5 minutes before they expire): a new session
    org.clock.advance(56 * 60)
    third = org.make_image(org.member)
    org.ec2(org.member).modify_image_attribute(ImageId=third, LaunchPermission={"Add": [{"Group": "all"}]})
    process(in_account(r.modify_image_attribute(third, [{"group": "all"}]), org.member), deps, logger)
    assert org.hub_calls.count("sts", "AssumeRole") == 2
    assert org.launch_permissions(org.member, third) == []


def test_a_member_role_that_refuses_the_hub_still_lets_the_alert_out_with_the_reason(org: Organization) -> None:
    # Given a member whose role the hub may not assume (deleted, or trusting another principal)
    deps = org.deps("permission")
    org.hub_calls.refuse[("sts", "AssumeRole")] = "AccessDenied"
    image = org.make_image(org.member)
    org.ec2(org.member).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    # When the permission guard handles the image made public
    summary = process(in_account(r.modify_image_attribute(image, [{"group": "all"}]), org.member), deps, logger)
    # Then the alert is published, and says the member role could not be assumed
    assert summary["published"] == ["ami-public"]
    action = json.loads(org.received()[0]["Message"])["action"]
    assert action["status"] == "failed"
    role = f"arn:aws:iam::{org.member}:role/{PREFIX}{r.REGION}"
    assert action["detail"] == f"the member role {role} could not be assumed (AccessDenied: refused by the test)"
    assert org.launch_permissions(org.member, image) == [{"Group": "all"}]


@pytest.mark.parametrize("envelope_account", ["12345", "../../111122223333", None, 111122223333])
def test_a_malformed_envelope_account_fails_the_action_not_the_alert(org: Organization, envelope_account: Any) -> None:
    deps = org.deps("permission")
    event = in_account(r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}]), org.member)
    event["account"] = envelope_account
    summary = process(event, deps, logger)
    assert summary["published"] == ["ami-public"]
    action = json.loads(org.received()[0]["Message"])["action"]
    assert action["status"] == "failed"
    assert action["detail"] == f"{envelope_account!r} is not an AWS account id: its member role cannot be named"
    assert org.hub_calls.count("sts", "AssumeRole") == 0


def test_an_alert_whose_record_names_another_account_than_its_envelope_names_no_account_name(
    org: Organization,
) -> None:
    # Given a record of the sibling's account inside an envelope of the member's (EventBridge never sends one)
    deps, sent = recording(org.deps("permission", remediate=False))
    event = in_account(r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}]), org.sibling)
    event["account"] = org.member
    process(event, deps, logger)
    # Then the alert names the record's account, and no name: neither account's name would be sure
    (alert,) = sent
    assert (alert.document["account"], alert.document["account_name"]) == (org.sibling, None)
    assert "account_name" not in alert.attributes


def test_a_crafted_region_refuses_the_action_and_is_not_kept(org: Organization) -> None:
    deps, sent = recording(org.deps("permission"))
    for n in range(3):
        record = r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}], region=f"eu-west-1/../{n}")
        process(in_account(record, org.member), deps, logger)
    assert [alert.document["action"]["detail"] for alert in sent] == [
        f"'eu-west-1/../{n}' is not an AWS region" for n in range(3)
    ]
    assert org.hub_calls.count("sts", "AssumeRole") == 0
    assert isinstance(deps.scope, OrganizationScopes)
    assert deps.scope._members == {}


def test_an_organization_that_cannot_be_listed_trusts_nobody_by_organization_and_says_so(org: Organization) -> None:
    # Given Organizations refusing the hub
    deps = org.deps("permission", remediate=False)
    org.hub_calls.refuse[("organizations", "ListAccounts")] = "AccessDeniedException"
    image = org.make_image(org.member)
    # When a member shares with a sibling
    summary = process(share(org, image, org.sibling), deps, logger)
    # Then the share is raised (the sibling is not known to be in the organization), and the alert says why
    assert summary["published"] == ["ami-shared-untrusted"]
    body = json.loads(org.received()[0]["Message"])
    assert body["account_name"] is None
    assert body["evidence"]["organization"] == (
        "organizations:ListAccounts failed (AccessDeniedException: refused by the test): no account was trusted for "
        "being in the organization, and the account's name is unknown"
    )


def test_a_hostile_account_name_is_data_in_every_part_of_the_alert(org: Organization) -> None:
    # Given a member account whose name (set by whoever created it) holds a newline and a bidi override
    hostile = org.own.client("organizations", region_name=r.REGION).create_account(
        Email="evil@example.com", AccountName="Prod\nWHAT TO DO\n  nothing\u202egnp.exe"
    )["CreateAccountStatus"]["AccountId"]
    deps, sent = recording(org.deps("permission", remediate=False))
    event = in_account(r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}]), hostile)
    process(event, deps, logger)
    (alert,) = sent
    # Then the JSON keeps it exact, the attribute is one printable ASCII line, the email writes it escaped and quoted
    assert alert.document["account_name"] == "Prod\nWHAT TO DO\n  nothing\u202egnp.exe"
    assert alert.attributes["account_name"] == "Prod WHAT TO DO nothing?gnp.exe"
    assert '"Prod\\nWHAT TO DO\\n  nothing\\u202egnp.exe"' in alert.email
    assert "\u202e" not in alert.email
    assert [line for line in alert.email.splitlines() if line == "WHAT TO DO"] == ["WHAT TO DO"]


def test_a_member_deleting_its_forwarding_rule_is_raised_at_the_hub_naming_account_and_region(
    org: Organization,
) -> None:
    forward, watch = contract.member_rule_names()
    watched = Watched(rules=frozenset({forward, watch}), home_account=HUB)
    deps = org.deps("tamper", watched=watched)
    record = r.events_call("DeleteRule", forward, region=r.OTHER_REGION)
    event = in_account(record, org.member)
    event["source"] = "aws.events"
    summary = process(event, deps, logger)
    assert summary["published"] == ["guard-tampered"]
    body = json.loads(org.received()[0]["Message"])
    assert body["title"] == (
        f"AMI Guard EventBridge rule {forward} changed: DeleteRule in account {org.member} {r.OTHER_REGION}"
    )
    assert (body["account"], body["account_name"], body["region"]) == (org.member, "Production", r.OTHER_REGION)
    assert body["resources"][0]["arn"] == f"arn:aws:events:{r.OTHER_REGION}:{org.member}:rule/{forward}"


def test_a_change_to_a_rule_the_guard_does_not_watch_costs_no_organizations_call(org: Organization) -> None:
    watched = Watched(rules=frozenset(contract.member_rule_names()), home_account=HUB)
    event = in_account(r.events_call("DeleteRule", "someone-elses-rule"), org.member)
    event["source"] = "aws.events"
    assert process(event, org.deps("tamper", watched=watched), logger)["findings"] == []
    assert org.hub_calls.calls == []
