"""The posture sweep's collection layer: the exact facts of an emulated account-region, and the exact calls that
read them (pages, plus an attribute read for each resource that is not public, plus three settings, nothing twice).

moto where state across calls matters (tests/functions/sweep_account.py fills moto's gaps in the emulator); botocore
Stubber on a real client where a refusal is pinned (one worker: the calls come in submission order).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from ami_guard.aws import client_factory, sweep_client_config
from ami_guard.events.principals import Principals
from ami_guard.sweep.collect import RegionFailed, collect_region
from ami_guard.sweep.facts import (
    AccountSettings,
    OwnedImage,
    OwnedSnapshot,
    ParavirtualInstance,
    RegionPosture,
    SourceImage,
    Unread,
    sources_to_read,
)
from tests import records as r
from tests.functions.sweep_account import (
    CREATED_TEXT,
    LAUNCHED_TEXT,
    CallLog,
    EmulatedEc2,
    emulated_account,
)

HOME, FAR = r.REGION, r.OTHER_REGION
ACCOUNT = r.ACCOUNT
TRUSTED, UNTRUSTED = "222233334444", "999988887777"
ORG_ARN = "arn:aws:organizations::111122223333:organization/o-exampleorg"
OU_ARN = "arn:aws:organizations::111122223333:ou/o-exampleorg/ou-ab12-cd34ef56"
GOLDEN_TAGS = {"team": "platform", "cost-center": "42"}


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedEc2]:
    with emulated_account(monkeypatch) as account:
        yield account


class Seeded:
    """One account-region with each kind of exposure the sweep reads, and the ids it was given."""

    def __init__(self, ec2: EmulatedEc2) -> None:
        self.public = ec2.image("public", launch_permissions=[{"Group": "all"}, {"UserId": UNTRUSTED}])
        self.trusted = ec2.image("shared-trusted", launch_permissions=[{"UserId": TRUSTED}])
        self.untrusted = ec2.image("shared-untrusted", launch_permissions=[{"UserId": UNTRUSTED}])
        self.org = ec2.image(
            "shared-org", launch_permissions=[{"OrganizationArn": ORG_ARN}, {"OrganizationalUnitArn": OU_ARN}]
        )
        self.private = ec2.image("private", tags={"team": "platform"})
        self.paravirtual = ec2.image("paravirtual", virtualization_type="paravirtual")
        self.instance_store = ec2.image("instance-store", root_device_type="instance-store")
        self.golden = ec2.image("golden", FAR, tags=GOLDEN_TAGS)
        self.copy_1 = ec2.copy(self.golden, FAR, name="copy-1")
        self.copy_2 = ec2.copy(self.golden, FAR, name="copy-2")
        self.gone = ec2.image("gone", FAR)
        self.copy_of_gone = ec2.copy(self.gone, FAR, name="copy-of-gone")
        ec2.ec2(FAR).deregister_image(ImageId=self.gone)
        self.copy_near = ec2.copy(self.private, HOME, name="copy-near")
        self.public_snapshot = ec2.snapshot(groups=["all"], user_ids=[UNTRUSTED])
        self.shared_snapshot = ec2.snapshot(user_ids=[TRUSTED])
        self.private_snapshot = ec2.snapshot(size_gib=20, tags={"team": "platform"})
        self.foreign_snapshot = ec2.foreign_snapshot("801119661308")
        self.pv_running = ec2.instance(self.paravirtual)
        self.hvm_running = ec2.instance(self.private)
        self.pv_stopped = ec2.instance(self.paravirtual)
        ec2.ec2().stop_instances(InstanceIds=[self.pv_stopped])
        self.image_snapshots = {
            image_id: ec2.snapshot_of(image_id)
            for image_id in (
                self.public,
                self.trusted,
                self.untrusted,
                self.org,
                self.private,
                self.paravirtual,
                self.instance_store,
                self.copy_1,
                self.copy_2,
                self.copy_of_gone,
                self.copy_near,
            )
        }


def image(
    seeded: Seeded,
    image_id: str,
    name: str,
    *,
    public: bool = False,
    launch_permissions: Principals | None = Principals(),
    virtualization_type: str = "hvm",
    root_device_type: str = "ebs",
    source: tuple[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> OwnedImage:
    return OwnedImage(
        image_id=image_id,
        region=HOME,
        name=name,
        public=public,
        virtualization_type=virtualization_type,
        root_device_type=root_device_type,
        source_image_id=source[0] if source else None,
        source_region=source[1] if source else None,
        tags=tags or {},
        snapshot_ids=(seeded.image_snapshots[image_id],),
        creation_date=CREATED_TEXT,
        state="available",
        launch_permissions=launch_permissions,
    )


def expected_images(s: Seeded) -> dict[str, OwnedImage]:
    return {
        i.image_id: i
        for i in (
            image(s, s.public, "public", public=True, launch_permissions=None),
            image(s, s.trusted, "shared-trusted", launch_permissions=Principals(user_ids=(TRUSTED,))),
            image(s, s.untrusted, "shared-untrusted", launch_permissions=Principals(user_ids=(UNTRUSTED,))),
            image(
                s, s.org, "shared-org", launch_permissions=Principals(organization_arns=(ORG_ARN,), ou_arns=(OU_ARN,))
            ),
            image(s, s.private, "private", tags={"team": "platform"}),
            image(s, s.paravirtual, "paravirtual", virtualization_type="paravirtual"),
            image(s, s.instance_store, "instance-store", root_device_type="instance-store"),
            image(s, s.copy_1, "copy-1", source=(s.golden, FAR)),
            image(s, s.copy_2, "copy-2", source=(s.golden, FAR)),
            image(s, s.copy_of_gone, "copy-of-gone", source=(s.gone, FAR)),
            image(s, s.copy_near, "copy-near", source=(s.private, HOME)),
        )
    }


def expected_snapshots(s: Seeded) -> dict[str, OwnedSnapshot]:
    behind_images = [OwnedSnapshot(snap, HOME, False, 15, {}, Principals()) for snap in s.image_snapshots.values()]
    return {
        snap.snapshot_id: snap
        for snap in [
            *behind_images,
            OwnedSnapshot(s.public_snapshot, HOME, True, 8, {}, None),
            OwnedSnapshot(s.shared_snapshot, HOME, False, 8, {}, Principals(user_ids=(TRUSTED,))),
            OwnedSnapshot(s.private_snapshot, HOME, False, 20, {"team": "platform"}, Principals()),
        ]
    }


def sweep_clients(concurrency: int = 8) -> Callable[[str, str], Any]:
    return client_factory(sweep_client_config(concurrency))


@pytest.mark.parametrize(
    ("page_size", "concurrency", "pages"),
    [
        # 11 images, 14 snapshots (one behind each image, three made alone), 1 public, 1 running PV instance
        (1000, 8, {"images": 1, "snapshots": 1, "public snapshots": 1, "instances": 1}),
        (3, 1, {"images": 4, "snapshots": 5, "public snapshots": 1, "instances": 1}),
    ],
)
def test_an_account_region_is_read_whole_with_pages_plus_the_reads_a_listing_cannot_answer(
    emulated: EmulatedEc2, page_size: int, concurrency: int, pages: dict[str, int]
) -> None:
    # Given an account-region with public, shared (trusted, untrusted, organization), private, paravirtual,
    # instance-store and copied images, public and shared snapshots and running and stopped instances
    seeded = Seeded(emulated)
    log = CallLog()

    # When the sweep collects it
    posture = collect_region(sweep_clients(concurrency), ACCOUNT, HOME, concurrency=concurrency, page_size=page_size)

    # Then every fact is the account's, exactly
    assert (posture.account, posture.region) == (ACCOUNT, HOME)
    assert {i.image_id: i for i in posture.images} == expected_images(seeded)
    assert {s.snapshot_id: s for s in posture.snapshots} == expected_snapshots(seeded)
    assert posture.instances == (
        ParavirtualInstance(seeded.pv_running, "m1.small", seeded.paravirtual, HOME, LAUNCHED_TEXT),
    )
    assert posture.settings == AccountSettings("block-new-sharing", "unblocked", "audit-mode", {})
    assert posture.sources == {
        seeded.golden: SourceImage(seeded.golden, FAR, ACCOUNT, GOLDEN_TAGS),
        seeded.gone: None,
        seeded.private: SourceImage(seeded.private, HOME, ACCOUNT, {"team": "platform"}),
    }
    assert posture.unread == (
        Unread(
            f"ec2:DescribeImages {seeded.gone} in {FAR} (source of a copy)",
            "not returned: deregistered, or not visible to the account",
        ),
    )
    # And the calls are the pages, one attribute read per resource that is not public, the three settings and one
    # read of the sources in their region (the one in this region's listing is not read again)
    expected = Counter(
        {
            "ec2:DescribeImages": pages["images"] + 1,
            "ec2:DescribeSnapshots": pages["snapshots"] + pages["public snapshots"],
            "ec2:DescribeImageAttribute": 10,
            "ec2:DescribeSnapshotAttribute": 13,
            "ec2:DescribeInstances": pages["instances"],
            "ec2:GetImageBlockPublicAccessState": 1,
            "ec2:GetSnapshotBlockPublicAccessState": 1,
            "ec2:GetAllowedImagesSettings": 1,
        }
    )
    assert log.calls == expected
    assert posture.calls == expected
    assert posture.retries == Counter()
    assert sorted(p["ImageId"] for op, _, p in log.params if op == "ec2:DescribeImageAttribute") == sorted(
        i for i in expected_images(seeded) if i != seeded.public
    )
    assert sorted(p["SnapshotId"] for op, _, p in log.params if op == "ec2:DescribeSnapshotAttribute") == sorted(
        s for s in expected_snapshots(seeded) if s != seeded.public_snapshot
    )
    source_reads = [(region, p) for op, region, p in log.params if op == "ec2:DescribeImages" and "ImageIds" in p]
    assert source_reads == [
        (FAR, {"ImageIds": sorted([seeded.golden, seeded.gone]), "IncludeDeprecated": True, "IncludeDisabled": True})
    ]


def test_the_listings_ask_ec2_for_what_the_account_owns_including_deprecated_and_disabled_images(
    emulated: EmulatedEc2,
) -> None:
    # Given an account-region
    Seeded(emulated)
    log = CallLog()

    # When the sweep collects it
    collect_region(sweep_clients(), ACCOUNT, HOME)

    # Then each listing's request is the one the design names
    listings = [
        (op, p)
        for op, _, p in log.params
        if op in {"ec2:DescribeSnapshots", "ec2:DescribeInstances"}
        or (op == "ec2:DescribeImages" and "ImageIds" not in p)
    ]
    running_pv = [
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "virtualization-type", "Values": ["paravirtual"]},
    ]
    assert sorted(listings, key=repr) == sorted(
        [
            (
                "ec2:DescribeImages",
                {"Owners": ["self"], "IncludeDeprecated": True, "IncludeDisabled": True, "MaxResults": 1000},
            ),
            ("ec2:DescribeSnapshots", {"OwnerIds": ["self"], "MaxResults": 1000}),
            ("ec2:DescribeSnapshots", {"OwnerIds": ["self"], "RestorableByUserIds": ["all"], "MaxResults": 1000}),
            ("ec2:DescribeInstances", {"Filters": running_pv, "MaxResults": 1000}),
        ],
        key=repr,
    )
