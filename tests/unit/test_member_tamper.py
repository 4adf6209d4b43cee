"""Organization mode: the hub sees its StackSet, its bus and its members' rules and roles change (guard-tampered),
and says in which account and region. A standalone deployment's tamper alerts are as before."""

from __future__ import annotations

from typing import Any

import pytest

from ami_guard import contract
from ami_guard.events import parse_call
from ami_guard.events.calls import ApiCall, Envelope
from ami_guard.events.guard import GuardChange, guard_change
from ami_guard.rules.guard import guard_tampered
from ami_guard.settings import load_settings
from ami_guard.watched import Watched
from tests import records as r

HUB = "999988887777"
MEMBER = "222233334444"
STACK_SET = contract.stack_set_name("AmiGuard")
BUS = contract.hub_bus_name("AmiGuard")
FORWARD, WATCH = contract.member_rule_names()
HUB_WATCHED = Watched(
    rules=frozenset({FORWARD, WATCH}),
    role_prefixes=frozenset({contract.member_role_prefix(), contract.member_forwarder_role_prefix()}),
    stack_sets=frozenset({STACK_SET}),
    buses=frozenset({BUS}),
    home_account=HUB,
)


def call_of(
    source: str, event_name: str, request: dict[str, Any], *, account: str = MEMBER, region: str = r.REGION
) -> ApiCall:
    rec = r.record(event_name, request, None, region=region)
    rec["eventSource"] = source
    rec["recipientAccountId"] = account
    return parse_call(Envelope(rec, account=account, region=region), (source,))


@pytest.mark.parametrize(
    "named",
    [
        STACK_SET,
        f"{STACK_SET}:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        f"arn:aws:cloudformation:{r.REGION}:{HUB}:stackset/{STACK_SET}:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    ],
    ids=["name", "id", "arn"],
)
@pytest.mark.parametrize("action", contract.STACK_SET_TAMPER_EVENTS)
def test_a_change_to_the_stack_set_by_name_id_or_arn_is_the_stack_set(action: str, named: str) -> None:
    call = call_of(contract.CLOUDFORMATION_SOURCE, action, {"stackSetName": named}, account=HUB)
    change = guard_change(call)
    assert change == GuardChange("cloudformation", action, STACK_SET, named)
    finding = guard_tampered(call, change, HUB_WATCHED)
    assert finding is not None
    assert finding.title == f"AMI Guard member StackSet {STACK_SET} changed: {action} in account {HUB} {r.REGION}"
    assert finding.resources[0].kind == "cloudformation-stackset"


@pytest.mark.parametrize(
    "named",
    ["OtherStackSet", "OtherStackSet:0f1e2d3c", f"arn:aws:cloudformation:{r.REGION}:{HUB}:stack/{STACK_SET}/abc"],
)
def test_another_stack_set_or_a_stack_is_not_the_guards(named: str) -> None:
    call = call_of(contract.CLOUDFORMATION_SOURCE, "DeleteStackSet", {"stackSetName": named}, account=HUB)
    change = guard_change(call)
    assert change is not None
    assert guard_tampered(call, change, HUB_WATCHED) is None


def test_stack_set_calls_that_change_nothing_are_not_watched() -> None:
    call = call_of(contract.CLOUDFORMATION_SOURCE, "DescribeStackSet", {"stackSetName": STACK_SET}, account=HUB)
    assert guard_change(call) is None


@pytest.mark.parametrize(
    ("action", "request_parameters"),
    [
        ("DeleteEventBus", {"name": BUS}),
        ("PutPermission", {"eventBusName": BUS, "policy": "{}"}),
        ("RemovePermission", {"eventBusName": f"arn:aws:events:{r.REGION}:{HUB}:event-bus/{BUS}"}),
    ],
)
def test_the_hub_bus_deleted_or_its_policy_changed_is_raised(action: str, request_parameters: dict[str, Any]) -> None:
    call = call_of(contract.EVENTS_SOURCE, action, request_parameters, account=HUB)
    change = guard_change(call)
    assert change is not None and change.target == BUS
    finding = guard_tampered(call, change, HUB_WATCHED)
    assert finding is not None
    assert finding.title == f"AMI Guard hub event bus {BUS} changed: {action} in account {HUB} {r.REGION}"
    assert finding.resources[0].kind == "events-bus"


def test_a_permission_on_the_default_bus_is_not_the_hub_bus() -> None:
    call = call_of(contract.EVENTS_SOURCE, "PutPermission", {"action": "events:PutEvents"}, account=HUB)
    change = guard_change(call)
    assert change == GuardChange("events", "PutPermission", "default", "default")
    assert guard_tampered(call, change, HUB_WATCHED) is None


