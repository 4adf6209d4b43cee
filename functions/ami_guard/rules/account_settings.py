"""Rules on the account's guardrails for AMIs and snapshots: block public access for images and snapshots, Allowed
AMIs, deregistration protection, snapshot locks, Recycle Bin rules, and an AMI's data leaving for S3. Each is
decided from the record alone. Pure.

Where a record does not say which state a call set (a parameter missing, or a value the guard does not know), the
rule reads it as the weakest state the call can set, and the alert says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard.events.settings import request_value, text
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import image as _image
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import RECYCLE_BIN, Rule, Undecided, ec2, severities

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.sweep.facts import RegionPosture


BLOCK_PUBLIC_ACCESS_DISABLED = "ami-block-public-access-disabled"
SNAPSHOT_BLOCK_PUBLIC_ACCESS_DISABLED = "snapshot-block-public-access-disabled"
SNAPSHOT_BLOCK_PUBLIC_ACCESS_WEAKENED = "snapshot-block-public-access-weakened"
ALLOWED_IMAGES_DISABLED = "allowed-images-disabled"
ALLOWED_IMAGES_AUDIT_ONLY = "allowed-images-audit-only"
ALLOWED_IMAGES_CRITERIA_CHANGED = "allowed-images-criteria-changed"
DEREGISTRATION_PROTECTION_DISABLED = "deregistration-protection-disabled"
SNAPSHOT_UNLOCKED = "snapshot-unlocked"
RECYCLE_BIN_RULE_WEAKENED = "recycle-bin-rule-weakened"
IMAGE_EXPORTED = "image-exported"

# The states EC2 documents for the settings, strongest first: a state missing or unknown reads as the last.
SNAPSHOT_BLOCK_STATES = ("block-all-sharing", "block-new-sharing", "unblocked")
ALLOWED_IMAGES_STATES = ("enabled", "audit-mode")
RECYCLE_BIN_RESOURCE_TYPES = {"EBS_SNAPSHOT": "snapshots", "EC2_IMAGE": "AMIs"}


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


def _setting(call: ApiCall, name: str) -> tuple[Resource, ...]:
    return (Resource("account-setting", name, call.region, call.account),)


def _state(call: ApiCall, states: tuple[str, ...], *names: str) -> tuple[str, dict[str, Any]]:
    """(the state the call set, evidence): the recorded one if it is one of `states`, else the weakest, said so."""
    recorded = request_value(call, *names)
    if isinstance(recorded, str) and recorded.lower() in states:
        return recorded.lower(), {"state": recorded.lower()}
    weakest = states[-1]
    why = (
        "the record does not say which state was set"
        if recorded is None
        else "the record's state is not one EC2 documents"
    )
    return weakest, {"state": recorded, "readAs": weakest, "why": f"{why}: read as the weakest, {weakest}"}


def block_public_access_disabled(call: ApiCall) -> Finding | None:
    """AMI block public access must stay on."""
    if not call.succeeded:
        return None
    return _finding(
        BLOCK_PUBLIC_ACCESS_DISABLED,
        title=f"AMI block public access disabled in {call.region}",
        description=(
            f"{_who(call)} switched off image block public access in {call.region}: AMIs in this region "
            "can now be made public."
        ),
        resources=_setting(call, "image-block-public-access"),
        evidence={"setting": "ImageBlockPublicAccess", "region": call.region},
        recommendation=f"Turn it back on: aws ec2 enable-image-block-public-access --region {call.region} "
        "--image-block-public-access-state block-new-sharing",
    )


_SNAPSHOT_BLOCK_FIX = "aws ec2 enable-snapshot-block-public-access --region {region} --state block-all-sharing"


def snapshot_block_public_access_disabled(call: ApiCall, policy: Policy) -> Finding | None:
    """Snapshot block public access stays on: DisableSnapshotBlockPublicAccess, or EnableSnapshotBlockPublicAccess
    with `unblocked`, lets snapshots that were public before the block be public again."""
    if not call.succeeded:
        return None
    evidence: dict[str, Any] = {"setting": "SnapshotBlockPublicAccess", "region": call.region}
    if call.event_name == "EnableSnapshotBlockPublicAccess":
        state, read = _state(call, SNAPSHOT_BLOCK_STATES, "State")
        if state != "unblocked":
            return None
        evidence.update(read)
    return _finding(
        SNAPSHOT_BLOCK_PUBLIC_ACCESS_DISABLED,
        title=f"Snapshot block public access disabled in {call.region}",
        description=(
            f"{_who(call)} switched off snapshot block public access in {call.region} ({call.event_name}): "
            "snapshots that were public before the block are public again, and any snapshot can be made public."
            + (f" Note: {evidence['why']}." if "why" in evidence else "")
        ),
        resources=_setting(call, "snapshot-block-public-access"),
        evidence=evidence,
        recommendation="Turn it back on: " + _SNAPSHOT_BLOCK_FIX.format(region=call.region),
    )


def snapshot_block_public_access_weakened(call: ApiCall, policy: Policy) -> Finding | None:
    """`block-new-sharing` keeps the snapshots that are already public, public."""
    if not call.succeeded:
        return None
    state, read = _state(call, SNAPSHOT_BLOCK_STATES, "State")
    if state != "block-new-sharing":
        return None
    return _finding(
        SNAPSHOT_BLOCK_PUBLIC_ACCESS_WEAKENED,
        title=f"Snapshot block public access set to block-new-sharing in {call.region}",
        description=(
            f"{_who(call)} set snapshot block public access in {call.region} to block-new-sharing: no snapshot can "
            "be made public from now on, but the snapshots that are already public stay public."
        ),
        resources=_setting(call, "snapshot-block-public-access"),
        evidence={"setting": "SnapshotBlockPublicAccess", "region": call.region, **read},
        recommendation="Block all public sharing: " + _SNAPSHOT_BLOCK_FIX.format(region=call.region),
    )


def allowed_images_disabled(call: ApiCall, policy: Policy) -> Finding | None:
    """Allowed AMIs stays on: with it off, any AMI can be launched."""
    if not call.succeeded:
        return None
    return _finding(
        ALLOWED_IMAGES_DISABLED,
        title=f"Allowed AMIs disabled in {call.region}",
        description=(
            f"{_who(call)} switched off the Allowed AMIs setting in {call.region}: instances can now be launched "
            "from any AMI, whoever published it."
        ),
        resources=_setting(call, "allowed-images"),
        evidence={"setting": "AllowedImagesSettings", "region": call.region},
        recommendation=f"Turn it back on: aws ec2 enable-allowed-images-settings --region {call.region} "
        "--allowed-images-settings-state enabled",
    )


def allowed_images_audit_only(call: ApiCall, policy: Policy) -> Finding | None:
    """In audit mode, disallowed AMIs launch: they are only reported."""
    if not call.succeeded:
        return None
    state, read = _state(call, ALLOWED_IMAGES_STATES, "AllowedImagesSettingsState")
    if state != "audit-mode":
        return None
    return _finding(
        ALLOWED_IMAGES_AUDIT_ONLY,
        title=f"Allowed AMIs set to audit mode in {call.region}",
        description=(
            f"{_who(call)} set the Allowed AMIs setting in {call.region} to audit mode: AMIs outside the criteria "
            "can be launched again; they are only marked as not allowed."
            + (f" Note: {read['why']}." if "why" in read else "")
        ),
        resources=_setting(call, "allowed-images"),
        evidence={"setting": "AllowedImagesSettings", "region": call.region, **read},
        recommendation=f"Enforce it: aws ec2 enable-allowed-images-settings --region {call.region} "
        "--allowed-images-settings-state enabled",
    )


def allowed_images_criteria_changed(call: ApiCall, policy: Policy) -> Finding | None:
    """Which AMIs are allowed changed: the new criteria go into the alert for review."""
    if not call.succeeded:
        return None
    criteria = request_value(call, "ImageCriteria", "ImageCriterion")
    return _finding(
        ALLOWED_IMAGES_CRITERIA_CHANGED,
        title=f"Allowed AMIs criteria replaced in {call.region}",
        description=(
            f"{_who(call)} replaced the criteria of the Allowed AMIs setting in {call.region}: check that the new "
            "criteria allow only the AMI providers you trust."
            + ("" if criteria is not None else " The record does not carry the new criteria.")
        ),
        resources=_setting(call, "allowed-images"),
        evidence={"setting": "AllowedImagesSettings", "region": call.region, "newCriteria": criteria},
        recommendation=f"Review them: aws ec2 get-allowed-images-settings --region {call.region}",
    )


def deregistration_protection_disabled(call: ApiCall, policy: Policy) -> Finding | None:
    """An AMI's deregistration protection was turned off: it can now be deregistered."""
    if not call.succeeded:
        return None
    image_id = text(call, "ImageId")
    return _finding(
        DEREGISTRATION_PROTECTION_DISABLED,
        title=f"Deregistration protection disabled for AMI {image_id or '(not in the record)'} in {call.region}",
        description=(
            f"{_who(call)} turned off deregistration protection for AMI {image_id or '(not in the record)'}: it "
            "can now be deregistered (after the cooldown, if one was set)."
        ),
        resources=_image(call, image_id),
        evidence={"imageId": image_id},
        recommendation=(
            f"Turn it back on if the AMI must stay: aws ec2 enable-image-deregistration-protection --region "
            f"{call.region} --image-id {image_id or '<ami-id>'} --with-cooldown"
        ),
    )


