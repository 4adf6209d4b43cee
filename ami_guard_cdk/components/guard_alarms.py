"""Watch the watcher: alarms on each guard function's errors and throttles and on its failed-events queue, and on the
posture sweep's runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
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
        self.alarms = _alarms(self, watched, topic, name_prefix)


class SweepRunAlarms(Construct):
    """Alarms on the posture sweep's runs: an execution of its state machine that failed, timed out or was aborted.

    The sweep function's own alarms (GuardAlarms) see a sweep that raised; these see a run that never reached the
    function or could not go on (the plan's bucket or the state machine's role changed, the Map refused its items,
    someone stopped the run), which would otherwise leave the account unswept without a word."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        topic: sns.ITopic,
        name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        what = "the posture sweep's run"
        watched = {
            "RunsFailed": (
                state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                f"AMI Guard: {what} failed: what is exposed now was not (fully) swept",
            ),
            "RunsTimedOut": (
                state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                f"AMI Guard: {what} timed out: what is exposed now was not (fully) swept",
            ),
            "RunsAborted": (
                state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                f"AMI Guard: {what} was stopped before it ended: what is exposed now was not (fully) swept",
            ),
        }
        self.alarms = _alarms(self, watched, topic, name_prefix)


def _alarms(
    scope: Construct,
    watched: Mapping[str, tuple[cloudwatch.IMetric, str]],
    topic: sns.ITopic,
    name_prefix: str,
) -> list[cloudwatch.Alarm]:
    """One alarm per metric, firing on its first occurrence in PERIOD, to `topic`."""
    alarms = []
    for alarm_id, (metric, description) in watched.items():
        alarm = cloudwatch.Alarm(
            scope,
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
        alarms.append(alarm)
    return alarms


class OutputAlarms(Construct):
    """An alarm per finding output beside the alert topic (EventBridge always; Security Hub and the chat topic when
    on): an output that failed (metric `OutputFailures`, counted by the functions with the output's name) means a
    finding reached the alert topic but not where the security team reads it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        outputs: Sequence[str],
        namespace: str,
        service: str,
        topic: sns.ITopic,
        name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        watched = {
            f"{output.capitalize()}Failures": (
                cloudwatch.Metric(
                    namespace=namespace,
                    metric_name="OutputFailures",
                    dimensions_map={"output": output, "service": service},
                    period=PERIOD,
                    statistic="Sum",
                ),
                f"AMI Guard could not deliver a finding to {OUTPUT_NAMES.get(output, output)}: it reached the alert "
                "topic, not there (the functions' logs say why: 'Output failed')",
            )
            for output in outputs
        }
        self.alarms = _alarms(self, watched, topic, name_prefix)


OUTPUT_NAMES = {"eventbridge": "EventBridge", "securityhub": "Security Hub", "chat": "the chat topic"}
