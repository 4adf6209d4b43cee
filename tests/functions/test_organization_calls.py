"""Organization mode: every AWS call each hub function makes, in which account, per configuration.

The hub's own calls (botocore's before-call on the default session: the hub functions' clients) and each member
session's calls (the same hook on every session made from member-role credentials) are recorded while the function
handles one event per path, through its once-per-event runner (the idempotency record included). The lists below
are what the member role and the hub roles must grant (docs/guarantees.md); the stacks compare their templates with
them. The hub never calls EC2 with its own credentials; the member never sees an STS, Organizations, SNS or DynamoDB
call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ami_guard import aws_organization, contract
from ami_guard.guard import once_per_event
from ami_guard.watched import Watched
from tests import records as r
from tests.functions.test_handlers import FakeContext
from tests.functions.test_organization_runtime import (  # noqa: F401  (org: the fixture)
    OUTSIDER,
    Organization,
    in_account,
    logger,
    org,
    share,
)

HUB_IDEMPOTENT = {("dynamodb", "PutItem"), ("dynamodb", "UpdateItem")}
PUBLISH = {("sns", "Publish")}
MEMBER_ROLE = {("sts", "AssumeRole")}
LIST = {("organizations", "ListAccounts")}


def record_member_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str, str]]:
    """(account, region, service, operation) of every call made through a member session (one per region)."""
    calls: list[tuple[str, str, str, str]] = []
    make = aws_organization._boto3_session

    def made(credentials: Any, region: str) -> Any:
        session = make(credentials, region)
        account = session.client("sts", region_name=region).get_caller_identity()["Account"]

        def seen(model: Any, **_: Any) -> None:
            calls.append((account, region, model.service_model.service_name, model.name))

        session.events.register("before-call", seen)
        return session

    monkeypatch.setattr(aws_organization, "_boto3_session", made)
    return calls


Path = Callable[[Organization], dict[str, Any]]
"""Sets the organization up for one path and returns the event to deliver."""


def public_image(guarded: Organization) -> dict[str, Any]:
    image = guarded.make_image(guarded.member)
    guarded.ec2(guarded.member).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    return in_account(r.modify_image_attribute(image, [{"group": "all"}]), guarded.member)


def sibling_share(guarded: Organization) -> dict[str, Any]:
    return share(guarded, guarded.make_image(guarded.member), guarded.sibling)


def outside_share(guarded: Organization) -> dict[str, Any]:
    return share(guarded, guarded.make_image(guarded.member), OUTSIDER)


def paravirtual_launch(guarded: Organization) -> dict[str, Any]:
    image = guarded.make_image(guarded.member)
    return in_account(r.run_instances(image, "m5.large", virtualization_type=None), guarded.member)


def quiet_launch(guarded: Organization) -> dict[str, Any]:
    """A current-generation launch of an HVM image: one read decides it, and it raises nothing."""
    image = guarded.make_image(guarded.member)
    return in_account(r.run_instances(image, "m7i.large", virtualization_type=None), guarded.member)


def copy_without_tags(guarded: Organization) -> dict[str, Any]:
    source = guarded.make_image(guarded.member, r.OTHER_REGION, tags={"Owner": "platform"})
    copy = guarded.ec2(guarded.member).copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")
    return in_account(r.copy_image(copy["ImageId"], source), guarded.member)


def member_rule_deleted(guarded: Organization) -> dict[str, Any]:
    event = in_account(r.events_call("DeleteRule", contract.member_rule_names()[0]), guarded.member)
    event["source"] = "aws.events"
    return event


HERE, SOURCE = r.REGION, r.OTHER_REGION  # the event's region; the copy's source region
REMOVE = {(HERE, "ec2", "ModifyImageAttribute"), (HERE, "ec2", "DescribeImageAttribute")}
# the source and the copy's launch permissions; the source's tags (read in its region)
COPY_READS = {
    (SOURCE, "ec2", "DescribeImages"),
    (SOURCE, "ec2", "DescribeImageAttribute"),
    (HERE, "ec2", "DescribeImageAttribute"),
}
# copyTags: the copy and its snapshots read, then tagged, in the copy's region
COPY_TAGS = {(HERE, "ec2", "DescribeImages"), (HERE, "ec2", "DescribeSnapshots"), (HERE, "ec2", "CreateTags")}
# (function, path, remediate, copyTags) -> (the hub's calls, the member's calls by region)
EXPECTED: dict[tuple[str, str, bool, bool], tuple[set[tuple[str, str]], set[tuple[str, str, str]]]] = {}
for remediate in (False, True):
    for copy_tags in (False, True):
        EXPECTED |= {
            ("permission", "public image", remediate, copy_tags): (
                LIST | HUB_IDEMPOTENT | PUBLISH | (MEMBER_ROLE if remediate else set()),
                REMOVE if remediate else set(),
            ),
            ("permission", "share with a sibling", remediate, copy_tags): (LIST, set()),
            ("permission", "share outside", remediate, copy_tags): (
                LIST | HUB_IDEMPOTENT | PUBLISH | (MEMBER_ROLE if remediate else set()),
                REMOVE if remediate else set(),
            ),
            ("launch", "paravirtual launch", remediate, copy_tags): (
                LIST | HUB_IDEMPOTENT | PUBLISH | MEMBER_ROLE,
                {(HERE, "ec2", "DescribeImages"), (HERE, "ec2", "DescribeInstanceTypes")},
            ),
            # nothing to trust and no alert to name an account in: no Organizations call
            ("launch", "quiet launch", remediate, copy_tags): (
                HUB_IDEMPOTENT | MEMBER_ROLE,
                {(HERE, "ec2", "DescribeImages"), (HERE, "ec2", "DescribeInstanceTypes")},
            ),
            ("image", "copy without tags", remediate, copy_tags): (
                LIST | HUB_IDEMPOTENT | PUBLISH | MEMBER_ROLE,
                COPY_READS | (COPY_TAGS if copy_tags else set()),
            ),
            ("tamper", "member rule deleted", remediate, copy_tags): (LIST | HUB_IDEMPOTENT | PUBLISH, set()),
        }

PATHS: dict[tuple[str, str], tuple[str, Path]] = {
    ("permission", "public image"): ("permission", public_image),
    ("permission", "share with a sibling"): ("permission", sibling_share),
    ("permission", "share outside"): ("permission", outside_share),
    ("launch", "paravirtual launch"): ("launch", paravirtual_launch),
    ("launch", "quiet launch"): ("launch", quiet_launch),
    ("image", "copy without tags"): ("image", copy_without_tags),
    ("tamper", "member rule deleted"): ("tamper", member_rule_deleted),
}


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}-{k[1]}-remediate_{k[2]}-copyTags_{k[3]}")
def test_each_call_is_made_in_the_account_the_design_names(
    org: Organization,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    key: tuple[str, str, bool, bool],
) -> None:
    function, path, remediate, copy_tags = key
    guard, make_event = PATHS[(function, path)]
    member_calls = record_member_calls(monkeypatch)
    watched = Watched(rules=frozenset(contract.member_rule_names()), home_account=org.hub)
    deps = org.deps(guard, remediate=remediate, copy_tags=copy_tags, watched=watched)
    event = make_event(org)
    org.hub_calls.calls.clear()
    once_per_event(deps, logger)(event, FakeContext())
    hub, member = EXPECTED[key]
    assert set(org.hub_calls.calls) == hub
    assert {call[1:] for call in member_calls} == member
    assert {call[0] for call in member_calls} <= {org.member}
