"""What the rules of every domain share: EC2's virtualization types, a finding at its rule's registered
severity, the image a finding names, and who made the call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ami_guard.findings import Finding, Resource, Severity

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall

PARAVIRTUAL = "paravirtual"
HVM = "hvm"


def finding(severities: Mapping[str, Severity], rule_id: str, **fields: Any) -> Finding:
    """A finding of `rule_id` at the severity its domain registered for it."""
    return Finding(rule_id=rule_id, severity=severities[rule_id], **fields)


def image(call: ApiCall, image_id: str | None, region: str | None = None) -> tuple[Resource, ...]:
    return (Resource("image", image_id, region or call.region, call.account),) if image_id else ()


def who(call: ApiCall) -> str:
    return call.actor.describe()


TRUST_THE_PUBLISHER = (
    "If the publisher is trusted, add its account id (or `amazon` / `aws-marketplace`) to amiGuard.trustedImageOwners; "
    "otherwise "
)
"""How the advice of launch-untrusted-image and copy-untrusted-image begins."""


def untrusted_owner(call: ApiCall, owner_id: str | None, alias: str | None, policy: Policy) -> str | None:
    """The owner of an AMI a successful call used, in words, when trustedImageOwners is set and trusts it not (the
    account, a trusted account, a listed owner or alias); else None. The owner is EC2's, never the record's."""
    if not call.succeeded or not policy.trusted_image_owners:
        return None
    if policy.is_trusted_image_owner(owner_id, alias, call.account):
        return None
    return f"{owner_id or 'an unknown account'}" + (f" ({alias})" if alias else "")


def owner_evidence(owner_id: str | None, alias: str | None, policy: Policy) -> dict[str, Any]:
    return {"imageOwner": owner_id, "imageOwnerAlias": alias, "trustedImageOwners": sorted(policy.trusted_image_owners)}
