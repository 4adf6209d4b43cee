"""The rules: each a pure function from a parsed change (and looked-up facts) to a Finding or None.

No boto3, no environment, no logging here. Rule ids are a public interface (SNS filter policies).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ami_guard import contract
from ami_guard.config import Policy
from ami_guard.events import ApiCall, GuardChange, Launch, NewImage, PermissionChange, Principals, key_id
from ami_guard.findings import Finding, Resource, Severity

if TYPE_CHECKING:
    from ami_guard.instance_types import InstanceTypeInfo

AMI_PUBLIC = "ami-public"
AMI_SHARED_UNTRUSTED = "ami-shared-untrusted"
AMI_SHARE_DENIED = "ami-share-denied"
SNAPSHOT_PUBLIC = "snapshot-public"
SNAPSHOT_SHARED_UNTRUSTED = "snapshot-shared-untrusted"
BLOCK_PUBLIC_ACCESS_DISABLED = "ami-block-public-access-disabled"
LAUNCH_VIRTUALIZATION_MISMATCH = "launch-virtualization-mismatch"
LAUNCH_PARAVIRTUAL = "launch-paravirtual"
LAUNCH_PREVIOUS_GENERATION = "launch-previous-generation"
IMAGE_PARAVIRTUAL = "image-paravirtual"
IMAGE_INSTANCE_STORE = "image-instance-store"
COPY_TAGS_MISSING = "copy-tags-missing"
COPY_PERMISSIONS_NOT_COPIED = "copy-permissions-not-copied"
IMAGE_MISSING_REQUIRED_TAGS = "image-missing-required-tags"
GUARD_TAMPERED = "guard-tampered"

RULE_SEVERITY: dict[str, Severity] = {
    AMI_PUBLIC: Severity.CRITICAL,
    AMI_SHARED_UNTRUSTED: Severity.HIGH,
    AMI_SHARE_DENIED: Severity.LOW,
    SNAPSHOT_PUBLIC: Severity.CRITICAL,
    SNAPSHOT_SHARED_UNTRUSTED: Severity.HIGH,
    BLOCK_PUBLIC_ACCESS_DISABLED: Severity.HIGH,
    LAUNCH_VIRTUALIZATION_MISMATCH: Severity.MEDIUM,
    LAUNCH_PARAVIRTUAL: Severity.MEDIUM,
    LAUNCH_PREVIOUS_GENERATION: Severity.LOW,
    IMAGE_PARAVIRTUAL: Severity.MEDIUM,
    IMAGE_INSTANCE_STORE: Severity.LOW,
    COPY_TAGS_MISSING: Severity.MEDIUM,
    COPY_PERMISSIONS_NOT_COPIED: Severity.LOW,
    IMAGE_MISSING_REQUIRED_TAGS: Severity.MEDIUM,
    GUARD_TAMPERED: Severity.CRITICAL,
}

PARAVIRTUAL = "paravirtual"
HVM = "hvm"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return Finding(rule_id=rule_id, severity=RULE_SEVERITY[rule_id], **fields)


def _image(call: ApiCall, image_id: str | None, region: str | None = None) -> tuple[Resource, ...]:
    return (Resource("image", image_id, region or call.region, call.account),) if image_id else ()


def _who(call: ApiCall) -> str:
    return call.actor.describe()


# --- permissions --------------------------------------------------------------------------------------


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
        resources=(Resource("account-setting", "image-block-public-access", call.region, call.account),),
        evidence={"setting": "ImageBlockPublicAccess", "region": call.region},
        recommendation=f"Turn it back on: aws ec2 enable-image-block-public-access --region {call.region} "
        "--image-block-public-access-state block-new-sharing",
    )


# --- launches -----------------------------------------------------------------------------------------

_REQUIRED_VIRTUALIZATION = re.compile(
    r"virtualization type (?:of )?'?(?P<virt>hvm|paravirtual)'? is required for instances of type '?(?P<type>[\w.-]+)",
    re.IGNORECASE,
)
_UNSUPPORTED_VIRTUALIZATION = re.compile(
    r"virtualization type of '?(?P<virt>hvm|paravirtual)'? (?:is|are) (?:currently )?not supported",
    re.IGNORECASE,
)


def virtualization_error(message: str | None) -> dict[str, str] | None:
    """What EC2's error message says about a virtualization mismatch, if it says anything."""
    if not message:
        return None
    if match := _REQUIRED_VIRTUALIZATION.search(message):
        return {"requiredVirtualizationType": match["virt"].lower(), "instanceType": match["type"]}
    if match := _UNSUPPORTED_VIRTUALIZATION.search(message):
        return {"unsupportedVirtualizationType": match["virt"].lower()}
    return None


