"""The evaluation core shared by the Lambdas and the CLI: ApiCall + Policy -> findings.

Facts that the record does not carry come from a Lookups object and side effects go through an Actions
object, both injected: the Lambdas pass AWS adapters, the CLI passes offline or read-only ones. Nothing
here imports boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ami_guard import rules
from ami_guard.config import Policy
from ami_guard.events import (
    ApiCall,
    Launch,
    NewImage,
    PermissionChange,
    Principals,
    create_volume_permission_change,
    launch_permission_change,
    launches,
    new_image,
)
from ami_guard.findings import Finding

if TYPE_CHECKING:
    from ami_guard.instance_types import InstanceTypeInfo


class LookupUnavailable(Exception):
    """A fact could not be looked up; the reason says why (offline, not found, access denied...)."""


class ActionFailed(Exception):
    """A remediation or tagging call was refused for good; the reason goes into the alert."""


@dataclass(frozen=True)
class ImageFacts:
    image_id: str
    region: str
    virtualization_type: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    snapshot_ids: tuple[str, ...] = ()


class Lookups(Protocol):
    def image(self, image_id: str, region: str) -> ImageFacts: ...

    def launch_permissions(self, image_id: str, region: str) -> Principals: ...

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None: ...

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        """(image id, instance type) of the launch template version a launch used."""
        ...


class Actions(Protocol):
    def remove_launch_permissions(self, image_id: str, region: str, principals: Principals) -> Principals:
        """Remove exactly these principals, then return the launch permissions as they are now."""
        ...

    def tag_image(self, image_id: str, region: str, tags: Mapping[str, str], snapshot_ids: tuple[str, ...]) -> None: ...


@dataclass
class Evaluation:
    call: ApiCall
    findings: list[Finding] = field(default_factory=list)
    undetermined: list[dict[str, str]] = field(default_factory=list)

    def add(self, finding: Finding | None) -> None:
        if finding is not None:
            self.findings.append(finding)

    def cannot_tell(self, rule_ids: str, reason: str) -> None:
        self.undetermined.append({"rules": rule_ids, "reason": reason})


def evaluate(call: ApiCall, policy: Policy, lookups: Lookups, actions: Actions | None = None) -> Evaluation:
    """Every finding one API call raises, with the actions taken (when `actions` is given)."""
    result = Evaluation(call)
    if call.dry_run:
        return result
    handler = _BY_EVENT.get(call.event_name)
    if handler is not None:
        handler(result, policy, lookups, actions)
    return result


def _modify_image_attribute(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    change = launch_permission_change(call)
    if change is None:
        return
    public = rules.ami_public(call, change)
    shared = rules.ami_shared_untrusted(call, change, policy)
    result.add(rules.ami_share_denied(call, change, policy))
    if public is None and shared is None:
        return
    action = _remediate(call, change, policy, actions)
    for finding in (public, shared):
        result.add(finding.with_action(action) if finding is not None else None)


def _remediate(call: ApiCall, change: PermissionChange, policy: Policy, actions: Actions | None) -> dict[str, Any]:
    """Remove exactly the offending principals (public group, untrusted ids), never anything else."""
    untrusted = rules.untrusted_principals(change.added, policy, call.account)
    offending = Principals(
        groups=tuple(g for g in change.added.groups if g.lower() == "all"),
        user_ids=untrusted.user_ids,
        organization_arns=untrusted.organization_arns,
        ou_arns=untrusted.ou_arns,
    )
    base: dict[str, Any] = {"type": "remediation", "target": offending.as_dict()}
    if not policy.remediate:
        return {**base, "status": "off", "detail": "amiGuard.remediate is false: nothing was changed"}
    if actions is None or change.resource_id is None:
        return {**base, "status": "not applied", "detail": "evaluation only: no change was made"}
    try:
        now = actions.remove_launch_permissions(change.resource_id, call.region, offending)
    except ActionFailed as exc:
        return {**base, "status": "failed", "detail": str(exc)}
    return {
        **base,
        "status": "removed",
        "removed": offending.as_dict(),
        "launchPermissionsNow": now.as_dict(),
        "publicNow": now.public,
        "detail": f"removed {offending.as_dict()}; launch permissions now: {now.as_dict() or 'private'}",
    }


def _modify_snapshot_attribute(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    change = create_volume_permission_change(call)
    if change is None:
        return
    result.add(rules.snapshot_public(call, change))
    result.add(rules.snapshot_shared_untrusted(call, change, policy))


def _disable_block_public_access(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    result.add(rules.block_public_access_disabled(result.call))


def _run_instances(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    for launch in launches(call):
        launch = _resolve_template(result, launch, lookups)
        type_info = lookups.instance_type(launch.instance_type) if launch.instance_type else None
        if call.failed:
            if not _may_be_virtualization_failure(call):
                continue
            diagnosed = rules.virtualization_error(call.error_message) is not None
            virt = launch.virtualization_type or _image_virtualization(
                result, launch, lookups, rules.LAUNCH_VIRTUALIZATION_MISMATCH, quiet=diagnosed
            )
            result.add(rules.launch_virtualization_mismatch(call, launch, virt, type_info))
            continue
        virt = launch.virtualization_type or _image_virtualization(result, launch, lookups, rules.LAUNCH_PARAVIRTUAL)
        result.add(rules.launch_paravirtual(call, launch, virt))
        if launch.instance_type and type_info is None:
            result.cannot_tell(rules.LAUNCH_PREVIOUS_GENERATION, f"instance type {launch.instance_type!r} is unknown")
        result.add(rules.launch_previous_generation(call, launch, type_info))


_PARAMETER_ERRORS = ("InvalidParameterCombination", "InvalidParameterValue", "Unsupported", "UnsupportedOperation")


def _may_be_virtualization_failure(call: ApiCall) -> bool:
    """EC2 reports a virtualization mismatch as a parameter error; a refusal for permissions or capacity
    happened before (or regardless of) that check, so it tells nothing and is not worth a lookup."""
    code = (call.error_code or "").removeprefix("Client.").removeprefix("Server.")
    return code in _PARAMETER_ERRORS or rules.virtualization_error(call.error_message) is not None


def _resolve_template(result: Evaluation, launch: Launch, lookups: Lookups) -> Launch:
    if launch.launch_template is None or (launch.image_id and launch.instance_type):
        return launch
    try:
        image_id, instance_type = lookups.launch_template(launch, result.call.region)
    except LookupUnavailable as exc:
        result.cannot_tell("launch-*", f"launch template not read: {exc}")
        return launch
    return Launch(
        image_id=launch.image_id or image_id,
        instance_type=launch.instance_type or instance_type,
        virtualization_type=launch.virtualization_type,
        instance_ids=launch.instance_ids,
        launch_template=launch.launch_template,
    )


def _image_virtualization(
    result: Evaluation, launch: Launch, lookups: Lookups, rule_id: str, *, quiet: bool = False
) -> str | None:
    if not launch.image_id:
        if not quiet:
            result.cannot_tell(rule_id, "the record names no AMI")
        return None
    try:
        return lookups.image(launch.image_id, result.call.region).virtualization_type
    except LookupUnavailable as exc:
        if not quiet:
            result.cannot_tell(rule_id, f"virtualization type of {launch.image_id} not looked up: {exc}")
        return None


def _register_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    image = new_image(call)
    result.add(rules.image_paravirtual(call, image))
    result.add(rules.image_instance_store(call, image))
    _required_tags(result, image, policy, lookups, event_tags=image.tags)


def _create_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    image = new_image(result.call)
    _required_tags(result, image, policy, lookups, event_tags=image.tags)


def _copy_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    image = new_image(call)
    if not call.succeeded or not image.image_id:
        return
    source_tags: Mapping[str, str] | None = None
    source_missing: str | None = None
    applied: Mapping[str, str] = {}
    if not image.copy_image_tags:
        source_reason = "the record names no source AMI"
        if image.source_image_id and image.source_region:
            try:
                source_tags = lookups.image(image.source_image_id, image.source_region).tags
            except LookupUnavailable as exc:
                source_reason = source_missing = f"source {image.source_image_id} not looked up: {exc}"
        if source_tags is None:
            result.cannot_tell(rules.COPY_TAGS_MISSING, source_reason + " (reported as lost, not restored)")
        finding = rules.copy_tags_missing(call, image, source_tags)
        if finding is not None:
            action, applied = _restore_tags(call, image, source_tags, policy, lookups, actions)
            result.add(finding.with_action(action))
    if source_missing is not None:
        result.cannot_tell(rules.COPY_PERMISSIONS_NOT_COPIED, source_missing)
    else:
        _permissions_not_copied(result, image, lookups)
    event_tags = None if image.copy_image_tags else {**image.tags, **applied}
    _required_tags(result, image, policy, lookups, event_tags=event_tags)


def _restore_tags(
    call: ApiCall,
    image: NewImage,
    source_tags: Mapping[str, str] | None,
    policy: Policy,
    lookups: Lookups,
    actions: Actions | None,
) -> tuple[dict[str, Any], Mapping[str, str]]:
    """Put the source's user tags and provenance tags on the copy and its snapshots; never overwrite."""
    base: dict[str, Any] = {"type": "tag-restore"}
    if not policy.copy_tags:
        return {**base, "status": "off", "detail": "amiGuard.copyTags is false: the copy keeps its own tags"}, {}
    if source_tags is None:
        return {**base, "status": "not possible", "detail": "the source AMI's tags could not be read"}, {}
    assert image.image_id is not None
    if actions is None:
        wanted = rules.tags_to_restore(image, source_tags, image.tags)
        return {**base, "status": "not applied", "detail": "evaluation only", "wouldApply": wanted}, {}
    try:
        copy = lookups.image(image.image_id, call.region)
    except LookupUnavailable as exc:
        return {**base, "status": "failed", "detail": f"the copy could not be read: {exc}"}, {}
    tags = rules.tags_to_restore(image, source_tags, copy.tags)
    if not tags:
        return {**base, "status": "nothing to apply", "detail": "the copy already carries every tag"}, {}
    try:
        actions.tag_image(image.image_id, call.region, tags, copy.snapshot_ids)
    except ActionFailed as exc:
        return {**base, "status": "failed", "detail": str(exc), "wanted": tags}, {}
    detail = f"applied {len(tags)} tag(s) to {image.image_id}"
    detail += (
        f" and snapshot(s) {', '.join(copy.snapshot_ids)}"
        if copy.snapshot_ids
        else "; its snapshots were not listed yet (copy in progress), so they were not tagged"
    )
    return {
        **base,
        "status": "applied",
        "applied": tags,
        "snapshots": list(copy.snapshot_ids),
        "detail": detail,
    }, tags


