"""What the rules of every domain share: EC2's virtualization types, a finding at its rule's registered
severity, the image a finding names, and who made the call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ami_guard.findings import Finding, Resource, Severity

if TYPE_CHECKING:
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
