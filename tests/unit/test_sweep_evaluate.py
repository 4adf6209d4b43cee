"""What the posture sweep raises from the facts of one account and region: each standing condition through the
registry's rules, the trusted set respected, a fact not read said so, and the same facts giving the same findings."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ami_guard.config import parse_policy
from ami_guard.events.principals import Principals
from ami_guard.lifecycle import finding_key
from ami_guard.rules.spec import Undecided
from ami_guard.sweep.evaluate import evaluate_region
from ami_guard.sweep.facts import (
    AccountSettings,
    OwnedImage,
    OwnedSnapshot,
    ParavirtualInstance,
    RegionPosture,
    SourceImage,
)

ACCOUNT = "111122223333"
REGION = "eu-west-1"
TRUSTED = "555566667777"
OUTSIDER = "444455556666"
ORG = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
POLICY = parse_policy({"trustedAccounts": [TRUSTED], "trustedOrganizations": [ORG]})
SAFE = AccountSettings("block-new-sharing", "block-all-sharing", "enabled")


def image(image_id: str = "ami-0aaaaaaaaaaaaaaa1", **kw: Any) -> OwnedImage:
    fields: dict[str, Any] = {
        "image_id": image_id,
        "region": REGION,
        "name": "web",
        "public": False,
        "virtualization_type": "hvm",
        "root_device_type": "ebs",
        "source_image_id": None,
        "source_region": None,
        "tags": {},
        "snapshot_ids": (),
        "creation_date": None,
        "state": "available",
        "launch_permissions": Principals(),
    }
    fields.update(kw)
    return OwnedImage(**fields)


def snapshot(snapshot_id: str = "snap-0aaaaaaaaaaaaaaa1", **kw: Any) -> OwnedSnapshot:
    fields: dict[str, Any] = {
        "snapshot_id": snapshot_id,
        "region": REGION,
        "public": False,
        "volume_size": 8,
        "tags": {},
        "create_volume_permissions": Principals(),
    }
    fields.update(kw)
    return OwnedSnapshot(**fields)


def posture(**kw: Any) -> RegionPosture:
    fields: dict[str, Any] = {
        "account": ACCOUNT,
        "region": REGION,
        "images": (),
        "snapshots": (),
        "instances": (),
        "settings": SAFE,
        "sources": {},
        "calls": Counter(),
        "retries": Counter(),
        "unread": (),
    }
    fields.update(kw)
    return RegionPosture(**fields)


SOURCE = SourceImage("ami-0bbbbbbbbbbbbbbb1", "us-east-1", ACCOUNT, {"Team": "platform", "aws:backup": "x"})


@pytest.mark.parametrize(
    ("name", "facts", "expected"),
    [
        ("nothing exposed", posture(images=(image(),), snapshots=(snapshot(),)), []),
        ("public image", posture(images=(image(public=True, launch_permissions=None),)), ["ami-public"]),
        (
            "made public between the listing and the read",
            posture(images=(image(launch_permissions=Principals(groups=("all",))),)),
            ["ami-public"],
        ),
        (
            "image shared with an outsider",
            posture(images=(image(launch_permissions=Principals(user_ids=(OUTSIDER,))),)),
            ["ami-shared-untrusted"],
        ),
        (
            "image shared with the trusted, the owner and the trusted organization",
            posture(
                images=(image(launch_permissions=Principals(user_ids=(TRUSTED, ACCOUNT), organization_arns=(ORG,))),)
            ),
            [],
        ),
        (
            "public snapshot",
            posture(snapshots=(snapshot(public=True, create_volume_permissions=None),)),
            ["snapshot-public"],
        ),
        (
            "snapshot shared with an outsider",
            posture(snapshots=(snapshot(create_volume_permissions=Principals(user_ids=(OUTSIDER,))),)),
            ["snapshot-shared-untrusted"],
        ),
        ("paravirtual image", posture(images=(image(virtualization_type="paravirtual"),)), ["image-paravirtual"]),
        ("instance-store image", posture(images=(image(root_device_type="instance-store"),)), ["image-instance-store"]),
        (
            "copy lacking its source's tags",
            posture(
                images=(image(source_image_id=SOURCE.image_id, source_region="us-east-1"),),
                sources={SOURCE.image_id: SOURCE},
            ),
            ["copy-tags-missing"],
        ),
        (
            "copy with its source's tags",
            posture(
                images=(image(source_image_id=SOURCE.image_id, source_region="us-east-1", tags={"Team": "platform"}),),
                sources={SOURCE.image_id: SOURCE},
            ),
            [],
        ),
        (
            "running paravirtual instance",
            posture(instances=(ParavirtualInstance("i-0aaaaaaaaaaaaaaa1", "m1.small", "ami-1", REGION, None),)),
            ["instance-paravirtual"],
        ),
        (
            "image block public access off",
            posture(settings=SAFE._replace(image_block_public_access="unblocked")),
            ["ami-block-public-access-disabled"],
        ),
        (
            "snapshot block public access off",
            posture(settings=SAFE._replace(snapshot_block_public_access="unblocked")),
            ["snapshot-block-public-access-disabled"],
        ),
        (
            "snapshot block public access for new sharing only",
            posture(settings=SAFE._replace(snapshot_block_public_access="block-new-sharing")),
            ["snapshot-block-public-access-weakened"],
        ),
        ("Allowed AMIs off", posture(settings=SAFE._replace(allowed_images="disabled")), ["allowed-images-disabled"]),
        (
            "Allowed AMIs in audit mode",
            posture(settings=SAFE._replace(allowed_images="audit-mode")),
            ["allowed-images-audit-only"],
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_sweep_rules(name: str, facts: RegionPosture, expected: list[str]) -> None:
    result = evaluate_region(facts, POLICY)
    assert sorted(f.rule_id for f in result.findings) == expected
    assert result.undecided == ()


def test_a_fact_not_read_is_undecided_not_raised() -> None:
    facts = posture(
        images=(
            image("ami-0aaaaaaaaaaaaaaa1", launch_permissions=None),
            image("ami-0aaaaaaaaaaaaaaa2", source_image_id="ami-0ccccccccccccccc1", source_region="us-east-1"),
        ),
        snapshots=(snapshot(create_volume_permissions=None),),
        settings=AccountSettings(None, "block-all-sharing", "enabled", {"image_block_public_access": "AccessDenied"}),
        sources={"ami-0ccccccccccccccc1": None},
    )
    result = evaluate_region(facts, POLICY)
    assert result.findings == ()
    assert result.undecided == (
        Undecided(
            "ami-shared-untrusted",
            "launch permissions of ami-0aaaaaaaaaaaaaaa1 not read",
            "image:ami-0aaaaaaaaaaaaaaa1",
        ),
        Undecided(
            "snapshot-shared-untrusted",
            "create-volume permissions of snap-0aaaaaaaaaaaaaaa1 not read",
            "snapshot:snap-0aaaaaaaaaaaaaaa1",
        ),
        Undecided(
            "ami-block-public-access-disabled",
            "AMI block public access of eu-west-1 not read: AccessDenied",
            "account-setting:image-block-public-access",
        ),
        Undecided(
            "copy-tags-missing",
            "source ami-0ccccccccccccccc1 of copy ami-0aaaaaaaaaaaaaaa2 not read",
            "image:ami-0aaaaaaaaaaaaaaa2",
        ),
    )


def test_a_source_another_account_owns_is_not_read_as_untagged() -> None:
    foreign = SOURCE._replace(owner_id=OUTSIDER, tags={})
    facts = posture(
        images=(image(source_image_id=SOURCE.image_id, source_region="us-east-1"),), sources={SOURCE.image_id: foreign}
    )
    result = evaluate_region(facts, POLICY)
    assert result.findings == ()
    assert [u.rule_id for u in result.undecided] == ["copy-tags-missing"]


def test_the_lost_tags_are_the_user_tags_the_copy_lacks() -> None:
    facts = posture(
        images=(image(source_image_id=SOURCE.image_id, source_region="us-east-1"),), sources={SOURCE.image_id: SOURCE}
    )
    (finding,) = evaluate_region(facts, POLICY).findings
    assert finding.evidence["lostTags"] == {"Team": "platform"}


def test_one_finding_per_rule_and_resource_with_a_stable_key_and_order() -> None:
    facts = posture(
        images=(
            image("ami-0aaaaaaaaaaaaaaa2", public=True, launch_permissions=None, virtualization_type="paravirtual"),
            image("ami-0aaaaaaaaaaaaaaa1", public=True, launch_permissions=None),
        )
    )
    first = evaluate_region(facts, POLICY)
    again = evaluate_region(facts._replace(images=tuple(reversed(facts.images))), POLICY)
    keys = [finding_key(f, ACCOUNT, REGION) for f in first.findings]
    assert keys == [
        "111122223333/eu-west-1/ami-public/image:ami-0aaaaaaaaaaaaaaa1",
        "111122223333/eu-west-1/ami-public/image:ami-0aaaaaaaaaaaaaaa2",
        "111122223333/eu-west-1/image-paravirtual/image:ami-0aaaaaaaaaaaaaaa2",
    ]
    assert first == again
