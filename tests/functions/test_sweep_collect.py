"""The posture sweep's collection layer: the exact facts of an emulated account-region, and the exact calls that
read them (pages, plus an attribute read for each resource that is not public, plus three settings, nothing twice).

moto where state across calls matters (tests/functions/sweep_account.py fills moto's gaps in the emulator); botocore
Stubber on a real client where a refusal is pinned (one worker: the calls come in submission order).
"""

from __future__ import annotations

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
NOBODY = Principals()


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
    launch_permissions: Principals | None = NOBODY,
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
        # 11 images, 14 snapshots (one behind each image, three made alone), 1 public, 1 running PV instance; one
        # public-snapshot call per snapshot page; the far sources are read per image page: in pages of 3, the copies
        # of golden and of gone are on two pages, so two calls in the far region
        (1000, 8, {"images": 1, "snapshots": 1, "public snapshots": 1, "instances": 1, "source reads": 1}),
        (3, 1, {"images": 4, "snapshots": 5, "public snapshots": 5, "instances": 1, "source reads": 2}),
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
            "ec2:DescribeImages": pages["images"] + pages["source reads"],
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
    assert {region for region, _ in source_reads} == {FAR}
    assert sorted(i for _, p in source_reads for i in p["ImageIds"]) == sorted([seeded.golden, seeded.gone])
    # And which snapshots are public is asked page by page, by the page's ids
    public_asked = [p for op, _, p in log.params if op == "ec2:DescribeSnapshots" and "SnapshotIds" in p]
    assert [sorted(p) for p in public_asked] == [["OwnerIds", "RestorableByUserIds", "SnapshotIds"]] * pages[
        "public snapshots"
    ]
    assert sorted(i for p in public_asked for i in p["SnapshotIds"]) == sorted(expected_snapshots(seeded))


def test_the_listings_ask_ec2_for_what_the_account_owns_including_deprecated_and_disabled_images(
    emulated: EmulatedEc2,
) -> None:
    # Given an account-region
    seeded = Seeded(emulated)
    log = CallLog()

    # When the sweep collects it
    collect_region(sweep_clients(), ACCOUNT, HOME)
    listed = [p for op, _, p in log.params if op == "ec2:DescribeSnapshots" and "SnapshotIds" in p]
    assert sorted(listed[0]["SnapshotIds"]) == sorted(expected_snapshots(seeded))
    page_ids = listed[0]["SnapshotIds"]  # the page's ids, in the listing's order

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
            ("ec2:DescribeSnapshots", {"OwnerIds": ["self"], "SnapshotIds": page_ids, "RestorableByUserIds": ["all"]}),
            ("ec2:DescribeInstances", {"Filters": running_pv, "MaxResults": 1000}),
        ],
        key=repr,
    )


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def throttle(client: Any, operation: str, resource_id: str, times: int) -> list[int]:
    """EC2 throttles the first `times` attempts of `operation` on `resource_id`: the answer comes before the request
    leaves (botocore's `before-send`, registered first, ahead of moto), so botocore's own retry handling sees it."""
    body = (
        b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
        b"</Error></Errors><RequestID>throttled</RequestID></Response>"
    )
    sent: list[int] = []

    def send(request: Any, **_: Any) -> AWSResponse | None:
        if resource_id not in str(request.body):
            return None
        sent.append(1)
        if len(sent) > times:
            return None
        return AWSResponse(request.url, 400, {}, _Body(body))

    client.meta.events.register_first(f"before-send.ec2.{operation}", send)
    return sent


