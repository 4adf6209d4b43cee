import json
from typing import Any

import pytest

from ami_guard.events import (
    Envelope,
    GuardChange,
    PermissionChange,
    Principals,
    SkipEvent,
    guard_change,
    iter_records,
    launches,
    new_image,
    parse_call,
    read_create_volume_permission_change,
    read_launch_permission_change,
)
from tests import records as r


def _call(rec: object, **kw: str):  # type: ignore[no-untyped-def]
    return parse_call(Envelope(rec, **kw))


# --- shapes -------------------------------------------------------------------------------------------


def test_every_document_shape_yields_the_same_record() -> None:
    rec = r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}])
    shapes = {
        "raw": rec,
        "eventbridge": r.envelope(rec),
        "trail log": {"Records": [rec]},
        "lookup events item": {"EventId": rec["eventID"], "CloudTrailEvent": json.dumps(rec)},
        "lookup events output": {"Events": [{"EventId": rec["eventID"], "CloudTrailEvent": json.dumps(rec)}]},
        "list": [rec],
    }
    for name, document in shapes.items():
        envelopes = list(iter_records(document))
        assert len(envelopes) == 1, name
        assert parse_call(envelopes[0]).event_id == rec["eventID"], name


@pytest.mark.parametrize(
    ("document", "quiet", "reason"),
    [
        ({"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {}}, True, "detail-type"),
        ({"eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": "eu-west-1"}, True, "eventSource"),
        ({"eventSource": "ec2.amazonaws.com", "awsRegion": "eu-west-1"}, False, "eventName"),
        ({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}, False, "awsRegion"),
        ("just a string", False, "str"),
        ({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": None}, False, "NoneType"),
    ],
)
def test_records_that_are_not_ec2_calls_are_skipped_with_a_reason(document: object, quiet: bool, reason: str) -> None:
    with pytest.raises(SkipEvent) as caught:
        _call(document)
    assert caught.value.quiet is quiet
    assert reason in caught.value.reason


def test_owner_account_prefers_recipient_then_envelope_then_identity() -> None:
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}])
    assert _call(rec).account == r.ACCOUNT
    del rec["recipientAccountId"]
    assert _call(rec, account="999988887777").account == "999988887777"
    assert _call(rec).account == r.ACCOUNT  # userIdentity.accountId


def test_dry_run_is_neither_failure_nor_success() -> None:
    rec = r.run_instances("ami-1", "m5.large", error_code="Client.DryRunOperation", error_message="DryRun")
    call = _call(rec)
    assert call.dry_run and not call.failed and not call.succeeded


# --- permission changes -------------------------------------------------------------------------------


def test_launch_permission_items_are_read() -> None:
    rec = r.modify_image_attribute(
        "ami-1",
        [
            {"group": "all"},
            {"userId": "444455556666"},
            {"organizationArn": "arn:aws:organizations::1:organization/o-1"},
            {"organizationalUnitArn": "arn:aws:organizations::1:ou/o-1/ou-1"},
        ],
    )
    change = read_launch_permission_change(_call(rec))
    assert isinstance(change, PermissionChange)
    assert change.resource_id == "ami-1"
    assert change.added.public
    assert change.added.user_ids == ("444455556666",)
    assert change.added.organization_arns and change.added.ou_arns
    assert not change.removed


@pytest.mark.parametrize(
    "request_parameters",
    [
        None,
        {"imageId": "ami-1", "attributeType": "description", "description": {"value": "x"}},
        {"imageId": "ami-1", "attributeType": "someThing", "someThing": {"add": {"items": [{"group": "all"}]}}},
        {"imageId": "ami-1", "launchPermission": "garbage"},
    ],
)
def test_other_attributes_and_odd_shapes_are_not_launch_permission_changes(request_parameters: object) -> None:
    rec = r.record("ModifyImageAttribute", request_parameters)  # type: ignore[arg-type]
    change = read_launch_permission_change(_call(rec))
    assert not isinstance(change, PermissionChange) or not change.added


def test_older_operation_type_form_is_understood() -> None:
    rec = r.record(
        "ModifyImageAttribute",
        {
            "imageId": "ami-1",
            "attribute": "launchPermission",
            "operationType": "add",
            "userGroup": {"items": [{"userGroup": "all"}]},
            "userId": {"items": [{"userId": "444455556666"}]},
        },
    )
    change = read_launch_permission_change(_call(rec))
    assert isinstance(change, PermissionChange)
    assert change.added == Principals(groups=("all",), user_ids=("444455556666",))


def test_removal_lands_in_removed() -> None:
    rec = r.record(
        "ModifyImageAttribute",
        {
            "imageId": "ami-1",
            "attributeType": "launchPermission",
            "launchPermission": {"remove": {"items": [{"group": "all"}]}},
        },
    )
    change = read_launch_permission_change(_call(rec))
    assert isinstance(change, PermissionChange) and change.removed.public and not change.added


def test_create_volume_permission_upper_case_attribute() -> None:
    rec = r.modify_snapshot_attribute("snap-1", [{"userId": "444455556666"}])
    change = read_create_volume_permission_change(_call(rec))
    assert isinstance(change, PermissionChange) and change.resource_id == "snap-1"
    assert change.added.user_ids == ("444455556666",)


# --- launches and images ------------------------------------------------------------------------------


def test_launch_groups_instances_of_one_image_and_type() -> None:
    rec = r.run_instances("ami-1", "m1.small", virtualization_type="paravirtual", instance_ids=("i-1", "i-2"))
    (launch,) = launches(_call(rec))
    assert (launch.image_id, launch.instance_type, launch.virtualization_type) == ("ami-1", "m1.small", "paravirtual")
    assert launch.instance_ids == ("i-1", "i-2")


def test_failed_launch_is_read_from_the_request() -> None:
    rec = r.run_instances("ami-1", "m5.large", error_code="Client.InvalidParameterCombination", error_message="x")
    (launch,) = launches(_call(rec))
    assert (launch.image_id, launch.instance_type, launch.virtualization_type) == ("ami-1", "m5.large", None)


def test_launch_template_launch_without_image_in_request() -> None:
    rec = r.record(
        "RunInstances",
        {
            "instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
            "instanceType": {"value": "p2.xlarge"},
            "launchTemplate": {"launchTemplateId": "lt-0123", "version": "3"},
        },
        None,
        error_code="Client.UnauthorizedOperation",
        error_message="denied",
    )
    (launch,) = launches(_call(rec))
    assert launch.image_id is None and launch.instance_type == "p2.xlarge"
    assert launch.launch_template is not None and launch.launch_template.template_id == "lt-0123"


def test_register_image_without_virtualization_type_reads_as_omitted() -> None:
    image = new_image(_call(r.register_image("ami-new", tags={"Owner": "platform"})))
    assert image.image_id == "ami-new" and image.virtualization_type is None
    assert image.tags == {"Owner": "platform"}
    assert not image.instance_store_backed


def test_instance_store_image_is_recognised() -> None:
    rec = r.register_image("ami-s3", virtualization_type="hvm", image_location="my-bucket/golden/image.manifest.xml")
    assert new_image(_call(rec)).instance_store_backed


def test_copy_image_reads_source_and_flag() -> None:
    rec = r.copy_image("ami-copy", "ami-src", copy_image_tags=True, tags={"Env": "prod"})
    image = new_image(_call(rec))
    assert (image.source_image_id, image.source_region, image.copy_image_tags) == ("ami-src", r.OTHER_REGION, True)
    assert image.tags == {"Env": "prod"}


def test_wrapper_fields_of_the_wrong_type_are_ignored() -> None:
    # Found by the property-based test: an EventBridge envelope whose region is not a string
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}])
    del rec["awsRegion"]
    with pytest.raises(SkipEvent, match="no awsRegion"):
        _call(rec, region=True, account=12)  # type: ignore[arg-type]


