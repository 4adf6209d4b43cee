"""In-memory Lookups and Actions for engine tests: the same protocols the AWS adapters implement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ami_guard.engine import ActionFailed, ImageFacts, LookupUnavailable
from ami_guard.events import Launch, Principals
from ami_guard.instance_types import InstanceTypeInfo, bundled_table, infer


@dataclass
class FakeAccount:
    images: dict[tuple[str, str], ImageFacts] = field(default_factory=dict)
    permissions: dict[tuple[str, str], Principals] = field(default_factory=dict)
    templates: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    removed: list[tuple[str, Principals]] = field(default_factory=list)
    tagged: list[tuple[str, dict[str, str], tuple[str, ...]]] = field(default_factory=list)
    refuse_actions: str | None = None

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

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        ref = launch.launch_template
        key = (ref.template_id or ref.template_name or "") if ref else ""
        if key not in self.templates:
            raise LookupUnavailable(f"launch template {key} not found")
        return self.templates[key]

    # Actions
    def remove_launch_permissions(self, image_id: str, region: str, principals: Principals) -> Principals:
        if self.refuse_actions:
            raise ActionFailed(self.refuse_actions)
        self.removed.append((image_id, principals))
        current = self.permissions.get((image_id, region), Principals())
        now = current.without(principals)
        self.permissions[(image_id, region)] = now
        return now

    def tag_image(self, image_id: str, region: str, tags: Mapping[str, str], snapshot_ids: tuple[str, ...]) -> None:
        if self.refuse_actions:
            raise ActionFailed(self.refuse_actions)
        self.tagged.append((image_id, dict(tags), snapshot_ids))
        facts = self.images[(image_id, region)]
        self.images[(image_id, region)] = ImageFacts(
            image_id, region, facts.virtualization_type, {**facts.tags, **tags}, facts.snapshot_ids
        )