def test_a_throttled_read_is_retried_by_botocore_and_counted_once(emulated: EmulatedEc2) -> None:
    # Given an account-region with one shared image, where EC2 throttles the first read of its launch
    # permissions (one image: botocore's adaptive mode slows the client down after a throttle, by design)
    shared = emulated.image("shared-untrusted", launch_permissions=[{"UserId": UNTRUSTED}])
    log = CallLog()
    clients = sweep_clients()
    attempts = throttle(clients("ec2", HOME), "DescribeImageAttribute", shared, times=1)

    # When the sweep collects it
    posture = collect_region(clients, ACCOUNT, HOME)

    # Then the second attempt read it, and the call counts once, its retry apart
    assert len(attempts) == 2
    assert [i.launch_permissions for i in posture.images] == [Principals(user_ids=(UNTRUSTED,))]
    assert posture.unread == ()
    assert posture.calls["ec2:DescribeImageAttribute"] == 1
    assert posture.retries == Counter({"ec2:DescribeImageAttribute": 1})
    assert log.calls["ec2:DescribeImageAttribute"] == 1


def test_the_sweep_clients_retry_in_adaptive_mode_and_the_event_functions_clients_are_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the two factories (making a client calls nothing)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")

    # When each makes an EC2 client
    sweep = sweep_clients(concurrency=32)("ec2", HOME)
    event = client_factory()("ec2", HOME)

    # Then the sweep's backs off and slows down on throttling, 11 attempts in all, a connection per worker
    assert sweep.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    assert sweep.meta.config.max_pool_connections == 32
    # And the event functions' keep botocore's standard mode, 6 attempts, 10 connections
    assert event.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert event.meta.config.max_pool_connections == 10
    assert (event.meta.config.connect_timeout, event.meta.config.read_timeout) == (5, 15)
    assert (sweep.meta.config.connect_timeout, sweep.meta.config.read_timeout) == (5, 15)


def test_a_source_read_in_an_earlier_region_is_not_read_again(emulated: EmulatedEc2) -> None:
    # Given copies at home of images in the far region, one of them since deregistered
    seeded = Seeded(emulated)
    cache: dict[str, SourceImage | None] = {}
    clients = sweep_clients()
    far = collect_region(clients, ACCOUNT, FAR, source_cache=cache)
    log = CallLog()

    # When the sweep collects home after the far region, with the same cache
    home = collect_region(sweep_clients(), ACCOUNT, HOME, source_cache=cache)

    # Then the source the far region listed is not read again; only the deregistered one is asked for
    assert [i.image_id for i in far.images] == [seeded.golden]
    assert far.calls["ec2:DescribeImages"] == 1
    assert home.sources[seeded.golden] == SourceImage(seeded.golden, FAR, ACCOUNT, GOLDEN_TAGS)
    assert [(region, p["ImageIds"]) for op, region, p in log.params if "ImageIds" in p] == [(FAR, [seeded.gone])]
    assert home.calls["ec2:DescribeImages"] == 2

    # And a sweep after them with the same cache reads no source at all, and says which one it could not have
    again = collect_region(sweep_clients(), ACCOUNT, HOME, source_cache=cache)
    assert again.calls["ec2:DescribeImages"] == 1
    assert again.sources == home.sources
    assert again.unread == (
        Unread(f"ec2:DescribeImages {seeded.gone} (source of a copy)", "not readable in an earlier sweep"),
    )


def test_sources_to_read_names_each_source_once_in_its_region_and_skips_those_known() -> None:
    def copy(image_id: str, source: str | None, region: str | None) -> OwnedImage:
        return OwnedImage(image_id, HOME, None, False, "hvm", "ebs", source, region, {}, (), None, "available")

    images = [
        copy("ami-00000001", "ami-0000000a", FAR),
        copy("ami-00000002", "ami-0000000a", FAR),
        copy("ami-00000003", "ami-0000000b", "eu-central-1"),
        copy("ami-00000004", "ami-0000000c", FAR),
        copy("ami-00000005", "ami-0000000d", None),
        copy("ami-00000006", None, None),
    ]

    assert sources_to_read(images, {"ami-0000000c": None}) == {
        "eu-central-1": ("ami-0000000b",),
        FAR: ("ami-0000000a",),
    }