def test_a_rule_named_like_the_bus_is_not_the_bus() -> None:
    # A rule and a bus may share a name: DeleteRule on a rule "AmiGuard-Hub" is not a change to the bus
    call = call_of(contract.EVENTS_SOURCE, "DeleteRule", {"name": BUS}, account=HUB)
    change = guard_change(call)
    assert change is not None
    assert guard_tampered(call, change, HUB_WATCHED) is None


@pytest.mark.parametrize("rule", [FORWARD, WATCH])
def test_a_member_rule_deleted_names_the_member_account_and_region(rule: str) -> None:
    call = call_of(contract.EVENTS_SOURCE, "DeleteRule", {"name": rule}, region=r.OTHER_REGION)
    change = guard_change(call)
    assert change is not None
    finding = guard_tampered(call, change, HUB_WATCHED)
    assert finding is not None
    assert (
        finding.title == f"AMI Guard EventBridge rule {rule} changed: DeleteRule in account {MEMBER} {r.OTHER_REGION}"
    )
    assert f" in account {MEMBER}, region {r.OTHER_REGION}. " in finding.description
    assert "StackSet instance" in finding.recommendation
    assert finding.resources[0].arn == f"arn:aws:events:{r.OTHER_REGION}:{MEMBER}:rule/{rule}"


def test_a_member_role_deleted_names_the_member_account() -> None:
    role = contract.member_role_prefix() + r.REGION
    call = call_of(contract.IAM_SOURCE, "DeleteRole", {"roleName": role}, region="us-east-1")
    change = guard_change(call)
    assert change is not None
    finding = guard_tampered(call, change, HUB_WATCHED)
    assert finding is not None
    assert finding.title == f"AMI Guard IAM role {role} changed: DeleteRole in account {MEMBER} us-east-1"


def test_the_hub_watches_cloudformation_and_events_only_when_told() -> None:
    assert contract.CLOUDFORMATION_SOURCE in HUB_WATCHED.sources
    assert HUB_WATCHED.sources.count(contract.EVENTS_SOURCE) == 1
    assert Watched(buses=frozenset({BUS})).sources == (contract.EVENTS_SOURCE,)
    assert contract.CLOUDFORMATION_SOURCE not in Watched(rules=frozenset({"r"})).sources


def test_standalone_tamper_titles_name_no_account() -> None:
    call = call_of(contract.EVENTS_SOURCE, "DeleteRule", {"name": "AmiGuard-TamperRule"}, account=r.ACCOUNT)
    change = guard_change(call)
    assert change is not None
    finding = guard_tampered(call, change, Watched(rules=frozenset({"AmiGuard-TamperRule"})))
    assert finding is not None
    assert finding.title == f"AMI Guard EventBridge rule AmiGuard-TamperRule changed: DeleteRule in {r.REGION}"
    assert "account" not in finding.description


def test_settings_carry_the_stack_sets_buses_member_role_prefix_and_hub_account() -> None:
    organization = (
        '{"organizationId": "o-abcdefghij", "hubAccount": "999988887777", "hubRegion": "eu-west-1", '
        '"regions": ["eu-west-1"], "organizationalUnits": ["r-abcd"]}'
    )
    settings = load_settings(
        {
            contract.ENV_TOPIC_ARN: f"arn:aws:sns:{r.REGION}:{HUB}:alerts",
            contract.ENV_IDEMPOTENCY_TABLE: "table",
            contract.ENV_ORGANIZATION: organization,
            contract.ENV_MEMBER_ROLE_PREFIX: "AmiGuardMember-Access-",
            contract.ENV_WATCHED_STACK_SETS: f"{STACK_SET}",
            contract.ENV_WATCHED_BUSES: f"{BUS}",
        }
    )
    assert settings.member_role_prefix == "AmiGuardMember-Access-"
    assert settings.watched.stack_sets == frozenset({STACK_SET})
    assert settings.watched.buses == frozenset({BUS})
    assert settings.watched.home_account == HUB


def test_standalone_settings_have_no_member_role_nor_hub_account() -> None:
    settings = load_settings(
        {contract.ENV_TOPIC_ARN: f"arn:aws:sns:{r.REGION}:{HUB}:alerts", contract.ENV_IDEMPOTENCY_TABLE: "t"}
    )
    assert settings.member_role_prefix is None
    assert settings.watched.home_account is None
    assert settings.watched.stack_sets == frozenset() and settings.watched.buses == frozenset()
