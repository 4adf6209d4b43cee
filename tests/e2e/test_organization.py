"""The organization demo (`make demo DEMO_ARGS=--organization`): an emulated organization, the hub deployed by the
real CDK CLI into its security account, the member template rolled out into two member accounts and two regions,
and the organization's risky changes played across accounts and regions."""

from __future__ import annotations

import pytest

from ami_guard import contract
from demo.organization import OUTSIDE_ACCOUNT
from demo.scenario import HOME, OTHER
from tests.e2e.harness import ORGANIZATION_REMEDIATION_STEPS, PlayedOrganization

pytestmark = pytest.mark.e2e

# Per step, the rule ids of the alerts that must arrive, written out here (not read from the scenario).
EXPECTED_RULES = {
    "member-public-other-region": ["ami-public"],
    "share-with-member": [],
    "share-outside": ["ami-shared-untrusted"],
    "copy-tagged-other-region": ["copy-tags-missing"],
    "duplicate-delivery": ["snapshot-shared-untrusted"],
    "member-deletes-forward-rule": ["guard-tampered", "guard-tampered"],
    "outsider-puts-on-hub-bus": [],
}


def test_the_organization_steps_are_those_written_here(organization: PlayedOrganization) -> None:
    # Given the organization demo played
    # Then it played these steps, in this order
    assert list(organization.results) == list(EXPECTED_RULES)


@pytest.mark.parametrize("key", list(EXPECTED_RULES))
def test_organization_step_goes_as_expected(organization: PlayedOrganization, key: str) -> None:
    # Given the step played in the organization
    result = organization.results[key]

    # Then exactly these alerts reached the hub's inbox, every event reached a hub function that evaluated it with
    # no call refused (its own or the member role's), and every check of the member account held
    assert sorted(result.received) == EXPECTED_RULES[key], organization.explain(key)
    if result.problems or not all(check.ok for check in result.checks):
        pytest.fail(organization.explain(key), pytrace=False)


def test_the_stack_sets_template_is_in_every_member_account_and_region(organization: PlayedOrganization) -> None:
    # Given the organization deployed: the hub by the CDK CLI, the members rolled out as the StackSet would
    session = organization.session
    layout, deployment = session.layout, session.deployment
    assert layout is not None and deployment is not None

    # Then the member template is the StackSet's own (the asset cdk-stacksets writes into cdk.out), and a stack of
    # it is complete in each member account and region, with both member rules on the default bus
    assert deployment.member_template_source.endswith("(the StackSet's template)")
    assert sorted(deployment.member_stacks) == sorted(
        (account, region) for account in layout.members.values() for region in (HOME, OTHER)
    )
    for (account, region), stack_name in deployment.member_stacks.items():
        view = session.emulator.view(account)
        (stack,) = view.client("cloudformation", region).describe_stacks(StackName=stack_name)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", (account, region)
        rules = {r["Name"] for r in view.client("events", region).list_rules()["Rules"]}
        assert set(contract.member_rule_names()) <= rules, (account, region, rules)


def test_member_events_travel_member_rule_then_hub_bus_then_hub_function(organization: PlayedOrganization) -> None:
    # Given the public AMI step, played in Workload B in the region that is not the hub's
    result = organization.results["member-public-other-region"]
    layout = organization.session.layout
    assert layout is not None

    # Then the event went from the member's forwarding rule in that region to the hub bus, then from a hub rule on
    # that bus to the permission guard in the hub's region
    forward_rule, _watch_rule = contract.member_rule_names()
    hops = [(d.region, d.rule, d.function_name or d.target_arn) for d in result.deliveries]
    hub_bus = f"arn:aws:events:{HOME}:{layout.security}:event-bus/{contract.hub_bus_name('AmiGuard')}"
    assert hops[0] == (OTHER, forward_rule, hub_bus), organization.explain("member-public-other-region")
    assert [(region, function) for region, _rule, function in hops[1:]] == [(HOME, "AmiGuard-PermissionGuard")], (
        organization.explain("member-public-other-region")
    )


def test_the_hub_reached_the_members_only_through_their_member_role(organization: PlayedOrganization) -> None:
    # Given every cross-account AssumeRole the harness judged while the scenario played
    layout = organization.session.layout
    assert layout is not None
    judged = organization.session.emulator.judged()

    # Then there were some, each allowed, each from a hub guard role to a member account's access role of a guarded
    # region (the functions have no other way into a member account)
    assert judged, "no hub function assumed a member role"
    for call in judged:
        assert call["allowed"] == "true", call
        assert call["caller"].startswith(f"arn:aws:iam::{layout.security}:role/AmiGuard-"), call
        account, role = call["target"].split(":")[4], call["target"].rsplit("/", 1)[-1]
        assert account in layout.members.values(), call
        assert role in {f"{contract.member_role_prefix()}{region}" for region in (HOME, OTHER)}, call


def test_an_outsider_cannot_put_events_on_the_hub_bus(organization: PlayedOrganization) -> None:
    # Given the step where an account outside the organization puts an event on the hub bus
    runner = organization.session.runner
    assert runner is not None

    # Then the runner refused it on the deployed bus policy, for that account, and nothing ran
    assert [(r["principal"].split(":")[4], r["bus"].rsplit("/", 1)[-1]) for r in runner.refused_puts] == [
        (OUTSIDE_ACCOUNT, contract.hub_bus_name("AmiGuard"))
    ]
    assert "of no organization: no statement allows it" in runner.refused_puts[0]["reason"]
    assert organization.results["outsider-puts-on-hub-bus"].deliveries == []


def test_the_organization_remediation_steps(organization_remediated: PlayedOrganization) -> None:
    # Given the organization deployed with remediation on, and its remediation steps played
    played = organization_remediated
    assert list(played.results) == list(ORGANIZATION_REMEDIATION_STEPS)

    # Then each step had exactly its alerts, no problem, every check held (the public AMI is private again in
    # Workload B, the share outside the organization is gone and the share with Workload B stays)
    for key in ORGANIZATION_REMEDIATION_STEPS:
        result = played.results[key]
        assert sorted(result.received) == EXPECTED_RULES[key], played.explain(key)
        if result.problems or not all(check.ok for check in result.checks):
            pytest.fail(played.explain(key), pytrace=False)


def test_the_public_ami_is_private_again_in_the_member(organization_remediated: PlayedOrganization) -> None:
    # Given the AMI made public by Workload B in the region that is not the hub's
    world = organization_remediated.session.world
    assert world is not None
    member = world.member("Workload B")

    # When its launch permissions are read back in that member account and region
    permissions = member.launch_permissions(OTHER, world.images["b-web"])

    # Then nobody may launch it, and the alert said the permission was removed
    assert permissions == [], organization_remediated.explain("member-public-other-region")
    (alert,) = organization_remediated.results["member-public-other-region"].alerts
    assert alert.action["status"] == "removed"
