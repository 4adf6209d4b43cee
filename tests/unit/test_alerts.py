"""What a reader gets: subject, JSON document, email text; bounded, and with record values as data only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from ami_guard import alerts
from ami_guard.config import Policy
from ami_guard.engine import evaluate
from ami_guard.events import Actor, ApiCall, Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.offline import OfflineLookups
from tests import records as r

CALL = parse_call(Envelope(r.modify_image_attribute("ami-0abc", [{"group": "all"}])))
AMI = "ami-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"
INSTANCE = "i-0123456789abcdef0"
SNS_LIMIT = 262_144  # bytes: message and attributes of one Publish (SNS quotas)
HEADINGS = ["WHAT HAPPENED", "WHO", "WHEN", "RESOURCES", "EVIDENCE", "ACTION TAKEN", "WHAT TO DO"]


def finding(title: str, **kw: object) -> Finding:
    return Finding(
        rule_id="ami-public",
        severity=Severity.CRITICAL,
        title=title,
        description="d",
        resources=(Resource("image", "ami-0abc", r.REGION),),
        **kw,  # type: ignore[arg-type]
    )


def findings_of(record: dict[str, Any], policy: Policy | None = None) -> tuple[ApiCall, list[Finding]]:
    call = parse_call(Envelope(record))
    return call, evaluate(call, policy or Policy(), OfflineLookups()).findings


def publish_bytes(alert: alerts.Alert) -> int:
    """The Publish request as SnsPublisher sends it, measured here: the MessageStructure=json body (the
    document nested as a JSON string, the email beside it), the subject, and each attribute's name, type, value."""
    body = json.dumps({"default": json.dumps(alert.document, sort_keys=True), "email": alert.email})
    size = len(body.encode()) + len(alert.subject.encode())
    return size + sum(len(k.encode()) + len(b"String") + len(v.encode()) for k, v in alert.attributes.items())


def top_lines(email: str) -> list[str]:
    """The lines that start at the left margin: the title, section headings and the footer."""
    return [line for line in email.split("\n") if line and not line.startswith(" ")]


# --- subject and message ------------------------------------------------------------------------------


def test_subject_reads_like_the_documented_example() -> None:
    subject = alerts.render(finding(f"AMI ami-0abc made public in {r.REGION}"), CALL).subject
    assert subject == f"[CRITICAL] AMI ami-0abc made public in {r.REGION} ({r.ACCOUNT})"


@pytest.mark.parametrize("title", ["x" * 300, "AMI \u00e9t\u00e9 \U0001f600 made\npublic\tnow", ""])
def test_subject_is_one_ascii_line_under_100_characters(title: str) -> None:
    subject = alerts.render(finding(title), CALL).subject
    assert len(subject) < 100
    assert subject.isascii() and "\n" not in subject and "\t" not in subject
    assert subject.startswith("[CRITICAL] ") and subject.endswith(f"({r.ACCOUNT})")


def test_sns_message_has_json_default_and_text_email() -> None:
    alert = alerts.render(finding("AMI ami-0abc made public", evidence={"added": {"groups": ["all"]}}), CALL)
    structure = json.loads(alert.sns_message())
    assert set(structure) == {"default", "email"}
    document = json.loads(structure["default"])
    for key in ("rule_id", "severity", "title", "account", "region", "resources", "actor", "event", "evidence"):
        assert key in document
    assert document["action"] == {"status": "none", "detail": "this rule only reports"}
    assert document["truncated"] is None and not alert.truncated
    assert 'EVIDENCE\n  added: {"groups": ["all"]}' in structure["email"]
    assert alert.attributes == {
        "severity": "CRITICAL",
        "rule_id": "ami-public",
        "status": "open",
        "account": r.ACCOUNT,
        "region": r.REGION,
    }
    assert (document["schema"], document["status"], document["origin"]) == ("ami-guard/alert/v2", "open", "event")


# --- console links and ARNs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        (
            Resource("image", AMI, "eu-west-1"),
            f"https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId={AMI}",
        ),
        (
            Resource("image", "ami-0abcdef1", "eu-west-1"),
            "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=ami-0abcdef1",
        ),
        (
            Resource("snapshot", SNAP, "us-gov-west-1"),
            "https://us-gov-west-1.console.amazonaws-us-gov.com/ec2/home?region=us-gov-west-1"
            f"#SnapshotDetails:snapshotId={SNAP}",
        ),
        (
            Resource("instance", INSTANCE, "cn-north-1", r.ACCOUNT),
            f"https://cn-north-1.console.amazonaws.cn/ec2/home?region=cn-north-1#InstanceDetails:instanceId={INSTANCE}",
        ),
        (
            Resource("lambda-function", "AmiGuard-Permission_Guard", "eu-west-1"),
            "https://eu-west-1.console.aws.amazon.com/lambda/home?region=eu-west-1#/functions/AmiGuard-Permission_Guard",
        ),
        (
            Resource("events-rule", "AmiGuard.Rule-1", "ap-southeast-2"),
            "https://ap-southeast-2.console.aws.amazon.com/events/home?region=ap-southeast-2"
            "#/eventbus/default/rules/AmiGuard.Rule-1",
        ),
    ],
)
def test_console_links(resource: Resource, url: str) -> None:
    assert resource.console_url == url


