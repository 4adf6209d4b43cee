"""In-memory Lookups and Actions for engine tests: the same protocols the AWS adapters implement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ami_guard.engine import ActionFailed, ImageFacts, LookupUnavailable, SnapshotFacts
from ami_guard.events import Launch, Principals
from ami_guard.instance_types import InstanceTypeInfo, bundled_table, infer

EC2_TAG_LIMIT = 50  # written out here, not read from the code under test


@dataclass
class FakeAccount:
    images: dict[tuple[str, str], ImageFacts] = field(default_factory=dict)
    snapshot_facts: dict[tuple[str, str], SnapshotFacts] = field(default_factory=dict)
    permissions: dict[tuple[str, str], Principals] = field(default_factory=dict)
    templates: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    removed: list[tuple[str, Principals]] = field(default_factory=list)
    tagged: list[tuple[tuple[str, ...], dict[str, str]]] = field(default_factory=list)
    refuse_actions: str | None = None
    snapshot_reads: int = 0
    owner_reads: int = 0

    # Lookups
    def image(self, image_id: str, region: str) -> ImageFacts:
        try:
            return self.images[(image_id, region)]
        except KeyError:
            raise LookupUnavailable(f"AMI {image_id} not found in {region}") from None

    def launch_permissions(self, image_id: str, region: str) -> Principals:
        if (image_id, region) not in self.images:
            raise LookupUnavailable(f"AMI {image_id} not found in {region}")
        return self.permissions.get((image_id, region), Principals())

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None:
        return bundled_table().get(instance_type) or infer(instance_type)

    def snapshots(self, snapshot_ids: tuple[str, ...], region: str) -> tuple[SnapshotFacts, ...]:
        self.snapshot_reads += 1
        return tuple(self.snapshot_facts[(s, region)] for s in snapshot_ids if (s, region) in self.snapshot_facts)

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        ref = launch.launch_template
        key = (ref.template_id or ref.template_name or "") if ref else ""
        if key not in self.templates:
            raise LookupUnavailable(f"launch template {key} not found")
        return self.templates[key]

    def image_owner(self, image_id: str, region: str) -> tuple[str | None, str | None]:
        self.owner_reads += 1
        image = self.image(image_id, region)
        return image.owner_id, image.owner_alias

    # Actions
    def remove_launch_permissions(self, image_id: str, region: str, principals: Principals) -> Principals:
        if self.refuse_actions:
            raise ActionFailed(self.refuse_actions)
        self.removed.append((image_id, principals))
        current = self.permissions.get((image_id, region), Principals())
        now = current.without(principals)
        self.permissions[(image_id, region)] = now
        return now

    def add_tags(self, resource_ids: tuple[str, ...], region: str, tags: Mapping[str, str]) -> None:
        """As EC2's CreateTags: overwrites a key already there, and refuses to pass 50 user tags."""
        if self.refuse_actions:
            raise ActionFailed(self.refuse_actions)
        for resource_id in resource_ids:
            merged = {**self.tags_of(resource_id, region), **tags}
            if len([k for k in merged if not k.startswith("aws:")]) > EC2_TAG_LIMIT:
                raise ActionFailed("TagLimitExceeded: The maximum number of Tags for a resource has been reached.")
        self.tagged.append((tuple(resource_ids), dict(tags)))
        for resource_id in resource_ids:
            merged = {**self.tags_of(resource_id, region), **tags}
            if (resource_id, region) in self.images:
                self.images[(resource_id, region)] = self.images[(resource_id, region)]._replace(tags=merged)
            else:
                self.snapshot_facts[(resource_id, region)] = self.snapshot_facts[(resource_id, region)]._replace(
                    tags=merged
                )

    def tags_of(self, resource_id: str, region: str) -> dict[str, str]:
        if (resource_id, region) in self.images:
            return dict(self.images[(resource_id, region)].tags)
        return dict(self.snapshot_facts[(resource_id, region)].tags)
