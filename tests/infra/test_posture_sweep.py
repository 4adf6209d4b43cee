"""The deployed posture sweep (amiGuard.sweepSchedule): its function, state machine, schedule and their roles, the
findings index, and nothing of it when the sweep is off.

Which of the sweep role's grants are called is checked by tests/functions/test_calls_against_grants.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import (
    LAUNCH_HANDLER,
    SWEEP_BLOCK,
    SWEEP_SCHEDULE,
    TAMPER_HANDLER,
    TRUSTED_ACCOUNT,
    TRUSTED_ORGANIZATION,
    Synthesized,
    render,
    synthesize,
)
from tests.infra.test_guard_roles import grants

SWEEP_HANDLER = "ami_guard.handlers.sweep_guard.lambda_handler"
FUNCTION = "SweepGuardFunction748814D1"
STATE_MACHINE = "SweepStateMachineE9432328"
BUCKET = "SweepRunsF8CCA742"
TABLE = "IdempotencyTable48612DF4"
RETRIES = [
    {
        "ErrorEquals": ["Lambda.TooManyRequestsException", "Lambda.ServiceException"],
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    },
    {"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 2, "MaxAttempts": 1},
]
EIGHT_READS = frozenset(
    {
        "ec2:DescribeImages",
        "ec2:DescribeImageAttribute",
        "ec2:DescribeSnapshots",
        "ec2:DescribeSnapshotAttribute",
        "ec2:DescribeInstances",
        "ec2:GetImageBlockPublicAccessState",
        "ec2:GetSnapshotBlockPublicAccessState",
        "ec2:GetAllowedImagesSettings",
    }
)


def properties(stack: Synthesized, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = stack.template.to_json()["Resources"][logical_id]["Properties"]
    return props


def statements_of(stack: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """The role's default policy (the Distributed Map's own policy is read apart)."""
    (policy,) = [
        p["Properties"]
        for logical_id, p in stack.resources("AWS::IAM::Policy").items()
        if p["Properties"]["Roles"] == [{"Ref": role_id}] and "DistributedMapPolicy" not in logical_id
    ]
    return [
        {
            "Action": s["Action"],
            "Resource": [render(r) for r in s["Resource"]]
            if isinstance(s["Resource"], list)
            else render(s["Resource"]),
        }
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]


# --- the function ------------------------------------------------------------------------------------------------


def test_the_sweep_function_runs_the_sweep_handler_for_fifteen_minutes_in_a_gigabyte(sweep_stack: Synthesized) -> None:
    function = sweep_stack.function(SWEEP_HANDLER)

    assert sweep_stack.function_id(SWEEP_HANDLER) == FUNCTION
    assert function["FunctionName"] == "AmiGuard-SweepGuard"
    assert (function["Timeout"], function["MemorySize"]) == (900, 1024)
    assert (function["Runtime"], function["Architectures"]) == ("python3.13", ["arm64"])
    role = sweep_stack.resources("AWS::IAM::Role")[sweep_stack.role_id(SWEEP_HANDLER)]["Properties"]
    assert role["RoleName"] == {"Fn::Join": ["", ["AmiGuard-SweepGuard-", {"Ref": "AWS::Region"}]]}


def test_the_sweep_function_has_the_guards_environment_and_its_concurrency(sweep_stack: Synthesized) -> None:
    variables = sweep_stack.function(SWEEP_HANDLER)["Environment"]["Variables"]

    assert variables == {
        "AMI_GUARD_TRUSTED_ACCOUNTS": TRUSTED_ACCOUNT,
        "AMI_GUARD_TRUSTED_ORGANIZATIONS": TRUSTED_ORGANIZATION,
        "AMI_GUARD_MIN_SEVERITY": "LOW",
        "AMI_GUARD_REMEDIATE": "false",
        "AMI_GUARD_COPY_TAGS": "true",
        "AMI_GUARD_REQUIRED_TAGS": '["Owner", "CostCenter"]',
        "AMI_GUARD_TOPIC_ARN": {"Ref": "AlertsTopicCF7C81C9"},
        "AMI_GUARD_IDEMPOTENCY_TABLE": {"Ref": TABLE},
        "AMI_GUARD_SWEEP_CONCURRENCY": "8",
        "AMI_GUARD_SWEEP_BUCKET": {"Ref": BUCKET},
        "AMI_GUARD_FINDINGS_BUS": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":events:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":event-bus/default",
                ],
            ]
        },
        "POWERTOOLS_SERVICE_NAME": "ami-guard",
        "POWERTOOLS_METRICS_NAMESPACE": "AmiGuard",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    # the schedule is a deployment setting: no function is given it
    launch = sweep_stack.function(LAUNCH_HANDLER)["Environment"]["Variables"]
    assert SWEEP_SCHEDULE not in json.dumps([variables, launch])


def test_the_sweep_is_invoked_synchronously_so_it_has_no_failed_events_queue_or_async_settings(
    sweep_stack: Synthesized,
) -> None:
    configured = [
        c["Properties"]["FunctionName"] for c in sweep_stack.resources("AWS::Lambda::EventInvokeConfig").values()
    ]

    assert {"Ref": FUNCTION} not in configured
    assert len(configured) == 4
    assert len(sweep_stack.resources("AWS::SQS::Queue")) == 4
    # nothing but its state machine invokes it: no EventBridge rule, no resource policy
    assert not [p for p in sweep_stack.resources("AWS::Lambda::Permission").values() if "SweepGuard" in json.dumps(p)]


def test_the_sweep_role_holds_exactly_its_reads_its_tag_restore_its_publish_and_its_finding_records(
    sweep_stack: Synthesized,
) -> None:
    assert grants(sweep_stack, SWEEP_HANDLER) == {
        (
            frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}),
            frozenset({"${SweepGuardLogGroup85BBE083.Arn}"}),
            "",
        ),
        (EIGHT_READS, frozenset({"*"}), ""),
        # copyTags is on: the tags of copies found without their source's are restored, as the image guard does
        (
            frozenset({"ec2:CreateTags"}),
            frozenset(
                {
                    "arn:${AWS::Partition}:ec2:${AWS::Region}::image/*",
                    "arn:${AWS::Partition}:ec2:${AWS::Region}::snapshot/*",
                }
            ),
            "StringEquals:ec2:Owner=${AWS::AccountId}",
        ),
        (frozenset({"sns:Publish"}), frozenset({"${AlertsTopicCF7C81C9}"}), ""),
        (frozenset({"kms:GenerateDataKey", "kms:Decrypt"}), frozenset({"${AlertsKey9E1197AF.Arn}"}), ""),
        (frozenset({"dynamodb:PutItem", "dynamodb:UpdateItem"}), frozenset({f"${{{TABLE}.Arn}}"}), ""),
        (frozenset({"dynamodb:Query"}), frozenset({f"${{{TABLE}.Arn}}/index/scope-index"}), ""),
        # the plan of each run, and nothing else in the bucket: no read, no other prefix
        (frozenset({"s3:PutObject"}), frozenset({f"${{{BUCKET}.Arn}}/runs/*"}), ""),
        # its findings as events on the account's default bus (docs/integrations.md)
        (
            frozenset({"events:PutEvents"}),
            frozenset({"arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}),
            "",
        ),
    }


def test_the_sweep_has_error_and_throttle_alarms(sweep_stack: Synthesized) -> None:
    names = sorted(
        a["Properties"]["AlarmName"]
        for a in sweep_stack.resources("AWS::CloudWatch::Alarm").values()
        if "SweepGuard" in a["Properties"]["AlarmName"]
    )

    assert names == [
        "AmiGuard-SweepGuard-Errors",
        "AmiGuard-SweepGuard-RunsAborted",
        "AmiGuard-SweepGuard-RunsFailed",
        "AmiGuard-SweepGuard-RunsTimedOut",
        "AmiGuard-SweepGuard-Throttles",
    ]


def test_a_run_that_fails_times_out_or_is_stopped_alarms_the_health_topic(sweep_stack: Synthesized) -> None:
    """The function's alarms cannot see a run that never reached it (the plan's bucket or the machine's role broken)."""
    runs = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in sweep_stack.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].startswith("AmiGuard-SweepGuard-Runs")
    }

    assert {name: (p["Namespace"], p["MetricName"]) for name, p in runs.items()} == {
        "AmiGuard-SweepGuard-RunsFailed": ("AWS/States", "ExecutionsFailed"),
        "AmiGuard-SweepGuard-RunsTimedOut": ("AWS/States", "ExecutionsTimedOut"),
        "AmiGuard-SweepGuard-RunsAborted": ("AWS/States", "ExecutionsAborted"),
    }
    for alarm in runs.values():
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": STATE_MACHINE}}]
        assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Statistic"]) == (1, 1, "Sum")
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": "HealthTopic252048D3"}]


