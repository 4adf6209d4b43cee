"""An EventBridge rule (on the default bus, or the bus it is given) that sends chosen CloudTrail calls to one guard
function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ami_guard import contract

RETRY_ATTEMPTS = 4
MAX_EVENT_AGE = Duration.hours(contract.RULE_MAX_EVENT_AGE_HOURS)


def cloudtrail_pattern(event_names: Sequence[str]) -> events.EventPattern:
    """EC2 API calls recorded by CloudTrail with one of `event_names`, and nothing else."""
    return events.EventPattern(
        source=["aws.ec2"],
        detail_type=[contract.DETAIL_TYPE],
        detail={
            "eventSource": [contract.EVENT_SOURCE],
            "eventName": list(event_names),
        },
    )


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