# --- refusals, pinned with botocore's Stubber (one worker: calls in submission order) ---------------------------

IMAGE_LISTING = {"Owners": ["self"], "IncludeDeprecated": True, "IncludeDisabled": True, "MaxResults": 1000}
SNAPSHOT_LISTING = {"OwnerIds": ["self"], "MaxResults": 1000}


def public_among(*snapshot_ids: str) -> dict[str, Any]:
    """Which of one page's snapshots are public: by their ids, without MaxResults (EC2 refuses it beside ids)."""
    return {"OwnerIds": ["self"], "SnapshotIds": list(snapshot_ids), "RestorableByUserIds": ["all"]}


INSTANCE_LISTING = {
    "Filters": [
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "virtualization-type", "Values": ["paravirtual"]},
    ],
    "MaxResults": 1000,
}
SETTINGS_OK: dict[str, dict[str, Any] | tuple[str, str]] = {
    "get_image_block_public_access_state": {"ImageBlockPublicAccessState": "block-new-sharing"},
    "get_snapshot_block_public_access_state": {"State": "block-all-sharing"},
    "get_allowed_images_settings": {"State": "enabled"},
}
A, B, C = "ami-0a0a0a0a0a0a0a0a0", "ami-0b0b0b0b0b0b0b0b0", "ami-0c0c0c0c0c0c0c0c0"


def stubbed(region: str) -> tuple[Any, Stubber]:
    client = boto3.client(
        "ec2",
        region_name=region,
        config=sweep_client_config(1),
        aws_access_key_id="x",
        aws_secret_access_key="x",
        aws_session_token="x",
    )
    return client, Stubber(client)


def expect_listings(
    stubber: Stubber,
    *,
    images: list[dict[str, Any]] | None = None,
    settings: dict[str, dict[str, Any] | tuple[str, str]] | None = None,
) -> None:
    """The calls every collection starts with, in the order one worker makes them: the settings slice (the
    paravirtual instances, the three settings), then the first image page."""
    stubber.add_response("describe_instances", {"Reservations": []}, INSTANCE_LISTING)
    for method, answer in (settings or SETTINGS_OK).items():
        if isinstance(answer, tuple):
            stubber.add_client_error(method, service_error_code=answer[0], service_message=answer[1])
        else:
            stubber.add_response(method, answer, {})
    stubber.add_response("describe_images", {"Images": images or []}, IMAGE_LISTING)


def expect_snapshots(
    stubber: Stubber, snapshots: list[dict[str, Any]] | None = None, public: tuple[str, ...] = ()
) -> None:
    """The snapshot page (after the image page's reads) and, when it holds snapshots, which of them are public."""
    stubber.add_response("describe_snapshots", {"Snapshots": snapshots or []}, SNAPSHOT_LISTING)
    if snapshots:
        stubber.add_response(
            "describe_snapshots",
            {"Snapshots": [{"SnapshotId": i} for i in public]},
            public_among(*(s["SnapshotId"] for s in snapshots)),
        )


