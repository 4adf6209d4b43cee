"""Rules on the account's EC2 settings: AMI block public access stays on. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import Rule, ec2, severities

if TYPE_CHECKING:
    from ami_guard.events.calls import ApiCall


BLOCK_PUBLIC_ACCESS_DISABLED = "ami-block-public-access-disabled"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


def block_public_access_disabled(call: ApiCall) -> Finding | None:
    """AMI block public access must stay on."""
    if not call.succeeded:
        return None
    return _finding(
        BLOCK_PUBLIC_ACCESS_DISABLED,
        title=f"AMI block public access disabled in {call.region}",
        description=(
            f"{_who(call)} switched off image block public access in {call.region}: AMIs in this region "
            "can now be made public."
        ),
        resources=(Resource("account-setting", "image-block-public-access", call.region, call.account),),
        evidence={"setting": "ImageBlockPublicAccess", "region": call.region},
        recommendation=f"Turn it back on: aws ec2 enable-image-block-public-access --region {call.region} "
        "--image-block-public-access-state block-new-sharing",
    )


RULES = (
    Rule(
        BLOCK_PUBLIC_ACCESS_DISABLED,
        Severity.HIGH,
        ec2("DisableImageBlockPublicAccess"),
        "a successful DisableImageBlockPublicAccess",
        check=lambda call, policy: block_public_access_disabled(call),
    ),
)
SEVERITY = severities(RULES)