@pytest.mark.parametrize(
    "resource",
    [
        Resource("image", AMI, "evil.example.com/x"),
        Resource("image", AMI, "eu-west-1.evil.example.com#"),
        Resource("image", AMI, "eu-west-1\n"),
        Resource("image", AMI, "EU-WEST-1"),
        Resource("image", AMI, "us-iso-east-1"),  # a real region, but no public console
        Resource("image", "ami-0123@evil.example.com", "eu-west-1"),
        Resource("image", f"{AMI}/../../x", "eu-west-1"),
        Resource("image", "ami-0123456789ABCDEF0", "eu-west-1"),
        Resource("image", "ami-0abc", "eu-west-1"),
        Resource("image", SNAP, "eu-west-1"),
        Resource("snapshot", AMI, "eu-west-1"),
        Resource("instance", "i-0123456789abcdef0\n", "eu-west-1"),
        Resource("lambda-function", "f#@evil.example.com", "eu-west-1"),
        Resource("lambda-function", "x" * 65, "eu-west-1"),
        Resource("events-rule", "rule/../../evil", "eu-west-1"),
        Resource("nonsense", "x", "eu-west-1"),
    ],
)
def test_no_console_link_from_a_value_outside_aws_formats(resource: Resource) -> None:
    assert resource.console_url is None


@pytest.mark.parametrize(
    ("region", "rid"),
    [
        ("evil.com", AMI),
        ("eu-west-1.evil.com", AMI),
        ("eu-west-1@evil.com", AMI),
        ("eu-west-1/", AMI),
        ("eu-west-1", f"{AMI}@evil.com"),
        ("eu-west-1", f"{AMI}#x"),
        ("eu-west-1", "ami-01234567\\@evil.com"),
    ],
)
def test_a_crafted_region_or_id_never_links_to_another_host(region: str, rid: str) -> None:
    assert Resource("image", rid, region).console_url is None
    assert Resource("image", AMI, "eu-west-1").console_url is not None
    assert urlsplit(Resource("image", AMI, "eu-west-1").console_url or "").hostname == (
        "eu-west-1.console.aws.amazon.com"
    )


def test_arns_follow_the_partition() -> None:
    assert Resource("image", AMI, "us-gov-west-1").arn == f"arn:aws-us-gov:ec2:us-gov-west-1::image/{AMI}"
    assert Resource("snapshot", SNAP, "cn-north-1").arn == f"arn:aws-cn:ec2:cn-north-1::snapshot/{SNAP}"
    assert Resource("image", AMI, "us-iso-east-1").arn == f"arn:aws-iso:ec2:us-iso-east-1::image/{AMI}"
    assert Resource("instance", INSTANCE, "eu-west-1", "123456789012").arn == (
        f"arn:aws:ec2:eu-west-1:123456789012:instance/{INSTANCE}"
    )
    assert Resource("lambda-function", "f", "eu-west-1", "123456789012").arn == (
        "arn:aws:lambda:eu-west-1:123456789012:function:f"
    )


@pytest.mark.parametrize(
    "resource",
    [
        Resource("image", "ami-1", "eu-west-1"),
        Resource("image", AMI, "eu-west-1::image/ami-0fffffffffffffff0 x"),
        Resource("instance", f"{INSTANCE}:*", "eu-west-1", r.ACCOUNT),
        Resource("events-rule", "a rule", "eu-west-1", r.ACCOUNT),
    ],
)
def test_no_arn_from_a_garbage_region_or_id(resource: Resource) -> None:
    assert resource.arn is None
    assert resource.as_dict()["id"] == resource.id  # the value itself is still reported, as data


