"""Evaluation of CopyImage: the source's tags restored on the copy and its snapshots (when copyTags is on, and only
on a copy EC2 confirms), the launch permissions the copy lacks, and the copy's required tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ami_guard.engine import (
    ActionFailed,
    Actions,
    Evaluation,
    Evaluator,
    ImageFacts,
    Lookups,
    LookupUnavailable,
    NotLookedUp,
)
from ami_guard.engine.images import required_tags as _required_tags
from ami_guard.events.images import NewImage, new_image
from ami_guard.rules import copies as rules
from ami_guard.rules.images import IMAGE_MISSING_REQUIRED_TAGS

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall


def _copy_image(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    image = new_image(call)
    if not call.succeeded:
        return
    # copyImageTags: EC2 copied the tags, so only the permissions are left to check
    copy_rules = (rules.COPY_PERMISSIONS_NOT_COPIED,) if image.copy_image_tags else _COPY_RULES
    untrusted = (rules.COPY_UNTRUSTED_IMAGE,) if policy.trusted_image_owners else ()
    if not image.image_id:
        required = (IMAGE_MISSING_REQUIRED_TAGS,) if policy.required_tags else ()
        result.record_lacks(copy_rules + required + untrusted, "the record names no new AMI (responseElements.imageId)")
        return
    source_tags: Mapping[str, str] | None = None
    source_unread: LookupUnavailable | None = None
    applied: Mapping[str, str] = {}
    if not (image.source_image_id and image.source_region):
        result.record_lacks(copy_rules + untrusted, "the record names no source AMI")
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
                action, applied = restore_tags(call, image, source_tags, policy, lookups, actions)
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
    _untrusted_source(result, image, policy, lookups)


def _untrusted_source(result: Evaluation, image: NewImage, policy: Policy, lookups: Lookups) -> None:
    """copy-untrusted-image, when trustedImageOwners is set: the source's owner from EC2 (the tags' read of the
    source, when there was one, already knows it)."""
    if not policy.trusted_image_owners:
        return
    assert image.source_image_id is not None and image.source_region is not None
    try:
        owner_id, alias = lookups.image_owner(image.source_image_id, image.source_region)
    except LookupUnavailable as exc:
        result.cannot_tell(rules.COPY_UNTRUSTED_IMAGE, f"owner of source {image.source_image_id} not looked up: {exc}")
        return
    result.add(rules.copy_untrusted_image(result.call, image, owner_id, alias, policy))


_COPY_RULES = (rules.COPY_TAGS_MISSING, rules.COPY_PERMISSIONS_NOT_COPIED)


def restore_tags(
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


BY_EVENT: dict[str, Evaluator] = {"CopyImage": _copy_image}
