"""The standalone shape (the guard core listening on the account's default bus, each guard's own role holding the
EC2 calls it makes in the stack's account and region), and AmiGuardStack, a stack that holds the AmiGuard construct
alone, as the app's stack "AmiGuard" does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack
from constructs import Construct

from ami_guard.config import Policy
from ami_guard_cdk.components.ec2_grants import acknowledge_wildcards, ec2_grants
from ami_guard_cdk.components.guard_function import GuardFunction
from ami_guard_cdk.guard_core import GuardCore


def standalone(scope: Construct, *, policy: Policy) -> GuardCore:
    """The guard core in `scope`, with its outputs. Environment-agnostic: every ARN is built from the partition,
    region and account of the deployment."""
    stack = Stack.of(scope)

    def grant_ec2(guards: Mapping[str, GuardFunction]) -> None:
        for guard_name, grants in ec2_grants(policy, stack).items():
            for statement in grants.statements:
                guards[guard_name].role.add_to_policy(statement)
            acknowledge_wildcards(guards[guard_name].role, grants.wildcards)

    core = GuardCore(scope, policy=policy, grant_access=grant_ec2)
    core.add_outputs()
    return core


class AmiGuardStack(Stack):
    """A stack holding one AmiGuard construct, with the id "Default": the logical ids are the construct's children's
    alone, as in the templates deployed before the construct existed. In organization mode, give it the hub's env."""

    def __init__(self, scope: Construct, construct_id: str, *, policy: Policy, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        from ami_guard_cdk.ami_guard_construct import AmiGuard  # the construct builds the shapes of this module

        self.guard = AmiGuard.from_policy(self, "Default", policy)