# --- the state machine -------------------------------------------------------------------------------------------


def definition(stack: Synthesized) -> dict[str, Any]:
    text = render(properties(stack, STATE_MACHINE)["DefinitionString"])
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_the_state_machine_plans_into_the_bucket_then_fans_out_with_a_distributed_map(sweep_stack: Synthesized) -> None:
    machine = definition(sweep_stack)
    function_arn = f"${{{FUNCTION}.Arn}}"

    assert machine["StartAt"] == "Plan"
    plan = machine["States"]["Plan"]
    assert (plan["Type"], plan["Resource"], plan["Next"]) == ("Task", function_arn, "EachTarget")
    assert plan["Parameters"] == {"plan": True, "run.$": "$$.Execution.Name"}
    assert plan["Retry"] == RETRIES
    assert plan["TimeoutSeconds"] == 960

    each = machine["States"]["EachTarget"]
    assert (each["Type"], each["MaxConcurrency"], each["End"]) == ("Map", 10, True)
    assert "ItemsPath" not in each  # the targets are never in the state's payload
    # the plan step's {bucket, key, results}: the targets are read from the object it wrote, the children's outputs
    # written beside it
    assert each["ItemReader"] == {
        "Resource": "arn:${AWS::Partition}:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": f"${{{BUCKET}}}", "Key.$": "$.key"},
    }
    assert each["ResultWriter"] == {
        "Resource": "arn:${AWS::Partition}:states:::s3:putObject",
        "Parameters": {"Bucket": f"${{{BUCKET}}}", "Prefix.$": "$.results"},
    }
    assert each["ResultPath"] == "$.written"
    assert each["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def test_each_target_loops_on_the_function_until_it_is_done_and_a_failure_is_caught(sweep_stack: Synthesized) -> None:
    processor = definition(sweep_stack)["States"]["EachTarget"]["ItemProcessor"]
    function_arn = f"${{{FUNCTION}.Arn}}"

    assert processor["StartAt"] == "SweepTarget"
    target = processor["States"]["SweepTarget"]
    # the item ({account, region, run}), then the function's last answer (with its cursor), is its whole event
    assert (target["Type"], target["Resource"], "Parameters" in target) == ("Task", function_arn, False)
    assert target["Next"] == "MoreToSweep"
    assert target["Retry"] == RETRIES
    assert target["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "TargetFailed"}]
    more = processor["States"]["MoreToSweep"]
    assert more["Type"] == "Choice"
    assert more["Choices"] == [
        {
            "And": [{"Variable": "$.done", "IsPresent": True}, {"Variable": "$.done", "BooleanEquals": False}],
            "Next": "SweepTarget",
        }
    ]
    assert more["Default"] == "TargetSwept"
    assert processor["States"]["TargetSwept"]["Type"] == "Succeed"
    assert processor["States"]["TargetFailed"]["Type"] == "Pass"
    assert processor["States"]["TargetFailed"]["End"] is True
    assert sorted(processor["States"]) == ["MoreToSweep", "SweepTarget", "TargetFailed", "TargetSwept"]


def test_the_state_machine_is_standard_logs_everything_to_a_retained_log_group_and_has_a_watched_name(
    sweep_stack: Synthesized,
) -> None:
    props = properties(sweep_stack, STATE_MACHINE)

    assert props["StateMachineName"] == "AmiGuard-Sweep"
    assert props["StateMachineType"] == "STANDARD"
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    assert destination == {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["SweepLogsA7192123", "Arn"]}}}
    assert (props["LoggingConfiguration"]["Level"], props["LoggingConfiguration"]["IncludeExecutionData"]) == (
        "ALL",
        True,
    )
    logs = sweep_stack.template.to_json()["Resources"]["SweepLogsA7192123"]
    assert (logs["Properties"]["RetentionInDays"], logs["DeletionPolicy"]) == (365, "Retain")
    role = sweep_stack.resources("AWS::IAM::Role")[props["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    assert role["RoleName"] == {"Fn::Join": ["", ["AmiGuard-SweepMachine-", {"Ref": "AWS::Region"}]]}
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}}
    ]


