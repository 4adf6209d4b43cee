"""An emulated account (moto, in process) with the alert topic and a subscriber queue, for handler tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ec2 import ec2_backends

from ami_guard import contract
from ami_guard.config import Policy
from ami_guard.guard import Dependencies, build_dependencies
from ami_guard.rules.catalog import routes
from ami_guard.settings import Settings
from demo.emulator_server import copies_name_their_source
from tests import records as r

TABLE = "ami-guard-idempotency"


@dataclass
class Account:
    topic_arn: str
    queue_url: str
    _ec2: dict[str, Any] = field(default_factory=dict, repr=False)

    def ec2(self, region: str = r.REGION) -> Any:
        """The test's own EC2 client in `region` (made once: making a client costs a tenth of a second)."""
        if region not in self._ec2:
            self._ec2[region] = boto3.client("ec2", region_name=region)
        return self._ec2[region]

    def deps(self, policy: Policy, guard: str) -> Dependencies:
        """The dependencies of the guard function `guard` (a name in contract.GUARD_DOMAINS)."""
        settings = Settings(topic_arn=self.topic_arn, region=r.REGION, policy=policy, idempotency_table=TABLE)
        return build_dependencies(settings, routes(guard))

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
        # One of moto's default (Amazon-owned) AMIs, read from its backend: DescribeImages(Owners=["amazon"]) would
        # parse about 1,300 images, some 3.5 s per image made.
        base = next(iter(ec2_backends[r.ACCOUNT][region].amis))
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


@dataclass(frozen=True)
class Call:
    """One AWS API call a guard function made, as botocore was asked to send it."""

    function: str
    path: str
    service: str
    operation: str
    region: str = ""
    """The region of the client that made it."""
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Its parameters, as the caller passed them to the client."""
    role: str | None = None
    """The role whose credentials made it: None for the function's own (the default session's), else the ARN of
    the role the function assumed (organization mode: a member access role)."""


class CallRecorder:
    """Records every API call made through the watched boto3 sessions while `recording`, whoever made the client.

    Watches botocore's `before-parameter-build` event (emitted once per API call, with the caller's parameters) of
    the session the functions' client factory uses, and of any other session `watch` is given, so that a call added
    anywhere (an adapter, Powertools, a client made outside the factory) is seen; calls the test makes to set up the
    emulated account, outside `recording` or through a session not watched, are not.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._current: tuple[str, str] | None = None
        self._refuse: set[tuple[str, str]] = set()

    def watch(self, session: Any, role: str | None = None) -> None:
        """Record the calls of every client `session` makes (`role`: the role whose credentials it holds)."""

        def seen(model: Any, params: Mapping[str, Any], context: Mapping[str, Any], **_: Any) -> None:
            self._seen(model, params, str(context.get("client_region") or ""), role)

        session.events.register("before-parameter-build", seen)

    def _seen(self, model: Any, params: Mapping[str, Any], region: str, role: str | None) -> None:
        if self._current is None:
            return
        function, path = self._current
        service, operation = model.service_model.service_name, model.name
        self.calls.append(
            Call(function, path, service, operation, region=region, params=copy.deepcopy(dict(params)), role=role)
        )
        if (service, operation) in self._refuse:
            self._refuse.discard((service, operation))
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)

    @contextmanager
    def recording(self, function: str, path: str) -> Iterator[None]:
        self._current = (function, path)
        try:
            yield
        finally:
            self._current = None

    def refuse_next(self, service: str, operation: str) -> None:
        """The next such call is recorded, then fails as a throttled call does once botocore's retries gave up."""
        self._refuse.add((service, operation))


@pytest.fixture
def recorder(account: Account) -> CallRecorder:
    """A CallRecorder on a fresh default session: every client made from now on reports to it."""
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    calls = CallRecorder()
    calls.watch(session)
    return calls


def create_table() -> None:
    """The guard's table as the stack makes it: the idempotency records' key, and the open findings' index."""
    boto3.client("dynamodb", region_name=r.REGION).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "scope", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": contract.FINDINGS_INDEX,
                "KeySchema": [
                    {"AttributeName": "scope", "KeyType": "HASH"},
                    {"AttributeName": "id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


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
            create_table()
            acct = Account(topic_arn=topic_arn, queue_url="")
            acct.queue_url = acct.subscribe_queue("inbox")
            yield acct
    finally:
        undo()
