"""An alert as a Security Hub finding (ASFF 2018-10-08): required attributes, a stable Id per rule and resource,
the lifecycle (open FAILED/NEW, remediated or resolved PASSED/RESOLVED), AWS's size limits with a marker, and no
record value in a URL."""

from __future__ import annotations

from typing import Any

import pytest

from ami_guard import alerts, asff
from ami_guard.events import Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.lifecycle import finding_key, open_record, resolved_finding
from ami_guard.sweep.observation import observation
from tests import records as r

AMI = "ami-0123456789abcdef0"
OTHER_AMI = "ami-0fedcba9876543210"
NOW = "2026-11-30T18:00:00.000Z"
REQUIRED = (
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
)
TYPE_NAMESPACES = (
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
)


def public_ami(image_id: str = AMI, **changes: Any) -> Finding:
    finding = Finding(
        rule_id="ami-public",
        severity=Severity.CRITICAL,
        title=f"AMI {image_id} made public in {r.REGION}",
        description="Anyone can launch it.",
        resources=(Resource("image", image_id, r.REGION, r.ACCOUNT),),
        evidence={"addedGroups": ["all"]},
        recommendation="Remove the public launch permission.",
    )
    return finding._replace(**changes)


def document(finding: Finding, event_id: str = "11111111-2222-3333-4444-555555555555") -> dict[str, Any]:
    call = parse_call(Envelope(r.modify_image_attribute(AMI, [{"group": "all"}], event_id=event_id)))
    return alerts.render(finding, call).document


def test_an_open_finding_carries_every_required_attribute_in_its_accounts_default_product() -> None:
    # Given the alert of an AMI made public
    doc = document(public_ami())

    # When it is mapped
    found = asff.finding(doc, now=NOW, import_region=r.REGION)

    # Then it has what ASFF requires, imported by its own account into its default product
    assert [key for key in REQUIRED if key not in found] == []
    assert found["SchemaVersion"] == "2018-10-08"
    assert found["AwsAccountId"] == r.ACCOUNT
    assert found["ProductArn"] == f"arn:aws:securityhub:eu-west-1:{r.ACCOUNT}:product/{r.ACCOUNT}/default"
    assert found["GeneratorId"] == "ami-public"
    assert found["Id"] == f"ami-guard/{r.ACCOUNT}/eu-west-1/ami-public/image:{AMI}"
    assert found["Severity"] == {"Label": "CRITICAL"}
    assert found["FindingProviderFields"] == {
        "Severity": {"Label": "CRITICAL"},
        "Types": ["Effects/Data Exposure", "Software and Configuration Checks/AWS Security Best Practices"],
    }
    assert found["Resources"] == [
        {"Type": "Other", "Id": f"arn:aws:ec2:eu-west-1::image/{AMI}", "Region": "eu-west-1", "Partition": "aws"}
    ]
    assert found["Compliance"] == {"Status": "FAILED"}
    assert found["Workflow"] == {"Status": "NEW"}
    assert found["RecordState"] == "ACTIVE"
    assert found["Remediation"] == {"Recommendation": {"Text": "Remove the public launch permission."}}
    assert "SourceUrl" not in found
    assert found["UpdatedAt"] == NOW
    assert found["ProductFields"]["ami-guard/rule_id"] == "ami-public"
    assert found["ProductFields"]["ami-guard/evidence/addedGroups"] == '["all"]'


def test_every_rule_maps_to_types_of_the_asff_taxonomy() -> None:
    from ami_guard.rules.catalog import all_rules

    for rule in all_rules():
        doc = document(public_ami()._replace(rule_id=rule.id))
        for kind in asff.finding(doc, now=NOW, import_region=r.REGION)["Types"]:
            namespace, _, category = kind.partition("/")
            assert namespace in TYPE_NAMESPACES and category, (rule.id, kind)


def test_the_same_rule_and_resource_keep_one_id_across_events_and_another_resource_gets_its_own() -> None:
    first = asff.finding(document(public_ami(), "event-1"), now=NOW, import_region=r.REGION)
    repeat = asff.finding(document(public_ami(), "event-2"), now=NOW, import_region=r.REGION)
    other = asff.finding(document(public_ami(OTHER_AMI), "event-3"), now=NOW, import_region=r.REGION)

    assert first["Id"] == repeat["Id"]
    assert other["Id"] == f"ami-guard/{r.ACCOUNT}/eu-west-1/ami-public/image:{OTHER_AMI}"


def test_the_id_is_the_lifecycles_finding_key() -> None:
    finding = public_ami()
    assert asff.finding_id(document(finding)) == "ami-guard/" + finding_key(finding, r.ACCOUNT, r.REGION)


def test_a_remediated_finding_is_passed_and_resolved() -> None:
    doc = document(public_ami(action={"status": "removed", "detail": "removed the public launch permission"}))

    found = asff.finding(doc, now=NOW, import_region=r.REGION)

    assert found["Compliance"] == {"Status": "PASSED"}
    assert found["Workflow"] == {"Status": "RESOLVED"}
    assert found["RecordState"] == "ACTIVE"


