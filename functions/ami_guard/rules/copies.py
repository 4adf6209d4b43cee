"""Rules on AMI copies: a copy keeps its source's tags (restored by the guard when copyTags is on) and says which
launch permissions it lacks; the tag restore rests on what EC2 says about the copy, never on the record alone. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import image as _image
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import Rule, Undecided, ec2, severities

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.images import NewImage
    from ami_guard.events.principals import Principals
    from ami_guard.sweep.facts import RegionPosture


COPY_TAGS_MISSING = "copy-tags-missing"
COPY_PERMISSIONS_NOT_COPIED = "copy-permissions-not-copied"
COPY_UNTRUSTED_IMAGE = "copy-untrusted-image"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


PROVENANCE_SOURCE_IMAGE = "ami-guard:source-image-id"
PROVENANCE_SOURCE_REGION = "ami-guard:source-region"


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags a user can set: never the reserved aws: ones."""
    return {k: v for k, v in tags.items() if not k.lower().startswith("aws:")}


MAX_USER_TAGS = 50
"""EC2's limit of tags per resource; tags with the reserved aws: prefix do not count (and cannot be set)."""


def restored_tags(image: NewImage, source_tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a copy should carry, in the order they are given room: the source's user tags by key, then the
    guard's provenance tags (a user's tag is worth more than ours)."""
    wanted = {key: source_tags[key] for key in sorted(user_tags(source_tags))}
    if image.source_image_id:
        wanted[PROVENANCE_SOURCE_IMAGE] = image.source_image_id
    if image.source_region:
        wanted[PROVENANCE_SOURCE_REGION] = image.source_region
    return wanted


class TagPlan(NamedTuple):
    """What to do to one resource's tags: add `apply`; `kept` were there already (never overwritten);
    `did_not_fit` are lacking but beyond EC2's limit."""

    apply: Mapping[str, str] = MappingProxyType({})
    kept: tuple[str, ...] = ()
    did_not_fit: tuple[str, ...] = ()


def plan_tags(wanted: Mapping[str, str], present: Mapping[str, str]) -> TagPlan:
    """The wanted tags one resource lacks, as many as its room under MAX_USER_TAGS allows, in `wanted`'s order."""
    lacking = [key for key in wanted if key not in present]
    room = max(0, MAX_USER_TAGS - len(user_tags(present)))
    return TagPlan(
        apply={key: wanted[key] for key in lacking[:room]},
        kept=tuple(key for key in wanted if key in present),
        did_not_fit=tuple(lacking[room:]),
    )


def not_the_copy(
    call: ApiCall, image: NewImage, owner_id: str | None, source_image_id: str | None, source_region: str | None
) -> str | None:
    """Why the image EC2 describes is not the account's copy of the source the record names; None if it is.

    The record is a claim (anyone who may invoke the guard can hand it one); EC2's description of the image
    is the fact that a tag restore must rest on."""
    claimed = f"{image.source_image_id} ({image.source_region})"
    if source_image_id is None:
        return f"the image is not a copy of {claimed} according to EC2: it names no source image for {image.image_id}"
    if (source_image_id, source_region) != (image.source_image_id, image.source_region):
        return (
            f"the image is not a copy of {claimed} according to EC2: {image.image_id} is a copy of "
            f"{source_image_id} ({source_region or 'region not given'})"
        )
    if call.account is None or owner_id != call.account:
        return f"{image.image_id} is owned by {owner_id or 'an unknown account'}, not by account {call.account}"
    return None


def copy_tags_missing(call: ApiCall, image: NewImage, source_tags: Mapping[str, str] | None) -> Finding | None:
    """CopyImage without copyImageTags drops the source's tags. `source_tags` None: not looked up."""
    if not call.succeeded or image.copy_image_tags:
        return None
    lost = user_tags(source_tags) if source_tags is not None else None
    if lost is not None and not lost:
        return None
    return _finding(
        COPY_TAGS_MISSING,
        title=f"AMI copy {image.image_id} in {call.region} lost the tags of {image.source_image_id}",
        description=(
            f"{_who(call)} copied AMI {image.source_image_id} ({image.source_region}) to {image.image_id} "
            f"({call.region}) without copyImageTags: CopyImage does not copy tags"
            + (
                f", so {len(lost)} tag(s) were lost."
                if lost
                else "; the source could not be read, so which were lost is unknown."
            )
        ),
        resources=_image(call, image.image_id) + _image(call, image.source_image_id, image.source_region),
        evidence={
            "sourceImageId": image.source_image_id,
            "sourceRegion": image.source_region,
            "copyImageTags": False,
            "lostTags": lost,
        },
        recommendation="Pass --copy-image-tags to CopyImage, or keep amiGuard.copyTags on to restore them.",
    )


