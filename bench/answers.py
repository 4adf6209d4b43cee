"""What AWS answers in the benchmark, per (service, operation): the same facts for both tools.

Stdlib only: imported by the child processes of both benchmark environments.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from bench.aws_stub import Answer

ACCOUNT = "111122223333"  # tests/records.py ACCOUNT
REGION = "eu-west-1"
TRUSTED_ACCOUNT = "555566667777"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ami-guard-alerts"
TABLE = "ami-guard-idempotency"
SNAPSHOT_ID = "snap-0a1b2c3d4e5f60718"

# DescribeInstanceTypes facts for the types the benchmark's events use (AWS's values).
INSTANCE_TYPES: dict[str, tuple[list[str], bool]] = {
    "m4.large": (["hvm"], False),
    "m5.large": (["hvm"], True),
    "t3.micro": (["hvm"], True),
    "m3.medium": (["hvm", "paravirtual"], False),
}
_ids = itertools.count(1)


def _message_id(_: Mapping[str, Any]) -> dict[str, Any]:
    return {"MessageId": f"00000000-0000-0000-0000-{next(_ids):012d}"}


def _instance_types(params: Mapping[str, Any]) -> dict[str, Any]:
    found = []
    for name in params.get("InstanceTypes", []):
        if name in INSTANCE_TYPES:
            kinds, current = INSTANCE_TYPES[name]
            found.append({"InstanceType": name, "SupportedVirtualizationTypes": kinds, "CurrentGeneration": current})
    return {"InstanceTypes": found}


def _image(image_id: str) -> dict[str, Any]:
    return {
        "ImageId": image_id,
        "Name": "golden-2026-11-20",
        "OwnerId": ACCOUNT,
        "State": "available",
        "Public": True,
        "Architecture": "x86_64",
        "ImageType": "machine",
        "VirtualizationType": "hvm",
        "RootDeviceType": "ebs",
        "RootDeviceName": "/dev/xvda",
        "CreationDate": "2026-11-20T09:00:00.000Z",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAPSHOT_ID, "VolumeSize": 8}}],
        "Tags": [{"Key": "Owner", "Value": "platform"}],
    }


def _images(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"Images": [_image(image_id) for image_id in params.get("ImageIds", [])]}


def _launch_permissions(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"ImageId": params.get("ImageId"), "LaunchPermissions": [{"Group": "all"}]}


def _instances(params: Mapping[str, Any]) -> dict[str, Any]:
    instances = [
        {
            "InstanceId": instance_id,
            "ImageId": "ami-0123456789abcdef0",
            "InstanceType": "m4.large",
            "VirtualizationType": "hvm",
            "Architecture": "x86_64",
            "LaunchTime": "2026-11-20T09:15:42Z",
            "State": {"Code": 0, "Name": "pending"},
            "Tags": [],
        }
        for instance_id in params.get("InstanceIds", [])
    ]
    return {"Reservations": [{"ReservationId": "r-0123456789abcdef0", "OwnerId": ACCOUNT, "Instances": instances}]}


def _caller(_: Mapping[str, Any]) -> dict[str, Any]:
    return {"Account": ACCOUNT, "UserId": "AROAEXAMPLEID:bench", "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y"}


ANSWERS: dict[tuple[str, str], Answer] = {
    ("sns", "Publish"): _message_id,
    ("ec2", "DescribeInstanceTypes"): _instance_types,
    ("ec2", "DescribeImages"): _images,
    ("ec2", "DescribeImageAttribute"): _launch_permissions,
    ("ec2", "DescribeInstances"): _instances,
    ("sts", "GetCallerIdentity"): _caller,
    ("iam", "ListAccountAliases"): lambda _: {"AccountAliases": []},
}
"""Anything else (DynamoDB PutItem/UpdateItem, CreateTags...) is answered with an empty, successful response."""
