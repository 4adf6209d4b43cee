"""The AWS adapters pin their exact requests (botocore Stubber) and classify refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ami_guard.aws import Ec2Actions, Ec2Lookups, InstanceTypeCatalog
from ami_guard.engine import ActionFailed, LookupUnavailable
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


def test_tag_restore_pins_create_tags_on_image_and_snapshots(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "create_tags",
        {},
        {"Resources": ["ami-1", "snap-1"], "Tags": [{"Key": "Owner", "Value": "platform"}]},
    )
    _, actions, _ = adapters(client)
    actions.tag_image("ami-1", REGION, {"Owner": "platform"}, ("snap-1",))


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
