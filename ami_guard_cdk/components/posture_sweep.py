"""The deployed posture sweep's engine: a Step Functions state machine that plans the account-regions and sweeps each
with the sweep function (a Map), and the EventBridge Scheduler schedule that starts it.

The function does the work (ami_guard.handlers.sweep_guard); this construct only runs it: `{"plan": true, "run":
<execution name>}` returns `{"targets": [...]}`, then each target (`{"account", "region", "run"}`) is one
invocation, at most MAX_CONCURRENCY at a time, retried on Lambda's throttling and service errors. A target that
still fails is caught: its error is kept in the execution's output beside the others' summaries, and the others go
on.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ami_guard_cdk.components.ec2_grants import acknowledge_wildcards

MAX_CONCURRENCY = 10
"""Account-regions swept at once: each invocation runs its own bounded concurrency of EC2 reads (under adaptive
retry), and the regions and accounts are independent rate-limit buckets; ten keeps the Lambda concurrency the sweep
takes from the account small."""
RETRIED_ERRORS = ("Lambda.TooManyRequestsException", "Lambda.ServiceException")
RETRY_ATTEMPTS = 6
RETRY_INTERVAL = Duration.seconds(2)
RETRY_BACKOFF_RATE = 2.0
TIMEOUT_RETRY_ATTEMPTS = 1
"""A task that timed out is tried once more: a sweep that ran its whole 15 minutes is not cheap to repeat."""
TASK_TIMEOUT = Duration.minutes(16)
"""Longer than the function's own 15 minutes: the function's timeout is reported as its own error, not this one."""
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
SCHEDULE_RETRY_ATTEMPTS = 3
SCHEDULE_MAX_EVENT_AGE_SECONDS = 3600


class PostureSweep(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        schedule_expression: str,
        state_machine_name: str,
        state_machine_role_name: str,
        schedule_name: str,
        schedule_role_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            comment="The account-regions to sweep in this run",
            lambda_function=function,
            payload=sfn.TaskInput.from_object({"plan": True, "run": sfn.JsonPath.string_at("$$.Execution.Name")}),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            task_timeout=sfn.Timeout.duration(TASK_TIMEOUT),
        )
        sweep_one = tasks.LambdaInvoke(
            self,
            "SweepTarget",
            comment="Sweep one account-region: {account, region, run} -> its summary",
            lambda_function=function,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            task_timeout=sfn.Timeout.duration(TASK_TIMEOUT),
        )
        for task in (plan, sweep_one):
            task.add_retry(
                errors=list(RETRIED_ERRORS),
                interval=RETRY_INTERVAL,
                max_attempts=RETRY_ATTEMPTS,
                backoff_rate=RETRY_BACKOFF_RATE,
                jitter_strategy=sfn.JitterType.FULL,
            )
            task.add_retry(errors=[sfn.Errors.TIMEOUT], interval=RETRY_INTERVAL, max_attempts=TIMEOUT_RETRY_ATTEMPTS)
        # One account-region that still fails must not stop the others: its error joins its target in the output.
        sweep_one.add_catch(
            sfn.Pass(self, "TargetFailed", comment="The target and its error, kept in the run's output"),
            errors=[sfn.Errors.ALL],
            result_path="$.error",
        )
        each_target = sfn.Map(
            self,
            "EachTarget",
            comment="Every account-region of the plan",
            items_path="$.targets",
            max_concurrency=MAX_CONCURRENCY,
            result_path="$.results",
        )
        each_target.item_processor(sweep_one)

        # Retained and unencrypted by a key of its own, like the functions' log groups: the audit trail of each run.
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        self.role = iam.Role(
            self,
            "Role",
            role_name=state_machine_role_name,
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="AMI Guard: runs the posture sweep function for each account-region",
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            comment="AMI Guard posture sweep: plan, then sweep each account-region",
            definition_body=sfn.DefinitionBody.from_chainable(plan.next(each_target)),
            role=self.role,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=False,
        )
        # As for the functions (cfn-lint W3005): the role is implied by Fn::GetAtt; only its policy must come first.
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(policy, iam.CfnPolicy)
        machine = self.state_machine.node.default_child
        assert isinstance(machine, sfn.CfnStateMachine)
        machine.add_override("DependsOn", [policy.logical_id])
        Validations.of(self.state_machine).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SF2",
                reason="No part of the guard uses X-Ray (its functions do not trace either): every state's input, "
                "output and error is logged at level ALL to the state machine's log group and kept in the "
                "execution history, which is what an operator reads to see a run.",
            )
        )
        acknowledge_wildcards(
            self.role,
            {
                "Resource::*": "CloudWatch Logs' log delivery actions (logs:CreateLogDelivery, GetLogDelivery, "
                "UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, "
                "DescribeLogGroups), which Step Functions uses to deliver its execution logs, support no "
                "resource-level permissions: IAM only accepts Resource '*' for them.",
                f"Resource::<{_logical_id(function)}.Arn>:*": "The Lambda invoke task's grant names the sweep "
                "function's ARN and its qualified ARNs (versions and aliases of that same function, ARN:*); no other "
                "function is invoked.",
            },
        )

        # The scheduler may start this state machine and nothing else, and only on behalf of this account.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            role_name=schedule_role_name,
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="AMI Guard: lets EventBridge Scheduler start the posture sweep",
        )
        self.schedule_role.add_to_policy(
            iam.PolicyStatement(
                sid="StartPostureSweep",
                actions=["states:StartExecution"],
                resources=[self.state_machine.state_machine_arn],
            )
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=schedule_name,
            description="AMI Guard: starts the posture sweep",
            schedule_expression=schedule_expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.state_machine.state_machine_arn,
                role_arn=self.schedule_role.role_arn,
                input=json.dumps({}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE_SECONDS,
                ),
            ),
        )


def _logical_id(function: lambda_.IFunction) -> str:
    resource = function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    return Stack.of(function).get_logical_id(resource)
