#!/usr/bin/env python3
"""CDK entry point: read the amiGuard context into a Policy, build the deployment's stacks, check them with cdk-nag,
synthesize.

Without an `organization` block: the standalone stack "AmiGuard". With one: the hub "AmiGuard" (in the hub account and
region) and the member stack "AmiGuardMember" for the management account, which the hub's StackSet does not target.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import ami_guard  # noqa: F401  (installed editable by `make setup`)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

from aws_cdk import App, Environment, Stack, Validations
from cdk_nag import AwsSolutionsChecks

from ami_guard import contract
from ami_guard.config import ConfigError, parse_policy
from stacks.ami_guard_stack import AmiGuardStack

STACK_NAME = "AmiGuard"


def build(app: App) -> Stack:
    """The stack "AmiGuard" from the app's amiGuard context (and, in organization mode, the member stack beside it),
    checked by cdk-nag when the app synthesizes.

    Raises ConfigError, naming the key and the value, when the context is malformed.
    """
    policy = parse_policy(app.node.try_get_context(contract.CONTEXT_KEY))
    organization = policy.organization
    stack: Stack
    if organization is None:
        stack = AmiGuardStack(app, STACK_NAME, policy=policy)
    else:
        # Imported here: a standalone synth loads neither cdk-stacksets nor the organization shapes.
        from stacks.hub_stack import HubStack
        from stacks.member_stack import MemberStack

        stack = HubStack(
            app,
            STACK_NAME,
            policy=policy,
            organization=organization,
            env=Environment(account=organization.hub_account, region=organization.hub_region),
        )
        MemberStack(
            app, contract.MEMBER_STACK_NAME, policy=policy, organization=organization, hub_stack_name=STACK_NAME
        )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> int:
    app = App()
    try:
        build(app)
    except ConfigError as exc:
        print(f"error: invalid '{contract.CONTEXT_KEY}' configuration: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
