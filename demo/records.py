"""CloudTrail records for what the scenario does, shaped like the real ones in ../shared/cloudtrail-samples
(field names, nesting, CloudTrail's {"items": [...]} lists, the identity block), as tests/records.py does,
but for any account, region and time: the scenario records what it really did in the emulated account.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DETAIL_TYPE = "AWS API Call via CloudTrail"
SOURCE = "aws.ec2"

PV_ON_M5_MESSAGE = (
    "Virtualization type 'hvm' is required for instances of type 'm5.large'. Ensure that you are using an AMI "
    "with virtualization type 'hvm'. For more information, see Linux AMI virtualization types."
)
"""What EC2 says when RunInstances starts a paravirtual AMI on a type that runs only HVM (as in tests/records.py)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Trail:
    """Writes the records CloudTrail would log for one principal of one account."""

    account: str
    role_name: str = "PlatformAdmin"
    session_name: str = "alice"
    source_ip: str = "203.0.113.7"
    user_agent: str = "aws-cli/2.17.0 md/Botocore#1.35.0 os/linux"

    @property
    def actor_arn(self) -> str:
        return f"arn:aws:sts::{self.account}:assumed-role/{self.role_name}/{self.session_name}"

    def identity(self) -> dict[str, Any]:
        return {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLEID:{self.session_name}",
            "arn": self.actor_arn,
            "accountId": self.account,
            "accessKeyId": "ASIAEXAMPLEKEY",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEID",
                    "arn": f"arn:aws:iam::{self.account}:role/{self.role_name}",
                    "accountId": self.account,
                    "userName": self.role_name,
                },
                "attributes": {"creationDate": _now(), "mfaAuthenticated": "true"},
            },
        }

    def record(
        self,
        event_name: str,
        region: str,
        request: Mapping[str, Any] | None,
        response: Mapping[str, Any] | None,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        service: str = "ec2",
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": self.identity(),
            "eventTime": _now(),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": event_name,
            "awsRegion": region,
            "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent,
            "requestParameters": dict(request) if request is not None else None,
            "responseElements": dict(response) if response is not None else None,
            "requestID": _request_id(),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"{service}.{region}.amazonaws.com",
            },
        }
        if error_code:
            rec["errorCode"] = error_code
            rec["errorMessage"] = error_message or ""
        return rec

    # --- one builder per API call -----------------------------------------------------------------------

    def modify_image_attribute(self, region: str, image_id: str, add: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        request = {
            "imageId": image_id,
            "attributeType": "launchPermission",
            "launchPermission": {"add": {"items": [dict(item) for item in add]}},
        }
        return self.record("ModifyImageAttribute", region, request, {"requestId": _request_id(), "_return": True})

    def modify_snapshot_attribute(
        self, region: str, snapshot_id: str, add: Sequence[Mapping[str, str]]
    ) -> dict[str, Any]:
        request = {
            "snapshotId": snapshot_id,
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [dict(item) for item in add]}},
        }
        return self.record("ModifySnapshotAttribute", region, request, {"requestId": _request_id(), "_return": True})

    def disable_image_block_public_access(self, region: str) -> dict[str, Any]:
        return self.record(
            "DisableImageBlockPublicAccess",
            region,
            {"DisableImageBlockPublicAccessRequest": ""},
            {"DisableImageBlockPublicAccessResponse": {"imageBlockPublicAccessState": "unblocked"}},
        )

    def register_image(self, region: str, image_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """`request` in CloudTrail's spelling (name, architecture, rootDeviceName, blockDeviceMapping...)."""
        return self.record("RegisterImage", region, request, {"requestId": _request_id(), "imageId": image_id})

    def copy_image(
        self,
        region: str,
        new_image_id: str,
        *,
        source_image_id: str,
        source_region: str,
        name: str,
        copy_image_tags: bool | None = None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "sourceRegion": source_region,
            "sourceImageId": source_image_id,
            "name": name,
            "clientToken": str(uuid.uuid4()),
        }
        if copy_image_tags is not None:
            request["copyImageTags"] = copy_image_tags
        return self.record("CopyImage", region, request, {"requestId": _request_id(), "imageId": new_image_id})

    def run_instances(
        self,
        region: str,
        *,
        image_id: str,
        instance_type: str,
        reservation: Mapping[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> dict[str, Any]:
        """A launch as CloudTrail logs it; `reservation` is the RunInstances response (boto3's shape), absent
        when the call failed."""
        request = {
            "instancesSet": {"items": [{"imageId": image_id, "minCount": 1, "maxCount": 1}]},
            "instanceType": instance_type,
            "blockDeviceMapping": {},
            "monitoring": {"enabled": False},
            "disableApiTermination": False,
            "disableApiStop": False,
            "clientToken": str(uuid.uuid4()),
        }
        response = None
        if reservation is not None:
            response = {
                "requestId": _request_id(),
                "reservationId": reservation.get("ReservationId"),
                "ownerId": reservation.get("OwnerId", self.account),
                "groupSet": {},
                "instancesSet": {"items": [_instance_item(i) for i in reservation.get("Instances", [])]},
            }
        return self.record(
            "RunInstances", region, request, response, error_code=error_code, error_message=error_message
        )

    def newer_ec2_call(
        self, event_name: str, region: str, params: Mapping[str, Any] | str, response: Any
    ) -> dict[str, Any]:
        """A newer EC2 call, its parameters wrapped in an object named after the request, as CloudTrail logs them."""
        return self.record(event_name, region, {f"{event_name}Request": params}, {f"{event_name}Response": response})

    def recycle_bin_call(self, event_name: str, region: str, identifier: str) -> dict[str, Any]:
        """A Recycle Bin call, in the lowerCamelCase CloudTrail logs it with (the EBS user guide's examples)."""
        return self.record(event_name, region, {"identifier": identifier}, None, service="rbin")

    def disable_rule(self, region: str, rule_name: str) -> dict[str, Any]:
        """EventBridge's DisableRule, as CloudTrail logs it (source aws.events on the bus)."""
        return self.record("DisableRule", region, {"name": rule_name}, None, service="events")


def _instance_item(instance: Mapping[str, Any]) -> dict[str, Any]:
    """One instance of a RunInstances response, from boto3's spelling to CloudTrail's."""
    item: dict[str, Any] = {
        "instanceId": instance.get("InstanceId"),
        "imageId": instance.get("ImageId"),
        "instanceState": {
            "code": instance.get("State", {}).get("Code", 0),
            "name": instance.get("State", {}).get("Name", "pending"),
        },
        "amiLaunchIndex": instance.get("AmiLaunchIndex", 0),
        "productCodes": {},
        "instanceType": instance.get("InstanceType"),
        "placement": {
            "availabilityZone": instance.get("Placement", {}).get("AvailabilityZone"),
            "tenancy": instance.get("Placement", {}).get("Tenancy", "default"),
        },
        "monitoring": {"state": "disabled"},
        "architecture": instance.get("Architecture"),
        "rootDeviceType": instance.get("RootDeviceType"),
        "rootDeviceName": instance.get("RootDeviceName"),
        "blockDeviceMapping": {},
        "virtualizationType": instance.get("VirtualizationType"),
        "hypervisor": instance.get("Hypervisor"),
    }
    return {key: value for key, value in item.items() if value is not None}


def put_events_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """The PutEvents entry that delivers a CloudTrail record the way CloudTrail hands it to EventBridge."""
    return {
        "Source": "aws." + str(record["eventSource"]).split(".", 1)[0],
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(record),
        "Time": datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        "Resources": [],
    }
