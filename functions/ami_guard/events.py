"""CloudTrail records, in any shape a user or EventBridge hands us, to small frozen dataclasses. Pure.

Nothing here raises on odd field shapes: a missing, null or wrongly typed field reads as absent.
Only a record that cannot be an EC2 API call at all raises SkipEvent, with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ami_guard import contract

DRY_RUN_ERROR = "DryRunOperation"


class SkipEvent(Exception):
    """The record is not something the guard evaluates. `quiet` marks the expected case (not an EC2 call)."""

    def __init__(self, reason: str, *, quiet: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.quiet = quiet


@dataclass(frozen=True)
class Actor:
    arn: str | None = None
    identity_type: str | None = None
    principal_id: str | None = None
    account_id: str | None = None
    user_name: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    invoked_by: str | None = None

    def describe(self) -> str:
        return self.arn or self.user_name or self.principal_id or self.invoked_by or "an unknown principal"


@dataclass(frozen=True)
class ApiCall:
    """One CloudTrail API-call record, normalised."""

    event_id: str
    event_name: str
    event_source: str
    region: str
    account: str | None
    event_time: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    actor: Actor = field(default_factory=Actor)
    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, Any] = field(default_factory=dict)
    resources: tuple[str, ...] = ()
    """The ARNs in the record's `resources` list (KMS names its key there, even when the request does not)."""

    @property
    def dry_run(self) -> bool:
        return self.error_code is not None and self.error_code.endswith(DRY_RUN_ERROR)

    @property
    def failed(self) -> bool:
        """The call changed nothing. A dry run is neither a failure nor a change: check `dry_run` first."""
        return self.error_code is not None and not self.dry_run

    @property
    def succeeded(self) -> bool:
        return self.error_code is None


# --- shapes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A record as found in a document, with what its wrapper said about it."""

    record: Any
    account: str | None = None
    region: str | None = None


def iter_records(document: Any) -> Iterator[Envelope]:
    """Every CloudTrail record inside a document of any shape we know.

    Shapes: a raw record; an EventBridge envelope (record in `detail`); a trail log file
    (`{"Records": [...]}`); CloudTrail Event history / LookupEvents output (`{"Events": [...]}` whose
    items carry the record as a JSON string in `CloudTrailEvent`); a list of any of these.
    Anything else is yielded as-is so that parse_call can say why it is skipped.
    """
    if isinstance(document, list):
        for item in document:
            yield from iter_records(item)
        return
    if not isinstance(document, Mapping):
        yield Envelope(document)
        return
    if isinstance(document.get("Records"), list):
        for item in document["Records"]:
            yield from iter_records(item)
    elif isinstance(document.get("Events"), list) and "eventName" not in document:
        for item in document["Events"]:
            yield from iter_records(item)
    elif "detail-type" in document or ("detail" in document and "source" in document):
        yield Envelope(document, account=_str(document.get("account")), region=_str(document.get("region")))
    elif "CloudTrailEvent" in document:
        inner = document["CloudTrailEvent"]
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except json.JSONDecodeError:
                yield Envelope(document)
                return
        yield Envelope(inner)
    else:
        yield Envelope(document)