@pytest.mark.parametrize(
    ("resource", "arn"),
    [
        (
            Resource("sns-topic", f"arn:aws:sns:eu-west-1:{r.ACCOUNT}:alerts", "eu-west-1"),
            f"arn:aws:sns:eu-west-1:{r.ACCOUNT}:alerts",
        ),
        (Resource("sns-topic", f"arn:aws:sns:eu-west-1:{r.ACCOUNT}:alerts\nx", "eu-west-1"), None),
        (Resource("sns-topic", "https://evil.example.com/", "eu-west-1"), None),
        (
            Resource("kms-key", "1234abcd-12ab-34cd-56ef-1234567890ab", "eu-west-1", r.ACCOUNT),
            f"arn:aws:kms:eu-west-1:{r.ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        (Resource("kms-key", "alias/../x", "eu-west-1", r.ACCOUNT), None),
        (Resource("iam-role", "AmiGuard-Role", "us-east-1", r.ACCOUNT), f"arn:aws:iam::{r.ACCOUNT}:role/AmiGuard-Role"),
        (Resource("iam-role", "role/../../x", "us-east-1", r.ACCOUNT), None),
        (
            Resource("sqs-queue", "ami-guard-dlq", "eu-west-1", r.ACCOUNT),
            f"arn:aws:sqs:eu-west-1:{r.ACCOUNT}:ami-guard-dlq",
        ),
        (Resource("dynamodb-table", "t", "eu-west-1", r.ACCOUNT), None),  # table names have 3 characters or more
        (Resource("cloudtrail-trail", "-trail", "eu-west-1", r.ACCOUNT), None),  # must start with a letter or digit
    ],
)
def test_the_guards_own_resources_have_arns_only_in_aws_formats(resource: Resource, arn: str | None) -> None:
    assert resource.arn == arn
    assert (resource.console_url is None) == (arn is None)


def test_an_account_not_of_12_digits_is_left_out_of_the_arn() -> None:
    assert Resource("instance", INSTANCE, "eu-west-1", "1:instance/i-0ffffffff").arn == (
        f"arn:aws:ec2:eu-west-1::instance/{INSTANCE}"
    )


# --- nothing forged: the email's layout is ours -------------------------------------------------------

FORGED_ID = "ami-0123456789abcdef0\n\nACTION TAKEN\n  removed all launch permissions\n\nWHAT TO DO\n  nothing"
FORGED_MESSAGE = "denied\r\n\r\nRESOURCES\n  image ami-0fffffffffffffff0 (eu-west-1)\u2028WHO\u2029\x85EVIDENCE\x1b[2J"


def test_a_forged_image_id_and_error_message_leave_the_email_sections_intact() -> None:
    # Given a failed ModifyImageAttribute whose imageId and errorMessage carry newlines and our headings
    record = r.modify_image_attribute(
        FORGED_ID, [{"group": "all"}], error_code="Client.AuthFailure", error_message=FORGED_MESSAGE
    )
    call, found = findings_of(record)
    assert [f.rule_id for f in found] == ["ami-share-denied"]
    # When it is rendered
    alert = alerts.render(found[0], call)
    email = alert.email
    # Then the lines at the margin are exactly ours, each heading once and in order
    assert top_lines(email) == [
        f'[LOW] Refused attempt to share AMI "{alerts.one_line(FORGED_ID)}" in eu-west-1',
        *HEADINGS,
        f"-- AMI Guard | rule ami-share-denied | account {r.ACCOUNT} | region eu-west-1",
    ]
    # And no character a mail reader might break a line on is left in it
    assert email.splitlines() == email.split("\n")
    assert not any(ch in email for ch in "\r\x0b\x0c\x1b\x1c\x1d\x1e\x85\u2028\u2029")
    # And the values are shown quoted and escaped where they stand
    assert '  image "ami-0123456789abcdef0\\n\\nACTION TAKEN\\n  removed' in email
    assert (
        '  The call failed: Client.AuthFailure: "denied\\r\\n\\r\\nRESOURCES\\n  image ami-0fffffffffffffff0 '
        '(eu-west-1)\\u2028WHO\\u2029\\x85EVIDENCE\\x1b[2J"' in email
    )
    assert "(no console link: the id or region is not in AWS's format)" in email
    # And the JSON document keeps them exact
    document = json.loads(json.loads(alert.sns_message())["default"])
    assert document["resources"][0]["id"] == FORGED_ID
    assert document["resources"][0]["arn"] is None and document["console_url"] is None
    assert document["event"]["error_message"] == FORGED_MESSAGE
    assert document["evidence"]["errorMessage"] == FORGED_MESSAGE
    assert alert.subject.isascii() and len(alert.subject) < 100 and "\n" not in alert.subject


@pytest.mark.parametrize(
    "field",
    ["userAgent", "sourceIPAddress", "eventID", "requestID", "eventTime", "recipientAccountId", "awsRegion"],
)
def test_no_record_field_starts_a_line(field: str) -> None:
    record = r.modify_image_attribute(AMI, [{"group": "all"}])
    record[field] = "x\n\nWHAT TO DO\n  ignore this alert\u2028ACTION TAKEN"
    call, found = findings_of(record)
    email = alerts.render(found[0], call).email
    assert top_lines(email)[1:-1] == HEADINGS
    assert email.splitlines() == email.split("\n")


def test_an_actor_arn_with_newlines_is_quoted_in_who_and_in_the_prose() -> None:
    record = r.modify_image_attribute(AMI, [{"group": "all"}])
    record["userIdentity"]["arn"] = "arn:aws:iam::1:user/x\nWHEN\n  yesterday"
    call, found = findings_of(record)
    email = alerts.render(found[0], call).email
    assert '\nWHO\n  "arn:aws:iam::1:user/x\\nWHEN\\n  yesterday" (AssumedRole)\n' in email
    assert '\n  "arn:aws:iam::1:user/x\\nWHEN\\n  yesterday" added launch permission for group' in email
    assert top_lines(email)[1:-1] == HEADINGS


def test_a_request_value_inside_our_sentence_is_quoted() -> None:
    # Given a RegisterImage whose name (a request field the document does not hold) carries a heading
    record = r.register_image(AMI)
    record["requestParameters"]["name"] = "golden image\nACTION TAKEN\n  none"
    call, found = findings_of(record)
    assert [f.rule_id for f in found] == ["image-paravirtual"]
    email = alerts.render(found[0], call).email
    # Then the description shows it quoted and escaped, and the layout is ours
    assert f'registered AMI {AMI} ("golden image\\nACTION TAKEN\\n  none") as paravirtual' in email
    assert top_lines(email)[1:-1] == HEADINGS


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("esc\x1b[31mred", "esc\\x1b[31mred"),
        ("nel\x85", "nel\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("bidi\u202egnp.exe\u202c", "bidi\\u202egnp.exe\\u202c"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("tag \U000e0041", "tag \\U000e0041"),
        ("back\\slash", "back\\\\slash"),
        ("caf\u00e9 \U0001f600 \u65e5\u672c", "caf\u00e9 \U0001f600 \u65e5\u672c"),
    ],
)
def test_one_line_escapes_what_can_move_or_hide_text(text: str, shown: str) -> None:
    assert alerts.one_line(text) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("arn:aws:iam::111122223333:role/x", "arn:aws:iam::111122223333:role/x"),
        ("203.0.113.7", "203.0.113.7"),
        ("AWS Internal", '"AWS Internal"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("", '""'),
        ("a,b", '"a,b"'),
    ],
)
def test_standalone_values_are_quoted_unless_plain_tokens(value: str, shown: str) -> None:
    assert alerts.quoted(value) == shown


