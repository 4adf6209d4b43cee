"""An EventBridge rule (on the default bus, or the bus it is given) that sends chosen CloudTrail calls to one guard
function."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ami_guard import contract
from ami_guard.rules.spec import Call

RETRY_ATTEMPTS = 4
MAX_EVENT_AGE = Duration.hours(contract.RULE_MAX_EVENT_AGE_HOURS)


def cloudtrail_pattern(calls: Iterable[Call]) -> events.EventPattern:
    """Exactly these CloudTrail calls ((eventSource, eventName) pairs: a guard function's `routes`), nothing else."""
    sources, clauses = call_clauses(calls)
    return events.EventPattern(
        source=sources,
        detail_type=[contract.DETAIL_TYPE],
        detail=clauses[0] if len(clauses) == 1 else {"$or": clauses},
    )


def call_clauses(calls: Iterable[Call]) -> tuple[list[str], list[dict[str, list[str]]]]:
    """(the services' EventBridge sources, one `detail` clause per eventSource naming exactly its calls)."""
    by_source: dict[str, list[str]] = {}
    for source, name in sorted(set(calls)):
        by_source.setdefault(source, []).append(name)
    clauses = [{"eventSource": [source], "eventName": names} for source, names in by_source.items()]
    return [service_source(source) for source in by_source], clauses


def service_source(event_source: str) -> str:
    """The EventBridge `source` of a service's CloudTrail events: ec2.amazonaws.com -> aws.ec2."""
    return f"aws.{event_source.split('.', 1)[0]}"


def tamper_pattern(
    infrastructure_sources: Sequence[str] = tuple(contract.INFRASTRUCTURE_TAMPER_EVENTS),
    extra: Mapping[str, Sequence[str]] = MappingProxyType({}),
) -> events.EventPattern:
    """Calls that change Lambda functions (event names with API-version suffixes: prefixes), EventBridge rules, and
    the calls of `infrastructure_sources` that change the topics, keys, roles, queues, tables and trails the guard
    depends on, whichever resource they name: the function decides whether it is one of the guard's own (an event
    pattern cannot name a role in any region). `extra`: more eventSource -> event names a deployment shape watches."""
    infrastructure = {source: contract.INFRASTRUCTURE_TAMPER_EVENTS[source] for source in infrastructure_sources}
    for source, names in extra.items():
        if source != contract.EVENTS_SOURCE:
            infrastructure[source] = (*infrastructure.get(source, ()), *names)
    return events.EventPattern(
        source=["aws.lambda", "aws.events", *(f"aws.{source.split('.', 1)[0]}" for source in infrastructure)],
        detail_type=[contract.DETAIL_TYPE],
        detail={
            "eventSource": [contract.LAMBDA_SOURCE, contract.EVENTS_SOURCE, *infrastructure],
            "eventName": [{"prefix": prefix} for prefix in contract.LAMBDA_TAMPER_PREFIXES]
            + [*contract.EVENTS_TAMPER_EVENTS, *extra.get(contract.EVENTS_SOURCE, ())]
            + sorted({name for names in infrastructure.values() for name in names}),
        },
    )


class GuardRule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rule_name: str,
        description: str,
        pattern: events.EventPattern,
        target: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        event_bus: events.IEventBus | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name,
            description=description,
            event_bus=event_bus,
            event_pattern=pattern,
            targets=[
                targets.LambdaFunction(
                    target,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                    dead_letter_queue=dead_letter_queue,
                )
            ],
        )
