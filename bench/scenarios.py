"""What the benchmark runs: the four functions, their representative events, and per event kind an event that
raises nothing (the common case) and one that raises an alert. Every record comes from tests/records.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ami_guard import contract
from ami_guard.config import parse_policy, to_environment
from bench.answers import ACCOUNT, HUB_ACCOUNT, REGION, TABLE, TOPIC_ARN, TRUSTED_ACCOUNT
from tests import records as r

STACK_NAME = "AmiGuard"  # app.py STACK_NAME: names the hub bus in organization mode

IMAGE_ID = "ami-0123456789abcdef0"
NEW_IMAGE_ID = "ami-0fedcba9876543210"
SNAPSHOT_ID = "snap-0123456789abcdef0"
WATCHED_FUNCTION = "AmiGuard-PermissionGuard"
WATCHED_RULE = "AmiGuard-PermissionRule"
# The policy of both tools: one trusted account, no remediation (the budgets are about the event alone).
POLICY = {"trustedAccounts": [TRUSTED_ACCOUNT]}
# Organization mode: the same policy, the hub in HUB_ACCOUNT; the events come from ACCOUNT, a member.
ORGANIZATION_POLICY = {
    **POLICY,
    "organization": {
        "organizationId": "o-benchmark00",
        "hubAccount": HUB_ACCOUNT,
        "hubRegion": REGION,
        "regions": [REGION, "us-east-1"],
        "organizationalUnits": ["ou-abcd-12345678"],
    },
}

Record = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Kind:
    """An event kind as the benchmark plays it: a record that raises nothing and one that raises `alert`."""

    name: str
    quiet: Record | None
    alerting: Record | None
    alert: str | None = None


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    clients: tuple[str, ...]
    """Exactly the clients the representative event needs: the floor creates these and nothing else (an alert goes to
    the alert topic and, as the stack always configures, to the findings bus: sns and events)."""
    representative: Record
    alert: str
    kinds: tuple[Kind, ...]


def _ec2(record: dict[str, Any]) -> dict[str, Any]:
    return r.envelope(record)


def _other(record: dict[str, Any]) -> dict[str, Any]:
    return r.envelope_for_source(record)


def _refused(record: dict[str, Any]) -> dict[str, Any]:
    record["errorCode"], record["errorMessage"] = "Client.UnauthorizedOperation", "You are not authorized."
    record["responseElements"] = None
    return record


def _without_virtualization_type(record: dict[str, Any]) -> dict[str, Any]:
    for item in record["responseElements"]["instancesSet"]["items"]:
        del item["virtualizationType"]
    return record


PERMISSION = Function(
    name="permission",
    handler=contract.PERMISSION_HANDLER,
    clients=("dynamodb", "sns", "events"),
    representative=lambda: _ec2(r.modify_image_attribute(IMAGE_ID, [{"group": "all"}])),
    alert="ami-public",
    kinds=(
        Kind(
            "ModifyImageAttribute",
            quiet=lambda: _ec2(r.modify_image_attribute(IMAGE_ID, [{"userId": TRUSTED_ACCOUNT}])),
            alerting=lambda: _ec2(r.modify_image_attribute(IMAGE_ID, [{"group": "all"}])),
            alert="ami-public",
        ),
        Kind(
            "ModifySnapshotAttribute",
            quiet=lambda: _ec2(r.modify_snapshot_attribute(SNAPSHOT_ID, [{"userId": TRUSTED_ACCOUNT}])),
            alerting=lambda: _ec2(r.modify_snapshot_attribute(SNAPSHOT_ID, [{"group": "all"}])),
            alert="snapshot-public",
        ),
        Kind(
            "DisableImageBlockPublicAccess",
            quiet=lambda: _ec2(_refused(r.disable_block_public_access())),
            alerting=lambda: _ec2(r.disable_block_public_access()),
            alert="ami-block-public-access-disabled",
        ),
        # the account's guardrails: decided from the record alone, like the permission changes
        Kind(
            "DisableSnapshotBlockPublicAccess",
            quiet=lambda: _ec2(_refused(r.disable_snapshot_block_public_access())),
            alerting=lambda: _ec2(r.disable_snapshot_block_public_access()),
            alert="snapshot-block-public-access-disabled",
        ),
        Kind(
            "EnableSnapshotBlockPublicAccess",
            quiet=lambda: _ec2(r.enable_snapshot_block_public_access("block-all-sharing")),
            alerting=lambda: _ec2(r.enable_snapshot_block_public_access("block-new-sharing")),
            alert="snapshot-block-public-access-weakened",
        ),
        Kind(
            "EnableAllowedImagesSettings",
            quiet=lambda: _ec2(r.enable_allowed_images("enabled")),
            alerting=lambda: _ec2(r.enable_allowed_images("audit-mode")),
            alert="allowed-images-audit-only",
        ),
        Kind(
            "ReplaceImageCriteriaInAllowedImagesSettings",
            quiet=lambda: _ec2(_refused(r.replace_image_criteria(["amazon"]))),
            alerting=lambda: _ec2(r.replace_image_criteria(["amazon"])),
            alert="allowed-images-criteria-changed",
        ),
        Kind(
            "UnlockSnapshot",
            quiet=lambda: _ec2(_refused(r.unlock_snapshot(SNAPSHOT_ID))),
            alerting=lambda: _ec2(r.unlock_snapshot(SNAPSHOT_ID)),
            alert="snapshot-unlocked",
        ),
        Kind(
            "CreateStoreImageTask",
            quiet=lambda: _ec2(_refused(r.create_store_image_task(IMAGE_ID, "exports"))),
            alerting=lambda: _ec2(r.create_store_image_task(IMAGE_ID, "exports")),
            alert="image-exported",
        ),
        Kind(
            "RecycleBinDeleteRule",
            quiet=lambda: _other(_refused(r.recycle_bin_call("DeleteRule", "a1b2c3d4e5f"))),
            alerting=lambda: _other(r.recycle_bin_call("DeleteRule", "a1b2c3d4e5f")),
            alert="recycle-bin-rule-weakened",
        ),
    ),
)
LAUNCH = Function(
    name="launch",
    handler=contract.LAUNCH_HANDLER,
    clients=("dynamodb", "sns", "events", "ec2"),
    representative=lambda: _ec2(r.run_instances(IMAGE_ID, "m4.large")),
    alert="launch-previous-generation",
    kinds=(
        Kind(
            "RunInstances",
            quiet=lambda: _ec2(r.run_instances(IMAGE_ID, "m5.large")),
            alerting=lambda: _ec2(r.run_instances(IMAGE_ID, "m4.large")),
            alert="launch-previous-generation",
        ),
        Kind(
            "RunInstancesWithoutVirtualizationType",
            quiet=lambda: _ec2(_without_virtualization_type(r.run_instances(IMAGE_ID, "m5.large"))),
            alerting=lambda: _ec2(_without_virtualization_type(r.run_instances(IMAGE_ID, "m4.large"))),
            alert="launch-previous-generation",
        ),
    ),
)
IMAGE = Function(
    name="image",
    handler=contract.IMAGE_HANDLER,
    clients=("dynamodb", "sns", "events"),
    representative=lambda: _ec2(r.register_image(NEW_IMAGE_ID)),
    alert="image-paravirtual",
    kinds=(
        Kind(
            "RegisterImage",
            quiet=lambda: _ec2(r.register_image(NEW_IMAGE_ID, virtualization_type="hvm")),
            alerting=lambda: _ec2(r.register_image(NEW_IMAGE_ID)),
            alert="image-paravirtual",
        ),
        Kind("CreateImage", quiet=lambda: _ec2(r.create_image(NEW_IMAGE_ID)), alerting=None),
        Kind(
            "CopyImage",
            quiet=lambda: _ec2(r.copy_image(NEW_IMAGE_ID, IMAGE_ID, copy_image_tags=True)),
            alerting=lambda: _ec2(r.copy_image(NEW_IMAGE_ID, IMAGE_ID)),
            alert="copy-tags-missing",
        ),
    ),
)
TAMPER = Function(
    name="tamper",
    handler=contract.TAMPER_HANDLER,
    clients=("dynamodb", "sns", "events"),
    representative=lambda: _other(r.lambda_call("UpdateFunctionConfiguration20150331v2", WATCHED_FUNCTION)),
    alert="guard-tampered",
    kinds=(
        Kind(
            "UpdateFunctionConfiguration",
            quiet=lambda: _other(r.lambda_call("UpdateFunctionConfiguration20150331v2", "someone-elses-function")),
            alerting=lambda: _other(r.lambda_call("UpdateFunctionConfiguration20150331v2", WATCHED_FUNCTION)),
            alert="guard-tampered",
        ),
        Kind(
            "DisableRule",
            quiet=lambda: _other(r.events_call("DisableRule", "someone-elses-rule")),
            alerting=lambda: _other(r.events_call("DisableRule", WATCHED_RULE)),
            alert="guard-tampered",
        ),
    ),
)
FUNCTIONS = (PERMISSION, LAUNCH, IMAGE, TAMPER)
CUSTODIAN_EVENTS = {"ModifyImageAttribute": PERMISSION, "RunInstances": LAUNCH}
"""The events Cloud Custodian evaluates, each the representative event of our function that handles it."""


def environment(organization: bool = False) -> dict[str, str]:
    """What the stack gives every guard function (ami_guard_cdk/components/guard_function.py), and Lambda's own; with
    `organization`, what the hub's functions get in organization mode. Finding events go on the account's default bus,
    in organization mode on the hub bus (ami_guard_cdk/components/finding_outputs.py, hub_stack.py); Security Hub and
    the chat topic are off, as by default."""
    hub = {contract.ENV_MEMBER_ROLE_PREFIX: contract.member_role_prefix()} if organization else {}
    bus = (
        f"arn:aws:events:{REGION}:{HUB_ACCOUNT}:event-bus/{contract.hub_bus_name(STACK_NAME)}"
        if organization
        else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    )
    return {
        **to_environment(parse_policy(ORGANIZATION_POLICY if organization else POLICY)),
        **hub,
        contract.ENV_TOPIC_ARN: TOPIC_ARN,
        contract.ENV_IDEMPOTENCY_TABLE: TABLE,
        contract.ENV_FINDINGS_BUS: bus,
        contract.ENV_WATCHED_FUNCTIONS: WATCHED_FUNCTION,
        contract.ENV_WATCHED_RULES: WATCHED_RULE,
        "POWERTOOLS_SERVICE_NAME": contract.POWERTOOLS_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": contract.METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **lambda_environment(),
    }


def lambda_environment() -> dict[str, str]:
    """Lambda's own variables, with credentials that are never used (every call is answered locally)."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIABENCHMARKONLY000",
        "AWS_SECRET_ACCESS_KEY": "benchmark-only",
        "AWS_SESSION_TOKEN": "benchmark-only",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def copies(record: Record, count: int) -> list[str]:
    """`count` deliveries of distinct events built alike, as the JSON text Lambda receives."""
    first = record()
    out = []
    for n in range(count):
        event = copy.deepcopy(first)
        event["id"] = f"00000000-0000-0000-0000-{n:012d}"
        event["detail"]["eventID"] = f"{n:08d}-bench-0000-0000-{ACCOUNT}"
        out.append(json.dumps(event))
    return out
