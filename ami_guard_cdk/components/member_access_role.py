"""The role the hub's guards assume in a member account and region: the EC2 calls they make there, and no more.

Trust: the hub account's root principal, but only for the exact hub guard roles that act in members
(`ArnEquals aws:PrincipalArn`), never any other principal of the hub account. Naming the account root rather than
the roles keeps the trust valid whichever of hub and member is deployed first.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from ami_guard import contract
from ami_guard_cdk.components.ec2_grants import Grants, acknowledge_wildcards


def hub_guard_role_arn(stack: Stack, *, hub_account: str, hub_region: str, hub_stack_name: str, guard: str) -> str:
    """The ARN of a hub guard's role: <hub stack>-<Guard>-<hub region>, as the guard core names it."""
    return (
        f"arn:{stack.partition}:iam::{hub_account}:role/{contract.guard_role_prefix(hub_stack_name, guard)}{hub_region}"
    )


class MemberAccessRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        hub_account: str,
        hub_region: str,
        hub_stack_name: str,
        grants: Mapping[str, Grants],
    ) -> None:
        """`grants`: hub guard name -> the EC2 statements it needs; each such guard, and only these, may assume."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        hub_roles = [
            hub_guard_role_arn(
                stack, hub_account=hub_account, hub_region=hub_region, hub_stack_name=hub_stack_name, guard=guard
            )
            for guard in grants
        ]
        self.role = iam.Role(
            self,
            "Role",
            role_name=f"{contract.member_role_prefix()}{stack.region}",
            assumed_by=iam.AccountPrincipal(hub_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": hub_roles}}
            ),
            description="AMI Guard: what the hub's guards read and change in this account and region",
        )
        reasons: dict[str, list[str]] = {}
        for guard_grants in grants.values():
            for statement in guard_grants.statements:
                self.role.add_to_policy(statement)
            for finding, reason in guard_grants.wildcards.items():
                if reason not in reasons.setdefault(finding, []):
                    reasons[finding].append(reason)
        acknowledge_wildcards(self.role, {finding: " ".join(texts) for finding, texts in reasons.items()})