def test_the_state_machine_role_may_invoke_the_function_use_its_bucket_run_its_children_and_deliver_its_logs_only(
    sweep_stack: Synthesized,
) -> None:
    role_id = properties(sweep_stack, STATE_MACHINE)["RoleArn"]["Fn::GetAtt"][0]
    objects = f"arn:${{AWS::Partition}}:s3:::${{{BUCKET}}}/*"
    # the state machine's own name, taken from its ARN
    own_name = str({"Fn::Select": [6, {"Fn::Split": [":", {"Ref": STATE_MACHINE}]}]})
    executions = f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{own_name}"

    policies = [
        [
            {"Action": s["Action"], "Resource": render(s["Resource"])}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        for p in sweep_stack.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    (distributed_map,) = [p for p in policies if any(s["Action"] == "states:StartExecution" for s in p)]
    # Distributed Map: its own child executions (and their map runs), nothing else
    assert [s["Action"] for s in distributed_map] == [
        "states:StartExecution",
        ["states:DescribeExecution", "states:StopExecution"],
        "states:RedriveExecution",
    ]
    assert distributed_map[0]["Resource"] == f"${{{STATE_MACHINE}}}"
    assert [s["Resource"] for s in distributed_map[1:]] == [f"{executions}:*", f"{executions}/*:*"]
    assert statements_of(sweep_stack, role_id) == [
        {"Action": "lambda:InvokeFunction", "Resource": [f"${{{FUNCTION}.Arn}}", f"${{{FUNCTION}.Arn}}:*"]},
        # ResultWriter: the results
        {
            "Action": ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
            "Resource": objects,
        },
        # ItemReader: the plan
        {"Action": "s3:GetObject", "Resource": objects},
        {
            "Action": [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "Resource": "*",
        },
    ]


# --- the bucket --------------------------------------------------------------------------------------------------


def test_the_runs_bucket_is_encrypted_private_tls_only_retained_and_expires_runs_after_thirty_days(
    sweep_stack: Synthesized,
) -> None:
    bucket = sweep_stack.template.to_json()["Resources"][BUCKET]

    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = bucket["Properties"]
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "VersioningConfiguration" not in props
    assert props["LifecycleConfiguration"] == {
        "Rules": [
            {
                "Id": "ExpireRuns",
                "Prefix": "runs/",
                "ExpirationInDays": 30,
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                "Status": "Enabled",
            }
        ]
    }
    (policy,) = [
        p["Properties"]
        for p in sweep_stack.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": BUCKET}
    ]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": [
                {"Fn::GetAtt": [BUCKET, "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": [BUCKET, "Arn"]}, "/*"]]},
            ],
        }
    ]


