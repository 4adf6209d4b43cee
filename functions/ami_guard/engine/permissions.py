"""Evaluation of permission changes: ModifyImageAttribute (with the remediation) and ModifySnapshotAttribute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard.engine import ActionFailed, Actions, Evaluation, Evaluator, Lookups
from ami_guard.events.permissions import (
    PermissionChange,
    UnreadChange,
    read_create_volume_permission_change,
    read_launch_permission_change,
)
from ami_guard.events.principals import Principals
from ami_guard.rules import permissions as rules

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall

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


BY_EVENT: dict[str, Evaluator] = {
    "ModifyImageAttribute": _modify_image_attribute,
    "ModifySnapshotAttribute": _modify_snapshot_attribute,
}
