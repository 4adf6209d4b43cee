"""Rules on new AMIs: HVM and EBS-backed, tagged as required (copies: rules.copies). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import PARAVIRTUAL
from ami_guard.rules.common import image as _image
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import Rule, ec2, severities

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.images import NewImage
    from ami_guard.sweep.facts import OwnedImage, RegionPosture


IMAGE_PARAVIRTUAL = "image-paravirtual"
IMAGE_INSTANCE_STORE = "image-instance-store"
IMAGE_MISSING_REQUIRED_TAGS = "image-missing-required-tags"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


def image_paravirtual(call: ApiCall, image: NewImage) -> Finding | None:
    """New AMIs should be HVM; RegisterImage defaults to paravirtual when virtualizationType is omitted."""
    if not call.succeeded:
        return None
    omitted = image.virtualization_type is None
    if not omitted and (image.virtualization_type or "").lower() != PARAVIRTUAL:
        return None
    return _finding(
        IMAGE_PARAVIRTUAL,
        title=f"Paravirtual AMI {image.image_id} registered in {call.region}",
        description=(
            f"{_who(call)} registered AMI {image.image_id} ({image.name or 'no name'}) as paravirtual"
            + (" because virtualizationType was omitted and the API's default is paravirtual" if omitted else "")
            + ". It will run only on previous-generation instance types, without enhanced networking or GPUs."
        ),
        resources=_image(call, image.image_id),
        evidence={"virtualizationType": image.virtualization_type or PARAVIRTUAL, "omitted": omitted},
        recommendation="Register the image again with --virtualization-type hvm and deregister this one.",
    )


def image_instance_store(call: ApiCall, image: NewImage) -> Finding | None:
    """Instance-store-backed AMIs store their full size in S3 each time; EBS-backed ones store only changes."""
    if not call.succeeded or not image.instance_store_backed:
        return None
    return _finding(
        IMAGE_INSTANCE_STORE,
        title=f"Instance-store-backed AMI {image.image_id} registered in {call.region}",
        description=(
            f"{_who(call)} registered AMI {image.image_id} from S3 manifest {image.image_location}: every "
            "instance-store AMI stores its full size in S3, where EBS-backed AMIs store only changed blocks; "
            "its instances cannot be stopped and lose their root volume on termination."
        ),
        resources=_image(call, image.image_id),
        evidence={"imageLocation": image.image_location, "rootDeviceName": image.root_device_name},
        recommendation="Prefer EBS-backed AMIs (register from an EBS snapshot, or create from an EBS instance).",
    )


def missing_required_tags(call: ApiCall, image: NewImage, tags: Mapping[str, str], policy: Policy) -> Finding | None:
    """Every new AMI carries the tags in requiredTags."""
    if not call.succeeded or not policy.required_tags:
        return None
    missing = [key for key in policy.required_tags if key not in tags]
    if not missing:
        return None
    return _finding(
        IMAGE_MISSING_REQUIRED_TAGS,
        title=f"AMI {image.image_id} in {call.region} lacks required tag(s) {', '.join(missing)}",
        description=f"{_who(call)} made AMI {image.image_id} by {call.event_name} without tag(s) {', '.join(missing)}.",
        resources=_image(call, image.image_id),
        evidence={"missingTags": missing, "presentTags": sorted(tags)},
        recommendation=f"Tag it: aws ec2 create-tags --resources {image.image_id} --tags Key={missing[0]},Value=...",
    )


# --- what the posture sweep finds standing ---------------------------------------------------------------------


def _owned(posture: RegionPosture, image: OwnedImage) -> tuple[Resource, ...]:
    return (Resource("image", image.image_id, posture.region, posture.account),)


def images_paravirtual_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding]:
    for image in posture.images:
        if (image.virtualization_type or "").lower() == PARAVIRTUAL:
            yield _finding(
                IMAGE_PARAVIRTUAL,
                title=f"AMI {image.image_id} is paravirtual in {posture.region}",
                description=(
                    f"The posture sweep found AMI {image.image_id} ({image.name or 'no name'}) registered as "
                    "paravirtual: it runs only on previous-generation instance types, without enhanced networking."
                ),
                resources=_owned(posture, image),
                evidence={"virtualizationType": image.virtualization_type, "name": image.name},
                recommendation="Rebuild it as HVM and deregister this one when nothing launches it any more.",
            )


def images_instance_store_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding]:
    for image in posture.images:
        if (image.root_device_type or "").lower() == "instance-store":
            yield _finding(
                IMAGE_INSTANCE_STORE,
                title=f"AMI {image.image_id} is instance-store-backed in {posture.region}",
                description=(
                    f"The posture sweep found AMI {image.image_id} ({image.name or 'no name'}) backed by instance "
                    "store: it stores its full size in S3, and its instances cannot be stopped."
                ),
                resources=_owned(posture, image),
                evidence={"rootDeviceType": image.root_device_type, "name": image.name},
                recommendation="Prefer EBS-backed AMIs: register from an EBS snapshot, or create from an EBS instance.",
            )


RULES = (
    Rule(
        IMAGE_PARAVIRTUAL,
        Severity.MEDIUM,
        ec2("RegisterImage"),
        "a successful RegisterImage registers a paravirtual AMI, including when `virtualizationType` was omitted (the "
        "API default)",
        sweep=images_paravirtual_now,
    ),
    Rule(
        IMAGE_INSTANCE_STORE,
        Severity.LOW,
        ec2("RegisterImage"),
        "a successful RegisterImage registers an instance-store-backed AMI (S3 manifest, no EBS root)",
        sweep=images_instance_store_now,
    ),
    Rule(
        IMAGE_MISSING_REQUIRED_TAGS,
        Severity.MEDIUM,
        ec2("CreateImage", "RegisterImage", "CopyImage"),
        "a successful CreateImage, RegisterImage or CopyImage leaves the AMI without a tag in `requiredTags` (checked "
        "after the guard's own tag copy)",
    ),
)
SEVERITY = severities(RULES)
