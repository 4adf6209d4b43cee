"""What a RunInstances launched: image, instance type and template, per group of instances. Pure."""

from __future__ import annotations

from typing import NamedTuple

from ami_guard.events.calls import ApiCall
from ami_guard.events.fields import items as _items
from ami_guard.events.fields import mapping as _map
from ami_guard.events.fields import scalar as _scalar
from ami_guard.events.fields import string as _str


class LaunchTemplateRef(NamedTuple):
    template_id: str | None
    template_name: str | None
    version: str | None


class Launch(NamedTuple):
    """Instances of one image and one instance type started (or attempted) by a RunInstances."""

    image_id: str | None
    instance_type: str | None
    virtualization_type: str | None = None
    instance_ids: tuple[str, ...] = ()
    launch_template: LaunchTemplateRef | None = None


def launches(call: ApiCall) -> list[Launch]:
    """What a RunInstances launched: from the response when there is one, else from the request."""
    request = call.request
    template_block = _map(request.get("launchTemplate"))
    template = (
        LaunchTemplateRef(
            template_id=_str(template_block.get("launchTemplateId")),
            template_name=_str(template_block.get("launchTemplateName")),
            version=_str(template_block.get("version")),
        )
        if template_block
        else None
    )
    requested_type = _scalar(request.get("instanceType"))
    requested_images = [
        image for item in _items(request.get("instancesSet")) if (image := _scalar(_map(item).get("imageId")))
    ]
    if not requested_images and (image := _scalar(request.get("imageId"))):
        requested_images.append(image)

    grouped: dict[tuple[str | None, str | None, str | None], list[str]] = {}
    for item in _items(call.response.get("instancesSet")):
        item = _map(item)
        key = (
            _scalar(item.get("imageId")) or (requested_images[0] if len(requested_images) == 1 else None),
            _scalar(item.get("instanceType")) or requested_type,
            _scalar(item.get("virtualizationType")),
        )
        ids = grouped.setdefault(key, [])
        if instance_id := _scalar(item.get("instanceId")):
            ids.append(instance_id)
    if grouped:
        return [Launch(image, itype, virt, tuple(ids), template) for (image, itype, virt), ids in grouped.items()]
    images: list[str | None] = list(dict.fromkeys(requested_images)) or [None]
    if images == [None] and requested_type is None and template is None:
        return []
    return [Launch(image, requested_type, None, (), template) for image in images]
