"""Lookups that make no AWS call: the event's content and the bundled instance-type table only."""

from __future__ import annotations

from ami_guard.engine import ImageFacts, NotLookedUp, SnapshotFacts
from ami_guard.events.principals import Principals
from ami_guard.events.run_instances import Launch
from ami_guard.instance_types import InstanceTypeInfo, bundled_table, infer

OFFLINE = "--offline makes no AWS call"


class OfflineLookups:
    def image(self, image_id: str, region: str) -> ImageFacts:
        raise NotLookedUp(OFFLINE)

    def launch_permissions(self, image_id: str, region: str) -> Principals:
        raise NotLookedUp(OFFLINE)

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None:
        return bundled_table().get(instance_type) or infer(instance_type)

    def snapshots(self, snapshot_ids: tuple[str, ...], region: str) -> tuple[SnapshotFacts, ...]:
        raise NotLookedUp(OFFLINE)

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        raise NotLookedUp(OFFLINE)

    def image_owner(self, image_id: str, region: str) -> tuple[str | None, str | None]:
        raise NotLookedUp(OFFLINE)
