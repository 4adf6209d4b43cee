"""The three guard functions and the rules that feed them, as the default policy synthesizes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from ami_guard_cdk.components import guard_function
from tests.infra.conftest import (
    ALERT_TOPIC,
    HANDLERS,
    HEALTH_TOPIC,
    IMAGE_HANDLER,
    LAUNCH_HANDLER,
    PERMISSION_HANDLER,
    TAMPER_HANDLER,
    Synthesized,
    render,
)


def watched(stack: Synthesized, handler: str) -> dict[str, object]:
    """What each function watches for tampering, written out: the launch and image guards watch nothing, the
    permission guard watches the tamper guard's function, rule, roles and queue, the tamper guard everything else."""
    queue = {h: {"Fn::GetAtt": [failed_events_id(stack, h), "QueueName"]} for h in HANDLERS}
    alerts, health = stack.topic_id(ALERT_TOPIC), stack.topic_id(HEALTH_TOPIC)
    if handler == PERMISSION_HANDLER:
        return {
            "AMI_GUARD_WATCHED_FUNCTIONS": "AmiGuard-TamperGuard",
            "AMI_GUARD_WATCHED_RULES": "AmiGuard-TamperRule",
            "AMI_GUARD_WATCHED_ROLE_PREFIXES": "AmiGuard-TamperGuard-",
            "AMI_GUARD_WATCHED_QUEUES": queue[TAMPER_HANDLER],
        }
    if handler == TAMPER_HANDLER:
        return {
            "AMI_GUARD_WATCHED_FUNCTIONS": "AmiGuard-PermissionGuard,AmiGuard-LaunchGuard,AmiGuard-ImageGuard",
            "AMI_GUARD_WATCHED_RULES": "AmiGuard-PermissionRule,AmiGuard-LaunchRule,AmiGuard-ImageRule,"
            "AmiGuard-TamperWatchRule,AmiGuard-AlertPathWatchRule",
            "AMI_GUARD_WATCHED_TOPICS": {"Fn::Join": ["", [{"Ref": alerts}, ",", {"Ref": health}]]},
            "AMI_GUARD_WATCHED_KEYS": {
                "Fn::Join": [
                    "",
                    [
                        {"Fn::GetAtt": [stack.key_id(ALERT_TOPIC), "Arn"]},
                        ",",
                        {"Fn::GetAtt": [stack.key_id(HEALTH_TOPIC), "Arn"]},
                    ],
                ]
            },
            "AMI_GUARD_WATCHED_ROLE_PREFIXES": "AmiGuard-PermissionGuard-,AmiGuard-LaunchGuard-,AmiGuard-ImageGuard-",
            "AMI_GUARD_WATCHED_QUEUES": {
                "Fn::Join": [
                    "",
                    [queue[PERMISSION_HANDLER], ",", queue[LAUNCH_HANDLER], ",", queue[IMAGE_HANDLER]],
                ]
            },
            "AMI_GUARD_WATCHED_TABLES": {"Ref": stack.only("AWS::DynamoDB::Table")},
            "AMI_GUARD_WATCH_TRAILS": "true",
        }
    return {}


EC2_SOURCE = ["aws.ec2"]
PERMISSION_PATTERN = {
    "$or": [
        {
            "eventSource": ["ec2.amazonaws.com"],
            "eventName": [
                "CreateStoreImageTask",
                "DisableAllowedImagesSettings",
                "DisableImageBlockPublicAccess",
                "DisableImageDeregistrationProtection",
                "DisableSnapshotBlockPublicAccess",
                "EnableAllowedImagesSettings",
                "EnableSnapshotBlockPublicAccess",
                "ExportImage",
                "ModifyImageAttribute",
                "ModifySnapshotAttribute",
                "ReplaceImageCriteriaInAllowedImagesSettings",
                "UnlockSnapshot",
            ],
        },
        {"eventSource": ["rbin.amazonaws.com"], "eventName": ["DeleteRule", "UnlockRule", "UpdateRule"]},
    ]
}
RULES = [
    (PERMISSION_HANDLER, ["aws.ec2", "aws.rbin"], PERMISSION_PATTERN),
    (LAUNCH_HANDLER, EC2_SOURCE, {"eventSource": ["ec2.amazonaws.com"], "eventName": ["RunInstances"]}),
    (
        IMAGE_HANDLER,
        EC2_SOURCE,
        {"eventSource": ["ec2.amazonaws.com"], "eventName": ["CopyImage", "CreateImage", "RegisterImage"]},
    ),
]


@pytest.mark.parametrize(("handler", "sources", "detail"), RULES)
def test_each_rule_forwards_exactly_its_cloudtrail_events_to_its_function(
    default_stack: Synthesized, handler: str, sources: list[str], detail: dict[str, Any]
) -> None:
    # Given the default stack, when its rules are read, then one rule matches exactly these calls for this function
    default_stack.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_equals(
                {"source": sources, "detail-type": ["AWS API Call via CloudTrail"], "detail": detail}
            ),
            "EventBusName": Match.absent(),
            "State": "ENABLED",
            "Targets": [
                {
                    "Arn": {"Fn::GetAtt": [default_stack.function_id(handler), "Arn"]},
                    "Id": Match.any_value(),
                    "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 2 * 3600},
                    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [failed_events_id(default_stack, handler), "Arn"]}},
                }
            ],
        },
    )