# --- the schedule ------------------------------------------------------------------------------------------------


def test_the_schedule_starts_the_state_machine_with_the_configured_expression_on_time(
    sweep_stack: Synthesized,
) -> None:
    (schedule_id,) = sweep_stack.resources("AWS::Scheduler::Schedule")
    props = properties(sweep_stack, schedule_id)

    assert props["Name"] == "AmiGuard-Sweep"
    assert props["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    assert props["Target"]["Arn"] == {"Ref": STATE_MACHINE}
    assert props["Target"]["Input"] == "{}"
    role_id = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = sweep_stack.resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["RoleName"] == {"Fn::Join": ["", ["AmiGuard-SweepSchedule-", {"Ref": "AWS::Region"}]]}
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert statements_of(sweep_stack, role_id) == [
        {"Action": "states:StartExecution", "Resource": f"${{{STATE_MACHINE}}}"}
    ]


# --- the findings index, sweep or not ----------------------------------------------------------------------------


def test_the_table_indexes_findings_by_scope_whether_the_sweep_runs_or_not(
    default_stack: Synthesized, sweep_stack: Synthesized
) -> None:
    for stack in (default_stack, sweep_stack):
        table = properties(stack, TABLE)
        assert table["GlobalSecondaryIndexes"] == [
            {
                "IndexName": "scope-index",
                "KeySchema": [
                    {"AttributeName": "scope", "KeyType": "HASH"},
                    {"AttributeName": "id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
        assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "scope", "AttributeType": "S"},
        ]
        assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


# --- the tamper watch --------------------------------------------------------------------------------------------


def test_the_tamper_guard_watches_the_sweeps_function_roles_state_machine_and_schedule(
    sweep_stack: Synthesized,
) -> None:
    variables = sweep_stack.function(TAMPER_HANDLER)["Environment"]["Variables"]

    assert variables["AMI_GUARD_WATCHED_FUNCTIONS"] == (
        "AmiGuard-PermissionGuard,AmiGuard-LaunchGuard,AmiGuard-ImageGuard,AmiGuard-SweepGuard"
    )
    assert variables["AMI_GUARD_WATCHED_ROLE_PREFIXES"] == (
        "AmiGuard-PermissionGuard-,AmiGuard-LaunchGuard-,AmiGuard-ImageGuard-,"
        "AmiGuard-SweepGuard-,AmiGuard-SweepMachine-,AmiGuard-SweepSchedule-"
    )
    assert variables["AMI_GUARD_WATCHED_STATE_MACHINES"] == "AmiGuard-Sweep"
    assert variables["AMI_GUARD_WATCHED_SCHEDULES"] == "AmiGuard-Sweep"


# --- off ---------------------------------------------------------------------------------------------------------


def test_with_the_sweep_off_nothing_of_it_is_deployed(default_stack: Synthesized) -> None:
    template = json.dumps(default_stack.template.to_json())

    assert default_stack.resources("AWS::StepFunctions::StateMachine") == {}
    assert default_stack.resources("AWS::Scheduler::Schedule") == {}
    assert default_stack.resources("AWS::S3::Bucket") == {}
    assert len(default_stack.resources("AWS::Lambda::Function")) == 4
    for absent in (
        "SweepGuard",
        "SweepMachine",
        "SweepSchedule",
        "AMI_GUARD_SWEEP_CONCURRENCY",
        "AMI_GUARD_SWEEP_BUCKET",
        "AMI_GUARD_WATCHED_STATE_MACHINES",
        "AMI_GUARD_WATCHED_SCHEDULES",
        "states.amazonaws.com",
        "scheduler.amazonaws.com",
        "ec2:DescribeInstances",
        "ec2:GetAllowedImagesSettings",
        "dynamodb:Query",
    ):
        assert absent not in template, absent


def test_without_copy_tags_the_sweep_restores_no_tags(tmp_path_factory: pytest.TempPathFactory) -> None:
    stack = synthesize({**SWEEP_BLOCK, "copyTags": False}, tmp_path_factory.mktemp("cdk.out"))

    actions = {action for grant in grants(stack, SWEEP_HANDLER) for action in grant[0]}

    assert "ec2:CreateTags" not in actions
    assert actions >= EIGHT_READS
