"""Organization mode's AWS adapters against botocore's Stubber: exactly the calls AWS would receive, in order.

A Stubber fails a call it was not told to expect, so each test also proves that nothing else was called.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ami_guard.aws import Ec2Actions, Ec2Lookups, InstanceTypeCatalog
from ami_guard.aws_organization import MemberSessions, OrganizationDirectory
from ami_guard.engine import ActionFailed, LookupUnavailable
from ami_guard.events.principals import Principals

MEMBER = "222233334444"
PREFIX = "AmiGuardMember-Access-"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sts() -> Iterator[Stubber]:
    client = boto3.client("sts", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def organizations() -> Iterator[Stubber]:
    client = boto3.client("organizations", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def hub(*stubbers: Stubber) -> Any:
    """The hub's client factory over the stubbed clients: any other (service, region) is a failure."""
    by_service = {s.client.meta.service_model.service_name: s.client for s in stubbers}

    def get(service: str, region: str) -> Any:
        assert region == "eu-west-1", f"a hub client in {region}: the hub's clients are regional, in its region"
        return by_service[service]

    return get


def credentials(expires: float) -> dict[str, Any]:
    return {
        "AccessKeyId": "ASIAMEMBEREXAMPLE",
        "SecretAccessKey": "secret",
        "SessionToken": "token",
        "Expiration": datetime.datetime.fromtimestamp(expires, tz=datetime.UTC),
    }


def expect_assume(sts: Stubber, role_arn: str, expires: float) -> None:
    sts.add_response(
        "assume_role",
        {"Credentials": credentials(expires)},
        {"RoleArn": role_arn, "RoleSessionName": "AmiGuardHub", "DurationSeconds": 3600},
    )