def copy_permissions_not_copied(
    call: ApiCall, image: NewImage, source_permissions: Principals, copy_permissions: Principals
) -> Finding | None:
    """CopyImage never copies launch permissions; say which the source had and the copy lacks."""
    if not call.succeeded:
        return None
    missing = source_permissions.without(copy_permissions)
    if not missing:
        return None
    return _finding(
        COPY_PERMISSIONS_NOT_COPIED,
        title=f"AMI copy {image.image_id} in {call.region} lacks the launch permissions of {image.source_image_id}",
        description=(
            f"CopyImage does not copy launch permissions: the source AMI {image.source_image_id} is shared with "
            f"{missing.as_dict()}, the copy {image.image_id} is not. Consumers of the source cannot launch the copy."
        ),
        resources=_image(call, image.image_id) + _image(call, image.source_image_id, image.source_region),
        evidence={"missingLaunchPermissions": missing.as_dict(), "sourceImageId": image.source_image_id},
        recommendation="Grant the same launch permissions on the copy if its consumers need it (never 'all').",
    )


def copy_untrusted_image(
    call: ApiCall, image: NewImage, owner_id: str | None, alias: str | None, policy: Policy
) -> Finding | None:
    """AMIs are copied in only from the account, a trusted account or a trusted image owner (off while
    trustedImageOwners is empty). The source's owner is EC2's (DescribeImages), never the record's."""
    owner = common.untrusted_owner(call, owner_id, alias, policy) if image.source_image_id else None
    if owner is None:
        return None
    return _finding(
        COPY_UNTRUSTED_IMAGE,
        title=f"AMI {image.source_image_id} of untrusted owner {owner} copied to {image.image_id} in {call.region}",
        description=(
            f"{_who(call)} copied AMI {image.source_image_id} ({image.source_region}), owned by {owner}, into this "
            f"account as {image.image_id}: its owner is neither this account, a trusted account nor an owner in "
            "trustedImageOwners."
        ),
        resources=_image(call, image.image_id) + _image(call, image.source_image_id, image.source_region),
        evidence={
            "sourceImageId": image.source_image_id,
            "sourceRegion": image.source_region,
            **common.owner_evidence(owner_id, alias, policy),
        },
        recommendation=common.TRUST_THE_PUBLISHER + "deregister the copy and delete its snapshots.",
    )


def copies_lacking_tags_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    """Owned copies that lack user tags their source has (EC2 shows a source's tags to its owner only)."""
    for image in posture.images:
        if not image.is_copy:
            continue
        source = posture.sources.get(image.source_image_id or "")
        if source is None:
            yield Undecided(
                COPY_TAGS_MISSING,
                f"source {image.source_image_id} of copy {image.image_id} not read",
                f"image:{image.image_id}",
            )
            continue
        if source.owner_id != posture.account:
            yield Undecided(
                COPY_TAGS_MISSING,
                f"source {image.source_image_id} of copy {image.image_id} is owned by {source.owner_id}: EC2 shows "
                "its tags to its owner only",
                f"image:{image.image_id}",
            )
            continue
        lacking = {key: value for key, value in user_tags(source.tags).items() if key not in image.tags}
        if not lacking:
            continue
        yield _finding(
            COPY_TAGS_MISSING,
            title=f"AMI copy {image.image_id} in {posture.region} lacks the tags of {image.source_image_id}",
            description=(
                f"The posture sweep found copy {image.image_id} of AMI {image.source_image_id} "
                f"({image.source_region}) without {len(lacking)} of its source's tag(s): CopyImage does not copy "
                "tags unless asked to."
            ),
            resources=(
                Resource("image", image.image_id, posture.region, posture.account),
                Resource("image", source.image_id, source.region, posture.account),
            ),
            evidence={
                "sourceImageId": image.source_image_id,
                "sourceRegion": image.source_region,
                "lostTags": lacking,
            },
            recommendation="Copy the tags from the source, or keep amiGuard.copyTags on to have them restored.",
        )


RULES = (
    Rule(
        COPY_TAGS_MISSING,
        Severity.MEDIUM,
        ec2("CopyImage"),
        "a successful CopyImage without `copyImageTags` whose source had user tags",
        "with `copyTags`: puts the source's user tags (never `aws:` ones) and `ami-guard:source-image-id` / "
        "`ami-guard:source-region` on the copy and its snapshots, only when EC2 says the image is the account's "
        "copy of that source; never overwriting a tag the copy or a snapshot has (each checked on its own), never "
        "past EC2's 50 tags (the alert names what did not fit)",
        sweep=copies_lacking_tags_now,
    ),
    Rule(
        COPY_PERMISSIONS_NOT_COPIED,
        Severity.LOW,
        ec2("CopyImage"),
        "a successful CopyImage whose source had launch permissions the copy lacks",
    ),
    Rule(
        COPY_UNTRUSTED_IMAGE,
        Severity.MEDIUM,
        ec2("CopyImage"),
        "a successful CopyImage whose source AMI's owner (from DescribeImages, cached per image) is not the account, "
        "a trusted account or in `trustedImageOwners`; off while that list is empty",
    ),
)
SEVERITY = severities(RULES)
