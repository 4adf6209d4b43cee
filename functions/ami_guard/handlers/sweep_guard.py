"""Sweep guard: the posture sweep, one account and region at a time (the state machine fans out over them).

Input `{"plan": true, "run": "<id>"}`: the targets of this sweep (standalone: the function's own account and region;
organization mode: every ACTIVE account of the organization in each of its regions), written as a JSON array to the
sweep bucket (`runs/<run>/plan.json`, sweep.plan) for the state machine's Distributed Map; returns `{"bucket",
"key", "results", "targets": <count>}`, never the list. Input `{"account", "region", "run", "cursor": null or
what the last step returned}`: one step of that account-region's sweep (`sweep.run.sweep_target`): it works until
the invocation's remaining time falls under `sweep.run.MARGIN_MS`, then returns `{"done": false, "account",
"region", "run", "cursor"}` (the state machine invokes it again with that), and the last step returns `{"done":
true, ...summary}`. The input is a claim: an account or region outside the targets, or a cursor that is not the
one the previous step of this run returned, is refused with the reason, and nothing is read.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from ami_guard import contract

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from ami_guard.settings import Settings

logger = Logger(service=contract.POWERTOOLS_SERVICE_NAME)
_RUN = r"[A-Za-z0-9._:-]{1,80}"
_state: dict[str, Any] = {}


def _settings() -> Settings:
    if "settings" not in _state:
        from ami_guard.settings import load_settings

        _state["settings"] = load_settings()
    settings: Settings = _state["settings"]
    return settings


def _own_account(context: Any) -> str:
    return str(getattr(context, "invoked_function_arn", "").split(":")[4])


def plan(settings: Settings, own_account: str, run: str, accounts: Any = None) -> list[dict[str, str]]:
    """The account-regions of one sweep (`accounts`: the organization's ACTIVE accounts, organization mode)."""
    organization = settings.policy.organization
    if organization is None:
        return [{"account": own_account, "region": settings.region, "run": run}]
    return [
        {"account": account, "region": region, "run": run}
        for account in sorted(accounts or ())
        for region in organization.regions
    ]


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = _settings()
    run = event.get("run") if isinstance(event, dict) else None
    if not isinstance(run, str) or re.fullmatch(_RUN, run) is None:
        return _refused(f"the input names no sweep run in the expected format: {str(run)[:100]!r}")
    own = _own_account(context)
    scopes = _scopes(settings) if settings.policy.organization is not None else None
    accounts = None
    if scopes is not None:
        accounts = scopes.accounts()
        if accounts is None:
            return _refused(f"the organization's accounts could not be listed: {scopes.error}")
    targets = plan(settings, own, run, accounts)
    if event.get("plan") is True:
        return _write_plan(run, targets)
    target = {"account": event.get("account"), "region": event.get("region"), "run": run}
    if target not in targets:
        return _refused(f"{target['account']!r} / {target['region']!r} is not an account-region of this sweep")
    cursor = None
    if event.get("cursor") is not None:
        from ami_guard.sweep.cursor import CursorRefused, from_json

        try:
            cursor = from_json(event["cursor"], account=target["account"], region=target["region"], run=run)
        except CursorRefused as exc:
            return _refused(str(exc))
    return _sweep(settings, target["account"], target["region"], run, scopes, cursor, context)


def _write_plan(run: str, targets: list[dict[str, str]]) -> dict[str, Any]:
    from ami_guard.aws import client_factory
    from ami_guard.sweep.plan import results_prefix, write_plan

    settings = _settings()
    bucket = os.environ.get(contract.ENV_SWEEP_BUCKET, "")
    if not bucket:
        return _refused(f"no sweep bucket in the environment ({contract.ENV_SWEEP_BUCKET})")
    written = write_plan(client_factory()("s3", settings.region), bucket, run, targets)
    logger.info("Sweep planned", extra={"run": run, "targets": len(targets), "key": written["key"]})
    return {**written, "results": results_prefix(run)}


def _sweep(
    settings: Settings, account: str, region: str, run: str, scopes: Any, cursor: Any, context: Any
) -> dict[str, Any]:
    from ami_guard.aws import (
        Ec2Actions,
        Ec2Lookups,
        InstanceTypeCatalog,
        client_factory,
        sweep_client_config,
    )
    from ami_guard.aws_findings import DynamoFindingStore, ProgressRefused
    from ami_guard.aws_outputs import alert_publisher
    from ami_guard.findings import utc_millis
    from ami_guard.sweep.collect import RegionFailed
    from ami_guard.sweep.observation import observation
    from ami_guard.sweep.run import sweep_target

    concurrency = int(os.environ.get(contract.ENV_SWEEP_CONCURRENCY, "8") or "8")
    hub = client_factory()
    # to the millisecond: a run resolves what was opened before it started (lifecycle.opened_before), and the
    # previous run's findings must count as such however soon after it this run starts
    now = utc_millis(datetime.now(UTC))
    policy = settings.policy
    if scopes is None:
        clients = client_factory(sweep_client_config(concurrency))
        lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, region))
        ec2 = (lookups, Ec2Actions(clients, lookups))
    else:
        clients = scopes.member_clients(account, sweep_client_config(concurrency))
        scope = scopes(observation(account, region, run, now), account)
        policy, ec2 = scope.policy, (scope.lookups, scope.actions)
    store = DynamoFindingStore(hub, settings.idempotency_table, settings.region)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        summary = sweep_target(
            clients,
            account,
            region,
            policy,
            store,
            alert_publisher(settings, hub, None if scopes is None else lambda a: scopes.member_clients(a, None)),
            run_id=run,
            now=now,
            cursor=cursor,
            concurrency=concurrency,
            ec2=ec2 if policy.copy_tags else None,
            log=lambda message, extra: logger.warning(message, extra=extra),
            **({"remaining_ms": remaining} if callable(remaining) else {}),
        )
    except ProgressRefused as exc:
        return _refused(str(exc))
    except RegionFailed as exc:
        logger.error("Sweep failed", extra={"account": account, "region": region, "reason": str(exc)})
        raise
    if summary["done"]:
        logger.info("Swept", extra=summary)
    else:
        logger.info("Sweep checkpointed", extra={"account": account, "region": region, "run": run, **summary["cursor"]})
    return summary


def _scopes(settings: Settings) -> Any:
    if "scopes" not in _state:
        from ami_guard.aws import client_factory
        from ami_guard.organization import OrganizationScopes

        _state["scopes"] = OrganizationScopes(settings, client_factory())
    return _state["scopes"]


def _refused(reason: str) -> dict[str, Any]:
    logger.warning("Sweep refused", extra={"reason": reason})
    return {"status": "refused", "reason": reason}
