"""Rules on who may launch an AMI or restore a snapshot: never everyone, never an untrusted account. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard.events.principals import Principals
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import image as _image
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import Rule, Undecided, ec2, severities

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.permissions import PermissionChange
    from ami_guard.sweep.facts import RegionPosture


AMI_PUBLIC = "ami-public"
AMI_SHARED_UNTRUSTED = "ami-shared-untrusted"
AMI_SHARE_DENIED = "ami-share-denied"
SNAPSHOT_PUBLIC = "snapshot-public"
SNAPSHOT_SHARED_UNTRUSTED = "snapshot-shared-untrusted"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


def untrusted_principals(added: Principals, policy: Policy, owner: str | None) -> Principals:
    """The accounts, organizations and OUs in `added` that the policy does not trust (the owner always is)."""
    return Principals(
        user_ids=tuple(u for u in added.user_ids if not policy.is_trusted_account(u, owner)),
        organization_arns=tuple(a for a in added.organization_arns if not policy.is_trusted_organization(a)),
        ou_arns=tuple(a for a in added.ou_arns if not policy.is_trusted_organization(a)),
    )


def ami_public(call: ApiCall, change: PermissionChange) -> Finding | None:
    """An AMI must never be launchable by everyone."""
    if not call.succeeded or not change.added.public:
        return None
    return _finding(
        AMI_PUBLIC,
        title=f"AMI {change.resource_id} made public in {call.region}",
        description=(
            f"{_who(call)} added launch permission for group 'all' to AMI {change.resource_id}: "
            "any AWS account can now launch it and read its snapshots' data."
        ),
        resources=_image(call, change.resource_id),
        evidence={"added": change.added.as_dict()},
        recommendation=(
            "Remove the public launch permission (aws ec2 modify-image-attribute --image-id "
            f"{change.resource_id} --launch-permission 'Remove=[{{Group=all}}]'), keep AMI block public access "
            "on, and check the AMI for secrets in case it was copied while public."
        ),
    )


def ami_shared_untrusted(call: ApiCall, change: PermissionChange, policy: Policy) -> Finding | None:
    """An AMI may be shared only with the owner, trusted accounts and trusted organizations."""
    untrusted = untrusted_principals(change.added, policy, call.account)
    if not call.succeeded or not untrusted:
        return None
    names = ", ".join(untrusted.named)
    return _finding(
        AMI_SHARED_UNTRUSTED,
        title=f"AMI {change.resource_id} shared with untrusted {names} in {call.region}",
        description=f"{_who(call)} granted launch permission on AMI {change.resource_id} to {names}, not trusted.",
        resources=_image(call, change.resource_id),
        evidence={"added": change.added.as_dict(), "untrusted": untrusted.as_dict()},
        recommendation=(
            "If the share is intended, add the account or organization to amiGuard.trustedAccounts / "
            "trustedOrganizations; otherwise remove the launch permission and review who can call "
            "ec2:ModifyImageAttribute."
        ),
    )


def ami_share_denied(call: ApiCall, change: PermissionChange, policy: Policy) -> Finding | None:
    """Someone tried to make an AMI public or share it outside the trusted set, and AWS refused."""
    if not call.failed:
        return None
    untrusted = untrusted_principals(change.added, policy, call.account)
    if not change.added.public and not untrusted:
        return None
    attempted = {"public": change.added.public, **untrusted.as_dict()}
    return _finding(
        AMI_SHARE_DENIED,
        title=f"Refused attempt to share AMI {change.resource_id} in {call.region}",
        description=(
            f"{_who(call)} tried to {'make AMI public' if change.added.public else 'share AMI'} "
            f"{change.resource_id} and the call failed with {call.error_code}: nothing changed, but someone tried."
        ),
        resources=_image(call, change.resource_id),
        evidence={"attempted": attempted, "errorCode": call.error_code, "errorMessage": call.error_message},
        recommendation="Check whether the principal was expected to attempt this; it may be probing for exfiltration.",
    )


def snapshot_public(call: ApiCall, change: PermissionChange) -> Finding | None:
    """A snapshot must never be restorable by everyone."""
    if not call.succeeded or not change.added.public:
        return None
    return _finding(
        SNAPSHOT_PUBLIC,
        title=f"Snapshot {change.resource_id} made public in {call.region}",
        description=(
            f"{_who(call)} added create-volume permission for group 'all' to snapshot {change.resource_id}: "
            "any AWS account can now create a volume from it and read its data."
        ),
        resources=_snapshot(call, change.resource_id),
        evidence={"added": change.added.as_dict()},
        recommendation=(
            f"Remove it now (aws ec2 modify-snapshot-attribute --snapshot-id {change.resource_id} "
            "--attribute createVolumePermission --operation-type remove --group-names all) and turn on "
            "EBS snapshot block public access."
        ),
    )


def snapshot_shared_untrusted(call: ApiCall, change: PermissionChange, policy: Policy) -> Finding | None:
    """A snapshot may be shared only with the owner and trusted accounts."""
    untrusted = untrusted_principals(change.added, policy, call.account)
    if not call.succeeded or not untrusted:
        return None
    names = ", ".join(untrusted.named)
    return _finding(
        SNAPSHOT_SHARED_UNTRUSTED,
        title=f"Snapshot {change.resource_id} shared with untrusted {names} in {call.region}",
        description=f"{_who(call)} granted create-volume permission on snapshot {change.resource_id} to {names}.",
        resources=_snapshot(call, change.resource_id),
        evidence={"added": change.added.as_dict(), "untrusted": untrusted.as_dict()},
        recommendation="Remove the permission unless intended; if intended, add the account to trustedAccounts.",
    )


def _snapshot(call: ApiCall, snapshot_id: str | None) -> tuple[Resource, ...]:
    return (Resource("snapshot", snapshot_id, call.region, call.account),) if snapshot_id else ()


# --- what the posture sweep finds standing ---------------------------------------------------------------------


def images_public_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding]:
    for image in posture.images:
        if image.public or (image.launch_permissions is not None and image.launch_permissions.public):
            yield _finding(
                AMI_PUBLIC,
                title=f"AMI {image.image_id} is public in {posture.region}",
                description=(
                    f"The posture sweep found AMI {image.image_id} ({image.name or 'no name'}) launchable by every AWS "
                    "account: anyone can launch it and read its snapshots' data."
                ),
                resources=(Resource("image", image.image_id, posture.region, posture.account),),
                evidence={"public": True, "name": image.name},
                recommendation=(
                    f"Make it private (aws ec2 modify-image-attribute --image-id {image.image_id} --launch-permission "
                    "'Remove=[{Group=all}]') and keep AMI block public access on."
                ),
            )


def images_shared_untrusted_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    for image in posture.images:
        if image.public:
            continue  # ami-public says it; a public image's other shares are not read
        if image.launch_permissions is None:
            yield Undecided(
                AMI_SHARED_UNTRUSTED, f"launch permissions of {image.image_id} not read", f"image:{image.image_id}"
            )
            continue
        untrusted = untrusted_principals(image.launch_permissions, policy, posture.account)
        if not untrusted:
            continue
        names = ", ".join(untrusted.named)
        yield _finding(
            AMI_SHARED_UNTRUSTED,
            title=f"AMI {image.image_id} is shared with untrusted {names} in {posture.region}",
            description=f"The posture sweep found AMI {image.image_id} launchable by {names}, not trusted.",
            resources=(Resource("image", image.image_id, posture.region, posture.account),),
            evidence={"launchPermissions": image.launch_permissions.as_dict(), "untrusted": untrusted.as_dict()},
            recommendation=(
                "If the share is intended, add the account or organization to amiGuard.trustedAccounts / "
                "trustedOrganizations; otherwise remove the launch permission."
            ),
        )


def snapshots_public_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding]:
    for snapshot in posture.snapshots:
        permissions = snapshot.create_volume_permissions
        if snapshot.public or (permissions is not None and permissions.public):
            yield _finding(
                SNAPSHOT_PUBLIC,
                title=f"Snapshot {snapshot.snapshot_id} is public in {posture.region}",
                description=(
                    f"The posture sweep found snapshot {snapshot.snapshot_id} restorable by every AWS account: anyone "
                    "can create a volume from it and read its data."
                ),
                resources=(Resource("snapshot", snapshot.snapshot_id, posture.region, posture.account),),
                evidence={"public": True, "volumeSize": snapshot.volume_size},
                recommendation=(
                    f"Make it private (aws ec2 modify-snapshot-attribute --snapshot-id {snapshot.snapshot_id} "
                    "--attribute createVolumePermission --operation-type remove --group-names all) and turn on "
                    "EBS snapshot block public access."
                ),
            )


def snapshots_shared_untrusted_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    for snapshot in posture.snapshots:
        if snapshot.public:
            continue
        if snapshot.create_volume_permissions is None:
            yield Undecided(
                SNAPSHOT_SHARED_UNTRUSTED,
                f"create-volume permissions of {snapshot.snapshot_id} not read",
                f"snapshot:{snapshot.snapshot_id}",
            )
            continue
        untrusted = untrusted_principals(snapshot.create_volume_permissions, policy, posture.account)
        if not untrusted:
            continue
        names = ", ".join(untrusted.named)
        yield _finding(
            SNAPSHOT_SHARED_UNTRUSTED,
            title=f"Snapshot {snapshot.snapshot_id} is shared with untrusted {names} in {posture.region}",
            description=f"The posture sweep found snapshot {snapshot.snapshot_id} restorable by {names}, not trusted.",
            resources=(Resource("snapshot", snapshot.snapshot_id, posture.region, posture.account),),
            evidence={
                "createVolumePermissions": snapshot.create_volume_permissions.as_dict(),
                "untrusted": untrusted.as_dict(),
            },
            recommendation="Remove the permission unless intended; if intended, add the account to trustedAccounts.",
        )


RULES = (
    Rule(
        AMI_PUBLIC,
        Severity.CRITICAL,
        ec2("ModifyImageAttribute"),
        'a successful ModifyImageAttribute adds launch permission `{"group": "all"}`',
        "with `remediate`: removes `all`, re-reads the permissions, reports both",
        sweep=images_public_now,
    ),
    Rule(
        AMI_SHARED_UNTRUSTED,
        Severity.HIGH,
        ec2("ModifyImageAttribute"),
        "a successful ModifyImageAttribute adds a `userId`, `organizationArn` or `organizationalUnitArn` that is not "
        "trusted",
        "with `remediate`: removes exactly those principals, never trusted ones",
        sweep=images_shared_untrusted_now,
    ),
    Rule(
        AMI_SHARE_DENIED,
        Severity.LOW,
        ec2("ModifyImageAttribute"),
        "a ModifyImageAttribute that tried to add `all` or an untrusted principal failed: someone tried",
    ),
    Rule(
        SNAPSHOT_PUBLIC,
        Severity.CRITICAL,
        ec2("ModifySnapshotAttribute"),
        "a successful ModifySnapshotAttribute adds create-volume permission for `all`",
        sweep=snapshots_public_now,
    ),
    Rule(
        SNAPSHOT_SHARED_UNTRUSTED,
        Severity.HIGH,
        ec2("ModifySnapshotAttribute"),
        "a successful ModifySnapshotAttribute adds an untrusted `userId`",
        sweep=snapshots_shared_untrusted_now,
    ),
)
SEVERITY = severities(RULES)