def snapshot_unlocked(call: ApiCall, policy: Policy) -> Finding | None:
    """A snapshot lock was removed: the snapshot can be deleted again."""
    if not call.succeeded:
        return None
    snapshot_id = text(call, "SnapshotId")
    resources = (Resource("snapshot", snapshot_id, call.region, call.account),) if snapshot_id else ()
    return _finding(
        SNAPSHOT_UNLOCKED,
        title=f"Snapshot {snapshot_id or '(not in the record)'} unlocked in {call.region}",
        description=(
            f"{_who(call)} unlocked snapshot {snapshot_id or '(not in the record)'}: the lock that kept it from "
            "deletion is gone."
        ),
        resources=resources,
        evidence={"snapshotId": snapshot_id},
        recommendation=(
            f"Lock it again if it must be kept: aws ec2 lock-snapshot --region {call.region} --snapshot-id "
            f"{snapshot_id or '<snap-id>'} --lock-mode governance --lock-duration <days>"
        ),
    )


def recycle_bin_rule_weakened(call: ApiCall, policy: Policy) -> Finding | None:
    """A Recycle Bin retention rule for AMIs or snapshots was deleted, changed or unlocked: deleted AMIs and
    snapshots may no longer be recoverable. Recycle Bin retains only those two kinds, so every rule is one of them;
    where the record does not say which, the alert says so."""
    if not call.succeeded:
        return None
    rule = text(call, "identifier")
    kind = text(call, "resourceType")
    retains = RECYCLE_BIN_RESOURCE_TYPES.get(kind or "")
    what = {"DeleteRule": "deleted", "UpdateRule": "changed", "UnlockRule": "unlocked"}[call.event_name]
    retained = retains or "AMIs or snapshots (the record does not say which)"
    resources = (Resource("recycle-bin-rule", rule, call.region, call.account),) if rule else ()
    return _finding(
        RECYCLE_BIN_RULE_WEAKENED,
        title=f"Recycle Bin rule {rule or '(not in the record)'} {what} in {call.region}",
        description=(
            f"{_who(call)} {what} Recycle Bin retention rule {rule or '(not in the record)'} for {retained} in "
            f"{call.region}: deleted {retained} may no longer be recoverable"
            + (" once the unlock delay ends." if call.event_name == "UnlockRule" else ".")
        ),
        resources=resources,
        evidence={
            "rule": rule,
            "call": call.event_name,
            "resourceType": kind,
            "retains": retains,
            **({"retentionPeriod": request_value(call, "retentionPeriod")} if call.event_name == "UpdateRule" else {}),
        },
        recommendation=(
            "If this was not intended, recreate or restore the rule and lock it "
            f"(aws rbin lock-rule --region {call.region} --identifier <id> --lock-configuration ...)."
        ),
    )


