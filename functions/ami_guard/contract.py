"""Names shared by the CDK stack and the functions, so that the two cannot drift apart.

Import-free on purpose: the stack imports it at synth time, the functions at cold start.
"""

EVENT_SOURCE = "ec2.amazonaws.com"
DETAIL_TYPE = "AWS API Call via CloudTrail"

# Guard function -> the rule domains it hosts (ami_guard.rules.<domain>, ami_guard.engine.<domain>). Which calls
# each function receives follows from its domains' rules (ami_guard.rules.catalog.routes): a new rule is declared
# once, in its domain module.
GUARD_DOMAINS: dict[str, tuple[str, ...]] = {
    "permission": ("permissions", "account_settings"),
    "launch": ("launches",),
    "image": ("images", "copies"),
    "tamper": ("guard",),
}

# Lambda handler strings, relative to the functions/ asset root.
PERMISSION_HANDLER = "ami_guard.handlers.permission_guard.lambda_handler"
LAUNCH_HANDLER = "ami_guard.handlers.launch_guard.lambda_handler"
IMAGE_HANDLER = "ami_guard.handlers.image_guard.lambda_handler"
# The posture sweep (deployed only with amiGuard.sweepSchedule): run by its state machine, on its schedule.
SWEEP_HANDLER = "ami_guard.handlers.sweep_guard.lambda_handler"

# Environment variable keys that carry the amiGuard configuration into the functions.
ENV_TOPIC_ARN = "AMI_GUARD_TOPIC_ARN"
ENV_TRUSTED_ACCOUNTS = "AMI_GUARD_TRUSTED_ACCOUNTS"
ENV_TRUSTED_ORGANIZATIONS = "AMI_GUARD_TRUSTED_ORGANIZATIONS"
ENV_MIN_SEVERITY = "AMI_GUARD_MIN_SEVERITY"
ENV_REMEDIATE = "AMI_GUARD_REMEDIATE"
ENV_COPY_TAGS = "AMI_GUARD_COPY_TAGS"
ENV_REQUIRED_TAGS = "AMI_GUARD_REQUIRED_TAGS"
# Set only when amiGuard.trustedImageOwners is not empty (launch-untrusted-image, copy-untrusted-image).
ENV_TRUSTED_IMAGE_OWNERS = "AMI_GUARD_TRUSTED_IMAGE_OWNERS"
# Organization mode only (absent in a standalone deployment): the organization block as JSON, and whether the
# organization's own accounts, OUs and the organization itself are trusted.
ENV_ORGANIZATION = "AMI_GUARD_ORGANIZATION"
ENV_TRUST_OWN_ORGANIZATION = "AMI_GUARD_TRUST_OWN_ORGANIZATION"

# Where findings go besides the alert topic (docs/integrations.md). Finding events: always, on the default bus of
# the function's account (organization mode: the hub bus), named by ARN in ENV_FINDINGS_BUS. Security Hub: set only
# with amiGuard.securityHub. The chat topic: set only with amiGuard.chat. The documentation URL: set only with
# amiGuard.documentationUrl (the findings' SourceUrl).
ENV_FINDINGS_BUS = "AMI_GUARD_FINDINGS_BUS"
ENV_SECURITY_HUB = "AMI_GUARD_SECURITY_HUB"
ENV_CHAT_TOPIC_ARN = "AMI_GUARD_CHAT_TOPIC_ARN"
ENV_DOCUMENTATION_URL = "AMI_GUARD_DOCUMENTATION_URL"
FINDING_EVENT_SOURCE = "ami-guard"
FINDING_DETAIL_TYPE = "AMI Guard Finding"

# The posture sweep: its findings are "observed" by the sweep, not made by a call; their alert's event names the
# sweep's run (alert `origin: "sweep"`).
SWEEP_SOURCE = "ami-guard.sweep"
SWEEP_EVENT_NAME = "PostureSweep"

POWERTOOLS_SERVICE_NAME = "ami-guard"
METRICS_NAMESPACE = "AmiGuard"

CONTEXT_KEY = "amiGuard"
ENV_IDEMPOTENCY_TABLE = "AMI_GUARD_IDEMPOTENCY_TABLE"
# The table's global secondary index over the open findings of an account-region (partition `scope`, sort `id`).
FINDINGS_INDEX = "scope-index"
ENV_SWEEP_CONCURRENCY = "AMI_GUARD_SWEEP_CONCURRENCY"  # the sweep function: attribute reads at once (default 8)
ENV_SWEEP_BUCKET = "AMI_GUARD_SWEEP_BUCKET"  # the sweep function: the bucket its plans are written to
SWEEP_RUNS_PREFIX = "runs/"  # the sweep bucket: runs/<run>/plan.json (the function), runs/<run>/results/ (the Map)
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

