"""What the posture sweep reads from one account and region, as pure values (no boto3): facts, never findings.

A fact that could not be read is None, never a guess, and the region's `unread` says why. Values are plain (text,
numbers, tuples, dicts): dates stay ISO 8601 text as EC2 gives them (DescribeImages' CreationDate; DescribeInstances'
LaunchTime, which botocore parses, written back with `isoformat()`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from ami_guard.events.principals import Principals

EMPTY: Mapping[str, str] = MappingProxyType({})


class Unread(NamedTuple):
    """Something the sweep could not read, and why (the error code and message AWS gave, or the exception)."""

    what: str
    """The call and the resource: "ec2:DescribeImageAttribute ami-0123456789abcdef0 launchPermission"."""
    reason: str


class OwnedImage(NamedTuple):
    """An AMI the account owns, from DescribeImages(Owners=["self"]), deprecated and disabled ones included."""

    image_id: str
    region: str
    name: str | None
    public: bool
    """DescribeImages' `Public`: launchable by every AWS account."""
    virtualization_type: str | None
    """"hvm" or "paravirtual"."""
    root_device_type: str | None
    """"ebs" or "instance-store"."""
    source_image_id: str | None
    """What EC2 says the image is a copy of (SourceImageId / SourceImageRegion); both None: not a copy."""
    source_region: str | None
    tags: Mapping[str, str]
    """The image's user tags, as EC2 gives them to its owner."""
    snapshot_ids: tuple[str, ...]
    """The EBS snapshots behind the image (BlockDeviceMappings' Ebs.SnapshotId), in mapping order."""
    creation_date: str | None
    state: str | None
    """"available", "disabled", "pending", "failed"..."""
    launch_permissions: Principals | None = None
    """DescribeImageAttribute(launchPermission). None: not read. It is read only for an image that is not public:
    a public image is already the worst exposure, so its other shares are not read (None for it too); for any
    other image None means the read failed, and the region's `unread` says why."""

    @property
    def is_copy(self) -> bool:
        return self.source_image_id is not None


class OwnedSnapshot(NamedTuple):
    """An EBS snapshot the account owns, from DescribeSnapshots(OwnerIds=["self"])."""

    snapshot_id: str
    region: str
    public: bool
    """In DescribeSnapshots(OwnerIds=["self"], RestorableByUserIds=["all"]): any AWS account can create a volume."""
    volume_size: int | None
    """GiB."""
    tags: Mapping[str, str]
    create_volume_permissions: Principals | None = None
    """DescribeSnapshotAttribute(createVolumePermission). None: not read. Read only for a snapshot that is not
    public (a public snapshot's other shares are not read); for any other snapshot None means the read failed."""


class ParavirtualInstance(NamedTuple):
    """A running instance on paravirtual (PV) virtualization."""

    instance_id: str
    instance_type: str | None
    image_id: str | None
    region: str
    launch_time: str | None


class AccountSettings(NamedTuple):
    """The region's account-level guardrails, each None when it could not be read (`unread` says why)."""

    image_block_public_access: str | None
    """GetImageBlockPublicAccessState: "block-new-sharing" or "unblocked"."""
    snapshot_block_public_access: str | None
    """GetSnapshotBlockPublicAccessState: "block-all-sharing", "block-new-sharing" or "unblocked"."""
    allowed_images: str | None
    """GetAllowedImagesSettings: "enabled", "disabled" or "audit-mode"."""
    unread: Mapping[str, str] = EMPTY
    """Field name -> why it is None (an API the region lacks, access denied, throttled beyond retries...)."""


NOT_READ = AccountSettings(None, None, None)
"""The settings of a slice that did not read them (RegionPosture.settings_read False)."""


class SourceImage(NamedTuple):
    """The source of an owned copy, read where it lives (its own region) to tell which of its tags the copy lacks.

    EC2 shows an image's user tags to its owner only: for a source another account owns, `tags` is empty because
    they cannot be seen, not because there are none; compare `owner_id` with the account before reading it as
    "untagged"."""

    image_id: str
    region: str
    owner_id: str | None
    tags: Mapping[str, str]


class RegionPosture(NamedTuple):
    """Everything the sweep read in one account and region."""

    account: str
    region: str
    images: tuple[OwnedImage, ...]
    snapshots: tuple[OwnedSnapshot, ...]
    instances: tuple[ParavirtualInstance, ...]
    settings: AccountSettings
    sources: Mapping[str, SourceImage | None]
    """Source image id -> the source of one or more copies in `images`; None: the source could not be read
    (deregistered, not visible to the account, its region refused: `unread` says why)."""
    calls: Counter[str]
    """"service:Operation" -> the number of calls made (a paged listing counts one per page; botocore's retries
    of a call are not counted again, they are in `retries`)."""
    retries: Counter[str]
    """"service:Operation" -> the retries botocore made after throttling or a server error (RetryAttempts)."""
    unread: tuple[Unread, ...]
    """Sorted, whatever order the worker threads met them in."""
    settings_read: bool = True
    """False for a slice of the region (one listing page: collect.RegionPages) that did not read the account's
    settings: `settings` is then NOT_READ and the account-level rules are not evaluated over it (they neither raise
    nor stay undecided there; the settings slice decides them)."""


def sources_to_read(images: Iterable[OwnedImage], known: Mapping[str, object] = EMPTY) -> dict[str, tuple[str, ...]]:
    """Region -> the source image ids of the copies among `images` that are not in `known`, each id once, sorted.

    A copy without a source region is left out (its source cannot be read anywhere)."""
    wanted: dict[str, set[str]] = {}
    for image in images:
        if image.source_image_id and image.source_region and image.source_image_id not in known:
            wanted.setdefault(image.source_region, set()).add(image.source_image_id)
    return {region: tuple(sorted(ids)) for region, ids in sorted(wanted.items())}
