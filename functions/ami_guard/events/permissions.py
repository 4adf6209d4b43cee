"""Permission changes: who a ModifyImageAttribute or ModifySnapshotAttribute adds and removes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ami_guard.events.calls import ApiCall
from ami_guard.events.fields import items as _items
from ami_guard.events.fields import mapping as _map
from ami_guard.events.fields import string as _str
from ami_guard.events.fields import strings as _strings
from ami_guard.events.principals import Principals


class PermissionChange(NamedTuple):
    """A ModifyImageAttribute launchPermission or ModifySnapshotAttribute createVolumePermission change."""

    resource_id: str | None
    added: Principals
    removed: Principals
    unread_items: int = 0
    """Permission items that named no principal the guard reads (a shape it does not know): not evaluated."""


class UnreadChange(NamedTuple):
    """The record does not say which attribute the call changed, or how: its permission checks are not decided."""

    reason: str


_LAUNCH_PERMISSION = ("launchpermission", "launch_permission")
_CREATE_VOLUME_PERMISSION = ("createvolumepermission", "create_volume_permission")
# Attributes that are not permissions (botocore's ModifyImageAttribute request and its older forms; the
# snapshot attribute enum): a call that changes one of them has nothing to check.
_OTHER_IMAGE_ATTRIBUTES = ("description", "kernel", "ramdisk", "productcodes", "product_codes", "imdssupport")
_OTHER_SNAPSHOT_ATTRIBUTES = ("productcodes", "product_codes")


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
    # dicts as ordered sets: a share with thousands of accounts is read in linear time, first occurrence kept
    found: dict[str, dict[str, None]] = {name: {} for name in _PRINCIPAL_KEYS}
    for item in _items(value) or ([value] if isinstance(value, Mapping) else []):
        if not isinstance(item, Mapping):
            continue
        for name, keys in _PRINCIPAL_KEYS.items():
            for key in keys:
                for text in _strings(item.get(key)):
                    found[name].setdefault(text)
    return Principals(**{name: tuple(values) for name, values in found.items()})


def _read_principals(value: Any) -> tuple[Principals, int]:
    """`_principals` of a permission list, and how many of its items named no principal the guard reads."""
    items = _items(value) or ([value] if isinstance(value, Mapping) and value else [])
    unread = sum(1 for item in items if not _principals({"items": [item]}))
    return _principals(value), unread