def failed_events_id(stack: Synthesized, handler: str) -> str:
    """The logical id of the queue a function's failed invocations go to."""
    function_id = stack.function_id(handler)
    (config,) = [
        c["Properties"]
        for c in stack.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    queue_id: str = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    return queue_id


def test_there_is_one_rule_and_one_invoke_permission_per_function(default_stack: Synthesized) -> None:
    # Three guards on EC2 calls, the tamper guard, the rule that lets the permission guard watch the tamper guard, and
    # the rule that tells the health topic of changes to the alert path (no function: it publishes directly)
    default_stack.template.resource_count_is("AWS::Events::Rule", 6)
    default_stack.template.resource_count_is("AWS::Lambda::Function", 4)
    for handler in HANDLERS:
        default_stack.template.has_resource_properties(
            "AWS::Lambda::Permission",
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": [default_stack.function_id(handler), "Arn"]},
                "Principal": "events.amazonaws.com",
            },
        )


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_runs_python313_on_arm64_with_the_pinned_powertools_layer(
    default_stack: Synthesized, handler: str
) -> None:
    function = default_stack.function(handler)

    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["MemorySize"] == 256
    assert function["Timeout"] == 60
    assert "ReservedConcurrentExecutions" not in function
    assert [render(layer) for layer in function["Layers"]] == [
        "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    ]


def test_layer_number_belongs_to_the_installed_powertools_version() -> None:
    # A layer number is only right for the Powertools release it was published with, and that release must be the
    # one installed from requirements-dev.txt, so that the tests exercise the library the functions run with.
    from aws_lambda_powertools.shared.version import VERSION

    assert guard_function.POWERTOOLS_VERSION == VERSION
    assert guard_function.POWERTOOLS_LAYER_VERSIONS[VERSION] == guard_function.POWERTOOLS_LAYER_VERSION


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_environment_carries_the_policy_and_the_topic(default_stack: Synthesized, handler: str) -> None:
    variables = default_stack.function(handler)["Environment"]["Variables"]

    # The default block: trusted account and organization, minSeverity LOW, remediate off, copyTags on, two tags
    assert variables == {
        "AMI_GUARD_TRUSTED_ACCOUNTS": "111122223333",
        "AMI_GUARD_TRUSTED_ORGANIZATIONS": "arn:aws:organizations::111122223333:organization/o-abcdefghij",
        "AMI_GUARD_MIN_SEVERITY": "LOW",
        "AMI_GUARD_REMEDIATE": "false",
        "AMI_GUARD_COPY_TAGS": "true",
        "AMI_GUARD_REQUIRED_TAGS": '["Owner", "CostCenter"]',
        "AMI_GUARD_TOPIC_ARN": {"Ref": default_stack.topic_id()},
        "AMI_GUARD_IDEMPOTENCY_TABLE": {"Ref": default_stack.only("AWS::DynamoDB::Table")},
        # finding events go to the account's default bus (docs/integrations.md)
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
        **watched(default_stack, handler),
        "POWERTOOLS_SERVICE_NAME": "ami-guard",
        "POWERTOOLS_METRICS_NAMESPACE": "AmiGuard",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_remediate_policy_reaches_the_functions(remediate_stack: Synthesized) -> None:
    for handler in HANDLERS:
        variables = remediate_stack.function(handler)["Environment"]["Variables"]
        assert variables["AMI_GUARD_REMEDIATE"] == "true"
        assert variables["AMI_GUARD_COPY_TAGS"] == "false"
        assert variables["AMI_GUARD_MIN_SEVERITY"] == "HIGH"


def test_each_function_logs_to_its_own_retained_log_group_kept_one_year(default_stack: Synthesized) -> None:
    log_groups = default_stack.resources("AWS::Logs::LogGroup")
    used = {default_stack.function(handler)["LoggingConfig"]["LogGroup"]["Ref"] for handler in HANDLERS}

    assert used == set(log_groups)
    assert len(used) == 4
    for log_group in log_groups.values():
        assert log_group["Properties"]["RetentionInDays"] == 365
        assert log_group["DeletionPolicy"] == "Retain"
        assert log_group["UpdateReplacePolicy"] == "Retain"


def test_code_asset_is_the_functions_directory_without_build_debris(default_stack: Synthesized) -> None:
    # Given the sources (with the bytecode Python writes beside them) and the one asset staged for the functions
    sources = {
        path.relative_to(guard_function.PACKAGE_DIR.parent)
        for path in guard_function.PACKAGE_DIR.rglob("*")
        if path.is_file() and not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)
    }
    (asset,) = Path(default_stack.app.outdir).glob("asset.*")
    staged = {path.relative_to(asset) for path in asset.rglob("*") if path.is_file()}

    # Then every function has the same code, the staged asset is the source tree, and nothing else came along but
    # the asset's own CPython 3.13 bytecode (tests/infra/test_asset_bytecode.py): none of this machine's
    assert Path(__file__).resolve().parents[2] / "functions" / "ami_guard" == guard_function.PACKAGE_DIR
    assert len({str(default_stack.function(handler)["Code"]) for handler in HANDLERS}) == 1
    assert Path("ami_guard/handlers/permission_guard.py") in staged
    assert {path for path in staged if "__pycache__" not in path.parts} == {p for p in sources if p.suffix != ".pyc"}
    assert not [path for path in staged if path.suffix == ".pyc" and not path.name.endswith(".cpython-313.pyc")]


def test_outputs_name_the_topic_and_the_functions(default_stack: Synthesized) -> None:
    outputs = default_stack.template.to_json()["Outputs"]

    assert outputs["AlertTopicArn"]["Value"] == {"Ref": default_stack.topic_id()}
    assert outputs["HealthTopicArn"]["Value"] == {"Ref": default_stack.topic_id(HEALTH_TOPIC)}
    for name, handler in [
        ("PermissionGuardFunctionName", PERMISSION_HANDLER),
        ("LaunchGuardFunctionName", LAUNCH_HANDLER),
        ("ImageGuardFunctionName", IMAGE_HANDLER),
    ]:
        assert outputs[name]["Value"] == {"Ref": default_stack.function_id(handler)}