def test_the_sweeps_resolved_notice_updates_the_same_finding_passed_resolved_and_archived() -> None:
    # Given a finding the guard alerted on, and the sweep's notice that it is gone
    opened = public_ami()
    record = open_record(finding_key(opened, r.ACCOUNT, r.REGION), opened, r.ACCOUNT, r.REGION, "event", NOW)
    notice = resolved_finding(record, "run-7")
    call = observation(r.ACCOUNT, r.REGION, "run-7", "2026-12-01T06:00:00Z")

    # When both are mapped
    first = asff.finding(document(opened), now=NOW, import_region=r.REGION)
    resolved = asff.finding(alerts.render(notice, call).document, now=NOW, import_region=r.REGION)

    # Then the notice updates the same finding, which it resolves and archives
    assert resolved["Id"] == first["Id"]
    assert resolved["Compliance"] == {"Status": "PASSED"}
    assert resolved["Workflow"] == {"Status": "RESOLVED"}
    assert resolved["RecordState"] == "ARCHIVED"
    assert resolved["FirstObservedAt"] == "2026-11-30T18:00:00.000Z"


def test_values_past_aws_limits_are_cut_with_a_marker_and_never_dropped() -> None:
    # Given a finding whose prose and evidence exceed every ASFF limit
    finding = public_ami(
        title="T" * 400,
        description="D" * 3000,
        recommendation="R" * 3000,
        evidence={f"key{n:02d}": "v" * 3000 for n in range(60)},
    )
    doc = document(finding)

    # When it is mapped
    found = asff.finding(doc, now=NOW, import_region=r.REGION)

    # Then each is within its limit and says it was cut; the evidence keys left out are counted
    assert len(found["Title"]) == 256 and found["Title"].endswith("chars]")
    assert len(found["Description"]) == 1024 and "…[truncated, " in found["Description"]
    assert len(found["Remediation"]["Recommendation"]["Text"]) == 512
    fields = found["ProductFields"]
    assert len(fields) == 50
    assert all(len(key) <= 128 and len(value) <= 2048 for key, value in fields.items())
    # (the alert kept 50 of the 60 keys and a 51st saying so; 13 fields of ours come first)
    assert fields["ami-guard/evidence/…"] == (
        "51 evidence keys, first 36 shown (the alert on SNS and EventBridge has all)"
    )
    assert asff.size_bytes(found) < asff.FINDING_MAX_BYTES


def test_source_url_is_built_from_the_configured_documentation_and_the_rule_id_only() -> None:
    doc = document(public_ami())

    found = asff.finding(doc, now=NOW, import_region=r.REGION, documentation_url="https://docs.example.com/ami-guard")

    assert found["SourceUrl"] == "https://docs.example.com/ami-guard/docs/rules.md#ami-public"
    assert found["Remediation"]["Recommendation"]["Url"] == found["SourceUrl"]


def test_a_crafted_resource_id_is_data_in_an_other_resource_and_a_digest_id() -> None:
    # Given a resource id that is not in AWS's format (no ARN is built for it)
    crafted = "ami-0abc/../../x\nhttps://evil.example"
    doc = document(public_ami(crafted))

    # When it is mapped
    found = asff.finding(doc, now=NOW, import_region=r.REGION, documentation_url="https://docs.example.com")

    # Then the id is data in an Other resource, and the finding Id a digest of the key
    assert found["Resources"][0]["Type"] == "Other"
    assert found["Resources"][0]["Id"] == crafted
    assert found["Id"].startswith("ami-guard/sha256:") and len(found["Id"]) == len("ami-guard/sha256:") + 64
    assert found["SourceUrl"] == "https://docs.example.com/docs/rules.md#ami-public"


def test_an_account_setting_is_the_account_resource() -> None:
    finding = Finding(
        rule_id="ami-block-public-access-disabled",
        severity=Severity.HIGH,
        title="t",
        description="d",
        resources=(Resource("account-setting", "image-block-public-access", r.REGION, r.ACCOUNT),),
    )

    found = asff.finding(document(finding), now=NOW, import_region=r.REGION)

    assert found["Resources"][0]["Type"] == "AwsAccount"
    assert found["Resources"][0]["Id"] == f"AWS::::Account:{r.ACCOUNT}"


def test_an_alert_without_an_account_id_cannot_be_imported() -> None:
    doc = {**document(public_ami()), "account": "not-an-account"}

    with pytest.raises(asff.NotImportable):
        asff.finding(doc, now=NOW, import_region=r.REGION)


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")]
)
def test_the_product_arn_is_in_the_regions_partition(region: str, partition: str) -> None:
    assert asff.product_arn(r.ACCOUNT, region) == (
        f"arn:{partition}:securityhub:{region}:{r.ACCOUNT}:product/{r.ACCOUNT}/default"
    )
