"""Evaluation of new AMIs: RegisterImage and CreateImage, and the required tags of every new AMI (copies too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ami_guard.engine import (
    Actions,
    Evaluation,
    Evaluator,
    Lookups,
    LookupUnavailable,
)
from ami_guard.events.images import NewImage, new_image
from ami_guard.rules import images as rules

if TYPE_CHECKING:
    from ami_guard.config import Policy


def _register_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    image = new_image(call)
    if call.succeeded and not call.request:
        # An omitted virtualizationType means paravirtual; a record without its request says nothing either way.
        result.record_lacks(
            (rules.IMAGE_PARAVIRTUAL, rules.IMAGE_INSTANCE_STORE), "the record carries no requestParameters"
        )
    else:
        result.add(rules.image_paravirtual(call, image))
        result.add(rules.image_instance_store(call, image))
    required_tags(result, image, policy, lookups, event_tags=image.tags)


def _create_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    image = new_image(result.call)
    required_tags(result, image, policy, lookups, event_tags=image.tags)


def required_tags(
    result: Evaluation, image: NewImage, policy: Policy, lookups: Lookups, *, event_tags: Mapping[str, str] | None
) -> None:
    """Check the tags the new AMI has now; without a lookup, the tags the event gave it (None: unknown)."""
    call = result.call
    if not policy.required_tags or not call.succeeded:
        return
    if not image.image_id:
        result.record_lacks(
            (rules.IMAGE_MISSING_REQUIRED_TAGS,), "the record names no new AMI (responseElements.imageId)"
        )
        return
    try:
        tags: Mapping[str, str] = lookups.image(image.image_id, call.region).tags
    except LookupUnavailable as exc:
        if event_tags is None:
            result.cannot_tell(rules.IMAGE_MISSING_REQUIRED_TAGS, f"tags of {image.image_id} not looked up: {exc}")
            return
        tags = event_tags
    result.add(rules.missing_required_tags(call, image, tags, policy))


BY_EVENT: dict[str, Evaluator] = {
    "RegisterImage": _register_image,
    "CreateImage": _create_image,
}