def image_exported(call: ApiCall, policy: Policy) -> Finding | None:
    """An AMI's data is leaving for an S3 bucket (CreateStoreImageTask, ExportImage)."""
    if not call.succeeded:
        return None
    image_id = text(call, "ImageId")
    location = request_value(call, "S3ExportLocation")
    bucket = text(call, "Bucket") or (_bucket_of(location) if call.event_name == "ExportImage" else None)
    return _finding(
        IMAGE_EXPORTED,
        title=f"AMI {image_id or '(not in the record)'} exported to S3 bucket {bucket or '(not in the record)'}",
        description=(
            f"{_who(call)} started {call.event_name} for AMI {image_id or '(not in the record)'} in {call.region}: "
            f"the image's data is being written to S3 bucket {bucket or '(not in the record)'}, outside EC2's launch "
            "permissions and block public access."
        ),
        resources=_image(call, image_id),
        evidence={"imageId": image_id, "bucket": bucket, "call": call.event_name, "s3ExportLocation": location},
        recommendation="Check that the bucket is yours, private and encrypted, and who may call "
        f"ec2:{call.event_name}.",
    )


def _bucket_of(location: Any) -> str | None:
    if not isinstance(location, dict):
        return None
    return next(
        (value for key, value in location.items() if key.lower() == "s3bucket" and isinstance(value, str) and value),
        None,
    )