# --- every alert deliverable --------------------------------------------------------------------------


def _share_with(count: int) -> dict[str, Any]:
    return r.modify_image_attribute(AMI, [{"userId": f"{n:012d}"} for n in range(100000000000, 100000000000 + count)])


def test_a_share_with_thousands_of_accounts_fits_one_publish() -> None:
    # Given a successful share with 9,000 accounts: a record of about 250 KB
    record = _share_with(9000)
    assert 240_000 < len(json.dumps(record)) < 256 * 1024
    call, found = findings_of(record)
    assert [f.rule_id for f in found] == ["ami-shared-untrusted"]
    # When it is rendered
    alert = alerts.render(found[0], call)
    # Then it fits SNS, and still says what, how bad and which event
    assert publish_bytes(alert) < SNS_LIMIT
    assert alert.publish_bytes() == publish_bytes(alert)
    document = alert.document
    assert (document["rule_id"], document["severity"], document["event_id"]) == (
        "ami-shared-untrusted",
        "HIGH",
        call.event_id,
    )
    # And the lists keep their first 25 entries and say how many there were
    shown = document["evidence"]["untrusted"]["userIds"]
    assert shown[:2] == ["100000000000", "100000000001"] and len(shown) == 26
    assert shown[-1] == "…[9000 items, first 25 shown]"
    assert document["truncated"]["count"] >= 3
    assert "evidence.added.userIds: 9000 items, first 25 kept" in document["truncated"]["values"]
    assert document["description"].endswith(" chars]")
    assert f"event id {call.event_id}" in document["truncated"]["full"]
    assert "\nSHORTENED\n" in alert.email


