#!/usr/bin/env python3
"""CDK entry point: read the amiGuard context into a Policy, build AmiGuardStack, check it with cdk-nag, synthesize."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import ami_guard  # noqa: F401  (installed editable by `make setup`)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from ami_guard import contract
from ami_guard.config import ConfigError, parse_policy
from stacks.ami_guard_stack import AmiGuardStack

STACK_NAME = "AmiGuard"


def build(app: App) -> AmiGuardStack:
    """The stack from the app's amiGuard context, checked by cdk-nag when the app synthesizes.

    Raises ConfigError, naming the key and the value, when the context is malformed.
    """
    policy = parse_policy(app.node.try_get_context(contract.CONTEXT_KEY))
    stack = AmiGuardStack(app, STACK_NAME, policy=policy)
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