def only(client: Any) -> Callable[[str, str], Any]:
    return lambda service, region: client


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("UnauthorizedOperation", "You are not authorized to perform this operation."),
        ("RequestLimitExceeded", "Request limit exceeded."),  # what is left once botocore's retries gave up
        ("InvalidAMIID.NotFound", f"The image id '[{B}]' does not exist"),  # deregistered since the listing
    ],
)
def test_one_attribute_read_refused_is_unread_and_the_rest_is_collected(code: str, message: str) -> None:
    # Given a region where the read of one private image's launch permissions is refused
    client, stubber = stubbed(HOME)
    expect_listings(
        stubber,
        images=[
            {"ImageId": A, "Public": True},
            {"ImageId": B, "Public": False},
            {"ImageId": C, "Public": False},
        ],
    )
    stubber.add_client_error(
        "describe_image_attribute",
        service_error_code=code,
        service_message=message,
        expected_params={"ImageId": B, "Attribute": "launchPermission"},
    )
    stubber.add_response(
        "describe_image_attribute",
        {"ImageId": C, "LaunchPermissions": [{"UserId": TRUSTED}]},
        {"ImageId": C, "Attribute": "launchPermission"},
    )
    expect_snapshots(stubber, [{"SnapshotId": "snap-0d0d0d0d0d0d0d0d0", "VolumeSize": 8}])
    stubber.add_response(
        "describe_snapshot_attribute",
        {"SnapshotId": "snap-0d0d0d0d0d0d0d0d0", "CreateVolumePermissions": [{"Group": "all"}]},
        {"SnapshotId": "snap-0d0d0d0d0d0d0d0d0", "Attribute": "createVolumePermission"},
    )

    # When the sweep collects it
    with stubber:
        posture = collect_region(only(client), ACCOUNT, HOME, concurrency=1)
        stubber.assert_no_pending_responses()

    # Then that one fact is None, the unread says why, and everything else is read
    assert [(i.image_id, i.public, i.launch_permissions) for i in posture.images] == [
        (A, True, None),
        (B, False, None),
        (C, False, Principals(user_ids=(TRUSTED,))),
    ]
    assert [s.create_volume_permissions for s in posture.snapshots] == [Principals(groups=("all",))]
    assert posture.unread == (Unread(f"ec2:DescribeImageAttribute {B} launchPermission", f"{code}: {message}"),)
    assert posture.settings == AccountSettings("block-new-sharing", "block-all-sharing", "enabled", {})
    assert posture.calls["ec2:DescribeImageAttribute"] == 2


def test_a_setting_the_region_lacks_or_refuses_is_none_with_the_reason() -> None:
    # Given a region without Allowed AMIs, and a role not allowed to read snapshot block public access
    client, stubber = stubbed(HOME)
    lacking = "The functionality you requested is not available in this region."
    refused = "You are not authorized to perform this operation."
    expect_listings(
        stubber,
        settings={
            "get_image_block_public_access_state": {"ImageBlockPublicAccessState": "unblocked"},
            "get_snapshot_block_public_access_state": ("UnauthorizedOperation", refused),
            "get_allowed_images_settings": ("UnsupportedOperation", lacking),
        },
    )
    expect_snapshots(stubber)

    # When the sweep collects it
    with stubber:
        posture = collect_region(only(client), ACCOUNT, HOME, concurrency=1)
        stubber.assert_no_pending_responses()

    # Then those two settings are None, each with its reason, and the one read is kept
    assert posture.settings == AccountSettings(
        "unblocked",
        None,
        None,
        {
            "snapshot_block_public_access": f"UnauthorizedOperation: {refused}",
            "allowed_images": f"UnsupportedOperation: {lacking}",
        },
    )
    assert posture.unread == (
        Unread("ec2:GetAllowedImagesSettings", f"UnsupportedOperation: {lacking}"),
        Unread("ec2:GetSnapshotBlockPublicAccessState", f"UnauthorizedOperation: {refused}"),
    )


