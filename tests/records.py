"""The project's own CloudTrail records, written by us and shaped like the real ones in
../shared/cloudtrail-samples (field names, nesting, CloudTrail's {"items": [...]} lists, identity blocks).

Each builder returns a raw record; `envelope()` wraps one the way EventBridge delivers it.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

ACCOUNT = "111122223333"
REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
ROLE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/PlatformAdmin/alice"


def _identity() -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEID:alice",
        "arn": ROLE_ARN,
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEKEY",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEID",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/PlatformAdmin",
                "accountId": ACCOUNT,
                "userName": "PlatformAdmin",
            },
            "attributes": {"creationDate": "2026-11-20T09:00:00Z", "mfaAuthenticated": "true"},
        },
    }


def record(
    event_name: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    *,
    region: str = REGION,
    error_code: str | None = None,
    error_message: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": _identity(),
        "eventTime": "2026-11-20T09:15:42Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.17.0 md/Botocore#1.35.0 os/linux",
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error_code:
        rec["errorCode"] = error_code
        rec["errorMessage"] = error_message or ""
    return rec


def envelope(rec: dict[str, Any]) -> dict[str, Any]:
    return envelope_of(copy.deepcopy(rec))


def envelope_of(detail: Any) -> dict[str, Any]:
    """An EventBridge envelope around anything (the record as is, even a malformed one)."""
    rec = detail if isinstance(detail, dict) else {}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + str(rec.get("eventSource", "ec2.amazonaws.com")).split(".", 1)[0],
        "account": rec.get("recipientAccountId", ACCOUNT),
        "time": rec.get("eventTime"),
        "region": rec.get("awsRegion", REGION),
        "resources": [],
        "detail": detail,
    }


def modify_image_attribute(image_id: str, add: list[dict[str, str]] | None = None, **kw: Any) -> dict[str, Any]:
    request = {"imageId": image_id, "attributeType": "launchPermission", "launchPermission": {"add": {"items": add}}}
    ok = {"requestId": str(uuid.uuid4()), "_return": True}
    return record("ModifyImageAttribute", request, None if kw.get("error_code") else ok, **kw)


def modify_snapshot_attribute(snapshot_id: str, add: list[dict[str, str]], **kw: Any) -> dict[str, Any]:
    request = {
        "snapshotId": snapshot_id,
        "attributeType": "CREATE_VOLUME_PERMISSION",
        "createVolumePermission": {"add": {"items": add}},
    }
    return record("ModifySnapshotAttribute", request, {"requestId": str(uuid.uuid4()), "_return": True}, **kw)


def disable_block_public_access(**kw: Any) -> dict[str, Any]:
    return record(
        "DisableImageBlockPublicAccess",
        {"DisableImageBlockPublicAccessRequest": ""},
        {"DisableImageBlockPublicAccessResponse": {"imageBlockPublicAccessState": "unblocked"}},
        **kw,
    )


# --- the account's guardrails (newer EC2 APIs record their parameters wrapped in "<EventName>Request"; `flat`
# records them at the top, as some producers do) ---


def _newer(
    event_name: str, params: dict[str, Any] | str, response: dict[str, Any] | None, flat: bool, **kw: Any
) -> dict[str, Any]:
    request: dict[str, Any] = dict(params) if flat and isinstance(params, dict) else {f"{event_name}Request": params}
    wrapped = {f"{event_name}Response": response} if response is not None else None
    return record(event_name, request, wrapped, **kw)


def disable_snapshot_block_public_access(**kw: Any) -> dict[str, Any]:
    return _newer("DisableSnapshotBlockPublicAccess", "", {"state": "unblocked"}, False, **kw)


def enable_snapshot_block_public_access(state: str | None, *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    params = {"State": state} if state is not None else {}
    return _newer("EnableSnapshotBlockPublicAccess", params, {"state": state} if state else None, flat, **kw)


def disable_allowed_images(**kw: Any) -> dict[str, Any]:
    return _newer("DisableAllowedImagesSettings", "", {"allowedImagesSettingsState": "disabled"}, False, **kw)


def enable_allowed_images(state: str | None, *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    params = {"AllowedImagesSettingsState": state} if state is not None else {}
    return _newer("EnableAllowedImagesSettings", params, {"allowedImagesSettingsState": state}, flat, **kw)


def replace_image_criteria(providers: list[str], *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    params = {"ImageCriterion": [{"ImageProvider": providers}]}
    return _newer("ReplaceImageCriteriaInAllowedImagesSettings", params, {"_return": True}, flat, **kw)


def disable_deregistration_protection(image_id: str, *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    response = {"_return": "disabled"}
    return _newer("DisableImageDeregistrationProtection", {"ImageId": image_id}, response, flat, **kw)


def unlock_snapshot(snapshot_id: str, *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    return _newer("UnlockSnapshot", {"SnapshotId": snapshot_id}, {"snapshotId": snapshot_id}, flat, **kw)


def create_store_image_task(image_id: str, bucket: str, *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    response = {"objectKey": f"{image_id}.bin"}
    return _newer("CreateStoreImageTask", {"ImageId": image_id, "Bucket": bucket}, response, flat, **kw)


def export_image(image_id: str, bucket: str, *, flat: bool = False, **kw: Any) -> dict[str, Any]:
    params = {
        "ImageId": image_id,
        "DiskImageFormat": "VMDK",
        "S3ExportLocation": {"S3Bucket": bucket, "S3Prefix": "exports/"},
    }
    return _newer("ExportImage", params, {"exportImageTaskId": "export-ami-0123456789abcdef0"}, flat, **kw)


def recycle_bin_call(event_name: str, identifier: str, resource_type: str | None = None, **kw: Any) -> dict[str, Any]:
    """A Recycle Bin call as CloudTrail records it (lowerCamelCase, as in the EBS user guide's examples)."""
    request: dict[str, Any] = {"identifier": identifier}
    if resource_type is not None:
        request["resourceType"] = resource_type
    if event_name == "UpdateRule":
        request["retentionPeriod"] = {"retentionPeriodValue": 1, "retentionPeriodUnit": "DAYS"}
    rec = record(event_name, request, None, **kw)
    rec["eventSource"] = "rbin.amazonaws.com"
    return rec


def register_image(
    image_id: str,
    *,
    virtualization_type: str | None = None,
    image_location: str | None = None,
    tags: dict[str, str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    request: dict[str, Any] = {"name": "golden-2026-11-20", "architecture": "x86_64"}
    if image_location:
        request["imageLocation"] = image_location
    else:
        request["rootDeviceName"] = "/dev/xvda"
        request["blockDeviceMapping"] = {
            "items": [{"deviceName": "/dev/xvda", "ebs": {"snapshotId": "snap-0a1b2c3d4e5f60718", "volumeSize": 8}}]
        }
    if virtualization_type:
        request["virtualizationType"] = virtualization_type
    if tags:
        request["tagSpecificationSet"] = _tag_spec(tags)
    return record("RegisterImage", request, {"requestId": str(uuid.uuid4()), "imageId": image_id}, **kw)


def create_image(image_id: str, *, tags: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"instanceId": "i-0123456789abcdef0", "name": "web-2026-11-20", "noReboot": True}
    if tags:
        request["tagSpecificationSet"] = _tag_spec(tags)
    return record("CreateImage", request, {"requestId": str(uuid.uuid4()), "imageId": image_id}, **kw)


def copy_image(
    new_image_id: str,
    source_image_id: str,
    *,
    source_region: str = OTHER_REGION,
    copy_image_tags: bool | None = None,
    tags: dict[str, str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "sourceRegion": source_region,
        "sourceImageId": source_image_id,
        "name": "golden-copy",
        "clientToken": str(uuid.uuid4()),
    }
    if copy_image_tags is not None:
        request["copyImageTags"] = copy_image_tags
    if tags:
        request["tagSpecificationSet"] = _tag_spec(tags)
    return record("CopyImage", request, {"requestId": str(uuid.uuid4()), "imageId": new_image_id}, **kw)


def run_instances(
    image_id: str,
    instance_type: str,
    *,
    virtualization_type: str | None = "hvm",
    instance_ids: tuple[str, ...] = ("i-0aaaaaaaaaaaaaaa1",),
    error_code: str | None = None,
    error_message: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    request = {
        "instancesSet": {"items": [{"imageId": image_id, "minCount": 1, "maxCount": len(instance_ids)}]},
        "instanceType": instance_type,
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
    }
    response = None
    if not error_code:
        items = []
        for n, instance_id in enumerate(instance_ids):
            item: dict[str, Any] = {
                "instanceId": instance_id,
                "imageId": image_id,
                "instanceState": {"code": 0, "name": "pending"},
                "amiLaunchIndex": n,
                "instanceType": instance_type,
                "hypervisor": "xen",
                "architecture": "x86_64",
            }
            if virtualization_type:
                item["virtualizationType"] = virtualization_type
            items.append(item)
        response = {"requestId": str(uuid.uuid4()), "ownerId": ACCOUNT, "instancesSet": {"items": items}}
    return record("RunInstances", request, response, error_code=error_code, error_message=error_message, **kw)


def _tag_spec(tags: dict[str, str]) -> dict[str, Any]:
    return {"items": [{"resourceType": "image", "tags": [{"key": k, "value": v} for k, v in tags.items()]}]}


PV_ON_M5_MESSAGE = (
    "Virtualization type 'hvm' is required for instances of type 'm5.large'. Ensure that you are using an AMI "
    "with virtualization type 'hvm'. For more information, see Linux AMI virtualization types."
)


def lambda_call(event_name: str, function_name: str, **kw: Any) -> dict[str, Any]:
    """A Lambda management call as CloudTrail records it (event names carry API-version suffixes)."""
    rec = record(event_name, {"functionName": function_name, "timeout": 3}, {"functionName": function_name}, **kw)
    rec["eventSource"] = "lambda.amazonaws.com"
    return rec


def events_call(event_name: str, rule_name: str, **kw: Any) -> dict[str, Any]:
    key = "rule" if event_name in ("RemoveTargets", "PutTargets") else "name"
    rec = record(event_name, {key: rule_name}, None, **kw)
    rec["eventSource"] = "events.amazonaws.com"
    return rec


def envelope_for_source(rec: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's envelope for a non-EC2 CloudTrail record (source aws.lambda / aws.events)."""
    env = envelope(rec)
    env["source"] = "aws." + rec["eventSource"].split(".")[0]
    return env


def service_call(
    source: str,
    event_name: str,
    request: dict[str, Any] | None,
    *,
    resources: list[str] | None = None,
    additional: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A management call on another service, shaped like CloudTrail's records of it (KMS records name the key in
    `resources`, with accountId and type, as in the KMS developer guide's examples; RetireGrant by grant token has
    null requestParameters and the grant id in additionalEventData)."""
    rec = record(event_name, request, None, **kw)
    rec["eventSource"] = source
    if resources is not None:
        rec["resources"] = [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": arn} for arn in resources]
    if additional is not None:
        rec["additionalEventData"] = additional
    return rec
