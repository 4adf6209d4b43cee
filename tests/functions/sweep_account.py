"""An emulated account (moto, in process) for the posture sweep's collection tests, and what moto lacks for it.

moto 5.2.5 falls short of EC2 where the sweep reads; `emulate_ec2_gaps` fills each gap in the emulator only (never
in the product), and the seeding helpers set on moto's backend the attributes its API drops:
- DescribeImages and DescribeSnapshots return everything in one page and ignore MaxResults / NextToken
  (moto/ec2/responses/amis.py, elastic_block_store.py): answered here in pages, as EC2 does.
- DescribeSnapshots ignores OwnerIds and RestorableByUserIds (../shared/NOTES.md): applied here ("self" is the
  account; "all" is a create-volume permission for the group all).
- DescribeInstances refuses the virtualization-type filter (NotImplementedError, moto/ec2/utils.py
  filter_dict_attribute_mapping): mapped here to the instance's virtualization_type.
- GetImageBlockPublicAccessState, GetSnapshotBlockPublicAccessState and GetAllowedImagesSettings are not
  implemented (HTTP 500 / NotImplementedError): answered here from `EmulatedEc2.settings`.
- CopyImage keeps no SourceImageId / SourceImageRegion: demo.emulator_server.copies_name_their_source.
- RegisterImage keeps only name and description, and every moto image has one EBS snapshot: virtualization, root
  device type and creation date are set on the backend; an "instance-store" image keeps moto's snapshot.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.responses import ActionResult
from moto.ec2 import ec2_backends, utils
from moto.ec2.responses import EC2Response
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from demo.ec2_gaps import snapshots_as_ec2_filters_them
from demo.emulator_server import copies_name_their_source
from tests import records as r

CREATED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
CREATED_TEXT = "2025-03-04T05:06:07.000Z"
LAUNCHED = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
LAUNCHED_TEXT = "2025-06-07T08:09:10+00:00"


@dataclass
class EmulatedEc2:
    account: str
    settings: dict[str, str] = field(
        default_factory=lambda: {
            "GetImageBlockPublicAccessState": "block-new-sharing",
            "GetSnapshotBlockPublicAccessState": "unblocked",
            "GetAllowedImagesSettings": "audit-mode",
        }
    )
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def ec2(self, region: str = r.REGION) -> Any:
        """The test's own client (seeding), made once."""
        if region not in self._clients:
            self._clients[region] = boto3.client("ec2", region_name=region)
        return self._clients[region]

    def backend(self, region: str = r.REGION) -> Any:
        return ec2_backends[self.account][region]

    def image(
        self,
        name: str,
        region: str = r.REGION,
        *,
        tags: dict[str, str] | None = None,
        virtualization_type: str = "hvm",
        root_device_type: str = "ebs",
        launch_permissions: list[dict[str, str]] | None = None,
    ) -> str:
        ec2 = self.ec2(region)
        image_id: str = ec2.register_image(Name=name, RootDeviceName="/dev/xvda")["ImageId"]
        self._describe_as_ec2(image_id, region, virtualization_type, root_device_type)
        if tags:
            ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        if launch_permissions:
            ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": launch_permissions})
        return image_id

    def copy(self, source_image_id: str, source_region: str, region: str = r.REGION, *, name: str) -> str:
        image_id: str = self.ec2(region).copy_image(
            SourceImageId=source_image_id, SourceRegion=source_region, Name=name
        )["ImageId"]
        ami = self.backend(region).amis[image_id]
        self._describe_as_ec2(image_id, region, ami.virtualization_type, "ebs")
        return image_id

    def _describe_as_ec2(self, image_id: str, region: str, virtualization_type: str, root_device_type: str) -> None:
        ami = self.backend(region).amis[image_id]
        ami.virtualization_type = virtualization_type
        ami.root_device_type = root_device_type
        ami.creation_date = CREATED

    def snapshot_of(self, image_id: str, region: str = r.REGION) -> str:
        """The snapshot moto made behind an image."""
        return str(self.backend(region).amis[image_id].ebs_snapshot.id)

    def snapshot(
        self,
        region: str = r.REGION,
        *,
        size_gib: int = 8,
        tags: dict[str, str] | None = None,
        groups: list[str] | None = None,
        user_ids: list[str] | None = None,
    ) -> str:
        ec2 = self.ec2(region)
        volume = ec2.create_volume(Size=size_gib, AvailabilityZone=f"{region}a")["VolumeId"]
        spec = [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
        snapshot_id: str = ec2.create_snapshot(VolumeId=volume, TagSpecifications=spec if tags else [])["SnapshotId"]
        if groups or user_ids:
            # moto stores create-volume permissions only from this form (../shared/NOTES.md)
            ec2.modify_snapshot_attribute(
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
                OperationType="add",
                **({"GroupNames": groups} if groups else {}),
                **({"UserIds": user_ids} if user_ids else {}),
            )
        return snapshot_id

    def foreign_snapshot(self, owner_id: str, region: str = r.REGION) -> str:
        """A snapshot another account owns, visible in the region (as Amazon's behind public AMIs are)."""
        backend = self.backend(region)
        volume = backend.create_volume(size=8, zone_name=f"{region}a")
        return str(backend.create_snapshot(volume.id, "not ours", owner_id=owner_id).id)

    def instance(self, image_id: str, region: str = r.REGION, *, instance_type: str = "m1.small") -> str:
        """A running instance; its virtualization is its image's (moto copies it at launch)."""
        made = self.ec2(region).run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType=instance_type)
        instance_id: str = made["Instances"][0]["InstanceId"]
        self.backend(region).get_instance(instance_id).launch_time = LAUNCHED.isoformat()
        return instance_id


