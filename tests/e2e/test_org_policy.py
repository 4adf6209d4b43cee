"""The organization demo's IAM judgments that moto cannot make (demo.policy), on the statements the app writes: the
hub bus accepts events from the organization only, a member role trusts only the hub's guard roles, a hub role
assumes only roles of the organization, a forwarder role puts events on the hub bus only. No deployment needed."""

from __future__ import annotations

from demo.org_runner import _PolicyResolver, bus_arn_parts
from demo.policy import Request, decide

ORG = "o-abcdefghij"
HUB = "222233334444"
MEMBER = "555566667777"
OUTSIDER = "999988887777"
HUB_BUS = f"arn:aws:events:eu-west-1:{HUB}:event-bus/AmiGuard-Hub"
IMAGE_GUARD = f"arn:aws:iam::{HUB}:role/AmiGuard-ImageGuard-eu-west-1"
TAMPER_GUARD = f"arn:aws:iam::{HUB}:role/AmiGuard-TamperGuard-eu-west-1"
FORWARDER = f"arn:aws:iam::{MEMBER}:role/AmiGuardMember-Forwarder-us-east-1"

BUS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "OrganizationOnly", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
         "Resource": HUB_BUS, "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}},
    ],
}  # fmt: skip
MEMBER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "sts:AssumeRole",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": [IMAGE_GUARD]}}},
    ],
}  # fmt: skip
HUB_ASSUME = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/AmiGuardMember-Access-*",
         "Condition": {"StringEquals": {"aws:ResourceOrgID": ORG}}},
    ],
}  # fmt: skip
FORWARDER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": HUB_BUS}],
}


def _put(principal: str, org: str | None) -> Request:
    context = {"aws:PrincipalArn": principal, "aws:PrincipalAccount": principal.split(":")[4]}
    if org:
        context["aws:PrincipalOrgID"] = org
    return Request(action="events:PutEvents", resource=HUB_BUS, principal_arn=principal, context=context)


def test_the_hub_bus_accepts_a_member_of_the_organization() -> None:
    # Given the organization-only bus policy, and a member's forwarder role of that organization
    # When it puts an event on the hub bus
    decision = decide([BUS_POLICY], _put(FORWARDER, ORG))

    # Then the policy allows it
    assert decision.allowed, decision.reason


def test_the_hub_bus_refuses_an_account_outside_the_organization() -> None:
    # Given the same policy, and an account of no organization, then of another organization
    outsider = f"arn:aws:iam::{OUTSIDER}:user/someone"

    # Then neither may put events on the hub bus
    assert not decide([BUS_POLICY], _put(outsider, None)).allowed
    assert not decide([BUS_POLICY], _put(outsider, "o-zzzzzzzzzz")).allowed


def test_a_bus_policy_without_the_organization_condition_lets_anyone_in() -> None:
    # Given the bus policy with its condition removed (the break the tests must catch)
    open_policy = {"Statement": [{**BUS_POLICY["Statement"][0], "Condition": {}}]}  # type: ignore[index]

    # Then the outsider is let in: the judgment reads the condition, it does not assume it
    assert decide([open_policy], _put(f"arn:aws:iam::{OUTSIDER}:user/someone", None)).allowed


def _assume(principal: str, target: str = f"arn:aws:iam::{MEMBER}:role/AmiGuardMember-Access-us-east-1") -> Request:
    context = {"aws:PrincipalArn": principal, "aws:PrincipalAccount": HUB, "aws:PrincipalOrgID": ORG}
    return Request(action="sts:AssumeRole", resource=target, principal_arn=principal, context=context)


def test_the_member_role_trusts_the_named_hub_guard_role_only() -> None:
    # Given the member role's trust: the hub account, on condition of the image guard's role ARN
    # Then the image guard may assume it, the tamper guard of the same hub account may not
    assert decide([MEMBER_TRUST], _assume(IMAGE_GUARD)).allowed
    assert not decide([MEMBER_TRUST], _assume(TAMPER_GUARD)).allowed


