"""The outputs in the emulated account (docs/integrations.md): Security Hub enabled in each region, a user's own
EventBridge rules with an SQS queue behind each, and a queue on the chat topic; after the scenario, what reached them.

The functions' PutEvents go to moto's EventBridge (AWS_ENDPOINT_URL), which matches every rule of the bus with its
pattern engine and sends to the SQS targets itself; the runner plays the scenario's CloudTrail records through the
same rules, so a user rule that matched a record would show it in its queue as well.

moto's Security Hub (moto/securityhub/models.py, 5.2.5) keeps one finding per Id and, on an import with an Id it
holds, updates every field given, Workflow included; AWS takes Workflow from an import only when it creates the
finding (BatchImportFindings cannot change it afterwards) and resolves an existing one through Compliance.Status and
RecordState. moto neither checks that Security Hub is enabled nor that AwsAccountId is the caller's account: the
demo enables it anyway, as a user must, and the guard imports by the account the finding belongs to.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ami_guard import contract
from demo.emulator import Emulator

ALL_FINDINGS = "ami-guard-demo-all-findings"
CRITICAL_FINDINGS = "ami-guard-demo-critical-findings"
USER_RULES: dict[str, dict[str, Any]] = {
    ALL_FINDINGS: {"source": ["ami-guard"]},
    CRITICAL_FINDINGS: {"source": ["ami-guard"], "detail": {"severity": ["CRITICAL"]}},
}
"""The user's own rules on the default bus: every finding event, and the CRITICAL ones."""
CHAT_QUEUE = "ami-guard-demo-chat"


@dataclass
class Outputs:
    emulator: Emulator
    regions: tuple[str, ...]
    queues: dict[tuple[str, str], str] = field(default_factory=dict)
    """(region, rule) -> the URL of the queue behind the rule."""
    chat_queues: list[tuple[str, str]] = field(default_factory=list)
    """(region, URL) of the queue subscribed to each region's chat topic, when the deployment has them."""
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """rule -> every event its queues received so far (read by `events`)."""
    cards: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def prepare(cls, emulator: Emulator, regions: Sequence[str]) -> Outputs:
        """Security Hub enabled, the user's rules and a queue on the chat topic made in each region (with the harness's
        key): each region's functions import, put and publish in their own region."""
        outputs = cls(emulator, tuple(regions))
        for region in regions:
            emulator.client("securityhub", region).enable_security_hub(EnableDefaultStandards=False)
            events = emulator.client("events", region)
            for rule, pattern in USER_RULES.items():
                url = outputs._queue(region, f"{rule}-{region}")
                events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
                events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": outputs._arn(region, url)}])
                outputs.queues[(region, rule)] = url
            chat = _chat_topic(emulator, region)
            if chat is not None:
                url = outputs._queue(region, f"{CHAT_QUEUE}-{region}")
                emulator.client("sns", region).subscribe(
                    TopicArn=chat,
                    Protocol="sqs",
                    Endpoint=outputs._arn(region, url),
                    Attributes={"RawMessageDelivery": "true"},
                )
                outputs.chat_queues.append((region, url))
        return outputs

    def _queue(self, region: str, name: str) -> str:
        return str(self.emulator.client("sqs", region).create_queue(QueueName=name)["QueueUrl"])

    def _arn(self, region: str, url: str) -> str:
        attributes = self.emulator.client("sqs", region).get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _drain(self, region: str, url: str) -> list[dict[str, Any]]:
        sqs = self.emulator.client("sqs", region)
        out: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return out
            for message in batch:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def events(self, rule: str) -> list[dict[str, Any]]:
        """Every event the rule's queues received (in every region), since the start."""
        seen = self.received.setdefault(rule, [])
        for (region, name), url in self.queues.items():
            if name == rule:
                seen.extend(self._drain(region, url))
        return list(seen)

    def chat_cards(self) -> list[dict[str, Any]]:
        for region, url in self.chat_queues:
            self.cards.extend(self._drain(region, url))
        return list(self.cards)

    def findings(self) -> list[dict[str, Any]]:
        """Every Security Hub finding of the account, in every region."""
        found: list[dict[str, Any]] = []
        for region in self.regions:
            client = self.emulator.client("securityhub", region)
            token: str | None = None
            while True:
                page = client.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
                found.extend(page.get("Findings", []))
                token = page.get("NextToken")
                if not token:
                    break
        return found

    def report(self) -> str:
        findings = self.findings()
        lines = [f"Security Hub: {len(findings)} findings imported (one per rule and resource; stable ids)"]
        for finding in sorted(findings, key=lambda f: (f["GeneratorId"], f["Id"])):
            state = f"{finding['Compliance']['Status']}/{finding['Workflow']['Status']}"
            lines.append(f"  {finding['Severity']['Label']:<13} {state:<15} {finding['Id']}")
        everything = self.events(ALL_FINDINGS)
        critical = self.events(CRITICAL_FINDINGS)
        by_rule = Counter(str(e.get("detail", {}).get("rule_id")) for e in everything)
        lines.append(
            f'Finding events on the default bus: a user rule on {{"source": ["ami-guard"]}} received {len(everything)}:'
        )
        lines += [f"  {count} x {rule}" for rule, count in sorted(by_rule.items())]
        critical_rules = sorted({str(e.get("detail", {}).get("rule_id")) for e in critical})
        lines.append(
            f"  its CRITICAL rule ({json.dumps(USER_RULES[CRITICAL_FINDINGS])}) received {len(critical)}: "
            + (", ".join(critical_rules) or "none")
        )
        cards = self.chat_cards()
        if self.chat_queues:
            threads = {card.get("metadata", {}).get("threadId") for card in cards}
            lines.append(f"Chat topic: {len(cards)} Amazon Q Developer custom notifications in {len(threads)} threads")
        return "\n".join(lines)


def _chat_topic(emulator: Emulator, region: str) -> str | None:
    """The chat topic the deployed functions are given (none without `chat`)."""
    for function in emulator.client("lambda", region).list_functions()["Functions"]:
        topic = function.get("Environment", {}).get("Variables", {}).get(contract.ENV_CHAT_TOPIC_ARN)
        if topic:
            return str(topic)
    return None