def parse_call(envelope: Envelope, sources: tuple[str, ...] = (contract.EVENT_SOURCE,)) -> ApiCall:
    """The ApiCall in an envelope from one of `sources` (EC2 by default), or SkipEvent with the reason."""
    record = envelope.record
    if isinstance(record, Mapping) and ("detail-type" in record or "detail" in record):
        detail_type = record.get("detail-type")
        if detail_type != contract.DETAIL_TYPE:
            raise SkipEvent(f"not a CloudTrail API call (detail-type {detail_type!r})", quiet=True)
        record = record.get("detail")
    if not isinstance(record, Mapping):
        raise SkipEvent(f"the record is a {type(record).__name__}, not a JSON object")
    event_source = _str(record.get("eventSource"))
    event_name = _str(record.get("eventName"))
    if event_source not in sources:
        raise SkipEvent(f"not an API call this guard evaluates (eventSource {event_source!r})", quiet=True)
    if not event_name:
        raise SkipEvent("the record has no eventName")
    region = _str(record.get("awsRegion")) or _str(envelope.region)
    if not region:
        raise SkipEvent("the record has no awsRegion")
    identity = _map(record.get("userIdentity"))
    account = _str(record.get("recipientAccountId")) or _str(envelope.account) or _str(identity.get("accountId"))
    actor = Actor(
        arn=_str(identity.get("arn")),
        identity_type=_str(identity.get("type")),
        principal_id=_str(identity.get("principalId")),
        account_id=_str(identity.get("accountId")),
        user_name=_str(identity.get("userName")),
        source_ip=_str(record.get("sourceIPAddress")),
        user_agent=_str(record.get("userAgent")),
        invoked_by=_str(identity.get("invokedBy")),
    )
    return ApiCall(
        event_id=_str(record.get("eventID")) or "unknown",
        event_name=event_name,
        event_source=event_source,
        region=region,
        account=account,
        event_time=_str(record.get("eventTime")),
        request_id=_str(record.get("requestID")),
        error_code=_str(record.get("errorCode")),
        error_message=_str(record.get("errorMessage")),
        actor=actor,
        request=_map(record.get("requestParameters")),
        response=_map(record.get("responseElements")),
        resources=tuple(
            arn
            for item in _list(record.get("resources"))
            if isinstance(item, Mapping) and (arn := _str(item.get("ARN")) or _str(item.get("arn")))
        ),
    )


# --- changes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principals:
    """Who a launch or create-volume permission names."""

    groups: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    organization_arns: tuple[str, ...] = ()
    ou_arns: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.user_ids or self.organization_arns or self.ou_arns)

    @property
    def public(self) -> bool:
        return any(group.lower() == "all" for group in self.groups)

    @property
    def named(self) -> tuple[str, ...]:
        """The accounts, organizations and OUs, in that order (groups aside)."""
        return self.user_ids + self.organization_arns + self.ou_arns

    def without(self, other: Principals) -> Principals:
        """These principals less those in `other`."""
        return Principals(
            groups=tuple(g for g in self.groups if g not in other.groups),
            user_ids=tuple(u for u in self.user_ids if u not in other.user_ids),
            organization_arns=tuple(a for a in self.organization_arns if a not in other.organization_arns),
            ou_arns=tuple(a for a in self.ou_arns if a not in other.ou_arns),
        )

    def as_dict(self) -> dict[str, list[str]]:
        out = {
            "groups": list(self.groups),
            "userIds": list(self.user_ids),
            "organizationArns": list(self.organization_arns),
            "organizationalUnitArns": list(self.ou_arns),
        }
        return {key: value for key, value in out.items() if value}


@dataclass(frozen=True)
class PermissionChange:
    """A ModifyImageAttribute launchPermission or ModifySnapshotAttribute createVolumePermission change."""

    resource_id: str | None
    added: Principals
    removed: Principals
    unread_items: int = 0
    """Permission items that named no principal the guard reads (a shape it does not know): not evaluated."""


@dataclass(frozen=True)
class UnreadChange:
    """The record does not say which attribute the call changed, or how: its permission checks are not decided."""

    reason: str


_LAUNCH_PERMISSION = ("launchpermission", "launch_permission")
_CREATE_VOLUME_PERMISSION = ("createvolumepermission", "create_volume_permission")
# Attributes that are not permissions (botocore's ModifyImageAttribute request and its older forms; the
# snapshot attribute enum): a call that changes one of them has nothing to check.
_OTHER_IMAGE_ATTRIBUTES = ("description", "kernel", "ramdisk", "productcodes", "product_codes", "imdssupport")
_OTHER_SNAPSHOT_ATTRIBUTES = ("productcodes", "product_codes")


def launch_permission_change(call: ApiCall) -> PermissionChange | None:
    """The launch-permission change a ModifyImageAttribute makes, or None (another attribute, or unreadable)."""
    change = read_launch_permission_change(call)
    return change if isinstance(change, PermissionChange) else None


def create_volume_permission_change(call: ApiCall) -> PermissionChange | None:
    """The create-volume-permission change a ModifySnapshotAttribute makes, or None."""
    change = read_create_volume_permission_change(call)
    return change if isinstance(change, PermissionChange) else None


def read_launch_permission_change(call: ApiCall) -> PermissionChange | UnreadChange | None:
    """The launch-permission change; None when the record names another attribute (nothing to check); or why
    the record does not say."""
    return _permission_change(
        call, "launchPermission", _LAUNCH_PERMISSION, _OTHER_IMAGE_ATTRIBUTES, _str(call.request.get("imageId"))
    )


