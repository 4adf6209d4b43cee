"""What moto's EC2 lacks for the posture sweep, filled in the emulator server (never in the product).

moto 5.2.5 (../shared/NOTES.md, tests/functions/sweep_account.py for the in-process twin):
- DescribeSnapshots ignores OwnerIds and RestorableByUserIds: it would hand the sweep every snapshot of the region
  (the ~1,300 behind moto's Amazon AMIs among them) as owned and public. Applied here: "self" is the calling
  account, "all" a create-volume permission for the group all.
- DescribeInstances refuses the virtualization-type filter (NotImplementedError): mapped to the instance's
  virtualization_type.
- GetImageBlockPublicAccessState, GetSnapshotBlockPublicAccessState and GetAllowedImagesSettings are not
  implemented (HTTP 500): answered with every guardrail on (SETTINGS), so that the sweep's findings in the demo are
  about its resources; the scenario's events about these settings are records only and change nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

SETTINGS = {
    "GetImageBlockPublicAccessState": ("ImageBlockPublicAccessState", "block-new-sharing"),
    "GetSnapshotBlockPublicAccessState": ("State", "block-all-sharing"),
    "GetAllowedImagesSettings": ("State", "enabled"),
}


def snapshots_as_ec2_filters_them(
    snapshots: Iterable[Any], account: str, owner_ids: Sequence[str], restorable_by: Sequence[str]
) -> list[Any]:
    """moto's snapshots filtered as EC2 filters DescribeSnapshots (moto ignores both filters): `OwnerIds` ("self" is
    `account`) and `RestorableByUserIds` ("all": a create-volume permission for the group all).

    With `SnapshotIds` as well (the sweep asks which of one page's snapshots are public by their ids), moto has
    already kept only those ids (and refused the call for an id it does not know, as EC2 does): these filters then
    narrow them as EC2 would, so that only the page's public snapshots come back."""
    found = list(snapshots)
    owners = [account if owner == "self" else owner for owner in owner_ids]
    if owners:
        found = [s for s in found if s.owner_id in owners]
    if restorable_by:
        found = [
            s
            for s in found
            if ("all" in restorable_by and "all" in s.create_volume_permission_groups)
            or set(restorable_by) & set(s.create_volume_permission_userids)
        ]
    return found


def install() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2 import utils
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    describe_snapshots = ElasticBlockStore.describe_snapshots

    def snapshots(self: Any) -> Any:
        found = snapshots_as_ec2_filters_them(
            describe_snapshots(self).result["Snapshots"],
            self.current_account,
            self._get_param("OwnerIds", []),
            self._get_param("RestorableByUserIds", []),
        )
        return ActionResult({"Snapshots": found})

    ElasticBlockStore.describe_snapshots = snapshots  # type: ignore[method-assign]
    utils.filter_dict_attribute_mapping["virtualization-type"] = "virtualization_type"

    def setting(key: str, value: str) -> Any:
        def answer(self: Any) -> Any:
            return ActionResult({key: value, "ManagedBy": "account"})

        return answer

    for operation, (key, value) in SETTINGS.items():
        method = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        setattr(EC2Response, method, setting(key, value))
