#!/usr/bin/env python3
"""CDK entry point: read the amiGuard context into a Policy, build the deployment's stacks, check them with cdk-nag,
synthesize.

The stack "AmiGuard" holds the AmiGuard construct (ami_guard_cdk/ami_guard_construct.py) with the id "Default".
Without an `organization` block it is the standalone shape; with one, the hub (in the hub account and region), and
the member stack "AmiGuardMember" for the management account, which the hub's StackSet does not target, stands
beside it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import ami_guard  # noqa: F401  (installed editable by `make setup`)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

from aws_cdk import App, Environment, Stack, Validations
from cdk_nag import AwsSolutionsChecks

from ami_guard import contract
from ami_guard.config import ConfigError, parse_policy
from ami_guard_cdk.ami_guard_stack import AmiGuardStack

STACK_NAME = "AmiGuard"
CONTEXT_ENV = "CDK_CONTEXT_JSON"
CONTEXT_OVERFLOW_ENV = "CONTEXT_OVERFLOW_LOCATION_ENV"
"""The CDK CLI writes the part of the context that does not fit the environment into a JSON file and names it in
this variable (toolkit-lib, prepare-source.ts: writeContextToEnv; the variable's name is the constant's own)."""


def context_block(app: App, environ: Mapping[str, str] = os.environ) -> Any:
    """The amiGuard block exactly as the CDK CLI passed it, null values included.

    The CLI passes the context as JSON in CDK_CONTEXT_JSON (and a context-overflow file); the App hands it to Python
    through jsii, which drops null values from objects, so `"sweepSchedule": null` (no sweep) would read as absent
    (the default, daily). Read from the raw JSON when the CLI passed the key, else from the App's context.
    """
    raw: dict[str, Any] = {}
    if environ.get(CONTEXT_ENV):
        raw.update(json.loads(environ[CONTEXT_ENV]))
    if environ.get(CONTEXT_OVERFLOW_ENV):
        raw.update(json.loads(Path(environ[CONTEXT_OVERFLOW_ENV]).read_text(encoding="utf-8")))
    if contract.CONTEXT_KEY in raw:
        return raw[contract.CONTEXT_KEY]
    return app.node.try_get_context(contract.CONTEXT_KEY)


def build(app: App) -> Stack:
    """The stack "AmiGuard", the AmiGuard construct with the id "Default" (so that no path component enters the
    logical ids), from the app's amiGuard context (and, in organization mode, the member stack beside it), checked
    by cdk-nag when the app synthesizes.

    Raises ConfigError, naming the key and the value, when the context is malformed.
    """
    policy = parse_policy(context_block(app))
    organization = policy.organization
    stack = AmiGuardStack(
        app,
        STACK_NAME,
        policy=policy,
        env=None
        if organization is None
        else Environment(account=organization.hub_account, region=organization.hub_region),
    )
    if organization is not None:
        # Imported here: a standalone synth loads neither cdk-stacksets nor the organization shapes.
        from ami_guard_cdk.member_stack import MemberStack

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