def _instances(call: ApiCall, launch: Launch) -> tuple[Resource, ...]:
    return tuple(Resource("instance", i, call.region, call.account) for i in launch.instance_ids)


def launch_virtualization_mismatch(
    call: ApiCall, launch: Launch, image_virtualization: str | None, type_info: InstanceTypeInfo | None
) -> Finding | None:
    """Explain a failed launch whose AMI virtualization type the instance type does not support."""
    if not call.failed:
        return None
    diagnosis = virtualization_error(call.error_message)
    if diagnosis is None:
        if image_virtualization is None or type_info is None:
            return None
        if image_virtualization in type_info.virtualization_types:
            return None
        diagnosis = {"source": "lookup"}
    else:
        diagnosis = {"source": "error message", **diagnosis}
    virt = image_virtualization or (
        PARAVIRTUAL
        if diagnosis.get("requiredVirtualizationType") == HVM
        else diagnosis.get("unsupportedVirtualizationType")
    )
    supported = sorted(type_info.virtualization_types) if type_info else None
    itype = launch.instance_type or diagnosis.get("instanceType")
    return _finding(
        LAUNCH_VIRTUALIZATION_MISMATCH,
        title=f"Launch of AMI {launch.image_id or '(unknown)'} on {itype or '(unknown type)'} failed: "
        "virtualization mismatch",
        description=(
            f"{_who(call)} tried to launch AMI {launch.image_id or '(unknown)'}"
            f"{f' ({virt})' if virt else ''} on instance type {itype or '(unknown)'}"
            f"{f', which supports {supported}' if supported else ''}. EC2 refused it ({call.error_code})."
        ),
        resources=_image(call, launch.image_id),
        evidence={
            "instanceType": itype,
            "imageVirtualizationType": virt,
            "instanceTypeSupports": supported,
            "diagnosis": diagnosis,
            "errorCode": call.error_code,
            "errorMessage": call.error_message,
        },
        recommendation=(
            "Paravirtual AMIs run only on previous-generation types (C1, C3, M1, M2, M3, T1...). Use an HVM AMI "
            "for current instance types, or rebuild the image as HVM."
        ),
    )


def launch_paravirtual(call: ApiCall, launch: Launch, image_virtualization: str | None) -> Finding | None:
    """Paravirtual AMIs get no enhanced networking, no GPU and only previous-generation types."""
    if not call.succeeded or image_virtualization != PARAVIRTUAL:
        return None
    return _finding(
        LAUNCH_PARAVIRTUAL,
        title=f"Paravirtual AMI {launch.image_id} launched on {launch.instance_type} in {call.region}",
        description=(
            f"{_who(call)} launched {len(launch.instance_ids) or 'an'} instance(s) from paravirtual AMI "
            f"{launch.image_id}: no enhanced networking, no GPUs, previous-generation instance types only."
        ),
        resources=_image(call, launch.image_id) + _instances(call, launch),
        evidence={"instanceType": launch.instance_type, "imageVirtualizationType": image_virtualization},
        recommendation="Move the workload to an HVM AMI and a current-generation instance type.",
    )


def launch_previous_generation(call: ApiCall, launch: Launch, type_info: InstanceTypeInfo | None) -> Finding | None:
    """Previous-generation instance types cost more per unit of work and lack current features."""
    if not call.succeeded or type_info is None or type_info.current_generation:
        return None
    return _finding(
        LAUNCH_PREVIOUS_GENERATION,
        title=f"Previous-generation instance type {launch.instance_type} launched in {call.region}",
        description=(
            f"{_who(call)} launched {len(launch.instance_ids) or 'an'} {launch.instance_type} instance(s), a "
            "previous-generation type."
        ),
        resources=_instances(call, launch) + _image(call, launch.image_id),
        evidence={"instanceType": launch.instance_type, "currentGeneration": False, "typeSource": type_info.source},
        recommendation="Use a current-generation instance type (with an HVM AMI).",
    )


