"""The AWS adapters pin their exact requests (botocore Stubber) and classify refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ami_guard.aws import Ec2Actions, Ec2Lookups, InstanceTypeCatalog
from ami_guard.engine import ActionFailed, LookupUnavailable, SnapshotFacts
from ami_guard.events import Principals

REGION = "eu-west-1"


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x", aws_session_token="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def adapters(client: Any) -> tuple[Ec2Lookups, Ec2Actions, InstanceTypeCatalog]:
    def clients(service: str, region: str) -> Any:
        return client

    catalog = InstanceTypeCatalog(clients, REGION)
    lookups = Ec2Lookups(clients, catalog)
    return lookups, Ec2Actions(clients, lookups), catalog


def test_remediation_sends_only_a_remove(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "modify_image_attribute",
        {},
        {"ImageId": "ami-1", "LaunchPermission": {"Remove": [{"Group": "all"}, {"UserId": "444455556666"}]}},
    )
    stubber.add_response(
        "describe_image_attribute",
        {"ImageId": "ami-1", "LaunchPermissions": [{"UserId": "555566667777"}]},
        {"ImageId": "ami-1", "Attribute": "launchPermission"},
    )
    _, actions, _ = adapters(client)
    now = actions.remove_launch_permissions("ami-1", REGION, Principals(groups=("all",), user_ids=("444455556666",)))
    assert now == Principals(user_ids=("555566667777",))


def test_tag_restore_pins_create_tags_on_exactly_the_resources_given(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "create_tags",
        {},
        {"Resources": ["ami-1", "snap-1"], "Tags": [{"Key": "Owner", "Value": "platform"}]},
    )
    _, actions, _ = adapters(client)
    actions.add_tags(("ami-1", "snap-1"), REGION, {"Owner": "platform"})


def test_image_facts_say_what_ec2_says_the_image_is_a_copy_of(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": "ami-copy",
                    "OwnerId": "111122223333",
                    "SourceImageId": "ami-src",
                    "SourceImageRegion": "us-east-1",
                    "VirtualizationType": "hvm",
                    "Tags": [{"Key": "Name", "Value": "mine"}],
                    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1"}}],
                }
            ]
        },
        {"ImageIds": ["ami-copy"]},
    )
    lookups, _, _ = adapters(client)
    facts = lookups.image("ami-copy", REGION)
    assert (facts.owner_id, facts.source_image_id, facts.source_region) == ("111122223333", "ami-src", "us-east-1")
    assert facts.tags == {"Name": "mine"} and facts.snapshot_ids == ("snap-1",)


def test_snapshot_tags_are_read_in_one_call(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "describe_snapshots",
        {
            "Snapshots": [
                {"SnapshotId": "snap-1", "OwnerId": "111122223333", "Tags": [{"Key": "Owner", "Value": "storage"}]},
                {"SnapshotId": "snap-2", "OwnerId": "111122223333"},
            ]
        },
        {"SnapshotIds": ["snap-1", "snap-2"]},
    )
    lookups, _, _ = adapters(client)
    assert lookups.snapshots(("snap-1", "snap-2"), REGION) == (
        SnapshotFacts("snap-1", "111122223333", {"Owner": "storage"}),
        SnapshotFacts("snap-2", "111122223333", {}),
    )


@pytest.mark.parametrize(
    "code",
    [
        "TagLimitExceeded",
        "InvalidParameterValue",
        "UnauthorizedOperation",
        "InvalidAMIID.NotFound",
        "InvalidAMIID.Unavailable",
        "InvalidSnapshot.NotFound",
        "InvalidID",
        "InvalidTagKey.Malformed",
    ],
)
def test_a_tagging_error_no_retry_cures_is_a_failed_action(ec2: tuple[Any, Stubber], code: str) -> None:
    client, stubber = ec2
    stubber.add_client_error("create_tags", service_error_code=code, service_message="refused")
    _, actions, _ = adapters(client)
    with pytest.raises(ActionFailed, match=f"^{re.escape(code)}: refused$"):
        actions.add_tags(("ami-1",), REGION, {"Owner": "platform"})


@pytest.mark.parametrize(
    ("code", "status"),
    [("RequestLimitExceeded", 503), ("Throttling", 400), ("InternalError", 500), ("SomethingNew", 503)],
)
def test_a_tagging_error_a_retry_may_cure_propagates(ec2: tuple[Any, Stubber], code: str, status: int) -> None:
    client, stubber = ec2
    stubber.add_client_error("create_tags", service_error_code=code, http_status_code=status)
    stubber.add_client_error("describe_snapshots", service_error_code=code, http_status_code=status)
    lookups, actions, _ = adapters(client)
    with pytest.raises(ClientError, match=code):
        actions.add_tags(("ami-1",), REGION, {"Owner": "platform"})
    with pytest.raises(ClientError, match=code):
        lookups.snapshots(("snap-1",), REGION)


def test_unreadable_snapshots_are_lookup_unavailable(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_snapshots", service_error_code="InvalidSnapshot.NotFound")
    lookups, _, _ = adapters(client)
    with pytest.raises(LookupUnavailable, match=r"InvalidSnapshot\.NotFound"):
        lookups.snapshots(("snap-1",), REGION)


@pytest.mark.parametrize("code", ["InvalidAMIID.NotFound", "UnauthorizedOperation", "AuthFailure"])
def test_permanent_refusals_become_lookup_unavailable(ec2: tuple[Any, Stubber], code: str) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_images", service_error_code=code, service_message="nope")
    lookups, _, _ = adapters(client)
    with pytest.raises(LookupUnavailable, match=code):
        lookups.image("ami-1", REGION)


def test_transient_errors_propagate_so_the_invocation_is_retried(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_images", service_error_code="RequestLimitExceeded", http_status_code=503)
    lookups, _, _ = adapters(client)
    with pytest.raises(ClientError):
        lookups.image("ami-1", REGION)


def test_refused_remediation_becomes_action_failed(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error("modify_image_attribute", service_error_code="UnauthorizedOperation")
    _, actions, _ = adapters(client)
    with pytest.raises(ActionFailed, match="UnauthorizedOperation"):
        actions.remove_launch_permissions("ami-1", REGION, Principals(groups=("all",)))


def test_a_fictitious_region_is_not_called() -> None:
    lookups, _, _ = adapters(object())
    with pytest.raises(LookupUnavailable, match="not an AWS region"):
        lookups.image("ami-1", "me-south-1r")


def test_instance_types_are_described_once_per_container(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "describe_instance_types",
        {
            "InstanceTypes": [
                {"InstanceType": "m5.large", "CurrentGeneration": True, "SupportedVirtualizationTypes": ["hvm"]}
            ]
        },
        {"InstanceTypes": ["m5.large"]},
    )
    _, _, catalog = adapters(client)
    first = catalog.get("m5.large")
    second = catalog.get("M5.LARGE")
    assert first is second and first is not None and first.source == "api"


def test_instance_type_falls_back_to_the_bundled_table_when_refused(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_instance_types", service_error_code="UnauthorizedOperation")
    _, _, catalog = adapters(client)
    info = catalog.get("m1.small")
    assert info is not None and info.source == "bundled" and "paravirtual" in info.virtualization_types


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {"Code": "UnauthorizedOperation", "Message": "You are not authorized to perform:"},
            "UnauthorizedOperation: You are not authorized to perform:",
        ),
        ({"Code": "Throttling", "Message": ""}, "Throttling"),
        ({"Code": "Throttling"}, "Throttling"),
        ({"Code": "InvalidParameter", "Message": " spaced out "}, "InvalidParameter: spaced out"),
    ],
)
def test_an_aws_reason_keeps_the_message_as_aws_gave_it(error: dict[str, str], reason: str) -> None:
    from ami_guard.aws import _reason

    exc = ClientError({"Error": error}, "DescribeImages")
    assert _reason(exc) == reason