def test_a_role_of_another_account_is_not_the_hub_account() -> None:
    # Given a role of the same name in another account
    impostor = f"arn:aws:iam::{OUTSIDER}:role/AmiGuard-ImageGuard-eu-west-1"

    # Then the trust does not let it in (the principal is the hub account's root, the condition its role ARN)
    assert not decide([MEMBER_TRUST], _assume(impostor)).allowed


def test_a_trust_of_the_whole_hub_account_lets_every_hub_role_in() -> None:
    # Given the member trust without its condition (the break the tests must catch)
    whole_account = {"Statement": [{**MEMBER_TRUST["Statement"][0], "Condition": {}}]}  # type: ignore[index]

    # Then any role of the hub account may assume it
    assert decide([whole_account], _assume(TAMPER_GUARD)).allowed


def test_the_hub_role_assumes_member_roles_of_its_organization_only() -> None:
    # Given the hub role's policy: member access roles, whose account is in the organization
    in_org = _assume(IMAGE_GUARD)
    in_org_context = {**in_org.context, "aws:ResourceOrgID": ORG}
    outside = {**in_org.context, "aws:ResourceOrgID": "o-zzzzzzzzzz"}

    # Then a member role of the organization may be assumed, one of another organization or of no organization not,
    # and no other role of the organization either
    allowed = Request(in_org.action, in_org.resource, in_org.principal_arn, context=in_org_context)
    assert decide([HUB_ASSUME], allowed).allowed
    assert not decide(
        [HUB_ASSUME], Request(in_org.action, in_org.resource, in_org.principal_arn, context=outside)
    ).allowed
    assert not decide([HUB_ASSUME], in_org).allowed
    other_role = f"arn:aws:iam::{MEMBER}:role/Admin"
    assert not decide([HUB_ASSUME], Request("sts:AssumeRole", other_role, IMAGE_GUARD, context=in_org_context)).allowed


def test_the_forwarder_role_puts_on_the_hub_bus_only() -> None:
    # Given the forwarder's policy
    other_bus = f"arn:aws:events:eu-west-1:{HUB}:event-bus/default"

    # Then PutEvents on the hub bus is allowed, on another bus or another action not
    assert decide([FORWARDER_POLICY], Request("events:PutEvents", HUB_BUS, FORWARDER)).allowed
    assert not decide([FORWARDER_POLICY], Request("events:PutEvents", other_bus, FORWARDER)).allowed
    assert not decide([FORWARDER_POLICY], Request("events:PutRule", HUB_BUS, FORWARDER)).allowed


def test_an_explicit_deny_wins_and_an_unknown_operator_allows_nothing() -> None:
    # Given an Allow with an operator the evaluator does not know, and a Deny beside an Allow
    unknown = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                              "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}]}  # fmt: skip
    denied = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                            {"Effect": "Deny", "Action": "events:PutEvents", "Resource": "*"}]}  # fmt: skip

    # Then neither allows PutEvents
    assert not decide([unknown], Request("events:PutEvents", HUB_BUS, FORWARDER)).allowed
    assert (
        decide([denied], Request("events:PutEvents", HUB_BUS, FORWARDER)).reason == "explicitly denied by statement 2"
    )


def test_the_deployed_bus_policy_statement_is_resolved_from_the_template() -> None:
    # Given a CDK-style EventBusPolicy statement referring to the bus by GetAtt and the account by Ref
    resources = {"HubBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "AmiGuard-Hub"}}}
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": {"Fn::GetAtt": ["HubBus", "Arn"]},
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        "Sid": {"Fn::Join": ["", ["From-", {"Ref": "AWS::AccountId"}]]},
    }

    # When it is resolved as the runner resolves the deployed template
    resolved = _PolicyResolver(HUB, "eu-west-1", "AmiGuard", {"HubBus": "AmiGuard-Hub"}, resources)(statement)

    # Then it names the bus ARN and the account, the condition untouched
    assert resolved == {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": HUB_BUS,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        "Sid": f"From-{HUB}",
    }
    assert bus_arn_parts(HUB_BUS) == ("eu-west-1", HUB, "AmiGuard-Hub")