def read_create_volume_permission_change(call: ApiCall) -> PermissionChange | UnreadChange | None:
    """The create-volume-permission change; None for another attribute; or why the record does not say."""
    return _permission_change(
        call,
        "createVolumePermission",
        _CREATE_VOLUME_PERMISSION,
        _OTHER_SNAPSHOT_ATTRIBUTES,
        _str(call.request.get("snapshotId")),
    )


def _permission_change(
    call: ApiCall,
    key: str,
    attribute_names: tuple[str, ...],
    other_attributes: tuple[str, ...],
    resource_id: str | None,
) -> PermissionChange | UnreadChange | None:
    request = call.request
    if not request:
        return UnreadChange("the record carries no requestParameters")
    named = _str(request.get("attributeType")) or _str(request.get("attribute"))
    attribute = (named or "").lower()
    carries_block = request.get(key) not in (None, "", {}, [])
    if attribute and attribute not in attribute_names:
        if carries_block:
            return UnreadChange(f"the record names attribute {named!r} but carries a {key} block")
        if attribute in other_attributes:
            return None
        return UnreadChange(f"attribute {named!r} is not one the guard knows")
    block = _map(request.get(key))
    if block:
        added, unread_added = _read_principals(block.get("add"))
        removed, unread_removed = _read_principals(block.get("remove"))
        if not added and not removed:
            return UnreadChange(f"the {key} block names no principal the guard reads")
        return PermissionChange(resource_id, added, removed, unread_added + unread_removed)
    if carries_block:
        return UnreadChange(f"the {key} block cannot be read")
    # The API's older form: OperationType with UserGroup.N / UserId.N (CloudTrail: operationType, userGroup...).
    operation = _str(request.get("operationType"))
    if operation is not None:
        if operation.lower() not in ("add", "remove"):
            return UnreadChange(f"operationType {operation!r} is neither add nor remove")
        principals = _principals(request)
        if not principals:
            return UnreadChange(f"the {operation} names no principal the guard reads")
        empty = Principals()
        adding = operation.lower() == "add"
        return PermissionChange(resource_id, principals if adding else empty, empty if adding else principals)
    if attribute:
        return UnreadChange(f"the record names attribute {named!r} but no change to it")
    if any(str(name).lower() in other_attributes for name in request):
        return None
    return UnreadChange("the record names no attribute that the call changes")


_PRINCIPAL_KEYS: dict[str, tuple[str, ...]] = {
    "groups": ("group", "userGroup", "userGroups", "groups"),
    "user_ids": ("userId", "userIds", "user"),
    "organization_arns": ("organizationArn", "organizationArns"),
    "ou_arns": ("organizationalUnitArn", "organizationalUnitArns"),
}


def _principals(value: Any) -> Principals:
    """Principals from `{"items": [{"group": "all"}, {"userId": "1234..."}]}`, a bare list, or flat keys."""
    found: dict[str, list[str]] = {name: [] for name in _PRINCIPAL_KEYS}
    for item in _items(value) or ([value] if isinstance(value, Mapping) else []):
        if not isinstance(item, Mapping):
            continue
        for name, keys in _PRINCIPAL_KEYS.items():
            for key in keys:
                for text in _strings(item.get(key)):
                    if text not in found[name]:
                        found[name].append(text)
    return Principals(**{name: tuple(values) for name, values in found.items()})


def _read_principals(value: Any) -> tuple[Principals, int]:
    """`_principals` of a permission list, and how many of its items named no principal the guard reads."""
    items = _items(value) or ([value] if isinstance(value, Mapping) and value else [])
    unread = sum(1 for item in items if not _principals({"items": [item]}))
    return _principals(value), unread


@dataclass(frozen=True)
class LaunchTemplateRef:
    template_id: str | None
    template_name: str | None
    version: str | None


@dataclass(frozen=True)
class Launch:
    """Instances of one image and one instance type started (or attempted) by a RunInstances."""

    image_id: str | None
    instance_type: str | None
    virtualization_type: str | None = None
    instance_ids: tuple[str, ...] = ()
    launch_template: LaunchTemplateRef | None = None