def _permissions_not_copied(result: Evaluation, image: NewImage, lookups: Lookups) -> None:
    call = result.call
    if not (image.image_id and image.source_image_id and image.source_region):
        return
    try:
        source = lookups.launch_permissions(image.source_image_id, image.source_region)
        copy = lookups.launch_permissions(image.image_id, call.region)
    except LookupUnavailable as exc:
        result.cannot_tell(rules.COPY_PERMISSIONS_NOT_COPIED, f"launch permissions not looked up: {exc}")
        return
    result.add(rules.copy_permissions_not_copied(call, image, source, copy))


def _required_tags(
    result: Evaluation, image: NewImage, policy: Policy, lookups: Lookups, *, event_tags: Mapping[str, str] | None
) -> None:
    """Check the tags the new AMI has now; without a lookup, the tags the event gave it (None: unknown)."""
    call = result.call
    if not policy.required_tags or not call.succeeded or not image.image_id:
        return
    try:
        tags: Mapping[str, str] = lookups.image(image.image_id, call.region).tags
    except LookupUnavailable as exc:
        if event_tags is None:
            result.cannot_tell(rules.IMAGE_MISSING_REQUIRED_TAGS, f"tags of {image.image_id} not looked up: {exc}")
            return
        tags = event_tags
    result.add(rules.missing_required_tags(call, image, tags, policy))


_Handler = Callable[[Evaluation, Policy, Lookups, "Actions | None"], None]
_BY_EVENT: dict[str, _Handler] = {
    "ModifyImageAttribute": _modify_image_attribute,
    "ModifySnapshotAttribute": _modify_snapshot_attribute,
    "DisableImageBlockPublicAccess": _disable_block_public_access,
    "RunInstances": _run_instances,
    "RegisterImage": _register_image,
    "CreateImage": _create_image,
    "CopyImage": _copy_image,
}
