"""Finding and Severity: what a rule reports."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any


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


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
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
}
# The guard's own infrastructure, by kind: how its ARN is built from the resource's id (a topic's id is its ARN).
_OTHER_ARN = {
    "sns-topic": "{id}",
    "kms-key": "arn:{partition}:kms:{region}:{account}:key/{id}",
    "iam-role": "arn:{partition}:iam::{account}:role/{id}",
    "sqs-queue": "arn:{partition}:sqs:{region}:{account}:{id}",
    "dynamodb-table": "arn:{partition}:dynamodb:{region}:{account}:table/{id}",
    "cloudtrail-trail": "arn:{partition}:cloudtrail:{region}:{account}:trail/{id}",
}


@dataclass(frozen=True)
class Resource:
    """An EC2 resource a finding is about: `kind` is image, snapshot, instance or account-setting."""

    kind: str
    id: str
    region: str
    account: str | None = None

    @property
    def arn(self) -> str:
        partition = partition_of(self.region)
        if self.kind in ("image", "snapshot"):
            return f"arn:{partition}:ec2:{self.region}::{self.kind}/{self.id}"
        if self.kind == "instance":
            return f"arn:{partition}:ec2:{self.region}:{self.account or ''}:instance/{self.id}"
        if self.kind == "lambda-function":
            return f"arn:{partition}:lambda:{self.region}:{self.account or ''}:function:{self.id}"
        if self.kind == "events-rule":
            return f"arn:{partition}:events:{self.region}:{self.account or ''}:rule/{self.id}"
        if self.kind in _OTHER_ARN:
            return _OTHER_ARN[self.kind].format(
                partition=partition, region=self.region, account=self.account or "", id=self.id
            )
        return f"arn:{partition}:ec2:{self.region}:{self.account or ''}:{self.id}"

    @property
    def console_url(self) -> str:
        domain = _CONSOLE_DOMAIN[partition_of(self.region)]
        if self.kind in _OTHER_CONSOLE:
            return f"https://{self.region}.{domain}/" + _OTHER_CONSOLE[self.kind].format(region=self.region, id=self.id)
        fragment = _CONSOLE_FRAGMENT.get(self.kind, "Home:").format(id=self.id)
        return f"https://{self.region}.{domain}/ec2/home?region={self.region}#{fragment}"

    def as_dict(self) -> dict[str, str]:
        return {"type": self.kind, "id": self.id, "arn": self.arn, "region": self.region}


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one change. `evidence` and `action` are JSON-ready mappings."""

    rule_id: str
    severity: Severity
    title: str
    description: str
    resources: tuple[Resource, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""
    action: dict[str, Any] | None = None

    def with_action(self, action: dict[str, Any]) -> Finding:
        return replace(self, action=action)
