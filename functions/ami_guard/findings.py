"""Finding and Severity: what a rule reports.

The value types are NamedTuples (immutable, compared by value) and the formats are patterns that re compiles on
first use: a cold start pays for each frozen dataclass it declares and each pattern it compiles (about 0.8 ms and
0.1 ms here), and a function checks the formats of one or two kinds of resource only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

if TYPE_CHECKING:
    from datetime import datetime


class Severity(IntEnum):
    INFO = 10
    LOW = 20
    MEDIUM = 30
    HIGH = 40
    CRITICAL = 50

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Severity from its name, case-insensitively; ValueError names the allowed values."""
        try:
            return cls[value.strip().upper()]
        except (KeyError, AttributeError):
            allowed = ", ".join(s.name for s in cls)
            raise ValueError(f"{value!r} is not a severity (allowed: {allowed})") from None


_REGION = r"(?:[a-z]{2}|us-gov|us-isob?|eu-isoe|us-isof)-[a-z]+-[0-9]{1,2}"
_CONSOLE_REGION = r"(?:[a-z]{2}|us-gov)-[a-z]+-[0-9]{1,2}"  # the partitions with a public console
_ACCOUNT = r"[0-9]{12}"
_EC2_ID = r"[0-9a-f]{8}(?:[0-9a-f]{9})?"
_ID_FORMAT = {
    "image": rf"ami-{_EC2_ID}",
    "snapshot": rf"snap-{_EC2_ID}",
    "instance": rf"i-{_EC2_ID}",
    "account-setting": r"[a-z]+(?:-[a-z]+)*",
    "lambda-function": r"[A-Za-z0-9_-]{1,64}",
    "events-rule": r"[A-Za-z0-9._-]{1,64}",
    "sns-topic": r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?",
    "kms-key": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}",
    "iam-role": r"[A-Za-z0-9_+=,.@-]{1,64}",
    "sqs-queue": r"[A-Za-z0-9_-]{1,80}(?:\.fifo)?",
    "dynamodb-table": r"[A-Za-z0-9_.-]{3,255}",
    "cloudtrail-trail": r"[A-Za-z0-9][A-Za-z0-9._-]{2,127}",
    "recycle-bin-rule": r"[0-9A-Za-z]{11}",
}


def utc_millis(moment: datetime) -> str:
    """An aware UTC datetime as ISO 8601 text to the millisecond: "2026-11-30T06:00:00.123Z" (the sweep's stamps,
    a Security Hub finding's times). A naive datetime is read as UTC."""
    from datetime import UTC

    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_region(region: str) -> bool:
    """An AWS region name in one of the partitions' formats (eu-west-1, us-gov-west-1, cn-north-1, us-iso-east-1)."""
    return re.fullmatch(_REGION, region) is not None


def partition_of(region: str) -> str:
    for prefix, partition in (
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-iso-", "aws-iso"),
    ):
        if region.startswith(prefix):
            return partition
    return "aws"


_CONSOLE_DOMAIN = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}
_CONSOLE_FRAGMENT = {
    "image": "ImageDetails:imageId={id}",
    "snapshot": "SnapshotDetails:snapshotId={id}",
    "instance": "InstanceDetails:instanceId={id}",
    "account-setting": "Settings:tab=dataProtectionAndSecurity",
}
_OTHER_CONSOLE = {
    "lambda-function": "lambda/home?region={region}#/functions/{id}",
    "events-rule": "events/home?region={region}#/eventbus/default/rules/{id}",
    "sns-topic": "sns/v3/home?region={region}#/topics",
    "kms-key": "kms/home?region={region}#/kms/keys/{id}",
    "iam-role": "iam/home#/roles/details/{id}",
    "sqs-queue": "sqs/v3/home?region={region}#/queues",
    "dynamodb-table": "dynamodbv2/home?region={region}#table?name={id}",
    "cloudtrail-trail": "cloudtrailv2/home?region={region}#/trails",
    "recycle-bin-rule": "rbin/home?region={region}#/rules",
}
# The guard's own infrastructure, by kind: how its ARN is built from the resource's id (a topic's id is its ARN).
_OTHER_ARN = {
    "sns-topic": "{id}",
    "kms-key": "arn:{partition}:kms:{region}:{account}:key/{id}",
    "iam-role": "arn:{partition}:iam::{account}:role/{id}",
    "sqs-queue": "arn:{partition}:sqs:{region}:{account}:{id}",
    "dynamodb-table": "arn:{partition}:dynamodb:{region}:{account}:table/{id}",
    "cloudtrail-trail": "arn:{partition}:cloudtrail:{region}:{account}:trail/{id}",
    "recycle-bin-rule": "arn:{partition}:rbin:{region}:{account}:rule/{id}",
}