def test_a_listing_that_fails_fails_the_region_naming_the_call() -> None:
    # Given a region whose snapshot listing fails on its second page (throttled beyond botocore's retries)
    client, stubber = stubbed(HOME)
    expect_listings(stubber)
    stubber.add_response(
        "describe_snapshots",
        {"Snapshots": [{"SnapshotId": "snap-0d0d0d0d0d0d0d0d0"}], "NextToken": "t1"},
        SNAPSHOT_LISTING,
    )
    stubber.add_response("describe_snapshots", {"Snapshots": []}, public_among("snap-0d0d0d0d0d0d0d0d0"))
    stubber.add_response(
        "describe_snapshot_attribute",
        {"CreateVolumePermissions": []},
        {"SnapshotId": "snap-0d0d0d0d0d0d0d0d0", "Attribute": "createVolumePermission"},
    )
    stubber.add_client_error(
        "describe_snapshots",
        service_error_code="RequestLimitExceeded",
        service_message="Request limit exceeded.",
        expected_params={**SNAPSHOT_LISTING, "NextToken": "t1"},
    )

    # When the sweep collects it
    with stubber, pytest.raises(RegionFailed) as failed:
        collect_region(only(client), ACCOUNT, HOME, concurrency=1)

    # Then the region fails (a partial listing would make exposures look fixed), naming the call and why
    assert (failed.value.account, failed.value.region) == (ACCOUNT, HOME)
    assert failed.value.call == "ec2:DescribeSnapshots"
    assert failed.value.reason == "RequestLimitExceeded: Request limit exceeded."
    assert failed.value.calls == Counter(
        {
            "ec2:DescribeInstances": 1,
            "ec2:GetImageBlockPublicAccessState": 1,
            "ec2:GetSnapshotBlockPublicAccessState": 1,
            "ec2:GetAllowedImagesSettings": 1,
            "ec2:DescribeImages": 1,
            "ec2:DescribeSnapshots": 3,
            "ec2:DescribeSnapshotAttribute": 1,
        }
    )


def test_a_source_ec2_no_longer_knows_is_unread_and_the_batch_asked_again_without_it() -> None:
    # Given two copies at home of sources in the far region, one of which EC2 no longer knows
    home, home_stubber = stubbed(HOME)
    far, far_stubber = stubbed(FAR)
    copies = [
        {"ImageId": B, "Public": False, "SourceImageId": A, "SourceImageRegion": FAR},
        {"ImageId": C, "Public": False, "SourceImageId": "ami-0e0e0e0e0e0e0e0e0", "SourceImageRegion": FAR},
    ]
    expect_listings(home_stubber, images=copies)
    for image_id in (B, C):
        home_stubber.add_response(
            "describe_image_attribute",
            {"LaunchPermissions": []},
            {"ImageId": image_id, "Attribute": "launchPermission"},
        )
    far_stubber.add_client_error(
        "describe_images",
        service_error_code="InvalidAMIID.NotFound",
        service_message="The image id '[ami-0e0e0e0e0e0e0e0e0]' does not exist",
        expected_params={"ImageIds": [A, "ami-0e0e0e0e0e0e0e0e0"], "IncludeDeprecated": True, "IncludeDisabled": True},
    )
    far_stubber.add_response(
        "describe_images",
        {"Images": [{"ImageId": A, "OwnerId": ACCOUNT, "Tags": [{"Key": "team", "Value": "platform"}]}]},
        {"ImageIds": [A], "IncludeDeprecated": True, "IncludeDisabled": True},
    )
    expect_snapshots(home_stubber)

    # When the sweep collects home
    with home_stubber, far_stubber:
        posture = collect_region(lambda service, region: {HOME: home, FAR: far}[region], ACCOUNT, HOME, concurrency=1)
        home_stubber.assert_no_pending_responses()
        far_stubber.assert_no_pending_responses()

    # Then the known source is read, the other is None and unread, at the cost of one call more
    assert posture.sources == {
        A: SourceImage(A, FAR, ACCOUNT, {"team": "platform"}),
        "ami-0e0e0e0e0e0e0e0e0": None,
    }
    assert posture.unread == (
        Unread(
            f"ec2:DescribeImages ami-0e0e0e0e0e0e0e0e0 in {FAR} (source of a copy)",
            "InvalidAMIID.NotFound: The image id '[ami-0e0e0e0e0e0e0e0e0]' does not exist",
        ),
    )
    assert posture.calls["ec2:DescribeImages"] == 3


# --- scale: the call count grows with pages plus the resources that need an attribute read ------------------------


