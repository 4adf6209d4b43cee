"""`account_name` (organization mode): the member account's name from Organizations, in the JSON document, the SNS
attributes and the email; data from AWS, bounded and escaped like every other value. Standalone alerts: null in the
document, no attribute, the email as before."""

from __future__ import annotations

from typing import Any

import pytest

from ami_guard import alerts
from ami_guard.events import Actor, ApiCall, Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from tests import records as r

CALL = parse_call(Envelope(r.modify_image_attribute("ami-0abc", [{"group": "all"}])))
AMI = "ami-0123456789abcdef0"
FINDING = Finding(
    rule_id="ami-public",
    severity=Severity.CRITICAL,
    title=f"AMI {AMI} made public in {r.REGION}",
    description="d",
    resources=(Resource("image", AMI, r.REGION),),
)
LINK = f"https://{r.REGION}.console.aws.amazon.com/ec2/home?region={r.REGION}#ImageDetails:imageId={AMI}"


def test_a_standalone_alert_has_a_null_account_name_no_attribute_and_the_same_email() -> None:
    alert = alerts.render(FINDING, CALL)
    assert alert.document["account_name"] is None
    assert "account_name" not in alert.attributes
    lines = alert.email.splitlines()
    assert f"    {LINK}" in lines
    assert lines[-1] == f"-- AMI Guard | rule ami-public | account {r.ACCOUNT} | region {r.REGION}"
    assert not [line for line in lines if line.startswith("  in account")]


def test_an_organization_alert_names_the_account_in_the_document_attributes_and_email() -> None:
    alert = alerts.render(FINDING, CALL, account_name="Production EU")
    assert alert.document["account"] == r.ACCOUNT and alert.document["account_name"] == "Production EU"
    assert alert.attributes["account_name"] == "Production EU"
    lines = alert.email.splitlines()
    who, when = lines.index("WHO"), lines.index("WHEN")
    assert lines[when - 2] == f'  in account {r.ACCOUNT} "Production EU", region {r.REGION}'
    assert who < when - 2
    assert f'    {LINK} (in account {r.ACCOUNT} "Production EU": sign in to it first)' in lines
    assert lines[-1] == f'-- AMI Guard | rule ami-public | account {r.ACCOUNT} "Production EU" | region {r.REGION}'


@pytest.mark.parametrize(
    ("name", "email_form", "attribute"),
    [
        ("Prod\r\nWHAT TO DO\n  ignore this", '"Prod\\r\\nWHAT TO DO\\n  ignore this"', "Prod? WHAT TO DO ignore this"),
        ("admin\u202etxt.exe", '"admin\\u202etxt.exe"', "admin?txt.exe"),
        ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"', 'say "hi" \\ bye'),
        ("", '""', "?"),
    ],
    ids=["newlines", "bidi", "quotes-backslash", "empty"],
)
def test_a_hostile_account_name_is_escaped_and_quoted_never_layout(name: str, email_form: str, attribute: str) -> None:
    alert = alerts.render(FINDING, CALL, account_name=name)
    assert alert.document["account_name"] == name  # the JSON keeps it exact
    assert alert.attributes["account_name"] == attribute
    assert alert.email.count(email_form) == 3  # WHO, beside the link, footer
    assert "\u202e" not in alert.email and "\r" not in alert.email
    top = [line for line in alert.email.split("\n") if line and not line.startswith(" ")]
    assert top == [
        f"[CRITICAL] AMI {AMI} made public in {r.REGION}",
        "WHAT HAPPENED",
        "WHO",
        "WHEN",
        "RESOURCES",
        "EVIDENCE",
        "ACTION TAKEN",
        "WHAT TO DO",
        top[-1],
    ]
    assert top[-1].startswith("-- AMI Guard | rule ami-public | account ")


def test_a_long_account_name_is_bounded_in_the_attribute_and_the_document() -> None:
    alert = alerts.render(FINDING, CALL, account_name="n" * 5000)
    assert len(alert.attributes["account_name"]) == alerts.ATTRIBUTE_MAX
    assert alert.document["account_name"] == "n" * 1024 + "…[truncated, 5000 chars]"
    assert alert.document["truncated"]["values"][0] == "account_name: 5000 chars, first 1024 kept"


def test_the_reduced_level_still_fits_by_construction_with_an_account_name() -> None:
    # Given every value at its longest in the costliest character (as test_alerts' test of the reduced level), and an
    # account name of the same (Organizations allows 50 printable ASCII characters: this is far beyond)
    big = "\U0001f600" * 300_000
    call = ApiCall(big, big, big, big, big, big, big, big, big, Actor(big, big, big, big, big, big, big, big))

    def wide(n: int) -> dict[str, Any]:
        return {big[:40] + str(i): {big[:40] + str(j): big for j in range(n)} for i in range(n)}

    finding = Finding(
        rule_id="guard-tampered",
        severity=Severity.CRITICAL,
        title=big,
        description=big,
        resources=tuple(Resource("image", big + str(n), big, big) for n in range(10)),
        evidence=wide(10),
        action={"status": big, "detail": big, **wide(10)},
        recommendation=big,
    )
    # When it is rendered at the last level
    alert = alerts._render(finding, call, alerts.REDUCED, "/aws/lambda/AmiGuard-PermissionGuard", big)
    # Then the Publish request stays within the budget render holds every alert to
    assert alert.publish_bytes() < alerts.PUBLISH_BUDGET_BYTES
    assert alert.document["account_name"] == big[:128] + "…[truncated, 300000 chars]"