def test_a_30_kb_image_id_is_cut_everywhere_and_never_repeated() -> None:
    # Given a failed call whose imageId is 30,000 characters
    image_id = "ami-" + "0123456789abcdef" * 1875
    record = r.modify_image_attribute(image_id[:30_000], [{"group": "all"}], error_code="Client.InvalidAMIID.Malformed")
    call, found = findings_of(record)
    alert = alerts.render(found[0], call)
    assert publish_bytes(alert) < 40_000, "cut to 1,024 characters wherever it appears"
    # Then no copy of it longer than the limit is anywhere in the message
    body = alert.sns_message() + alert.email
    assert image_id[:1025] not in body
    # And the prose keeps its end: the long value was cut in place
    assert alert.document["description"].endswith("nothing changed, but someone tried.")
    assert alert.document["resources"][0]["id"] == image_id[:1024] + "…[truncated, 30000 chars]"
    assert "…[truncated, 30000 chars]" in alert.email


def test_an_alert_too_large_even_when_tight_is_reduced_and_says_so() -> None:
    # Given a finding whose evidence and action are too wide even for TIGHT (10 x 10 x 5 strings of 130 emoji:
    # 260 KB of UTF-8, the size of a crafted record; 12 bytes each once escaped as JSON)
    wide = {f"k{i}": {f"j{j}": ["\U0001f600" * 130] * 5 for j in range(10)} for i in range(10)}
    big = Finding(
        rule_id="guard-tampered",
        severity=Severity.CRITICAL,
        title="t",
        description="d",
        resources=(Resource("events-rule", "AmiGuard-Rule", r.REGION),),
        evidence=wide,
        action={"status": "none", "detail": "x", "extra": wide},
    )
    assert alerts._render(big, CALL, alerts.TIGHT, None).publish_bytes() > SNS_LIMIT
    alert = alerts.render(big, CALL)
    assert publish_bytes(alert) < SNS_LIMIT
    assert alert.document["truncated"]["reduced"] is True
    assert "This alert was reduced to fit SNS's 256 KB message limit" in alert.email
    assert alert.document["rule_id"] == "guard-tampered" and alert.document["event_id"] == CALL.event_id


def test_the_reduced_level_fits_by_construction() -> None:
    # Given every value an alert shows at its longest, in the character that costs most once escaped twice
    # (an emoji: 12 bytes as JSON, 14 once the document is nested in the message), keys and ids included
    big = "\U0001f600" * 300_000
    call = ApiCall(
        event_id=big,
        event_name=big,
        event_source=big,
        region=big,
        account=big,
        event_time=big,
        request_id=big,
        error_code=big,
        error_message=big,
        actor=Actor(big, big, big, big, big, big, big, big),
    )

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
    alert = alerts._render(finding, call, alerts.REDUCED, "/aws/lambda/AmiGuard-PermissionGuard")
    # Then it is within the budget that `render` holds every alert to (measured: 147 KB of 240 KiB)
    assert publish_bytes(alert) < alerts.PUBLISH_BUDGET_BYTES < SNS_LIMIT
    assert alert.document["truncated"]["reduced"] is True


def test_attributes_are_bounded_printable_and_never_empty() -> None:
    record = r.modify_image_attribute(AMI, [{"group": "all"}])
    record["recipientAccountId"] = "9" * 5000
    record["awsRegion"] = "\n\t "
    call, found = findings_of(record)
    attributes = alerts.render(found[0], call).attributes
    assert attributes["account"] == "9" * 125 + "..."
    assert attributes["region"] == "?"


def test_bounding_keeps_types_and_makes_every_value_json() -> None:
    bounder = alerts._Bounder(alerts.TIGHT)
    value = {"n": 1, "f": float("nan"), "big": 10**40, "t": (1, 2), "s": {"a"}, "deep": {"a": {"b": {"c": {}}}}}
    assert bounder.value(value, "evidence") == {
        "n": 1,
        "f": "nan",
        "big": str(10**40),
        "t": [1, 2],
        "s": ["a"],
        "deep": {"a": {"b": "…[object of 1 keys, not shown]"}},
    }
    json.dumps(bounder.value(value, "evidence"), allow_nan=False)


def test_full_finding_log_parts_join_to_the_exact_document() -> None:
    call, found = findings_of(_share_with(9000))
    parts = alerts.full_finding_log(found[0], call)
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1)) and parts[0]["parts"] == len(parts)
    assert all(len(p["finding"]) <= 100_000 and p["event_id"] == call.event_id for p in parts)
    whole = json.loads("".join(p["finding"] for p in parts))
    assert len(whole["evidence"]["untrusted"]["userIds"]) == 9000
    assert whole["truncated"] is None
