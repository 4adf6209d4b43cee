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
    UnreadChange,
    launches,
    new_image,
    read_create_volume_permission_change,
    read_launch_permission_change,
)
from ami_guard.findings import Finding

if TYPE_CHECKING:
    from ami_guard.instance_types import InstanceTypeInfo


class LookupUnavailable(Exception):
    """A fact could not be looked up; the reason says why (offline, not found, access denied...)."""


class NotLookedUp(LookupUnavailable):
    """No lookup was made at all (the CLI's --offline): a check that needs one is not decided, and not raised."""


class ActionFailed(Exception):
    """A remediation or tagging call was refused for good; the reason goes into the alert."""


@dataclass(frozen=True)
class ImageFacts:
    image_id: str
    region: str
    virtualization_type: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    snapshot_ids: tuple[str, ...] = ()
    owner_id: str | None = None
    source_image_id: str | None = None
    """What EC2 says the image is a copy of (DescribeImages' SourceImageId / SourceImageRegion); None: not a copy."""
    source_region: str | None = None


@dataclass(frozen=True)
class SnapshotFacts:
    snapshot_id: str
    owner_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class Lookups(Protocol):
    def image(self, image_id: str, region: str) -> ImageFacts: ...

    def launch_permissions(self, image_id: str, region: str) -> Principals: ...

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None: ...

    def snapshots(self, snapshot_ids: tuple[str, ...], region: str) -> tuple[SnapshotFacts, ...]:
        """Owner and tags of these snapshots, read in one call; those not found are left out."""
        ...

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        """(image id, instance type) of the launch template version a launch used."""
        ...


class Actions(Protocol):
    def remove_launch_permissions(self, image_id: str, region: str, principals: Principals) -> Principals:
        """Remove exactly these principals, then return the launch permissions as they are now."""
        ...

    def add_tags(self, resource_ids: tuple[str, ...], region: str, tags: Mapping[str, str]) -> None:
        """Put exactly these tags on exactly these resources (the engine has checked that none is there yet)."""
        ...


@dataclass
class Evaluation:
    call: ApiCall
    findings: list[Finding] = field(default_factory=list)
    undetermined: list[dict[str, str]] = field(default_factory=list)

    def add(self, finding: Finding | None) -> None:
        if finding is not None:
            self.findings.append(finding)

    def cannot_tell(self, rule_ids: str, reason: str, *, cause: str = "lookup") -> None:
        """A check not decided. `cause`: "lookup" (a fact was not looked up) or "record" (the record does not say)."""
        self.undetermined.append({"rules": rule_ids, "reason": reason, "cause": cause})

    def record_lacks(self, rule_ids: tuple[str, ...], reason: str) -> None:
        for rule_id in rule_ids:
            self.cannot_tell(rule_id, reason, cause="record")


def evaluate(call: ApiCall, policy: Policy, lookups: Lookups, actions: Actions | None = None) -> Evaluation:
    """Every finding one API call raises, with the actions taken (when `actions` is given)."""
    result = Evaluation(call)
    if call.dry_run:
        return result
    handler = _BY_EVENT.get(call.event_name)
    if handler is not None:
        handler(result, policy, lookups, actions)
    return result


_IMAGE_SHARE_RULES = (rules.AMI_PUBLIC, rules.AMI_SHARED_UNTRUSTED)
_SNAPSHOT_SHARE_RULES = (rules.SNAPSHOT_PUBLIC, rules.SNAPSHOT_SHARED_UNTRUSTED)


def _readable_change(
    result: Evaluation, change: PermissionChange | UnreadChange | None, rule_ids: tuple[str, ...]
) -> PermissionChange | None:
    """The change, or None after naming the checks it leaves undecided (none when another attribute changed)."""
    if isinstance(change, UnreadChange):
        result.record_lacks(rule_ids, change.reason)
        return None
    if change is not None and change.unread_items:
        result.record_lacks(rule_ids, f"{change.unread_items} permission item(s) name no principal the guard reads")
    return change