# Everything else that can silence the guard, by CloudTrail eventSource -> the eventNames watched there.
# IAM records its calls in us-east-1 only (EventBridge delivers them there), CloudTrail records a trail's calls in
# the trail's home region; docs/guarantees.md says which deployment sees what.
SNS_SOURCE = "sns.amazonaws.com"
KMS_SOURCE = "kms.amazonaws.com"
IAM_SOURCE = "iam.amazonaws.com"
SQS_SOURCE = "sqs.amazonaws.com"
DYNAMODB_SOURCE = "dynamodb.amazonaws.com"
CLOUDTRAIL_SOURCE = "cloudtrail.amazonaws.com"
INFRASTRUCTURE_TAMPER_EVENTS: dict[str, tuple[str, ...]] = {
    # The alert topics: deleted, re-keyed or re-policied, a subscription removed or filtered, messages denied.
    SNS_SOURCE: (
        "DeleteTopic",
        "SetTopicAttributes",
        "RemovePermission",
        "Unsubscribe",
        "SetSubscriptionAttributes",
        "PutDataProtectionPolicy",
    ),
    # Their keys: unusable (disabled, deletion scheduled), policy replaced, grants taken away.
    KMS_SOURCE: ("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "RevokeGrant", "RetireGrant"),
    # The guard's roles: what they may do, who may assume them, whether they exist.
    IAM_SOURCE: (
        "PutRolePolicy",
        "DeleteRolePolicy",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "UpdateAssumeRolePolicy",
        "DeleteRole",
        "PutRolePermissionsBoundary",
        "DeleteRolePermissionsBoundary",
    ),
    # The failed-events queues: deleted, re-configured (retention, policy), emptied, a permission removed.
    SQS_SOURCE: ("DeleteQueue", "SetQueueAttributes", "PurgeQueue", "RemovePermission"),
    # The idempotency table: deleted, re-provisioned, or denied to the guard by a resource policy.
    DYNAMODB_SOURCE: ("DeleteTable", "UpdateTable", "PutResourcePolicy"),
    # Any trail of the account: the guard cannot know which trail feeds EventBridge.
    CLOUDTRAIL_SOURCE: ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"),
}

# What each function watches besides functions and rules (comma-separated; see settings.Watched).
ENV_WATCHED_TOPICS = "AMI_GUARD_WATCHED_TOPICS"  # topic ARNs
ENV_WATCHED_KEYS = "AMI_GUARD_WATCHED_KEYS"  # key ARNs or ids
ENV_WATCHED_ROLE_PREFIXES = "AMI_GUARD_WATCHED_ROLE_PREFIXES"  # "<stack>-<Guard>-": the role name ends in a region
ENV_WATCHED_QUEUES = "AMI_GUARD_WATCHED_QUEUES"  # queue names
ENV_WATCHED_TABLES = "AMI_GUARD_WATCHED_TABLES"  # table names
ENV_WATCH_TRAILS = "AMI_GUARD_WATCH_TRAILS"  # "true": every trail of the account counts

# The posture sweep's state machine and schedule (deployed only with amiGuard.sweepSchedule): deleted or changed,
# the sweep stops running or runs something else. Watched by the tamper guard by name.
STATES_SOURCE = "states.amazonaws.com"
SCHEDULER_SOURCE = "scheduler.amazonaws.com"
STATE_MACHINE_TAMPER_EVENTS = ("DeleteStateMachine", "UpdateStateMachine")
SCHEDULE_TAMPER_EVENTS = ("DeleteSchedule", "UpdateSchedule")
ENV_WATCHED_STATE_MACHINES = "AMI_GUARD_WATCHED_STATE_MACHINES"  # state machine names
ENV_WATCHED_SCHEDULES = "AMI_GUARD_WATCHED_SCHEDULES"  # schedule names (in the default schedule group)


def guard_role_prefix(stack_name: str, guard: str) -> str:
    """The fixed start of a guard role's name; the region it is deployed in follows (IAM names are global)."""
    return f"{stack_name}-{guard}-"


# Organization mode: names the hub stack, the member stack and the hub functions share.
MEMBER_STACK_NAME = "AmiGuardMember"
"""The member stack: the StackSet's instances and the management account's plain `cdk deploy` carry this name."""
ENV_MEMBER_ROLE_PREFIX = "AMI_GUARD_MEMBER_ROLE_PREFIX"
"""Hub functions: the member role to assume is arn:<partition>:iam::<event account>:role/<prefix><event region>."""
CLOUDFORMATION_SOURCE = "cloudformation.amazonaws.com"
STACK_SET_TAMPER_EVENTS = ("DeleteStackInstances", "UpdateStackInstances", "DeleteStackSet", "UpdateStackSet")
ENV_WATCHED_STACK_SETS = "AMI_GUARD_WATCHED_STACK_SETS"  # StackSet names (organization mode, hub only)


def member_role_prefix(member_stack_name: str = MEMBER_STACK_NAME) -> str:
    """The member role's name without its region (one role per region: IAM names are global to the account)."""
    return f"{member_stack_name}-Access-"


def member_forwarder_role_prefix(member_stack_name: str = MEMBER_STACK_NAME) -> str:
    """The role EventBridge uses to put a member's events on the hub bus, one per region."""
    return f"{member_stack_name}-Forwarder-"


def member_rule_names(member_stack_name: str = MEMBER_STACK_NAME) -> tuple[str, str]:
    """(the rule that forwards the watched EC2 calls, the rule that forwards changes to the member's own rules and
    roles): each forwards the other's deletion, since a rule cannot forward its own."""
    return f"{member_stack_name}-ForwardRule", f"{member_stack_name}-WatchRule"


def hub_bus_name(stack_name: str) -> str:
    return f"{stack_name}-Hub"


def stack_set_name(stack_name: str) -> str:
    return f"{stack_name}-Members"


# The hub bus, watched by the hub's tamper guard (organization mode): deleted, or its resource policy changed.
EVENT_BUS_TAMPER_EVENTS = ("DeleteEventBus", "PutPermission", "RemovePermission")
ENV_WATCHED_BUSES = "AMI_GUARD_WATCHED_BUSES"  # event bus names (organization mode, hub only: the hub bus)