# --- what the posture sweep finds standing: each setting in its weakest states ------------------------------------


def _state_now(
    posture: RegionPosture, field: str, rule_id: str, weak: tuple[str, ...], setting: str, text: str, fix: str
) -> Iterator[Finding | Undecided]:
    state = getattr(posture.settings, field)
    if state is None:
        why = posture.settings.unread.get(field, "not read")
        yield Undecided(
            rule_id, f"{setting} of {posture.region} not read: {why}", f"account-setting:{_SETTING_IDS[field]}"
        )
        return
    if state.lower() not in weak:
        return
    yield _finding(
        rule_id,
        title=f"{setting} is {state} in {posture.region}",
        description=f"The posture sweep found {setting} {state} in {posture.region}: {text}",
        resources=(Resource("account-setting", _SETTING_IDS[field], posture.region, posture.account),),
        evidence={"setting": setting, "region": posture.region, "state": state},
        recommendation=fix.format(region=posture.region),
    )


_SETTING_IDS = {
    "image_block_public_access": "image-block-public-access",
    "snapshot_block_public_access": "snapshot-block-public-access",
    "allowed_images": "allowed-images",
}


def image_block_public_access_off_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    return _state_now(
        posture,
        "image_block_public_access",
        BLOCK_PUBLIC_ACCESS_DISABLED,
        ("unblocked",),
        "AMI block public access",
        "AMIs in this region can be made public.",
        "Turn it on: aws ec2 enable-image-block-public-access --region {region} "
        "--image-block-public-access-state block-new-sharing",
    )


def snapshot_block_public_access_off_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    return _state_now(
        posture,
        "snapshot_block_public_access",
        SNAPSHOT_BLOCK_PUBLIC_ACCESS_DISABLED,
        ("unblocked",),
        "Snapshot block public access",
        "any snapshot can be made public.",
        "Turn it on: " + _SNAPSHOT_BLOCK_FIX,
    )


def snapshot_block_public_access_weak_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    if posture.settings.snapshot_block_public_access is None:
        return iter(())  # the disabled rule says it was not read
    return _state_now(
        posture,
        "snapshot_block_public_access",
        SNAPSHOT_BLOCK_PUBLIC_ACCESS_WEAKENED,
        ("block-new-sharing",),
        "Snapshot block public access",
        "snapshots that were public before the block stay public.",
        "Block all public sharing: " + _SNAPSHOT_BLOCK_FIX,
    )


def allowed_images_off_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    return _state_now(
        posture,
        "allowed_images",
        ALLOWED_IMAGES_DISABLED,
        ("disabled",),
        "Allowed AMIs",
        "instances can be launched from any AMI.",
        "Turn it on: aws ec2 enable-allowed-images-settings --region {region} --allowed-images-settings-state enabled",
    )


