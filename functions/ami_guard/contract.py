"""Names shared by the CDK stack and the functions, so that the two cannot drift apart.

Import-free on purpose: the stack imports it at synth time, the functions at cold start.
"""

EVENT_SOURCE = "ec2.amazonaws.com"
DETAIL_TYPE = "AWS API Call via CloudTrail"

# EventBridge rule -> CloudTrail eventName values it forwards to its function.
PERMISSION_EVENTS = ("ModifyImageAttribute", "ModifySnapshotAttribute", "DisableImageBlockPublicAccess")
LAUNCH_EVENTS = ("RunInstances",)
IMAGE_EVENTS = ("RegisterImage", "CopyImage", "CreateImage")

# Lambda handler strings, relative to the functions/ asset root.
PERMISSION_HANDLER = "ami_guard.handlers.permission_guard.lambda_handler"
LAUNCH_HANDLER = "ami_guard.handlers.launch_guard.lambda_handler"
IMAGE_HANDLER = "ami_guard.handlers.image_guard.lambda_handler"

# Environment variable keys that carry the amiGuard configuration into the functions.
ENV_TOPIC_ARN = "AMI_GUARD_TOPIC_ARN"
ENV_TRUSTED_ACCOUNTS = "AMI_GUARD_TRUSTED_ACCOUNTS"
ENV_TRUSTED_ORGANIZATIONS = "AMI_GUARD_TRUSTED_ORGANIZATIONS"
ENV_MIN_SEVERITY = "AMI_GUARD_MIN_SEVERITY"
ENV_REMEDIATE = "AMI_GUARD_REMEDIATE"
ENV_COPY_TAGS = "AMI_GUARD_COPY_TAGS"
ENV_REQUIRED_TAGS = "AMI_GUARD_REQUIRED_TAGS"

POWERTOOLS_SERVICE_NAME = "ami-guard"
METRICS_NAMESPACE = "AmiGuard"

CONTEXT_KEY = "amiGuard"
ENV_IDEMPOTENCY_TABLE = "AMI_GUARD_IDEMPOTENCY_TABLE"
# The guard's own functions and rules that a function watches for tampering (comma-separated names).
ENV_WATCHED_FUNCTIONS = "AMI_GUARD_WATCHED_FUNCTIONS"
ENV_WATCHED_RULES = "AMI_GUARD_WATCHED_RULES"

# How long a CloudTrail eventID is remembered: longer than EventBridge's retries (MAX_EVENT_AGE_HOURS)
# plus Lambda's asynchronous retries (ASYNC_MAX_EVENT_AGE_HOURS).
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
RULE_MAX_EVENT_AGE_HOURS = 2
ASYNC_MAX_EVENT_AGE_HOURS = 6

# Tampering with the guard itself: CloudTrail calls on Lambda and EventBridge. Lambda's event names carry
# API-version suffixes (UpdateFunctionConfiguration20150331v2, DeleteFunction20150331), hence prefixes.
TAMPER_HANDLER = "ami_guard.handlers.tamper_guard.lambda_handler"
LAMBDA_SOURCE = "lambda.amazonaws.com"
EVENTS_SOURCE = "events.amazonaws.com"
LAMBDA_TAMPER_PREFIXES = (
    "UpdateFunctionConfiguration",
    "UpdateFunctionCode",
    "DeleteFunction",
    "PutFunctionConcurrency",
    "RemovePermission",
    "PutFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
)
EVENTS_TAMPER_EVENTS = ("DisableRule", "DeleteRule", "PutRule", "RemoveTargets", "PutTargets")
