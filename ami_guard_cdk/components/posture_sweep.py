"""The deployed posture sweep's engine: a Step Functions state machine that plans the account-regions and sweeps each
with the sweep function (a Distributed Map over a plan in S3), the bucket the plan and the results go to, and the
EventBridge Scheduler schedule that starts it.

The function does the work (ami_guard.handlers.sweep_guard); this construct only runs it:
- `Plan`: `{"plan": true, "run": <execution name>}` writes the targets to `runs/<run>/plan.json` in the bucket and
  returns `{"bucket", "key", "results", "targets": <count>}`: a few bytes whatever the organization's size.
- `EachTarget`: a Distributed Map whose S3 ItemReader reads that JSON array, one STANDARD child execution per target
  (a big account-region loops longer than an Express workflow's 5 minutes), at most MAX_CONCURRENCY at a time; its
  ResultWriter writes every child's output to `runs/<run>/results/` in the bucket (not into the execution's 256 KB
  payload nor its 25,000-event history).
- In each child, `SweepTarget` invokes the function with the target (`{"account", "region", "run"}`, then what the
  last step returned); `MoreToSweep` loops back while the function answers `"done": false` (it checkpointed before
  its 15 minutes ran out: the input then carries its cursor), and `TargetSwept` ends with the summary. Each
  invocation is retried on Lambda's throttling and service errors; a target that still fails is caught
  (`TargetFailed`: its error is kept with the target in the results) and the others go on.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ami_guard import contract
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
RUNS_EXPIRE = Duration.days(30)
"""Each run's plan and results are kept a month (the execution history keeps 90 days of the runs themselves)."""
RESULT_WRITER_V2_FLAG = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"
SCHEDULE_RETRY_ATTEMPTS = 3
SCHEDULE_MAX_EVENT_AGE_SECONDS = 3600


class PostureSweep(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        schedule_expression: str,
        state_machine_name: str,
        state_machine_role_name: str,
        schedule_name: str,
        schedule_role_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        # The Distributed Map renders its ResultWriterV2 only under this flag (else the deprecated V1 or nothing);
        # set here, for this construct only, so that the app's cdk.json need not change.
        self.node.set_context(RESULT_WRITER_V2_FLAG, True)
        stack = Stack.of(self)

        # The runs' plans and results: S3-managed encryption, TLS only, no public access, each run kept RUNS_EXPIRE.
        self.bucket = s3.Bucket(
            self,
            "Runs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=False,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireRuns",
                    prefix=contract.SWEEP_RUNS_PREFIX,
                    expiration=RUNS_EXPIRE,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            # Like the state machine's log group: the record of past runs outlives the stack (and CloudFormation
            # could not delete a bucket that still holds objects anyway); the lifecycle empties it within a month.
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="The bucket holds only the sweep's own plans and per-target results, written and read by the "
                "sweep function and its state machine (their calls are in CloudTrail); no person or other service "
                "reads it, and an access-log bucket would be one more resource to secure for no added audit trail.",
            )
        )
        # The function writes plans only (runs/<run>/plan.json): nothing else in the bucket, and it reads nothing.
        function.add_environment(contract.ENV_SWEEP_BUCKET, self.bucket.bucket_name)
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="WriteSweepPlans",
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{contract.SWEEP_RUNS_PREFIX}*")],
            )
        )

        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            comment="Write the account-regions of this run to the bucket: {bucket, key, results, targets: count}",
            lambda_function=function,
            payload=sfn.TaskInput.from_object({"plan": True, "run": sfn.JsonPath.string_at("$$.Execution.Name")}),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            task_timeout=sfn.Timeout.duration(TASK_TIMEOUT),
        )
        sweep_one = tasks.LambdaInvoke(
            self,
            "SweepTarget",
            comment="One step of one account-region: {account, region, run, cursor} -> done, or the next cursor",
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
            sfn.Pass(self, "TargetFailed", comment="The target and its error, kept in the run's results"),
            errors=[sfn.Errors.ALL],
            result_path="$.error",
        )
        more = sfn.Choice(self, "MoreToSweep", comment="The function checkpointed: go on from its cursor")
        more.when(
            sfn.Condition.and_(sfn.Condition.is_present("$.done"), sfn.Condition.boolean_equals("$.done", False)),
            sweep_one,
        )
        more.otherwise(sfn.Succeed(self, "TargetSwept", comment="The account-region's summary (or its refusal)"))
        sweep_one.next(more)
        each_target = sfn.DistributedMap(
            self,
            "EachTarget",
            comment="Every account-region of the plan, read from the bucket",
            item_reader=sfn.S3JsonItemReader(bucket=self.bucket, key=sfn.JsonPath.string_at("$.key")),
            result_writer_v2=sfn.ResultWriterV2(bucket=self.bucket, prefix=sfn.JsonPath.string_at("$.results")),
            map_execution_type=sfn.StateMachineType.STANDARD,
            max_concurrency=MAX_CONCURRENCY,
            result_path="$.written",
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
        bucket_id = stack.get_logical_id(_cfn(self.bucket))
        acknowledge_wildcards(
            function.role or function,
            {
                f"Resource::<{bucket_id}.Arn>/runs/*": "The sweep function writes each run's plan under runs/ "
                "(runs/<run>/plan.json, a name it makes from the execution's name): the object names are not known "
                "in advance, and the grant is PutObject there only.",
            },
        )
        # Distributed Map: the role starts its own child executions and describes and stops them (CDK's grant).
        # (as cdk-nag names the resource: an environment-agnostic stack's region and account as their references)
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        execution = (
            f'arn:<AWS::Partition>:states:{region}:{account}:execution:{{"Fn::Select":[6,{{"Fn::Split":'
            f'[":",{{"Ref":"{stack.get_logical_id(machine)}"}}]}}]}}'
        )
        acknowledge_wildcards(
            self.state_machine,
            {
                f"Resource::{execution}:*": "A Distributed Map's child executions are named by Step Functions when "
                "the map runs: DescribeExecution and StopExecution are granted on the executions of this state "
                "machine only (its own name, any execution).",
                f"Resource::{execution}/*:*": "The same for the executions of the Distributed Map's map runs "
                "(<state machine>/<map run id>:<execution>), named when the map runs.",
            },
        )
        acknowledge_wildcards(
            self.role,
            {
                f"Resource::arn:<AWS::Partition>:s3:::<{bucket_id}>/*": "The Distributed Map reads the plan "
                "(ItemReader: GetObject) and writes the results (ResultWriter: PutObject and its multipart upload "
                "actions) of runs whose keys are made from each execution's name, in the sweep's own bucket only.",
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


def _cfn(bucket: s3.Bucket) -> s3.CfnBucket:
    resource = bucket.node.default_child
    assert isinstance(resource, s3.CfnBucket)
    return resource


def _logical_id(function: lambda_.IFunction) -> str:
    resource = function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    return Stack.of(function).get_logical_id(resource)