def launches(call: ApiCall) -> list[Launch]:
    """What a RunInstances launched: from the response when there is one, else from the request."""
    request = call.request
    template_block = _map(request.get("launchTemplate"))
    template = (
        LaunchTemplateRef(
            template_id=_str(template_block.get("launchTemplateId")),
            template_name=_str(template_block.get("launchTemplateName")),
            version=_str(template_block.get("version")),
        )
        if template_block
        else None
    )
    requested_type = _scalar(request.get("instanceType"))
    requested_images = [
        image for item in _items(request.get("instancesSet")) if (image := _scalar(_map(item).get("imageId")))
    ]
    if not requested_images and (image := _scalar(request.get("imageId"))):
        requested_images.append(image)

    grouped: dict[tuple[str | None, str | None, str | None], list[str]] = {}
    for item in _items(call.response.get("instancesSet")):
        item = _map(item)
        key = (
            _scalar(item.get("imageId")) or (requested_images[0] if len(requested_images) == 1 else None),
            _scalar(item.get("instanceType")) or requested_type,
            _scalar(item.get("virtualizationType")),
        )
        ids = grouped.setdefault(key, [])
        if instance_id := _scalar(item.get("instanceId")):
            ids.append(instance_id)
    if grouped:
        return [Launch(image, itype, virt, tuple(ids), template) for (image, itype, virt), ids in grouped.items()]
    images: list[str | None] = list(dict.fromkeys(requested_images)) or [None]
    if images == [None] and requested_type is None and template is None:
        return []
    return [Launch(image, requested_type, None, (), template) for image in images]


@dataclass(frozen=True)
class NewImage:
    """The AMI a RegisterImage, CreateImage or CopyImage made."""

    image_id: str | None
    name: str | None
    tags: Mapping[str, str]
    virtualization_type: str | None = None  # RegisterImage only; None when omitted (the API then uses paravirtual)
    image_location: str | None = None
    root_device_name: str | None = None
    ebs_device_names: tuple[str, ...] = ()
    source_image_id: str | None = None  # CopyImage only
    source_region: str | None = None
    copy_image_tags: bool = False

    @property
    def instance_store_backed(self) -> bool:
        """An S3-manifest image without an EBS root device."""
        if not self.image_location:
            return False
        if self.root_device_name is None:
            return not self.ebs_device_names
        return self.root_device_name not in self.ebs_device_names


def new_image(call: ApiCall) -> NewImage:
    request = call.request
    ebs_devices = tuple(
        name
        for item in _items(request.get("blockDeviceMapping") or request.get("blockDeviceMappingSet"))
        if (entry := _map(item)) and _map(entry.get("ebs")) and (name := _str(entry.get("deviceName")))
    )
    return NewImage(
        image_id=_str(call.response.get("imageId")),
        name=_str(request.get("name")),
        tags=_tag_specifications(request.get("tagSpecificationSet") or request.get("tagSpecifications"), "image"),
        virtualization_type=_str(request.get("virtualizationType")),
        image_location=_str(request.get("imageLocation")),
        root_device_name=_str(request.get("rootDeviceName")),
        ebs_device_names=ebs_devices,
        source_image_id=_str(request.get("sourceImageId")),
        source_region=_str(request.get("sourceRegion")) or (call.region if "sourceImageId" in request else None),
        copy_image_tags=_truthy(request.get("copyImageTags")),
    )


def _tag_specifications(value: Any, resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in _items(value):
        spec = _map(spec)
        kind = (_str(spec.get("resourceType")) or resource_type).lower()
        if kind != resource_type:
            continue
        for tag in _items(spec.get("tags") or spec.get("tagSet") or spec.get("tag")):
            tag = _map(tag)
            key = _str(tag.get("key") if "key" in tag else tag.get("Key"))
            if key is not None:
                raw_value = tag.get("value") if "value" in tag else tag.get("Value")
                tags[key] = raw_value if isinstance(raw_value, str) else ""
    return tags


# --- tolerant readers ---------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _scalar(value: Any) -> str | None:
    """A string field that some producers wrap as {"value": ...}."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return _str(value)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(value: Any) -> list[Any]:
    """CloudTrail's `{"items": [...]}` lists, or a bare list."""
    if isinstance(value, Mapping):
        value = value.get("items")
    return list(value) if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | Mapping):
        out: list[str] = []
        for item in _items(value):
            if isinstance(item, str) and item:
                out.append(item)
            elif isinstance(item, Mapping):
                out.extend(text for v in item.values() if (text := _str(v)))
        return out
    return []


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@dataclass(frozen=True)
class GuardChange:
    """A call that changes something the guard depends on, with that thing named as the guard names it.

    `service` is the eventSource's first label (lambda, events, sns, kms, iam, sqs, dynamodb, cloudtrail).
    `target` is the bare name (function, rule, role, queue, table, trail), the topic ARN (for a subscription: the
    ARN of the topic it belongs to) or the key id; None when the record does not name it. `named` is what the
    record named, when it differs from `target` (a subscription ARN, a queue URL).
    """

    service: str
    action: str  # the event name without Lambda's API-version suffix
    target: str | None
    named: str | None = None