# --- what a tamper call names -------------------------------------------------------------------------

_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
_KEY_ARN = f"arn:aws:kms:eu-west-1:111122223333:key/{_KEY}"
_TOPIC = "arn:aws:sns:eu-west-1:111122223333:AmiGuard-AlertsTopic-X1"
_INFRA_SOURCES = (
    "sns.amazonaws.com",
    "kms.amazonaws.com",
    "iam.amazonaws.com",
    "sqs.amazonaws.com",
    "dynamodb.amazonaws.com",
    "cloudtrail.amazonaws.com",
)


@pytest.mark.parametrize(
    ("source", "event_name", "request_parameters", "resources", "expected"),
    [
        ("sns.amazonaws.com", "DeleteTopic", {"topicArn": _TOPIC}, None, ("sns", _TOPIC, None)),
        (
            "sns.amazonaws.com",
            "Unsubscribe",
            {"subscriptionArn": f"{_TOPIC}:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"},
            None,
            ("sns", _TOPIC, f"{_TOPIC}:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"),
        ),
        (
            "sns.amazonaws.com",
            "Unsubscribe",
            {"subscriptionArn": "PendingConfirmation"},
            None,
            ("sns", None, "PendingConfirmation"),
        ),
        ("sns.amazonaws.com", "PutDataProtectionPolicy", {"resourceArn": _TOPIC}, None, ("sns", _TOPIC, None)),
        ("kms.amazonaws.com", "DisableKey", {"keyId": _KEY}, [_KEY_ARN], ("kms", _KEY, _KEY)),
        (
            "kms.amazonaws.com",
            "ScheduleKeyDeletion",
            {"keyId": _KEY_ARN, "pendingWindowInDays": 7},
            None,
            ("kms", _KEY, _KEY_ARN),
        ),
        ("kms.amazonaws.com", "RetireGrant", None, [_KEY_ARN], ("kms", _KEY, _KEY_ARN)),
        (
            "iam.amazonaws.com",
            "DeleteRole",
            {"roleName": "AmiGuard-ImageGuard-eu-west-1"},
            None,
            ("iam", "AmiGuard-ImageGuard-eu-west-1", None),
        ),
        (
            "sqs.amazonaws.com",
            "PurgeQueue",
            {"queueUrl": "https://sqs.eu-west-1.amazonaws.com/111122223333/AmiGuard-Q1"},
            None,
            ("sqs", "AmiGuard-Q1", "https://sqs.eu-west-1.amazonaws.com/111122223333/AmiGuard-Q1"),
        ),
        (
            "dynamodb.amazonaws.com",
            "UpdateTable",
            {"tableName": "AmiGuard-T1"},
            None,
            ("dynamodb", "AmiGuard-T1", None),
        ),
        (
            "dynamodb.amazonaws.com",
            "PutResourcePolicy",
            {"resourceArn": "arn:aws:dynamodb:eu-west-1:111122223333:table/AmiGuard-T1", "policy": "{}"},
            None,
            ("dynamodb", "AmiGuard-T1", None),
        ),
        (
            "cloudtrail.amazonaws.com",
            "StopLogging",
            {"name": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/management"},
            None,
            ("cloudtrail", "management", "arn:aws:cloudtrail:eu-west-1:111122223333:trail/management"),
        ),
        (
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            {"trailName": "management"},
            None,
            ("cloudtrail", "management", "management"),
        ),
    ],
)
def test_a_tamper_call_names_the_resource_as_the_guard_names_it(
    source: str, event_name: str, request_parameters: Any, resources: list[str] | None, expected: tuple[Any, ...]
) -> None:
    rec = r.service_call(source, event_name, request_parameters, resources=resources)

    change = guard_change(parse_call(Envelope(rec), _INFRA_SOURCES))

    assert change is not None
    assert (change.service, change.target, change.named) == expected
    assert change.action == event_name


@pytest.mark.parametrize(
    ("source", "event_name"),
    [
        ("sns.amazonaws.com", "Subscribe"),
        ("kms.amazonaws.com", "EnableKey"),
        ("kms.amazonaws.com", "DisableKeyRotation"),
        ("iam.amazonaws.com", "CreateRole"),
        ("sqs.amazonaws.com", "SendMessage"),
        ("dynamodb.amazonaws.com", "UpdateTimeToLive"),
        ("cloudtrail.amazonaws.com", "StartLogging"),
    ],
)
def test_calls_that_cannot_silence_the_guard_are_not_tamper_changes(source: str, event_name: str) -> None:
    rec = r.service_call(source, event_name, {"name": "x", "keyId": _KEY, "roleName": "AmiGuard-ImageGuard-eu-west-1"})

    assert guard_change(parse_call(Envelope(rec), _INFRA_SOURCES)) is None


def test_malformed_resources_are_read_as_absent() -> None:
    rec = r.service_call("kms.amazonaws.com", "RetireGrant", None)
    rec["resources"] = [None, "arn", {"ARN": 7}, {"arn": _KEY_ARN}]

    call = parse_call(Envelope(rec), _INFRA_SOURCES)

    assert call.resources == (_KEY_ARN,)
    assert guard_change(call) == GuardChange("kms", "RetireGrant", _KEY, _KEY_ARN)