def seed_many(ec2: EmulatedEc2, images: int, snapshots: int) -> dict[str, set[str]]:
    """`images` AMIs (1 in 100 public, 1 in 10 shared with a trusted account, 1 in 20 with an untrusted one, 10
    copies of 3 sources in the far region) and `snapshots` snapshots besides the one behind each AMI (1 in 200
    public, 1 in 10 shared), made on moto's backend (the API would take minutes) with what its API would store."""
    home, far = ec2.backend(HOME), ec2.backend(FAR)
    made: dict[str, set[str]] = {k: set() for k in ("public", "trusted", "untrusted", "snap-public", "snap-shared")}
    sources = [far.register_image(name=f"golden-{n}").id for n in range(3)]
    for n in range(images):
        if n < 10:
            ami = home.copy_image(sources[n % 3], FAR, name=f"copy-{n}")
        else:
            ami = home.register_image(name=f"image-{n}")
        if n % 100 == 1:
            ami.launch_permissions.append({"Group": "all"})
            made["public"].add(ami.id)
        elif n % 10 == 2:
            ami.launch_permissions.append({"UserId": TRUSTED})
            made["trusted"].add(ami.id)
        elif n % 20 == 3:
            ami.launch_permissions.append({"UserId": UNTRUSTED})
            made["untrusted"].add(ami.id)
    for n in range(snapshots):
        volume = home.create_volume(size=8, zone_name=f"{HOME}a")
        snapshot = home.create_snapshot(volume.id, f"snapshot-{n}")
        if n % 200 == 1:
            snapshot.create_volume_permission_groups.add("all")
            made["snap-public"].add(snapshot.id)
        elif n % 10 == 2:
            snapshot.create_volume_permission_userids.add(TRUSTED)
            made["snap-shared"].add(snapshot.id)
    ec2.instance(ec2.image("paravirtual", virtualization_type="paravirtual"))
    return made


def test_calls_are_pages_plus_non_public_attribute_reads_plus_settings_and_sources_at_scale(
    emulated: EmulatedEc2,
) -> None:
    # Given an account-region with 1,000 AMIs and 1,000 snapshots, a few public, some shared
    made = seed_many(emulated, 1000, 1000)
    log = CallLog()
    # 1,001 images (with the paravirtual one), 10 public: 2 pages; 2,001 snapshots (one behind each image), 5 public:
    # 3 pages, and for each of them one call asking which of its snapshots are public; the 3 sources of the copies
    # (all on the first image page): 1 call in their region
    expected_calls = {
        "ec2:DescribeImages": 2 + 1,
        "ec2:DescribeSnapshots": 3 + 3,
        "ec2:DescribeImageAttribute": 1001 - 10,
        "ec2:DescribeSnapshotAttribute": 2001 - 5,
        "ec2:DescribeInstances": 1,
        "ec2:GetImageBlockPublicAccessState": 1,
        "ec2:GetSnapshotBlockPublicAccessState": 1,
        "ec2:GetAllowedImagesSettings": 1,
    }

    # When the sweep collects it
    started = time.monotonic()
    posture = collect_region(sweep_clients(), ACCOUNT, HOME)
    elapsed = time.monotonic() - started

    # Then the calls are exactly the formula's, none made twice for the same resource
    assert log.calls == Counter(expected_calls), f"collected in {elapsed:.1f} s"
    assert posture.calls == Counter(expected_calls)
    reads = Counter(
        (op, p.get("ImageId") or p.get("SnapshotId")) for op, _, p in log.params if op.endswith("Attribute")
    )
    assert set(reads.values()) == {1}
    # And the exposures are all there
    assert {i.image_id for i in posture.images if i.public} == made["public"]
    shared_with = {
        account: {
            i.image_id for i in posture.images if i.launch_permissions and account in i.launch_permissions.user_ids
        }
        for account in (TRUSTED, UNTRUSTED)
    }
    assert shared_with == {TRUSTED: made["trusted"], UNTRUSTED: made["untrusted"]}
    assert {s.snapshot_id for s in posture.snapshots if s.public} == made["snap-public"]
    assert {
        s.snapshot_id for s in posture.snapshots if s.create_volume_permissions and s.create_volume_permissions.user_ids
    } == made["snap-shared"]
    assert len(posture.sources) == 3
    assert all(source is not None for source in posture.sources.values())
    assert posture.unread == ()


