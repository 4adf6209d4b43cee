"""What every guard function does with one EventBridge event: parse, evaluate, publish, log, count.

The handlers are thin wrappers around `process`; tests call `process` with fakes or moto.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ami_guard import alerts, contract
from ami_guard.config import Policy
from ami_guard.engine import Actions, Lookups, evaluate
from ami_guard.events import Envelope, SkipEvent, parse_call
from ami_guard.settings import Settings


class Publisher(Protocol):
    def publish(self, alert: alerts.Alert) -> str: ...


@dataclass(frozen=True)
class Dependencies:
    policy: Policy
    lookups: Lookups
    actions: Actions | None
    publisher: Publisher
    accepted_events: tuple[str, ...]


def build_dependencies(settings: Settings, accepted_events: tuple[str, ...]) -> Dependencies:
    """The composition root: AWS adapters over lazily made clients (nothing connects until it is needed)."""
    from ami_guard.aws import Ec2Actions, Ec2Lookups, InstanceTypeCatalog, SnsPublisher, client_factory

    clients = client_factory()
    lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, settings.region))
    return Dependencies(
        policy=settings.policy,
        lookups=lookups,
        actions=Ec2Actions(clients, lookups),
        publisher=SnsPublisher(clients, settings.topic_arn),
        accepted_events=accepted_events,
    )


def process(event: Any, deps: Dependencies, logger: Logger) -> dict[str, Any]:
    """Evaluate one EventBridge event and publish its findings at or above minSeverity."""
    envelope = Envelope(
        event,
        account=event.get("account") if isinstance(event, Mapping) else None,
        region=event.get("region") if isinstance(event, Mapping) else None,
    )
    try:
        call = parse_call(envelope)
    except SkipEvent as exc:
        logger.warning("Skipped event", extra={"reason": exc.reason, "event_shape": _shape(event)})
        return {"status": "skipped", "reason": exc.reason}
    if call.event_name not in deps.accepted_events:
        reason = f"{call.event_name} is not routed to this function (expects {', '.join(deps.accepted_events)})"
        logger.warning("Skipped event", extra={"reason": reason, "event_id": call.event_id})
        return {"status": "skipped", "reason": reason}

    evaluation = evaluate(call, deps.policy, deps.lookups, deps.actions)
    published: list[str] = []
    for finding in evaluation.findings:
        with single_metric(
            name="Findings", unit=MetricUnit.Count, value=1, namespace=contract.METRICS_NAMESPACE
        ) as metric:
            metric.add_dimension(name="rule_id", value=finding.rule_id)
            metric.add_dimension(name="severity", value=finding.severity.name)
        alert = alerts.render(finding, call)
        if finding.severity < deps.policy.min_severity:
            logger.info("Finding below minSeverity, not published", extra={"rule_id": finding.rule_id})
            continue
        message_id = deps.publisher.publish(alert)
        published.append(finding.rule_id)
        logger.info(
            "Published finding",
            extra={"rule_id": finding.rule_id, "severity": finding.severity.name, "message_id": message_id},
        )
    for note in evaluation.undetermined:
        logger.info("Check not decided", extra=note)
    summary = {
        "status": "evaluated",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "findings": [f.rule_id for f in evaluation.findings],
        "published": published,
    }
    logger.info("Evaluated event", extra=summary)
    return summary


def _shape(event: Any) -> str:
    if isinstance(event, Mapping):
        return "object with keys " + ", ".join(sorted(map(str, event))[:10])
    return type(event).__name__
