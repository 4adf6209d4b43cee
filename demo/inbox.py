"""The inbox: an SQS queue subscribed to the deployed alert topics, read the way a person reads alerts.

The queue receives what SNS sends an SQS subscriber (the subject, attributes and the `default` JSON document).
The email text an email subscriber would get, the `email` key of the MessageStructure=json message, is taken
from the emulator's record of what was published (moto sends email nowhere), matched by message id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from demo.emulator import Emulator

QUEUE_NAME = "ami-guard-demo-inbox"


@dataclass(frozen=True)
class Alert:
    message_id: str
    topic_arn: str
    subject: str
    document: dict[str, Any]
    email: str | None
    attributes: dict[str, str]

    @property
    def rule_id(self) -> str:
        return str(self.document.get("rule_id"))

    @property
    def event_id(self) -> str | None:
        return self.document.get("event_id")

    @property
    def action(self) -> dict[str, Any]:
        action: dict[str, Any] = self.document.get("action") or {}
        return action

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "topic_arn": self.topic_arn,
            "subject": self.subject,
            "rule_id": self.rule_id,
            "severity": self.document.get("severity"),
            "event_id": self.event_id,
            "attributes": self.attributes,
            "email": self.email,
            "document": self.document,
        }


class Inbox:
    def __init__(self, emulator: Emulator, *, region: str, topic_arns: Sequence[str]) -> None:
        self.emulator = emulator
        self.topic_arns = tuple(topic_arns)
        self._sqs = emulator.client("sqs", region)
        self.queue_url: str = self._sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        self.queue_arn: str = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": list(self.topic_arns)}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        for topic_arn in self.topic_arns:
            emulator.client("sns", topic_arn.split(":")[3]).subscribe(
                TopicArn=topic_arn, Protocol="sqs", Endpoint=self.queue_arn
            )

    def drain(self) -> list[Alert]:
        """Every alert waiting in the queue, oldest first; the queue is empty afterwards."""
        notifications: list[dict[str, Any]] = []
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                notifications.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        published: dict[str, dict[str, Any]] = {}
        for topic_arn in {n.get("TopicArn", "") for n in notifications}:
            published.update({p["message_id"]: p for p in self.emulator.published(topic_arn)})
        return [self._alert(n, published.get(n.get("MessageId", ""))) for n in notifications]

    @staticmethod
    def _alert(notification: dict[str, Any], published: dict[str, Any] | None) -> Alert:
        try:
            document = json.loads(notification.get("Message", ""))
        except ValueError:
            document = {"unparsed_message": notification.get("Message")}
        email = None
        if published is not None:
            try:
                email = json.loads(published["message"]).get("email")
            except (ValueError, AttributeError):
                email = None
        attributes = {k: v.get("Value", "") for k, v in (notification.get("MessageAttributes") or {}).items()}
        return Alert(
            message_id=notification.get("MessageId", ""),
            topic_arn=notification.get("TopicArn", ""),
            subject=notification.get("Subject") or "",
            document=document if isinstance(document, dict) else {"unparsed_message": document},
            email=email,
            attributes=attributes,
        )