def test_a_snapshot_deleted_after_its_page_was_listed_is_dropped_from_the_public_ask_and_the_rest_asked_again() -> None:
    # Given a snapshot page of two, one of which is deleted before the sweep asks which are public
    client, stubber = stubbed(HOME)
    kept, deleted = "snap-0a0a0a0a0a0a0a0a0", "snap-0b0b0b0b0b0b0b0b0"
    expect_listings(stubber)
    stubber.add_response(
        "describe_snapshots", {"Snapshots": [{"SnapshotId": kept}, {"SnapshotId": deleted}]}, SNAPSHOT_LISTING
    )
    stubber.add_client_error(
        "describe_snapshots",
        service_error_code="InvalidSnapshot.NotFound",
        service_message=f"The snapshot '{deleted}' does not exist.",
        expected_params=public_among(kept, deleted),
    )
    stubber.add_response("describe_snapshots", {"Snapshots": [{"SnapshotId": kept}]}, public_among(kept))
    stubber.add_client_error(
        "describe_snapshot_attribute",
        service_error_code="InvalidSnapshot.NotFound",
        service_message=f"The snapshot '{deleted}' does not exist.",
        expected_params={"SnapshotId": deleted, "Attribute": "createVolumePermission"},
    )

    # When the sweep collects it
    with stubber:
        posture = collect_region(only(client), ACCOUNT, HOME, concurrency=1)
        stubber.assert_no_pending_responses()

    # Then the kept one is public, found at the cost of one call more; the deleted one's read is unread, not fatal
    assert [(s.snapshot_id, s.public) for s in posture.snapshots] == [(kept, True), (deleted, False)]
    assert posture.calls["ec2:DescribeSnapshots"] == 3
    assert [u.what for u in posture.unread] == [f"ec2:DescribeSnapshotAttribute {deleted} createVolumePermission"]


def test_a_refusal_of_the_public_ask_that_names_no_snapshot_fails_the_region() -> None:
    client, stubber = stubbed(HOME)
    expect_listings(stubber)
    stubber.add_response(
        "describe_snapshots", {"Snapshots": [{"SnapshotId": "snap-0a0a0a0a0a0a0a0a0"}]}, SNAPSHOT_LISTING
    )
    stubber.add_client_error(
        "describe_snapshots",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        expected_params=public_among("snap-0a0a0a0a0a0a0a0a0"),
    )

    with stubber, pytest.raises(RegionFailed) as failed:
        collect_region(only(client), ACCOUNT, HOME, concurrency=1)

    assert (failed.value.call, failed.value.reason) == (
        "ec2:DescribeSnapshots",
        "UnauthorizedOperation: You are not authorized to perform this operation.",
    )


def test_the_emulator_answers_which_of_a_page_s_snapshots_are_public_as_ec2_does(emulated: EmulatedEc2) -> None:
    # Given a public, a shared and a private snapshot of the account, and one of another account
    public = emulated.snapshot(groups=["all"])
    shared = emulated.snapshot(user_ids=[TRUSTED])
    private = emulated.snapshot()
    ec2 = emulated.ec2()

    # When asked by their ids which are restorable by all (moto ignores RestorableByUserIds: demo.ec2_gaps filters)
    answer = ec2.describe_snapshots(
        OwnerIds=["self"], SnapshotIds=[public, shared, private], RestorableByUserIds=["all"]
    )

    # Then only the public one, as EC2 answers
    assert [s["SnapshotId"] for s in answer["Snapshots"]] == [public]