_API_VERSION_SUFFIX = re.compile(r"\d{8}(v\d+)?$")


def guard_change(call: ApiCall) -> GuardChange | None:
    """The thing a call on a watched service changes, or None for a call that is not watched."""
    request = call.request
    action = _API_VERSION_SUFFIX.sub("", call.event_name)
    source = call.event_source
    if source == contract.LAMBDA_SOURCE:
        if not action.startswith(contract.LAMBDA_TAMPER_PREFIXES):
            return None
        return GuardChange("lambda", action, _function_name(_str(request.get("functionName"))))
    if source == contract.EVENTS_SOURCE:
        if action not in contract.EVENTS_TAMPER_EVENTS:
            return None
        name = _str(request.get("rule")) if action in ("RemoveTargets", "PutTargets") else _str(request.get("name"))
        return GuardChange("events", action, _rule_name(name))
    if action not in contract.INFRASTRUCTURE_TAMPER_EVENTS.get(source, ()):
        return None
    service = source.split(".", 1)[0]
    if source == contract.SNS_SOURCE:
        subscription = _str(request.get("subscriptionArn"))
        if subscription is not None:
            # arn:aws:sns:<region>:<account>:<topic>:<subscription id>: the topic's ARN is everything before the id
            topic = subscription.rsplit(":", 1)[0] if subscription.count(":") >= 6 else None
            return GuardChange(service, action, topic, subscription)
        return GuardChange(service, action, _str(request.get("topicArn")) or _str(request.get("resourceArn")))
    if source == contract.KMS_SOURCE:
        # keyId (an id or an ARN; these calls take no alias), else the key CloudTrail names in `resources`
        # (RetireGrant by grant token records no request parameters).
        named = _str(request.get("keyId")) or next((arn for arn in call.resources if ":key/" in arn), None)
        return GuardChange(service, action, key_id(named), named)
    if source == contract.IAM_SOURCE:
        return GuardChange(service, action, _str(request.get("roleName")))
    if source == contract.SQS_SOURCE:
        url = _str(request.get("queueUrl"))
        # https://sqs.<region>.amazonaws.com/<account>/<name> (or a legacy host): the name is the last segment
        return GuardChange(service, action, url.rstrip("/").rsplit("/", 1)[-1] if url else None, url)
    if source == contract.DYNAMODB_SOURCE:
        name = _str(request.get("tableName"))
        arn = _str(request.get("resourceArn"))
        if name is None and arn is not None and ":table/" in arn:
            name = arn.split(":table/", 1)[1].split("/", 1)[0]
        return GuardChange(service, action, name)
    name = _str(request.get("name")) or _str(request.get("trailName"))
    # A trail is named by its name or its ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>)
    return GuardChange(service, action, name.split(":trail/", 1)[1] if name and ":trail/" in name else name, name)


def key_id(value: str | None) -> str | None:
    """'arn:aws:kms:eu-west-1:1:key/<id>' or '<id>' -> '<id>'."""
    if value is None:
        return None
    return value.split(":key/", 1)[1] if ":key/" in value else value


def _function_name(value: str | None) -> str | None:
    """'arn:aws:lambda:eu-west-1:1:function:f:live', '1:function:f' or 'f' -> 'f'."""
    if value is None:
        return None
    parts = value.split(":")
    if "function" in parts:
        index = parts.index("function")
        return parts[index + 1] if index + 1 < len(parts) else None
    return value


def _rule_name(value: str | None) -> str | None:
    """'arn:aws:events:eu-west-1:1:rule/bus/name', 'arn:...:rule/name' or 'name' -> 'name'."""
    if value is None:
        return None
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value
