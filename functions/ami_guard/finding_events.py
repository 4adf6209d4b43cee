"""An alert as one EventBridge event: `source` "ami-guard", `detail-type` "AMI Guard Finding", `detail` the alert
JSON document (`ami-guard/alert/v2`), `resources` the finding's resource ARNs. Pure: `aws_outputs.FindingEvents`
puts what `entry` returns on the bus.

No rule of the guard's own matches these events: the guard's rules match CloudTrail's "AWS API Call via CloudTrail"
events of AWS sources (`aws.*`), and EventBridge refuses a PutEvents source that starts with `aws.`, so no one can
make a finding event look like one of those (tests/unit/test_finding_events.py runs the guard's patterns on it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ami_guard import contract
from ami_guard.alerts import cut

SOURCE = contract.FINDING_EVENT_SOURCE
DETAIL_TYPE = contract.FINDING_DETAIL_TYPE
ENTRY_MAX_BYTES = 262_144
"""PutEvents: an entry (source, detail-type, detail, resources...) is at most 256 KB. An alert's document fits:
`alerts.render` keeps the whole SNS message, which holds the document and the email, under 240 KB."""


def finding_key(document: Mapping[str, Any]) -> str:
    """`lifecycle.finding_key` from the alert document: `<account>/<region>/<rule id>/<kind>:<resource id>`."""
    resources = document.get("resources") or []
    first = resources[0] if resources else None
    subject = f"{first.get('type')}:{first.get('id')}" if isinstance(first, Mapping) else "-"
    return f"{document.get('account')}/{document.get('region')}/{document.get('rule_id')}/{subject}"


def fit(text: str, maximum: int) -> str:
    """`text`, or cut (`alerts.cut`, its marker included) to at most `maximum` characters."""
    if len(text) <= maximum:
        return text
    marker = len(cut(text, 0))
    return cut(text, max(maximum - marker, 0))


def section(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """One object of the alert document (`event`, `actor`, `action`, `evidence`), empty when it is not one."""
    value = document.get(key)
    return value if isinstance(value, Mapping) else {}


def entry(document: Mapping[str, Any], event_bus: str) -> dict[str, Any]:
    """The PutEvents entry for one alert document on `event_bus` (its name or ARN)."""
    resources = [
        item["arn"]
        for item in document.get("resources") or []
        if isinstance(item, Mapping) and isinstance(item.get("arn"), str)
    ]
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(document, sort_keys=True, default=str),
        "Resources": resources,
        "EventBusName": event_bus,
    }


def entry_bytes(put_entry: Mapping[str, Any]) -> int:
    """The entry's size as EventBridge counts it: source, detail-type, detail and each resource, UTF-8."""
    size = sum(len(str(put_entry[key]).encode("utf-8")) for key in ("Source", "DetailType", "Detail"))
    return size + sum(len(arn.encode("utf-8")) for arn in put_entry.get("Resources", []))
