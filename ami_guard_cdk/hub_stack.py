"""The hub shape: the guard core in the security account, fed by the organization through the hub bus, acting in
members only through their access role, and carrying the StackSet that deploys the members.

Compared with the standalone shape: the permission, launch and image rules listen on the hub bus (the hub account's
own EC2 calls reach it through its own member stack, like every other account's); the guards hold no EC2 right, only
`sts:AssumeRole` on the member access roles of the organization and `organizations:ListAccounts`; the tamper guard
also watches the StackSet and the hub bus here, and the members' rules and roles through the hub bus.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from cdk_stacksets import StackSetStack
from constructs import Construct

from ami_guard import contract
from ami_guard.config import Organization, Policy
from ami_guard_cdk.components.ec2_grants import acknowledge_wildcards, ec2_grants
from ami_guard_cdk.components.guard_function import GuardFunction
from ami_guard_cdk.components.guard_rule import GuardRule
from ami_guard_cdk.components.hub_bus import HubBus
from ami_guard_cdk.components.member_forwarding import member_tamper_pattern
from ami_guard_cdk.components.member_stack_set import MemberStackSet
from ami_guard_cdk.guard_core import GuardCore, TamperWatch
from ami_guard_cdk.member_stack import MemberGuard

MEMBER_ROLES = (
    "Member access roles are named <prefix><region> in every account of the organization, and accounts join the "
    "organization after deployment, so the statement names them by pattern, limited to aws:ResourceOrgID."
)
ORGANIZATION_READERS = ("PermissionGuard", "LaunchGuard", "ImageGuard", "TamperGuard")
"""The guards that read the organization's accounts: trust in the own organization (shares), and the name of the
account an alert is about (every guard that alerts, the tamper guard on a member's change included)."""
LIST_ACCOUNTS = (
    "organizations:ListAccounts supports no resource-level permissions, so IAM only accepts Resource '*'; the guard "
    "reads the organization's account ids and names with it, and the statement allows nothing else."
)


def hub(scope: Construct, *, policy: Policy, organization: Organization) -> GuardCore:
    """The hub shape in `scope`, with its outputs. The stack must be in the hub's account and region (the
    AmiGuard construct checks it)."""
    stack = Stack.of(scope)
    bus_name = contract.hub_bus_name(stack.stack_name)
    stack_set_name = contract.stack_set_name(stack.stack_name)
    member_tamper_rule = f"{stack.stack_name}-MemberTamperRule"
    hub_bus = HubBus(scope, "HubBus", bus_name=bus_name, organization_id=organization.organization_id)

    # The guards that act in members are those with EC2 calls in this configuration (the member role trusts
    # exactly these; see MemberAccessRole). The tamper guard decides from the record alone: it only lists the
    # accounts, to name one in its alert.
    acting = tuple(ec2_grants(policy, stack))
    member_roles = f"arn:{stack.partition}:iam::*:role/{contract.member_role_prefix()}*"

    def grant_member_access(guards: Mapping[str, GuardFunction]) -> None:
        # The sweep, when deployed, plans over the organization's accounts and sweeps each through its member role.
        readers = (*ORGANIZATION_READERS, *(["SweepGuard"] if "SweepGuard" in guards else []))
        for guard_name in readers:
            role = guards[guard_name].role
            wildcards = {"Resource::*": LIST_ACCOUNTS}
            if guard_name in acting:
                role.add_to_policy(
                    iam.PolicyStatement(
                        sid="AssumeMemberAccessRoles",
                        actions=["sts:AssumeRole"],
                        resources=[member_roles],
                        conditions={"StringEquals": {"aws:ResourceOrgID": organization.organization_id}},
                    )
                )
                wildcards[f"Resource::arn:<AWS::Partition>:iam::*:role/{contract.member_role_prefix()}*"] = MEMBER_ROLES
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ListOrganizationAccounts", actions=["organizations:ListAccounts"], resources=["*"]
                )
            )
            acknowledge_wildcards(role, wildcards)

    core = GuardCore(
        scope,
        policy=policy,
        grant_access=grant_member_access,
        guard_bus=hub_bus.bus,
        environment={contract.ENV_MEMBER_ROLE_PREFIX: contract.member_role_prefix()},
        tamper_watch=TamperWatch(
            watched={
                contract.ENV_WATCHED_RULES: (member_tamper_rule, *contract.member_rule_names()),
                contract.ENV_WATCHED_ROLE_PREFIXES: (
                    contract.member_role_prefix(),
                    contract.member_forwarder_role_prefix(),
                ),
                contract.ENV_WATCHED_STACK_SETS: (stack_set_name,),
                contract.ENV_WATCHED_BUSES: (bus_name,),
            },
            calls={
                contract.CLOUDFORMATION_SOURCE: contract.STACK_SET_TAMPER_EVENTS,
                contract.EVENTS_SOURCE: contract.EVENT_BUS_TAMPER_EVENTS,
            },
        ),
    )
    tamper = core.guards["TamperGuard"]
    GuardRule(
        scope,
        "MemberTamperRule",
        rule_name=member_tamper_rule,
        description="AMI Guard: changes to the members' own rules and roles, forwarded by the members",
        pattern=member_tamper_pattern(),
        target=tamper.function,
        dead_letter_queue=tamper.failed_events,
        event_bus=hub_bus.bus,
    )

    template = StackSetStack(scope, "MemberTemplate")
    MemberGuard(template, "Member", policy=policy, organization=organization, hub_stack_name=stack.stack_name)
    MemberStackSet(scope, "Members", stack_set_name=stack_set_name, template=template, organization=organization)

    core.add_outputs()
    CfnOutput(scope, "HubBusArn", value=hub_bus.bus.event_bus_arn)
    return core
