"""An EventBridge rule on the default bus that forwards chosen EC2 CloudTrail calls to one guard function."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ami_guard import contract

RETRY_ATTEMPTS = 4
MAX_EVENT_AGE = Duration.hours(2)


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


class GuardRule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        event_names: Sequence[str],
        target: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description=description,
            event_pattern=cloudtrail_pattern(event_names),
            targets=[
                targets.LambdaFunction(
                    target,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            ],
        )
