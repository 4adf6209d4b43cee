"""Each alert on every output (moto: the alert topic, the default bus with users' rules behind it, Security Hub, the
chat topic), and nothing lost when an output fails: the alert topic first, every output tried, the failure raised."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from ami_guard import alerts, contract
from ami_guard.aws import client_factory
from ami_guard.aws_outputs import (
    ChatPublisher,
    FindingEvents,
    OutputFailed,
    OutputRefused,
    Outputs,
    SecurityHubImporter,
    alert_publisher,
)
from ami_guard.config import parse_policy
from ami_guard.events import Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.settings import Settings
from tests import records as r

AMI = "ami-0123456789abcdef0"
BUS = f"arn:aws:events:{r.REGION}:{r.ACCOUNT}:event-bus/default"
BY_SEVERITY = {"source": ["ami-guard"], "detail": {"severity": ["CRITICAL"]}}
BY_RULE = {"source": ["ami-guard"], "detail-type": ["AMI Guard Finding"], "detail": {"rule_id": ["snapshot-public"]}}


def alert(rule_id: str = "ami-public", severity: Severity = Severity.CRITICAL, **changes: Any) -> alerts.Alert:
    call = parse_call(Envelope(r.modify_image_attribute(AMI, [{"group": "all"}])))
    finding = Finding(
        rule_id=rule_id,
        severity=severity,
        title=f"AMI {AMI} made public",
        description="d",
        resources=(Resource("image", AMI, r.REGION, r.ACCOUNT),),
        recommendation="Remove it.",
    )._replace(**changes)
    return alerts.render(finding, call)


class Emulated:
    def __init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name=r.REGION)
        sns = boto3.client("sns", region_name=r.REGION)
        self.topic = sns.create_topic(Name="alerts")["TopicArn"]
        self.chat_topic = sns.create_topic(Name="chat")["TopicArn"]
        self.alerts = self.queue("alerts-inbox", topic=self.topic)
        self.chat = self.queue("chat-inbox", topic=self.chat_topic)
        events = boto3.client("events", region_name=r.REGION)
        self.rules: dict[str, str] = {}
        for name, pattern in (("critical", BY_SEVERITY), ("snapshot-public", BY_RULE)):
            url = self.queue(f"rule-{name}")
            events.put_rule(Name=name, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": self.arn(url)}])
            self.rules[name] = url
        self.hub = boto3.client("securityhub", region_name=r.REGION)
        self.hub.enable_security_hub()

    def arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def queue(self, name: str, topic: str | None = None) -> str:
        url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        if topic is not None:
            boto3.client("sns", region_name=r.REGION).subscribe(
                TopicArn=topic, Protocol="sqs", Endpoint=self.arn(url), Attributes={"RawMessageDelivery": "true"}
            )
        return url

    def received(self, url: str) -> list[dict[str, Any]]:
        out = []
        for message in self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            out.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return out

    def settings(self, **block: Any) -> Settings:
        return Settings(
            topic_arn=self.topic,
            region=r.REGION,
            policy=parse_policy(block),
            idempotency_table="t",
            findings_bus=BUS,
            chat_topic_arn=self.chat_topic if block.get("chat") else None,
        )


@pytest.fixture
def emulated() -> Iterator[Emulated]:
    with mock_aws():
        yield Emulated()


def test_an_alert_reaches_the_topic_the_users_rules_security_hub_and_chat(emulated: Emulated) -> None:
    # Given every output on
    publisher = alert_publisher(
        emulated.settings(securityHub=True, chat=True, documentationUrl="https://docs.example.com"), client_factory()
    )
    sent = alert()

    # When a CRITICAL ami-public alert is published
    message_id = publisher.publish(sent)

    # Then the topic has it, the severity rule's queue has its event and the rule-id rule's queue has nothing
    assert message_id
    assert [m["rule_id"] for m in emulated.received(emulated.alerts)] == ["ami-public"]
    (event,) = emulated.received(emulated.rules["critical"])
    assert event["source"] == "ami-guard" and event["detail-type"] == "AMI Guard Finding"
    assert event["detail"] == json.loads(json.dumps(sent.document))
    assert event["resources"] == [f"arn:aws:ec2:eu-west-1::image/{AMI}"]
    assert emulated.received(emulated.rules["snapshot-public"]) == []
    # and Security Hub holds the finding, and the chat topic the card
    (finding,) = emulated.hub.get_findings()["Findings"]
    assert finding["Id"] == f"ami-guard/{r.ACCOUNT}/eu-west-1/ami-public/image:{AMI}"
    assert finding["SourceUrl"] == "https://docs.example.com/docs/rules.md#ami-public"
    (card,) = emulated.received(emulated.chat)
    assert card["version"] == "1.0" and card["source"] == "custom"


def test_a_rule_id_rule_receives_that_rule_only(emulated: Emulated) -> None:
    publisher = alert_publisher(emulated.settings(), client_factory())

    publisher.publish(alert("snapshot-public"))
    publisher.publish(alert("ami-share-denied", Severity.LOW))

    assert [e["detail"]["rule_id"] for e in emulated.received(emulated.rules["snapshot-public"])] == ["snapshot-public"]


def test_a_repeat_updates_the_one_security_hub_finding(emulated: Emulated) -> None:
    publisher = alert_publisher(emulated.settings(securityHub=True), client_factory())

    publisher.publish(alert())
    publisher.publish(alert(action={"status": "removed", "detail": "removed"}))

    (finding,) = emulated.hub.get_findings()["Findings"]
    assert finding["Compliance"] == {"Status": "PASSED"}


def test_without_security_hub_and_chat_only_the_topic_and_the_bus_are_used(emulated: Emulated) -> None:
    publisher = alert_publisher(emulated.settings(), client_factory())

    assert [output.name for output in publisher.outputs] == ["eventbridge"]
    publisher.publish(alert())
    assert emulated.hub.get_findings()["Findings"] == []
    assert emulated.received(emulated.chat) == []


class Refusing:
    name = "securityhub"

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[alerts.Alert] = []
        self.error = error or RuntimeError("Security Hub did not import finding x: InternalException: try again")

    def send(self, sent: alerts.Alert) -> None:
        self.sent.append(sent)
        raise self.error


def test_a_failed_output_fails_the_publish_after_the_topic_and_every_other_output(emulated: Emulated) -> None:
    # Given an output that refuses, between the bus and chat
    clients = client_factory()
    refusing = Refusing()
    logged: list[tuple[str, dict[str, Any]]] = []
    publisher = Outputs(
        alert_publisher(emulated.settings(), clients).topic,
        [FindingEvents(clients, BUS), refusing, ChatPublisher(clients, emulated.chat_topic)],
        log=lambda message, extra: logged.append((message, extra)),
    )

    # When an alert is published
    with pytest.raises(OutputFailed) as failed:
        publisher.publish(alert())

    # Then the topic, the bus and chat have it, and the failure is raised and logged with the message id
    assert len(emulated.received(emulated.alerts)) == 1
    assert len(emulated.received(emulated.rules["critical"])) == 1
    assert len(emulated.received(emulated.chat)) == 1
    assert failed.value.failures == (
        ("securityhub", "RuntimeError: Security Hub did not import finding x: InternalException: try again"),
    )
    assert logged[0][0] == "Output failed" and logged[0][1]["message_id"] == failed.value.message_id


@pytest.mark.parametrize(
    "error",
    [
        OutputRefused("Security Hub did not import finding x: InvalidInput: Title too long"),
        ClientError({"Error": {"Code": "InvalidAccessException", "Message": "not subscribed"}}, "BatchImportFindings"),
        ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchImportFindings"),
    ],
    ids=["invalid-finding", "security-hub-not-enabled", "access-denied"],
)
def test_a_refusal_no_retry_cures_is_logged_and_counted_not_raised(
    emulated: Emulated, error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an output that refuses for good
    logged: list[tuple[str, dict[str, Any]]] = []
    publisher = Outputs(
        alert_publisher(emulated.settings(), client_factory()).topic,
        [Refusing(error)],
        log=lambda message, extra: logged.append((message, extra)),
    )

    # When an alert is published, then it is out on the topic, the refusal logged and counted, the publish not failed
    message_id = publisher.publish(alert())

    assert len(emulated.received(emulated.alerts)) == 1
    assert [(m, e["output"], e["retried"], e["message_id"]) for m, e in logged] == [
        ("Output failed", "securityhub", False, message_id)
    ]
    (metric,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "OutputFailures" in x]
    assert metric["output"] == "securityhub" and metric["OutputFailures"] == [1.0]


def test_without_a_log_the_failure_is_logged_as_an_error(emulated: Emulated) -> None:
    # Given the guard's logger (Powertools, service ami-guard) watched by a handler of the test's own
    records: list[logging.LogRecord] = []
    watcher = logging.Handler()
    watcher.emit = records.append  # type: ignore[method-assign]
    logging.getLogger(contract.POWERTOOLS_SERVICE_NAME).addHandler(watcher)
    publisher = Outputs(alert_publisher(emulated.settings(), client_factory()).topic, [Refusing(OutputRefused("no"))])

    # When an output refuses
    try:
        publisher.publish(alert())
    finally:
        logging.getLogger(contract.POWERTOOLS_SERVICE_NAME).removeHandler(watcher)

    # Then the refusal is logged at ERROR with what it was about
    (record,) = [x for x in records if x.getMessage() == "Output failed"]
    assert record.levelname == "ERROR"
    assert (record.output, record.reason, record.retried) == ("securityhub", "OutputRefused: no", False)  # type: ignore[attr-defined]


def test_a_failed_alert_topic_sends_nothing_anywhere(emulated: Emulated) -> None:
    refusing = Refusing()

    class DownTopic:
        def publish(self, sent: alerts.Alert) -> str:
            raise RuntimeError("SNS down")

    with pytest.raises(RuntimeError, match="SNS down"):
        Outputs(DownTopic(), [refusing]).publish(alert())
    assert refusing.sent == []


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("ThrottlingException", RuntimeError),
        ("InternalFailure", RuntimeError),
        ("AccessDeniedException", OutputRefused),
    ],
)
def test_an_entry_eventbridge_did_not_take_is_a_failure(code: str, raised: type[Exception]) -> None:
    # Given EventBridge answering with one failed entry
    client = boto3.client("events", region_name=r.REGION)
    stub = Stubber(client)
    stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "m"}]})

    # When the finding event is put, then it fails: to be retried, or refused for good
    with stub, pytest.raises(raised, match=f"PutEvents did not take the finding event: {code}: m"):
        FindingEvents(lambda service, region: client, BUS).send(alert())


def test_a_finding_security_hub_did_not_import_is_a_failure() -> None:
    client = boto3.client("securityhub", region_name=r.REGION)
    stub = Stubber(client)
    stub.add_response(
        "batch_import_findings",
        {
            "FailedCount": 1,
            "SuccessCount": 0,
            "FailedFindings": [{"Id": "x", "ErrorCode": "InvalidInput", "ErrorMessage": "Title too long"}],
        },
    )
    importer = SecurityHubImporter(lambda account: lambda service, region: client, lambda a: r.REGION, None)

    with stub, pytest.raises(OutputRefused, match="InvalidInput: Title too long"):
        importer.send(alert())


def test_the_events_request_names_the_bus_and_the_finding() -> None:
    client = boto3.client("events", region_name=r.REGION)
    stub = Stubber(client)
    sent = alert()
    stub.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]},
        {
            "Entries": [
                {
                    "Source": contract.FINDING_EVENT_SOURCE,
                    "DetailType": contract.FINDING_DETAIL_TYPE,
                    "Detail": json.dumps(sent.document, sort_keys=True, default=str),
                    "Resources": [f"arn:aws:ec2:eu-west-1::image/{AMI}"],
                    "EventBusName": BUS,
                }
            ]
        },
    )

    with stub:
        FindingEvents(lambda service, region: client, BUS).send(sent)
    stub.assert_no_pending_responses()
