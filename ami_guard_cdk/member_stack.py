"""The member shape: what every member account holds in every guarded region, and no Lambda.

`MemberGuard` is the one construct both carriers hold: the StackSet's template (built inside the hub stack) and
`MemberStack`, the stack "AmiGuardMember" that the management account, which StackSets do not target, deploys with a
plain `cdk deploy AmiGuardMember`. Environment-agnostic: the member's partition, account and region are the
deployment's; the hub's account, region and names are written out from the organization block.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from ami_guard import contract
from ami_guard.config import Organization, Policy
from ami_guard_cdk.components.ec2_grants import ec2_grants
from ami_guard_cdk.components.member_access_role import MemberAccessRole
from ami_guard_cdk.components.member_forwarding import MemberForwarding


def hub_bus_arn(stack: Stack, organization: Organization, hub_stack_name: str) -> str:
    """The hub bus, in the hub's account and region: a cross-region target when the member is elsewhere."""
    return (
        f"arn:{stack.partition}:events:{organization.hub_region}:{organization.hub_account}:"
        f"event-bus/{contract.hub_bus_name(hub_stack_name)}"
    )


class MemberGuard(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, policy: Policy, organization: Organization, hub_stack_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        MemberForwarding(self, "Forwarding", hub_bus_arn=hub_bus_arn(stack, organization, hub_stack_name))
        MemberAccessRole(
            self,
            "Access",
            hub_account=organization.hub_account,
            hub_region=organization.hub_region,
            hub_stack_name=hub_stack_name,
            grants=ec2_grants(policy, stack),
        )


class MemberStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        organization: Organization,
        hub_stack_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        MemberGuard(self, "Member", policy=policy, organization=organization, hub_stack_name=hub_stack_name)
