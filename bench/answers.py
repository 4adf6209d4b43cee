"""What AWS answers in the benchmark, per (service, operation): the same facts for both tools.

Stdlib only: imported by the child processes of both benchmark environments.
"""

from __future__ import annotations

import datetime
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
# Organization mode: the hub's account, and the organization's ACTIVE accounts as ListAccounts pages them (the
# events' ACCOUNT among them; TRUSTED_ACCOUNT is not, it is trusted by the policy as in standalone).
HUB_ACCOUNT = "999988887777"
ORGANIZATION_SIZE = 1000
ORGANIZATION_ACCOUNTS = (HUB_ACCOUNT, ACCOUNT, *(f"{200000000000 + n}" for n in range(ORGANIZATION_SIZE - 2)))
LIST_ACCOUNTS_PAGE = 20  # the most ListAccounts returns in one page (MaxResults: 1 to 20)

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


def _put_events(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every entry taken: an EventId each, in the order of the request's entries."""
    entries = [{"EventId": f"00000000-0000-0000-0000-{next(_ids):012d}"} for _ in params.get("Entries", [])]
    return {"FailedEntryCount": 0, "Entries": entries}


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


def _assume_role(params: Mapping[str, Any]) -> dict[str, Any]:
    """Credentials of the role's own account, valid for an hour; the access key id names the account."""
    arn = str(params["RoleArn"])
    account, role = arn.split(":")[4], arn.rsplit("/", 1)[-1]
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=params.get("DurationSeconds", 3600))
    return {
        "Credentials": {
            "AccessKeyId": f"ASIA{account}",
            "SecretAccessKey": "member-role-benchmark-only",
            "SessionToken": "member-role-benchmark-only",
            "Expiration": expires,
        },
        "AssumedRoleUser": {
            "AssumedRoleId": f"AROAEXAMPLEID:{params.get('RoleSessionName', 'bench')}",
            "Arn": f"arn:aws:sts::{account}:assumed-role/{role}/{params.get('RoleSessionName', 'bench')}",
        },
    }


def _list_accounts(params: Mapping[str, Any]) -> dict[str, Any]:
    """One page of the organization's accounts; NextToken is the index of the next page's first account."""
    start = int(params.get("NextToken") or 0)
    end = min(start + min(int(params.get("MaxResults") or LIST_ACCOUNTS_PAGE), LIST_ACCOUNTS_PAGE), ORGANIZATION_SIZE)
    accounts = [
        {
            "Id": account,
            "Arn": f"arn:aws:organizations::{HUB_ACCOUNT}:account/o-benchmark00/{account}",
            "Email": f"aws+{account}@example.com",
            "Name": f"account-{account}",
            "Status": "ACTIVE",
        }
        for account in ORGANIZATION_ACCOUNTS[start:end]
    ]
    page: dict[str, Any] = {"Accounts": accounts}
    if end < ORGANIZATION_SIZE:
        page["NextToken"] = str(end)
    return page


def _caller(_: Mapping[str, Any]) -> dict[str, Any]:
    return {"Account": ACCOUNT, "UserId": "AROAEXAMPLEID:bench", "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y"}


ANSWERS: dict[tuple[str, str], Answer] = {
    ("sns", "Publish"): _message_id,
    ("events", "PutEvents"): _put_events,
    ("ec2", "DescribeInstanceTypes"): _instance_types,
    ("ec2", "DescribeImages"): _images,
    ("ec2", "DescribeImageAttribute"): _launch_permissions,
    ("ec2", "DescribeInstances"): _instances,
    ("sts", "GetCallerIdentity"): _caller,
    ("sts", "AssumeRole"): _assume_role,
    ("organizations", "ListAccounts"): _list_accounts,
    ("iam", "ListAccountAliases"): lambda _: {"AccountAliases": []},
}
"""Anything else (DynamoDB PutItem/UpdateItem, CreateTags...) is answered with an empty, successful response."""