def _modify_image_attribute(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    rule_ids = (rules.AMI_SHARE_DENIED,) if call.failed else _IMAGE_SHARE_RULES
    change = _readable_change(result, read_launch_permission_change(call), rule_ids)
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
    if call.failed:
        return  # a refused snapshot share changed nothing, and no rule reads refusals of it
    change = _readable_change(result, read_create_volume_permission_change(call), _SNAPSHOT_SHARE_RULES)
    if change is None:
        return
    result.add(rules.snapshot_public(call, change))
    result.add(rules.snapshot_shared_untrusted(call, change, policy))


def _disable_block_public_access(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    result.add(rules.block_public_access_disabled(result.call))


def _run_instances(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    found = launches(call)
    if not found and (call.succeeded or _may_be_virtualization_failure(call)):
        result.record_lacks(("launch-*",), "the record names no AMI, instance type or launch template")
    for launch in found:
        launch, template_read = _resolve_template(result, launch, lookups)
        quiet = not template_read  # "launch-*" not decided already says it for every launch rule
        type_info = lookups.instance_type(launch.instance_type) if launch.instance_type else None
        if call.failed:
            if not _may_be_virtualization_failure(call):
                continue
            diagnosed = rules.virtualization_error(call.error_message) is not None
            virt = launch.virtualization_type or _image_virtualization(
                result, launch, lookups, rules.LAUNCH_VIRTUALIZATION_MISMATCH, quiet=diagnosed or quiet
            )
            if not (diagnosed or quiet) and virt is not None and type_info is None:
                result.cannot_tell(
                    rules.LAUNCH_VIRTUALIZATION_MISMATCH, _type_unknown(launch), cause=_type_cause(launch)
                )
            result.add(rules.launch_virtualization_mismatch(call, launch, virt, type_info))
            continue
        virt = launch.virtualization_type or _image_virtualization(
            result, launch, lookups, rules.LAUNCH_PARAVIRTUAL, quiet=quiet
        )
        result.add(rules.launch_paravirtual(call, launch, virt))
        if type_info is None and not quiet:
            result.cannot_tell(rules.LAUNCH_PREVIOUS_GENERATION, _type_unknown(launch), cause=_type_cause(launch))
        result.add(rules.launch_previous_generation(call, launch, type_info))


def _type_unknown(launch: Launch) -> str:
    if launch.instance_type is None:
        return "the record names no instance type"
    return f"instance type {launch.instance_type!r} is unknown"


def _type_cause(launch: Launch) -> str:
    return "record" if launch.instance_type is None else "lookup"


_PARAMETER_ERRORS = ("InvalidParameterCombination", "InvalidParameterValue", "Unsupported", "UnsupportedOperation")


def _may_be_virtualization_failure(call: ApiCall) -> bool:
    """EC2 reports a virtualization mismatch as a parameter error; a refusal for permissions or capacity
    happened before (or regardless of) that check, so it tells nothing and is not worth a lookup."""
    code = (call.error_code or "").removeprefix("Client.").removeprefix("Server.")
    return code in _PARAMETER_ERRORS or rules.virtualization_error(call.error_message) is not None


def _resolve_template(result: Evaluation, launch: Launch, lookups: Lookups) -> tuple[Launch, bool]:
    """The launch with what its template supplies; False when the template was needed and not read."""
    if launch.launch_template is None or (launch.image_id and launch.instance_type):
        return launch, True
    try:
        image_id, instance_type = lookups.launch_template(launch, result.call.region)
    except LookupUnavailable as exc:
        result.cannot_tell("launch-*", f"launch template not read: {exc}")
        return launch, False
    resolved = Launch(
        image_id=launch.image_id or image_id,
        instance_type=launch.instance_type or instance_type,
        virtualization_type=launch.virtualization_type,
        instance_ids=launch.instance_ids,
        launch_template=launch.launch_template,
    )
    return resolved, True


def _image_virtualization(
    result: Evaluation, launch: Launch, lookups: Lookups, rule_id: str, *, quiet: bool = False
) -> str | None:
    if not launch.image_id:
        if not quiet:
            result.cannot_tell(rule_id, "the record names no AMI", cause="record")
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
    if call.succeeded and not call.request:
        # An omitted virtualizationType means paravirtual; a record without its request says nothing either way.
        result.record_lacks(
            (rules.IMAGE_PARAVIRTUAL, rules.IMAGE_INSTANCE_STORE), "the record carries no requestParameters"
        )
    else:
        result.add(rules.image_paravirtual(call, image))
        result.add(rules.image_instance_store(call, image))
    _required_tags(result, image, policy, lookups, event_tags=image.tags)


def _create_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    image = new_image(result.call)
    _required_tags(result, image, policy, lookups, event_tags=image.tags)


def _copy_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    image = new_image(call)
    if not call.succeeded:
        return
    # copyImageTags: EC2 copied the tags, so only the permissions are left to check
    copy_rules = (rules.COPY_PERMISSIONS_NOT_COPIED,) if image.copy_image_tags else _COPY_RULES
    if not image.image_id:
        required = (rules.IMAGE_MISSING_REQUIRED_TAGS,) if policy.required_tags else ()
        result.record_lacks(copy_rules + required, "the record names no new AMI (responseElements.imageId)")
        return
    source_tags: Mapping[str, str] | None = None
    source_unread: LookupUnavailable | None = None
    applied: Mapping[str, str] = {}
    if not (image.source_image_id and image.source_region):
        result.record_lacks(copy_rules, "the record names no source AMI")
        _required_tags(result, image, policy, lookups, event_tags=None if image.copy_image_tags else image.tags)
        return
    if not image.copy_image_tags:
        try:
            source_tags = lookups.image(image.source_image_id, image.source_region).tags
        except LookupUnavailable as exc:
            source_unread = exc
        if isinstance(source_unread, NotLookedUp):
            # Offline: whether tags were lost is not known, so nothing is raised on a guess.
            result.cannot_tell(
                rules.COPY_TAGS_MISSING, f"tags of source {image.source_image_id} not looked up: {source_unread}"
            )
        else:
            if source_unread is not None:
                # Online, the source exists no more or is not ours to read: the alert still goes out, saying so.
                result.cannot_tell(
                    rules.COPY_TAGS_MISSING,
                    f"source {image.source_image_id} not readable ({source_unread}): alerted without the lost tags",
                )
            finding = rules.copy_tags_missing(call, image, source_tags)
            if finding is not None:
                action, applied = _restore_tags(call, image, source_tags, policy, lookups, actions)
                result.add(finding.with_action(action))
    if source_unread is not None:
        result.cannot_tell(
            rules.COPY_PERMISSIONS_NOT_COPIED, f"source {image.source_image_id} not looked up: {source_unread}"
        )
    else:
        _permissions_not_copied(result, image, lookups)
    # Without a lookup of the copy, its tags are the event's plus those the guard applied; offline with copyTags
    # on, the guard would have restored tags that nobody read, so they are unknown.
    restorable = policy.copy_tags and isinstance(source_unread, NotLookedUp)
    event_tags = None if image.copy_image_tags or restorable else {**image.tags, **applied}
    _required_tags(result, image, policy, lookups, event_tags=event_tags)


_COPY_RULES = (rules.COPY_TAGS_MISSING, rules.COPY_PERMISSIONS_NOT_COPIED)


def _restore_tags(
    call: ApiCall,
    image: NewImage,
    source_tags: Mapping[str, str] | None,
    policy: Policy,
    lookups: Lookups,
    actions: Actions | None,
) -> tuple[dict[str, Any], Mapping[str, str]]:
    """Put the source's user tags and provenance tags on the copy and on each of its snapshots, only on an image
    that EC2 says is a copy of that source and that the account owns; never overwrite, never pass EC2's limit."""
    base: dict[str, Any] = {"type": "tag-restore"}
    if not policy.copy_tags:
        return {**base, "status": "off", "detail": "amiGuard.copyTags is false: the copy keeps its own tags"}, {}
    if source_tags is None:
        return {**base, "status": "not possible", "detail": "the source AMI's tags could not be read"}, {}
    assert image.image_id is not None
    wanted = rules.restored_tags(image, source_tags)
    if actions is None:
        plan = rules.plan_tags(wanted, image.tags)
        action = {**base, "status": "not applied", "detail": "evaluation only", "wouldApply": plan.apply}
        return {**action, "didNotFit": list(plan.did_not_fit)} if plan.did_not_fit else action, {}
    try:
        copy = lookups.image(image.image_id, call.region)
    except LookupUnavailable as exc:
        return {**base, "status": "failed", "detail": f"the copy could not be read: {exc}", "wanted": wanted}, {}
    refusal = rules.not_the_copy(call, image, copy.owner_id, copy.source_image_id, copy.source_region)
    if refusal is not None:
        return {**base, "status": "not applied", "detail": f"not applied: {refusal}", "wanted": wanted}, {}
    plans = {image.image_id: rules.plan_tags(wanted, copy.tags)}
    skipped = _snapshot_plans(call, copy, wanted, lookups, plans)
    failed = _apply(plans, call.region, actions)
    return _tag_action(base, copy, wanted, plans, skipped, failed), (
        {} if image.image_id in failed else plans[image.image_id].apply
    )


def _snapshot_plans(
    call: ApiCall, copy: ImageFacts, wanted: Mapping[str, str], lookups: Lookups, plans: dict[str, rules.TagPlan]
) -> dict[str, str]:
    """Add each readable snapshot's plan to `plans`; the snapshots left untagged, with the reason."""
    if not copy.snapshot_ids:
        return {}
    try:
        found = {s.snapshot_id: s for s in lookups.snapshots(copy.snapshot_ids, call.region)}
    except LookupUnavailable as exc:
        return {snapshot_id: f"its tags could not be read ({exc})" for snapshot_id in copy.snapshot_ids}
    skipped: dict[str, str] = {}
    for snapshot_id in copy.snapshot_ids:
        snapshot = found.get(snapshot_id)
        if snapshot is None:
            skipped[snapshot_id] = "EC2 did not return it"
        elif snapshot.owner_id != call.account:
            skipped[snapshot_id] = f"owned by {snapshot.owner_id or 'an unknown account'}, not by {call.account}"
        else:
            plans[snapshot_id] = rules.plan_tags(wanted, snapshot.tags)
    return skipped


def _apply(plans: Mapping[str, rules.TagPlan], region: str, actions: Actions) -> dict[str, str]:
    """One CreateTags per distinct set of tags to add; the resources whose call was refused, with the reason."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for resource_id, plan in plans.items():
        if plan.apply:
            groups.setdefault(tuple(plan.apply.items()), []).append(resource_id)
    failed: dict[str, str] = {}
    for tags, resource_ids in groups.items():
        try:
            actions.add_tags(tuple(resource_ids), region, dict(tags))
        except ActionFailed as exc:
            failed.update(dict.fromkeys(resource_ids, str(exc)))
    return failed


def _tag_action(
    base: dict[str, Any],
    copy: ImageFacts,
    wanted: Mapping[str, str],
    plans: Mapping[str, rules.TagPlan],
    skipped: Mapping[str, str],
    failed: Mapping[str, str],
) -> dict[str, Any]:
    """The alert's account of a tag restore: what went where, what was kept, what did not fit, what failed."""
    done = {r: p for r, p in plans.items() if p.apply and r not in failed}
    did_not_fit = {r: list(p.did_not_fit) for r, p in plans.items() if p.did_not_fit}
    kept = {r: list(p.kept) for r, p in plans.items() if p.kept}
    if failed:
        status = "failed"
    elif done:
        status = "applied"
    elif did_not_fit or skipped:
        status = "not applied"
    else:
        status = "nothing to apply"
    parts = [f"applied {', '.join(f'{len(p.apply)} tag(s) to {r}' for r, p in done.items())}"] if done else []
    if status == "nothing to apply":
        parts.append("the copy and its snapshots already carry every tag")
    parts += [f"failed on {r}: {reason}" for r, reason in failed.items()]
    parts += [f"snapshot {r} not tagged: {reason}" for r, reason in skipped.items()]
    parts += [
        f"did not fit on {r} (EC2 allows {rules.MAX_USER_TAGS} user tags per resource): {', '.join(keys)}"
        for r, keys in did_not_fit.items()
    ]
    if not copy.snapshot_ids:
        parts.append("its snapshots were not listed yet (copy in progress), so they were not tagged")
    action: dict[str, Any] = {
        **base,
        "status": status,
        "applied": dict(plans[copy.image_id].apply) if copy.image_id in done else {},
        "snapshots": [r for r in done if r != copy.image_id],
        "detail": "; ".join(parts),
    }
    extra = {"didNotFit": did_not_fit, "notOverwritten": kept, "failed": dict(failed), "notTagged": dict(skipped)}
    action.update({key: value for key, value in extra.items() if value})
    if failed:
        action["wanted"] = dict(wanted)
    return action


def _permissions_not_copied(result: Evaluation, image: NewImage, lookups: Lookups) -> None:
    call = result.call
    assert image.image_id and image.source_image_id and image.source_region
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
