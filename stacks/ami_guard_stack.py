"""AmiGuardStack, the standalone shape: the guard core listening on the account's default bus, each guard's own
role holding the EC2 calls it makes in the stack's account and region."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack
from constructs import Construct

from ami_guard.config import Policy
from stacks.components.ec2_grants import acknowledge_wildcards, ec2_grants
from stacks.components.guard_function import GuardFunction
from stacks.guard_core import GuardCore


class AmiGuardStack(Stack):
    """Environment-agnostic: every ARN is built from the partition, region and account of the deployment."""

    def __init__(self, scope: Construct, construct_id: str, *, policy: Policy, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        def grant_ec2(guards: Mapping[str, GuardFunction]) -> None:
            for guard_name, grants in ec2_grants(policy, self).items():
                for statement in grants.statements:
                    guards[guard_name].role.add_to_policy(statement)
                acknowledge_wildcards(guards[guard_name].role, grants.wildcards)

        GuardCore(self, policy=policy, grant_access=grant_ec2).add_outputs()
