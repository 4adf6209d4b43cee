"""An emulated account (moto, in process) with the alert topic and a subscriber queue, for handler tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.ec2 import ec2_backends

from ami_guard.config import Policy
from ami_guard.guard import Dependencies, build_dependencies
from ami_guard.settings import Settings
from demo.emulator_server import copies_name_their_source
from tests import records as r

TABLE = "ami-guard-idempotency"


@dataclass
class Account:
    topic_arn: str
    queue_url: str

    def ec2(self, region: str = r.REGION) -> Any:
        return boto3.client("ec2", region_name=region)

    def deps(self, policy: Policy, accepted: tuple[str, ...]) -> Dependencies:
        settings = Settings(topic_arn=self.topic_arn, region=r.REGION, policy=policy, idempotency_table=TABLE)
        return build_dependencies(settings, accepted)

    def make_image(
        self,
        region: str = r.REGION,
        *,
        tags: dict[str, str] | None = None,
        virtualization_type: str = "hvm",
    ) -> str:
        """An EBS-backed AMI with a snapshot. moto's RegisterImage keeps only name and description, so
        images are made from an instance and their virtualization type is set on moto's backend."""
        ec2 = self.ec2(region)
        base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1, InstanceType="t3.micro")
        spec = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
        image_id: str = ec2.create_image(
            InstanceId=instance["Instances"][0]["InstanceId"],
            Name=f"golden-{len(ec2.describe_images(Owners=['self'])['Images'])}",
            TagSpecifications=spec if tags else [],
        )["ImageId"]
        ec2_backends[r.ACCOUNT][region].amis[image_id].virtualization_type = virtualization_type
        return image_id

    def tags(self, resource_id: str, region: str = r.REGION) -> dict[str, str]:
        found = self.ec2(region).describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    def received(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """SNS notifications as an SQS subscriber receives them (not raw: the SNS envelope)."""
        sqs = boto3.client("sqs", region_name=r.REGION)
        out: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url or self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return out
            for message in batch:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url or self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def subscribe_queue(self, name: str, filter_policy: dict[str, Any] | None = None) -> str:
        sqs = boto3.client("sqs", region_name=r.REGION)
        url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        boto3.client("sns", region_name=r.REGION).subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
        )
        return url


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": r.REGION,
        "AWS_REGION": r.REGION,
        "MOTO_ACCOUNT_ID": r.ACCOUNT,
    }.items():
        monkeypatch.setenv(key, value)
    # moto's DescribeImages names no source for a copy, EC2's does: the emulated account supplies it
    undo = copies_name_their_source()
    try:
        with mock_aws():
            topic_arn = boto3.client("sns", region_name=r.REGION).create_topic(Name="ami-guard-alerts")["TopicArn"]
            boto3.client("dynamodb", region_name=r.REGION).create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            acct = Account(topic_arn=topic_arn, queue_url="")
            acct.queue_url = acct.subscribe_queue("inbox")
            yield acct
    finally:
        undo()
