"""One guard Lambda: the ami_guard package as its asset, the Powertools layer, its own log group and its own role."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jsii
from aws_cdk import Acknowledgment, BundlingOptions, Duration, ILocalBundling, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import ami_guard
from ami_guard import contract
from ami_guard_cdk.components import bytecode
from ami_guard_cdk.components.bytecode import ASSET_EXCLUDES

PACKAGE_DIR = Path(ami_guard.__file__).resolve().parent
"""The one code asset: the installed ami_guard package (functions/ami_guard in this repository's editable install,
site-packages after `pip install`), staged alone into the asset's root, so that the handler strings
(ami_guard.<module>.<function>) import exactly what pytest imports."""

# Powertools for AWS Lambda (Python) public layer numbers, per library version, each from a public source.
# 3.23.0 -> 27: aws-powertools/powertools-lambda-python issue #7689 (2025-11-15) observes
# "AWSLambdaPowertoolsPythonV3-python313-x86_64:27 (created Nov 13)" for 3.23.0, released that day, with the SSM
# parameter .../python3.13/latest pointing at 27; PR #7757 moves the documented ARNs for both x86_64 and arm64
# to :27, and PR #7695 shows the arm64 python3.13 layer was published in the same release.
# The "docs(layer): update layer version number" PR descriptions are not used: they are templated and contradict
# each other (v3.4.1 and v3.5.0 both "create the layer version 6").
# Add a pair here only with its source; tests/infra fails unless the installed aws-lambda-powertools (the pin in
# requirements-dev.txt) is POWERTOOLS_VERSION, so that the tests exercise the library the functions run with.
POWERTOOLS_LAYER_VERSIONS = {"3.23.0": 27}
POWERTOOLS_VERSION = "3.23.0"
POWERTOOLS_LAYER_VERSION = POWERTOOLS_LAYER_VERSIONS[POWERTOOLS_VERSION]
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
MEMORY_SIZE_MB = 256
TIMEOUT_SECONDS = 60
TIMEOUT = Duration.seconds(TIMEOUT_SECONDS)
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
POWERTOOLS_LOG_LEVEL = "INFO"


def powertools_layer_arn(stack: Stack) -> str:
    """The layer ARN in the stack's own partition and region (tokens: the stack stays environment-agnostic)."""
    return (
        f"arn:{stack.partition}:lambda:{stack.region}:{POWERTOOLS_LAYER_ACCOUNT}:"
        f"layer:{POWERTOOLS_LAYER_NAME}:{POWERTOOLS_LAYER_VERSION}"
    )


@jsii.implements(ILocalBundling)
class CompiledAsset:
    """Local bundling of the staged package: the source without ASSET_EXCLUDES, and its bytecode for the runtime's
    Python.

    Always local: it is made only when a CPython 3.13 was found, so the bundling image (the runtime's own) is never
    pulled and Docker is never needed. The CDK calls it with the directory to fill (then renamed to the asset).
    """

    def __init__(self, python: str, source: Path) -> None:
        self.python = python
        self.source = source

    def try_bundle(self, output_dir: str, *args: object, **kwargs: object) -> bool:
        """Called with the directory to fill and the BundlingOptions (positional or as keywords: unused)."""
        bytecode.build(self.python, self.source, Path(output_dir))
        return True


def function_code(source: Path | None = None) -> lambda_.Code:
    """The asset `source` (None: the installed ami_guard package, staged alone: bytecode.staged_package) with
    CPython 3.13 bytecode when this machine has a 3.13 (ami_guard_cdk/components/bytecode.py), else the
    source alone, said once on stderr: then every cold start compiles it.

    The asset hash is the CDK's SOURCE hash (its default, also with bundling): a SHA-256 of the fingerprint of
    the source without the excludes and of the bundling options. A changed source is a new asset, compiled again (no
    stale bytecode can ship); the same source is the same asset, bundled once per cdk.out. The options' environment
    is passed to no container (the bundling is always local): it names the recipe, Python 3.13 and the compileall
    options, so that a change of either is a new asset too.
    """
    if source is None:
        source = bytecode.staged_package(PACKAGE_DIR)
    python = bytecode.interpreter()
    if python is None:
        bytecode.warn_missing_once()
        return lambda_.Code.from_asset(str(source), exclude=list(ASSET_EXCLUDES))
    return lambda_.Code.from_asset(
        str(source),
        exclude=list(ASSET_EXCLUDES),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            local=CompiledAsset(python.path, source),
            environment={"AMIGUARD_BYTECODE": bytecode.recipe()},
        ),
    )


