"""The AMI a RegisterImage, CreateImage or CopyImage made, as its record tells it. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ami_guard.events.calls import ApiCall
from ami_guard.events.fields import items as _items
from ami_guard.events.fields import mapping as _map
from ami_guard.events.fields import string as _str
from ami_guard.events.fields import truthy as _truthy


class NewImage(NamedTuple):
    """The AMI a RegisterImage, CreateImage or CopyImage made."""

    image_id: str | None
    name: str | None
    tags: Mapping[str, str]
    virtualization_type: str | None = None  # RegisterImage only; None when omitted (the API then uses paravirtual)
    image_location: str | None = None
    root_device_name: str | None = None
    ebs_device_names: tuple[str, ...] = ()
    source_image_id: str | None = None  # CopyImage only
    source_region: str | None = None
    copy_image_tags: bool = False

    @property
    def instance_store_backed(self) -> bool:
        """An S3-manifest image without an EBS root device."""
        if not self.image_location:
            return False
        if self.root_device_name is None:
            return not self.ebs_device_names
        return self.root_device_name not in self.ebs_device_names


def new_image(call: ApiCall) -> NewImage:
    request = call.request
    ebs_devices = tuple(
        name
        for item in _items(request.get("blockDeviceMapping") or request.get("blockDeviceMappingSet"))
        if (entry := _map(item)) and _map(entry.get("ebs")) and (name := _str(entry.get("deviceName")))
    )
    return NewImage(
        image_id=_str(call.response.get("imageId")),
        name=_str(request.get("name")),
        tags=_tag_specifications(request.get("tagSpecificationSet") or request.get("tagSpecifications"), "image"),
        virtualization_type=_str(request.get("virtualizationType")),
        image_location=_str(request.get("imageLocation")),
        root_device_name=_str(request.get("rootDeviceName")),
        ebs_device_names=ebs_devices,
        source_image_id=_str(request.get("sourceImageId")),
        source_region=_str(request.get("sourceRegion")) or (call.region if "sourceImageId" in request else None),
        copy_image_tags=_truthy(request.get("copyImageTags")),
    )


def _tag_specifications(value: Any, resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in _items(value):
        spec = _map(spec)
        kind = (_str(spec.get("resourceType")) or resource_type).lower()
        if kind != resource_type:
            continue
        for tag in _items(spec.get("tags") or spec.get("tagSet") or spec.get("tag")):
            tag = _map(tag)
            key = _str(tag.get("key") if "key" in tag else tag.get("Key"))
            if key is not None:
                raw_value = tag.get("value") if "value" in tag else tag.get("Value")
                tags[key] = raw_value if isinstance(raw_value, str) else ""
    return tags
