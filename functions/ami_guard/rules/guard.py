"""The rule on the guard itself: nobody silences it unnoticed. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard import contract
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import Rule, severities

if TYPE_CHECKING:
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.guard import GuardChange
    from ami_guard.watched import Watched


GUARD_TAMPERED = "guard-tampered"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


# service -> (what the guard calls the thing, the Resource kind in the alert)
_TAMPER_KINDS = {
    "lambda": ("function", "lambda-function"),
    "events": ("EventBridge rule", "events-rule"),
    "sns": ("alert topic", "sns-topic"),
    "kms": ("alert topic key", "kms-key"),
    "iam": ("IAM role", "iam-role"),
    "sqs": ("failed-events queue", "sqs-queue"),
    "dynamodb": ("idempotency table", "dynamodb-table"),
    "cloudtrail": ("CloudTrail trail", "cloudtrail-trail"),
    "cloudformation": ("member StackSet", "cloudformation-stackset"),
    "states": ("posture sweep state machine", "states-state-machine"),
    "scheduler": ("posture sweep schedule", "scheduler-schedule"),
}
_BUS_KIND = ("hub event bus", "events-bus")
_RECOMMENDATION = (
    "If this was not a deployment of the guard (cdk deploy), restore it (cdk deploy; for a trail, "
    "StartLogging or restore its settings) and find out who holds the permission that allowed the call."
)
_MEMBER_RECOMMENDATION = (
    "If this was not a deployment of the guard, restore the member stack in that account and region (update the "
    "StackSet instance; in the management account, cdk deploy AmiGuardMember) and find out who holds the "
    "permission that allowed the call."
)


def guard_tampered(call: ApiCall, change: GuardChange, watched: Watched) -> Finding | None:
    """Nobody may disable, delete, retarget or change the guard's own rules and functions, its alert topics and
    their keys, its roles, queues and table, or a trail of the account, unnoticed."""
    if not call.succeeded or not watched.covers(change):
        return None
    assert change.target is not None
    bus = change.service == "events" and change.action in contract.EVENT_BUS_TAMPER_EVENTS
    kind, resource_kind = _BUS_KIND if bus else _TAMPER_KINDS[change.service]
    # Organization mode: the change may be in any member account (the envelope's / record's account) and region
    account = call.account or "unknown"
    where = call.region if watched.home_account is None else f"account {account} {call.region}"
    located = "" if watched.home_account is None else f" in account {account}, region {call.region}"
    member = watched.home_account is not None and call.account != watched.home_account
    via = f" via {call.actor.invoked_by}" if call.actor.invoked_by else ""
    named = f" ({change.named})" if change.named and change.named != change.target else ""
    if change.service == "cloudtrail":
        consequence = (
            "EventBridge receives the API calls the guard checks only while a trail logs management events: if "
            "this trail was the one, AMI changes in the regions it covered now go unchecked"
        )
    else:
        consequence = "Until it is restored, AMI changes may go unchecked or their alerts undelivered"
    return _finding(
        GUARD_TAMPERED,
        title=f"AMI Guard {kind} {change.target} changed: {change.action} in {where}",
        description=(
            f"{_who(call)}{via} called {change.action} on the guard's own {kind} {change.target}{named}{located}. "
            f"{consequence}. Expected during a deployment of the guard."
        ),
        resources=(Resource(resource_kind, change.target, call.region, call.account),),
        evidence={"action": change.action, "eventName": call.event_name, "request": dict(call.request)},
        recommendation=_MEMBER_RECOMMENDATION if member else _RECOMMENDATION,
    )


RULES = (
    Rule(
        GUARD_TAMPERED,
        Severity.CRITICAL,
        (),
        "a successful call changes, disables, deletes or retargets one of the guard's own functions, rules, topics, "
        "topic keys, roles, failed-events queues or its idempotency table, or stops, deletes or changes any CloudTrail "
        "trail of the account (also during a `cdk deploy` of the guard: the alert names who)",
        "reports, from a function other than the one changed; for the alert topic, its key and the table also a "
        "notice straight to the health topic",
    ),
)
SEVERITY = severities(RULES)