ASYNC_RETRY_ATTEMPTS = 2
FAILED_EVENT_RETENTION = Duration.days(14)


@jsii.implements(lambda_.IDestination)
class SendOnlyQueueDestination:
    """An on-failure SQS destination that grants the function's role what Lambda uses to deliver to it, and no more.

    Lambda sends the failed event with sqs:SendMessage under the execution role (Lambda developer guide, "Configuring
    destinations for asynchronous invocation"). The CDK's SqsDestination grants Queue.grant_send_messages, which
    adds sqs:GetQueueAttributes and sqs:GetQueueUrl that nothing calls. The queue is SQS-encrypted: no KMS grant.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType | None = None
    ) -> lambda_.DestinationConfig:
        iam.Grant.add_to_principal(grantee=fn, actions=["sqs:SendMessage"], resource_arns=[self._queue.queue_arn])
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


class GuardFunction(Construct):
    """A guard Lambda with no AWS managed policy: its role may write to its own log group and nothing else yet.

    Callers grant the rest (EC2 actions, topic publishing) on `role`. An event that still fails after Lambda's
    asynchronous retries, or that EventBridge could not deliver, lands in `failed_events` (never dropped).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        role_name: str | None = None,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        memory_size_mb: int = MEMORY_SIZE_MB,
        timeout: Duration = TIMEOUT,
        synchronous: bool = False,
    ) -> None:
        """`synchronous`: invoked only by a caller that waits for the result and handles its failure (the sweep's
        state machine): no failed-events queue and no asynchronous retry settings, which apply to asynchronous
        invocations only."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.failed_events_queue: sqs.Queue | None = None
        if not synchronous:
            self.failed_events_queue = sqs.Queue(
                self,
                "FailedEvents",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=FAILED_EVENT_RETENTION,
            )
            Validations.of(self.failed_events_queue).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SQS3",
                    reason="This queue is itself the dead-letter queue and on-failure destination of the guard "
                    "function; its depth raises a CloudWatch alarm, so a further dead-letter queue would only hide "
                    "failures.",
                )
            )

        # Retained: these logs are the audit trail of what the guard saw and did, and must outlive the stack.
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"AMI Guard: {description}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=function_code(),
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", powertools_layer_arn(stack))],
            memory_size=memory_size_mb,
            timeout=timeout,
            role=self.role,
            log_group=self.log_group,
            retry_attempts=None if self.failed_events_queue is None else ASYNC_RETRY_ATTEMPTS,
            max_event_age=(
                None if self.failed_events_queue is None else Duration.hours(contract.ASYNC_MAX_EVENT_AGE_HOURS)
            ),
            on_failure=None if self.failed_events_queue is None else SendOnlyQueueDestination(self.failed_events_queue),
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": contract.POWERTOOLS_SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": contract.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": POWERTOOLS_LOG_LEVEL,
            },
        )
        # The function depends on its role's whole subtree; the role itself is already implied by Fn::GetAtt, which
        # cfn-lint reports (W3005). Keep only the dependency that matters: the policy must exist before the function.
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(policy, iam.CfnPolicy)
        function = self.function.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        function.add_override("DependsOn", [policy.logical_id])

    @property
    def failed_events(self) -> sqs.Queue:
        """Where the failed asynchronous invocations go (a synchronously invoked function has none)."""
        if self.failed_events_queue is None:
            raise ValueError(f"{self.node.path} is invoked synchronously: it has no failed-events queue")
        return self.failed_events_queue
