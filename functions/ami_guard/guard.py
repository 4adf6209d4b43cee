"""What every guard function does with one EventBridge event: parse, evaluate, publish, log, count.

The handlers are thin wrappers around `once_per_event(process)`; tests call `process` with fakes or moto.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ami_guard import alerts, contract, rules
from ami_guard.config import Policy
from ami_guard.engine import Actions, Evaluation, Lookups, evaluate
from ami_guard.events import Envelope, SkipEvent, guard_change, parse_call
from ami_guard.settings import Settings

Handler = Callable[[Any, Any], dict[str, Any]]


class Publisher(Protocol):
    def publish(self, alert: alerts.Alert) -> str: ...


@dataclass(frozen=True)
class Dependencies:
    policy: Policy
    lookups: Lookups
    actions: Actions | None
    publisher: Publisher
    accepted_events: tuple[str, ...]
    watched_functions: frozenset[str] = frozenset()
    watched_rules: frozenset[str] = frozenset()
    idempotency_store: Any = field(default=None, compare=False)

    @property
    def sources(self) -> tuple[str, ...]:
        tamper = (
            (contract.LAMBDA_SOURCE, contract.EVENTS_SOURCE) if self.watched_functions or self.watched_rules else ()
        )
        return (contract.EVENT_SOURCE, *tamper)


def build_dependencies(settings: Settings, accepted_events: tuple[str, ...]) -> Dependencies:
    """The composition root: AWS adapters over lazily made clients (nothing connects until it is needed)."""
    from ami_guard.aws import (
        Ec2Actions,
        Ec2Lookups,
        InstanceTypeCatalog,
        SnsPublisher,
        client_config,
        client_factory,
    )

    clients = client_factory()
    lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, settings.region))
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return Dependencies(
        policy=settings.policy,
        lookups=lookups,
        actions=Ec2Actions(clients, lookups),
        publisher=SnsPublisher(clients, settings.topic_arn),
        accepted_events=accepted_events,
        watched_functions=settings.watched_functions,
        watched_rules=settings.watched_rules,
        idempotency_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto_config=client_config()),
    )


def once_per_event(deps: Dependencies, logger: Logger) -> Handler:
    """`process`, run at most once per CloudTrail eventID however often EventBridge or Lambda deliver it.

    A duplicate gets the first run's summary back without publishing or acting again. A run that fails
    (throttling, SNS down) leaves no record, so the retry runs in full.
    """

    def run(event: Any, context: Any) -> dict[str, Any]:
        return process(event, deps, logger)

    if deps.idempotency_store is None:
        return run
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent

    config = IdempotencyConfig(
        event_key_jmespath="detail.eventID",
        raise_on_no_idempotency_key=False,
        expires_after_seconds=contract.IDEMPOTENCY_TTL_SECONDS,
    )
    wrapped: Handler = idempotent(persistence_store=deps.idempotency_store, config=config)(run)
    return wrapped


def process(event: Any, deps: Dependencies, logger: Logger) -> dict[str, Any]:
    """Evaluate one EventBridge event and publish its findings at or above minSeverity."""
    envelope = Envelope(
        event,
        account=event.get("account") if isinstance(event, Mapping) else None,
        region=event.get("region") if isinstance(event, Mapping) else None,
    )
    try:
        call = parse_call(envelope, deps.sources)
    except SkipEvent as exc:
        logger.warning("Skipped event", extra={"reason": exc.reason, "event_shape": _shape(event)})
        return {"status": "skipped", "reason": exc.reason}

    if call.event_source == contract.EVENT_SOURCE:
        if call.event_name not in deps.accepted_events:
            reason = f"{call.event_name} is not routed to this function (expects {', '.join(deps.accepted_events)})"
            logger.warning("Skipped event", extra={"reason": reason, "event_id": call.event_id})
            return {"status": "skipped", "reason": reason}
        evaluation = evaluate(call, deps.policy, deps.lookups, deps.actions)
    else:
        evaluation = Evaluation(call)
        change = guard_change(call)
        if change is not None:
            evaluation.add(rules.guard_tampered(call, change, deps.watched_functions, deps.watched_rules))

    published: list[str] = []
    for finding in evaluation.findings:
        _count("Findings", {"rule_id": finding.rule_id, "severity": finding.severity.name})
        if finding.severity < deps.policy.min_severity:
            logger.info("Finding below minSeverity, not published", extra={"rule_id": finding.rule_id})
            continue
        message_id = deps.publisher.publish(alerts.render(finding, call))
        published.append(finding.rule_id)
        logger.info(
            "Published finding",
            extra={"rule_id": finding.rule_id, "severity": finding.severity.name, "message_id": message_id},
        )
    for note in evaluation.undetermined:
        _count("UndecidedChecks", {"rules": note["rules"]})
        logger.warning("Check not decided", extra=note)
    summary = {
        "status": "evaluated",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "findings": [f.rule_id for f in evaluation.findings],
        "published": published,
    }
    logger.info("Evaluated event", extra=summary)
    return summary


def _count(name: str, dimensions: dict[str, str]) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=contract.METRICS_NAMESPACE) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)


def _shape(event: Any) -> str:
    if isinstance(event, Mapping):
        return "object with keys " + ", ".join(sorted(map(str, event))[:10])
    return type(event).__name__