# --- images -------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class TagPlan:
    """What to do to one resource's tags: add `apply`; `kept` were there already (never overwritten);
    `did_not_fit` are lacking but beyond EC2's limit."""

    apply: Mapping[str, str] = field(default_factory=dict)
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


# --- the guard itself ---------------------------------------------------------------------------------


# An AWS region as it ends a guard role's name: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-7...
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")

# service -> (what the guard calls the thing, the Resource kind in the alert)
_TAMPER_KINDS = {
    "lambda": ("function", "lambda-function"),
    "events": ("EventBridge rule", "events-rule"),
    "sns": ("alert topic", "sns-topic"),
    "kms": ("alert topic key", "kms-key"),
    "iam": ("IAM role", "iam-role"),
    "sqs": ("failed-events queue", "sqs-queue"),
    "dynamodb": ("idempotency table", "dynamodb-table"),
    "cloudtrail": ("CloudTrail trail", "cloudtrail-trail"),
}


@dataclass(frozen=True)
class Watched:
    """What one function watches for tampering: the guard's own things, each named as guard_change names it."""

    functions: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    """Key ids (an ARN given here is reduced to its id)."""
    role_prefixes: frozenset[str] = frozenset()
    """A role is watched when its name is one of these followed by a region (the guard in any region)."""
    queues: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    trails: bool = False
    """Every trail of the account: the guard cannot know which trail feeds EventBridge."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", frozenset(k for key in self.keys if (k := key_id(key))))

    @property
    def sources(self) -> tuple[str, ...]:
        """The CloudTrail eventSources this function must accept to see changes to what it watches."""
        wanted = (
            (contract.LAMBDA_SOURCE, self.functions),
            (contract.EVENTS_SOURCE, self.rules),
            (contract.SNS_SOURCE, self.topics),
            (contract.KMS_SOURCE, self.keys),
            (contract.IAM_SOURCE, self.role_prefixes),
            (contract.SQS_SOURCE, self.queues),
            (contract.DYNAMODB_SOURCE, self.tables),
            (contract.CLOUDTRAIL_SOURCE, self.trails),
        )
        return tuple(source for source, watched in wanted if watched)

    def covers(self, change: GuardChange) -> bool:
        target = change.target
        if target is None:
            return False
        if change.service == "iam":
            return any(
                target.startswith(prefix) and _REGION.fullmatch(target[len(prefix) :]) is not None
                for prefix in self.role_prefixes
            )
        if change.service == "cloudtrail":
            return self.trails
        watched: dict[str, frozenset[str]] = {
            "lambda": self.functions,
            "events": self.rules,
            "sns": self.topics,
            "kms": self.keys,
            "sqs": self.queues,
            "dynamodb": self.tables,
        }
        return target in watched.get(change.service, frozenset())


def guard_tampered(call: ApiCall, change: GuardChange, watched: Watched) -> Finding | None:
    """Nobody may disable, delete, retarget or change the guard's own rules and functions, its alert topics and
    their keys, its roles, queues and table, or a trail of the account, unnoticed."""
    if not call.succeeded or not watched.covers(change):
        return None
    assert change.target is not None
    kind, resource_kind = _TAMPER_KINDS[change.service]
    via = f" via {call.actor.invoked_by}" if call.actor.invoked_by else ""
    named = f" ({change.named})" if change.named and change.named != change.target else ""
    if change.service == "cloudtrail":
        consequence = (
            "EventBridge receives the API calls the guard checks only while a trail logs management events: if "
            "this trail was the one, AMI changes in the regions it covered now go unchecked"
        )
    else:
        consequence = "Until it is restored, AMI changes may go unchecked or their alerts undelivered"
    return _finding(
        GUARD_TAMPERED,
        title=f"AMI Guard {kind} {change.target} changed: {change.action} in {call.region}",
        description=(
            f"{_who(call)}{via} called {change.action} on the guard's own {kind} {change.target}{named}. "
            f"{consequence}. Expected during a deployment of the guard."
        ),
        resources=(Resource(resource_kind, change.target, call.region, call.account),),
        evidence={"action": change.action, "eventName": call.event_name, "request": dict(call.request)},
        recommendation=(
            "If this was not a deployment of the guard (cdk deploy), restore it (cdk deploy; for a trail, "
            "StartLogging or restore its settings) and find out who holds the permission that allowed the call."
        ),
    )