def allowed_images_audit_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding | Undecided]:
    if posture.settings.allowed_images is None:
        return iter(())  # the disabled rule says it was not read
    return _state_now(
        posture,
        "allowed_images",
        ALLOWED_IMAGES_AUDIT_ONLY,
        ("audit-mode",),
        "Allowed AMIs",
        "AMIs outside the criteria launch; they are only marked as not allowed.",
        "Enforce it: aws ec2 enable-allowed-images-settings --region {region} --allowed-images-settings-state enabled",
    )


RULES = (
    Rule(
        BLOCK_PUBLIC_ACCESS_DISABLED,
        Severity.HIGH,
        ec2("DisableImageBlockPublicAccess"),
        "a successful DisableImageBlockPublicAccess",
        check=lambda call, policy: block_public_access_disabled(call),
        sweep=image_block_public_access_off_now,
    ),
    Rule(
        SNAPSHOT_BLOCK_PUBLIC_ACCESS_DISABLED,
        Severity.HIGH,
        ec2("DisableSnapshotBlockPublicAccess", "EnableSnapshotBlockPublicAccess"),
        "a successful DisableSnapshotBlockPublicAccess, or EnableSnapshotBlockPublicAccess with state `unblocked` "
        "(or a state the record does not give: read as the weakest, and said so)",
        check=snapshot_block_public_access_disabled,
        sweep=snapshot_block_public_access_off_now,
    ),
    Rule(
        SNAPSHOT_BLOCK_PUBLIC_ACCESS_WEAKENED,
        Severity.MEDIUM,
        ec2("EnableSnapshotBlockPublicAccess"),
        "a successful EnableSnapshotBlockPublicAccess with state `block-new-sharing` (snapshots already public stay "
        "public)",
        check=snapshot_block_public_access_weakened,
        sweep=snapshot_block_public_access_weak_now,
    ),
    Rule(
        ALLOWED_IMAGES_DISABLED,
        Severity.HIGH,
        ec2("DisableAllowedImagesSettings"),
        "a successful DisableAllowedImagesSettings",
        check=allowed_images_disabled,
        sweep=allowed_images_off_now,
    ),
    Rule(
        ALLOWED_IMAGES_AUDIT_ONLY,
        Severity.MEDIUM,
        ec2("EnableAllowedImagesSettings"),
        "a successful EnableAllowedImagesSettings with state `audit-mode` (or a state the record does not give: read "
        "as the weakest, and said so): disallowed AMIs launch, they are only reported",
        check=allowed_images_audit_only,
        sweep=allowed_images_audit_now,
    ),
    Rule(
        ALLOWED_IMAGES_CRITERIA_CHANGED,
        Severity.MEDIUM,
        ec2("ReplaceImageCriteriaInAllowedImagesSettings"),
        "a successful ReplaceImageCriteriaInAllowedImagesSettings (the new criteria in the evidence)",
        check=allowed_images_criteria_changed,
    ),
    Rule(
        DEREGISTRATION_PROTECTION_DISABLED,
        Severity.LOW,
        ec2("DisableImageDeregistrationProtection"),
        "a successful DisableImageDeregistrationProtection",
        check=deregistration_protection_disabled,
    ),
    Rule(
        SNAPSHOT_UNLOCKED,
        Severity.HIGH,
        ec2("UnlockSnapshot"),
        "a successful UnlockSnapshot",
        check=snapshot_unlocked,
    ),
    Rule(
        RECYCLE_BIN_RULE_WEAKENED,
        Severity.HIGH,
        tuple((RECYCLE_BIN, name) for name in ("DeleteRule", "UpdateRule", "UnlockRule")),
        "a successful Recycle Bin DeleteRule, UpdateRule or UnlockRule (`rbin.amazonaws.com`; Recycle Bin retains "
        "only AMIs and snapshots; the alert says which when the record does)",
        check=recycle_bin_rule_weakened,
    ),
    Rule(
        IMAGE_EXPORTED,
        Severity.MEDIUM,
        ec2("CreateStoreImageTask", "ExportImage"),
        "a successful CreateStoreImageTask or ExportImage: the AMI's data is leaving for the S3 bucket named in the "
        "evidence",
        check=image_exported,
    ),
)
SEVERITY = severities(RULES)
