"""Watch the watcher: alarms on each guard function's errors and throttles and on its failed-events queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from ami_guard_cdk.components.guard_function import GuardFunction

PERIOD = Duration.minutes(5)


class GuardAlarms(Construct):
    """Each alarm fires on the first occurrence in five minutes; no data means nothing went wrong."""

    def __init__(
        self, scope: Construct, construct_id: str, *, guard: GuardFunction, topic: sns.ITopic, name_prefix: str
    ) -> None:
        """Alarm names are `name_prefix` + the alarm: the topic's policy admits the alarms by that prefix."""
        super().__init__(scope, construct_id)
        name = guard.function.function_name
        watched = {
            "Errors": (
                guard.function.metric_errors(period=PERIOD, statistic="Sum"),
                f"AMI Guard function {name} failed: events are being retried or dead-lettered",
            ),
            "Throttles": (
                guard.function.metric_throttles(period=PERIOD, statistic="Sum"),
                f"AMI Guard function {name} was throttled: AMI changes are being checked late",
            ),
        }
        if guard.failed_events_queue is not None:
            watched["FailedEvents"] = (
                guard.failed_events_queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                f"Events that AMI Guard function {name} could not handle wait in its failed-events queue: "
                "nothing was checked for them",
            )
        self.alarms = []
        for alarm_id, (metric, description) in watched.items():
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_name=f"{name_prefix}{alarm_id}",
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            self.alarms.append(alarm)
