"""Watch the watcher: alarms on each guard function's errors and throttles and on its failed-events queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.components.guard_function import GuardFunction

PERIOD = Duration.minutes(5)


class GuardAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, guard: GuardFunction, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        name = guard.function.function_name
        self.alarms = [
            cloudwatch.Alarm(
                self,
                "Errors",
                alarm_description=f"AMI Guard function {name} failed: events are being retried or dead-lettered",
                metric=guard.function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "Throttles",
                alarm_description=f"AMI Guard function {name} was throttled: AMI changes are being checked late",
                metric=guard.function.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "FailedEvents",
                alarm_description=f"Events that AMI Guard function {name} could not handle wait in its failed-events "
                "queue: nothing was checked for them",
                metric=guard.failed_events.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(topic))