class Resource(NamedTuple):
    """An AWS resource a finding is about: `kind` is image, snapshot, instance, account-setting, lambda-function,
    events-rule, sns-topic, kms-key, iam-role, sqs-queue, dynamodb-table, cloudtrail-trail or recycle-bin-rule.

    `id`, `region` and `account` come from a CloudTrail record and are data: `arn` and `console_url` are built
    only when the region is an AWS region name and the id has its kind's format (ami-/snap-/i- with 8 or 17 hex
    digits; function, rule, role, queue, table and trail names of AWS's allowed characters; a topic ARN; a key
    id), and are None otherwise, so that a crafted value can never name another resource or another host. An
    account that is not 12 digits is left out of the ARN, as the account-less image and snapshot ARNs do.
    """

    kind: str
    id: str
    region: str
    account: str | None = None

    @property
    def valid(self) -> bool:
        """The id has its kind's format and the region is an AWS region name."""
        pattern = _ID_FORMAT.get(self.kind)
        return pattern is not None and re.fullmatch(pattern, self.id) is not None and is_region(self.region)

    @property
    def arn(self) -> str | None:
        if not self.valid:
            return None
        partition = partition_of(self.region)
        account = self.account if self.account is not None and re.fullmatch(_ACCOUNT, self.account) else ""
        if self.kind in ("image", "snapshot"):
            return f"arn:{partition}:ec2:{self.region}::{self.kind}/{self.id}"
        if self.kind == "instance":
            return f"arn:{partition}:ec2:{self.region}:{account}:instance/{self.id}"
        if self.kind == "lambda-function":
            return f"arn:{partition}:lambda:{self.region}:{account}:function:{self.id}"
        if self.kind == "events-rule":
            return f"arn:{partition}:events:{self.region}:{account}:rule/{self.id}"
        if self.kind in _OTHER_ARN:
            return _OTHER_ARN[self.kind].format(partition=partition, region=self.region, account=account, id=self.id)
        return f"arn:{partition}:ec2:{self.region}:{account}:{self.id}"

    @property
    def console_url(self) -> str | None:
        if not self.valid or not re.fullmatch(_CONSOLE_REGION, self.region):
            return None
        domain = _CONSOLE_DOMAIN[partition_of(self.region)]
        region = quote(self.region, safe="")
        resource_id = quote(self.id, safe="")
        if self.kind in _OTHER_CONSOLE:
            return f"https://{region}.{domain}/" + _OTHER_CONSOLE[self.kind].format(region=region, id=resource_id)
        fragment = _CONSOLE_FRAGMENT[self.kind].format(id=resource_id)
        return f"https://{region}.{domain}/ec2/home?region={region}#{fragment}"

    def as_dict(self) -> dict[str, str | None]:
        return {"type": self.kind, "id": self.id, "arn": self.arn, "region": self.region}


_NO_EVIDENCE: Mapping[str, Any] = MappingProxyType({})


class Finding(NamedTuple):
    """One rule's verdict on one change. `evidence` and `action` are JSON-ready mappings."""

    rule_id: str
    severity: Severity
    title: str
    description: str
    resources: tuple[Resource, ...]
    evidence: Mapping[str, Any] = _NO_EVIDENCE
    recommendation: str = ""
    action: dict[str, Any] | None = None
    status: str = "open"
    """"open", or "resolved": the posture sweep no longer finds a standing finding it (or an event) alerted on."""

    def with_action(self, action: dict[str, Any]) -> Finding:
        return self._replace(action=action)