class Sessions:
    """make_session for tests: records which credentials each session was made from."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []

    def __call__(self, creds: Any, region: str) -> Any:
        self.made.append((creds["SessionToken"], region))
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )


def test_one_assume_role_per_account_and_region_renewed_five_minutes_before_expiry(sts: Stubber, clock: Clock) -> None:
    sessions = MemberSessions(hub(sts), "eu-west-1", PREFIX, clock=clock, make_session=Sessions())
    role = f"arn:aws:iam::{MEMBER}:role/{PREFIX}eu-west-1"
    expect_assume(sts, role, NOW + 3600)
    first = sessions.session(MEMBER, "eu-west-1")
    clock.now = NOW + 3600 - 301  # still more than 5 minutes left: the same session, no call
    assert sessions.session(MEMBER, "eu-west-1") is first
    expect_assume(sts, role, NOW + 7200)
    clock.now = NOW + 3600 - 300  # 5 minutes left: renewed
    assert sessions.session(MEMBER, "eu-west-1") is not first


def test_each_region_has_its_own_role_and_the_partition_comes_from_the_region(sts: Stubber, clock: Clock) -> None:
    sessions = MemberSessions(hub(sts), "eu-west-1", PREFIX, clock=clock, make_session=Sessions())
    expect_assume(sts, f"arn:aws:iam::{MEMBER}:role/{PREFIX}us-east-1", NOW + 3600)
    expect_assume(sts, f"arn:aws-us-gov:iam::{MEMBER}:role/{PREFIX}us-gov-west-1", NOW + 3600)
    sessions.session(MEMBER, "us-east-1")
    sessions.session(MEMBER, "us-gov-west-1")


@pytest.mark.parametrize(
    ("account", "region", "reason"),
    [
        ("1234", "eu-west-1", "'1234' is not an AWS account id: its member role cannot be named"),
        ("2222333344445", "eu-west-1", "'2222333344445' is not an AWS account id: its member role cannot be named"),
        (None, "eu-west-1", "None is not an AWS account id: its member role cannot be named"),
        (MEMBER, "eu-west-1/../x", "'eu-west-1/../x' is not an AWS region"),
    ],
)
def test_a_malformed_account_or_region_is_refused_without_a_call(
    sts: Stubber, clock: Clock, account: Any, region: str, reason: str
) -> None:
    sessions = MemberSessions(hub(sts), "eu-west-1", PREFIX, clock=clock)
    with pytest.raises(LookupUnavailable) as refused:
        sessions.session(account, region)
    assert str(refused.value) == reason


def test_no_member_role_prefix_is_refused_never_the_hubs_own_credentials(sts: Stubber, clock: Clock) -> None:
    sessions = MemberSessions(hub(sts), "eu-west-1", None, clock=clock)
    lookups = Ec2Lookups(sessions.clients(MEMBER), InstanceTypeCatalog(sessions.clients(MEMBER), "eu-west-1"))
    with pytest.raises(LookupUnavailable, match="AMI_GUARD_MEMBER_ROLE_PREFIX"):
        lookups.image("ami-0123456789abcdef0", "eu-west-1")


def test_a_refused_assume_role_refuses_lookups_and_fails_actions(sts: Stubber, clock: Clock) -> None:
    sessions = MemberSessions(hub(sts), "eu-west-1", PREFIX, clock=clock)
    clients = sessions.clients(MEMBER)
    lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, "eu-west-1"))
    actions = Ec2Actions(clients, lookups)
    role = f"arn:aws:iam::{MEMBER}:role/{PREFIX}eu-west-1"
    message = f"User: hub is not authorized to perform: sts:AssumeRole on resource: {role}"
    for _ in range(4):
        sts.add_client_error("assume_role", "AccessDenied", message, 403)
    expected = f"the member role {role} could not be assumed (AccessDenied: {message})"
    with pytest.raises(LookupUnavailable) as lookup:
        lookups.image("ami-0123456789abcdef0", "eu-west-1")
    assert str(lookup.value) == expected
    with pytest.raises(ActionFailed) as removal:
        actions.remove_launch_permissions("ami-0123456789abcdef0", "eu-west-1", Principals(groups=("all",)))
    assert str(removal.value) == expected
    with pytest.raises(ActionFailed) as tagging:
        actions.add_tags(("ami-0123456789abcdef0",), "eu-west-1", {"Owner": "platform"})
    assert str(tagging.value) == expected
    # The instance type falls back to the bundled table rather than failing the launch guard
    assert lookups.instance_type("m5.large") is not None


def test_a_throttled_assume_role_fails_the_invocation_so_that_it_is_retried(sts: Stubber, clock: Clock) -> None:
    sessions = MemberSessions(hub(sts), "eu-west-1", PREFIX, clock=clock)
    sts.add_client_error("assume_role", "Throttling", "Rate exceeded", 400)
    with pytest.raises(ClientError):
        sessions.session(MEMBER, "eu-west-1")


def account(account_id: str, name: str, status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "Id": account_id,
        "Arn": f"arn:aws:organizations::111111111111:account/o-abcdefghij/{account_id}",
        "Email": f"{account_id}@example.com",
        "Name": name,
        "Status": status,
    }


def test_the_directory_reads_every_page_and_keeps_active_accounts_only(organizations: Stubber, clock: Clock) -> None:
    organizations.add_response(
        "list_accounts",
        {
            "Accounts": [account("111111111111", "Management"), account("222222222222", "Gone", "SUSPENDED")],
            "NextToken": "page-2",
        },
        {},
    )
    organizations.add_response(
        "list_accounts",
        {"Accounts": [account("333333333333", "Prod"), account("444444444444", "Closing", "PENDING_CLOSURE")]},
        {"NextToken": "page-2"},
    )
    directory = OrganizationDirectory(hub(organizations), "eu-west-1", clock=clock)
    assert directory.accounts() == {"111111111111": "Management", "333333333333": "Prod"}
    assert directory.ids() == frozenset({"111111111111", "333333333333"})


def test_the_directory_is_kept_15_minutes_and_lists_on_a_miss_at_most_once_a_minute(
    organizations: Stubber, clock: Clock
) -> None:
    directory = OrganizationDirectory(hub(organizations), "eu-west-1", clock=clock)
    organizations.add_response("list_accounts", {"Accounts": [account("111111111111", "Management")]}, {})
    assert directory.accounts(["111111111111"]) == {"111111111111": "Management"}
    # a miss within the minute: no call (the Stubber would fail one)
    clock.now = NOW + 59
    assert directory.accounts(["222222222222"]) == {"111111111111": "Management"}
    # a miss after a minute: listed again
    clock.now = NOW + 60
    organizations.add_response(
        "list_accounts", {"Accounts": [account("111111111111", "Management"), account("222222222222", "New")]}, {}
    )
    assert directory.accounts(["222222222222"]) == {"111111111111": "Management", "222222222222": "New"}
    # no miss: kept until 15 minutes after that listing
    clock.now = NOW + 60 + 15 * 60 - 1
    assert directory.accounts(["111111111111"])["222222222222"] == "New"
    clock.now = NOW + 60 + 15 * 60
    organizations.add_response("list_accounts", {"Accounts": [account("111111111111", "Management")]}, {})
    assert directory.accounts(["111111111111"]) == {"111111111111": "Management"}


def test_a_directory_that_cannot_be_listed_is_no_directory_once_its_list_is_too_old(
    organizations: Stubber, clock: Clock
) -> None:
    directory = OrganizationDirectory(hub(organizations), "eu-west-1", clock=clock)
    organizations.add_client_error("list_accounts", "AccessDeniedException", "no", 400)
    assert directory.accounts() is None
    assert directory.error == "organizations:ListAccounts failed (AccessDeniedException: no)"
    clock.now = NOW + 30  # not tried again within the minute
    assert directory.accounts() is None
    clock.now = NOW + 60
    organizations.add_response("list_accounts", {"Accounts": [account("111111111111", "Management")]}, {})
    assert directory.accounts() == {"111111111111": "Management"} and directory.error is None
    # a failure while the list is fresh keeps it (a miss a minute later lists again, and fails)...
    clock.now = NOW + 60 + 60
    organizations.add_client_error("list_accounts", "TooManyRequestsException", "slow down", 400)
    assert directory.accounts(["222222222222"]) == {"111111111111": "Management"}
    assert directory.error == "organizations:ListAccounts failed (TooManyRequestsException: slow down)"
    # ...and once it is older than 15 minutes there is none
    clock.now = NOW + 60 + 15 * 60
    organizations.add_client_error("list_accounts", "TooManyRequestsException", "slow down", 400)
    assert directory.accounts() is None
