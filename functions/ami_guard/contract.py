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
