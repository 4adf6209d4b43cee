"""A finding event: the alert document as EventBridge's detail, within PutEvents' 256 KB entry even for the largest
alert; and the Security Hub finding of that alert within 240 KB."""

from __future__ import annotations

import json

from ami_guard import alerts, asff, finding_events
from ami_guard.events import Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from tests import records as r

BUS = f"arn:aws:events:{r.REGION}:{r.ACCOUNT}:event-bus/default"


def largest_alert() -> alerts.Alert:
    """An alert whose record and evidence are far over every bound: `render` steps down until it fits SNS."""
    record = r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}])
    record["userAgent"] = "\u2028" * 60_000
    call = parse_call(Envelope(record))
    finding = Finding(
        rule_id="ami-public",
        severity=Severity.CRITICAL,
        title="\u2028" * 5000,
        description="\u2028" * 50_000,
        resources=tuple(Resource("image", f"ami-{n:017x}", r.REGION, r.ACCOUNT) for n in range(200)),
        evidence={f"k{n}": ["\u2028" * 2000] * 100 for n in range(200)},
        recommendation="\u2028" * 50_000,
    )
    return alerts.render(finding, call)


def test_the_entry_carries_the_document_and_the_resource_arns() -> None:
    call = parse_call(Envelope(r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}])))
    finding = Finding(
        rule_id="ami-public",
        severity=Severity.CRITICAL,
        title="t",
        description="d",
        resources=(
            Resource("image", "ami-0123456789abcdef0", r.REGION, r.ACCOUNT),
            Resource("image", "not-an-ami", r.REGION, r.ACCOUNT),
        ),
    )
    document = alerts.render(finding, call).document

    entry = finding_events.entry(document, BUS)

    assert entry["Source"] == "ami-guard"
    assert entry["DetailType"] == "AMI Guard Finding"
    assert entry["EventBusName"] == BUS
    assert json.loads(entry["Detail"]) == json.loads(json.dumps(document))
    # the resource without an ARN (an id not in AWS's format) is in the detail only
    assert entry["Resources"] == ["arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"]


def test_the_largest_alert_fits_a_put_events_entry_and_a_security_hub_finding() -> None:
    alert = largest_alert()
    assert alert.document["truncated"] is not None and alert.publish_bytes() > 100_000

    entry = finding_events.entry(alert.document, BUS)
    found = asff.finding(alert.document, now="2026-11-30T18:00:00.000Z", import_region=r.REGION)

    assert finding_events.entry_bytes(entry) <= finding_events.ENTRY_MAX_BYTES
    assert asff.size_bytes(found) <= asff.FINDING_MAX_BYTES
    assert len(found["Resources"]) <= 32