def _paged(response: Any, result: ActionResult, key: str) -> ActionResult:
    """EC2's paging over moto's whole list: MaxResults items from the NextToken on (the token: an offset)."""
    items = list(result.result[key])  # type: ignore[index]
    size = int(response._get_param("MaxResults") or 0) or len(items) or 1
    start = int(response._get_param("NextToken") or 0)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["NextToken"] = str(start + size)
    return ActionResult(page)


def emulate_ec2_gaps(monkeypatch: pytest.MonkeyPatch, emulated: EmulatedEc2) -> None:
    """Fill the gaps of moto that the module docstring lists, for the length of one test."""
    describe_images = AmisResponse.describe_images
    describe_snapshots = ElasticBlockStore.describe_snapshots

    def images(self: Any) -> ActionResult:
        return _paged(self, describe_images(self), "Images")

    def snapshots(self: Any) -> ActionResult:
        found = snapshots_as_ec2_filters_them(
            describe_snapshots(self).result["Snapshots"],  # type: ignore[index]
            emulated.account,
            self._get_param("OwnerIds", []),
            self._get_param("RestorableByUserIds", []),
        )
        return _paged(self, ActionResult({"Snapshots": found}), "Snapshots")

    monkeypatch.setattr(AmisResponse, "describe_images", images)
    monkeypatch.setattr(ElasticBlockStore, "describe_snapshots", snapshots)
    monkeypatch.setitem(utils.filter_dict_attribute_mapping, "virtualization-type", "virtualization_type")

    def setting(operation: str, key: str) -> Any:
        def answer(self: Any) -> ActionResult:
            return ActionResult({key: emulated.settings[operation], "ManagedBy": "account"})

        return answer

    for operation, method, key in (
        ("GetImageBlockPublicAccessState", "get_image_block_public_access_state", "ImageBlockPublicAccessState"),
        ("GetSnapshotBlockPublicAccessState", "get_snapshot_block_public_access_state", "State"),
        ("GetAllowedImagesSettings", "get_allowed_images_settings", "State"),
    ):
        monkeypatch.setattr(EC2Response, method, setting(operation, key), raising=False)


@contextmanager
def emulated_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedEc2]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": r.REGION,
        "MOTO_ACCOUNT_ID": r.ACCOUNT,
        # no Amazon-owned images (and their 1,300 snapshots): the sweep reads only what the account owns, and
        # foreign_snapshot() stands for the others
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(key, value)
    emulated = EmulatedEc2(account=r.ACCOUNT)
    emulate_ec2_gaps(monkeypatch, emulated)
    undo = copies_name_their_source()
    try:
        with mock_aws():
            yield emulated
    finally:
        undo()


class CallLog:
    """Every API call made through the default boto3 session from now on, counted as "service:Operation",
    seen by botocore (its `before-parameter-build` event, once per call a client makes, retries aside) rather than
    by the code under test."""

    def __init__(self) -> None:
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        self.calls: Counter[str] = Counter()
        self.params: list[tuple[str, str, dict[str, Any]]] = []
        """("service:Operation", the client's region, the parameters), in the order botocore saw them."""
        session.events.register("before-parameter-build", self._seen)

    def _seen(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = f"{model.service_model.service_name}:{model.name}"
        self.calls[key] += 1
        self.params.append((key, str(context.get("client_region")), copy.deepcopy(dict(params))))
