"""Calls on what the guard depends on (its functions, rules, topics, keys, roles, queues, table, trails). Pure."""

from __future__ import annotations

import re
from typing import NamedTuple

from ami_guard import contract
from ami_guard.events.calls import ApiCall
from ami_guard.events.fields import string as _str
from ami_guard.watched import key_id


class GuardChange(NamedTuple):
    """A call that changes something the guard depends on, with that thing named as the guard names it.

    `service` is the eventSource's first label (lambda, events, sns, kms, iam, sqs, dynamodb, cloudtrail,
    cloudformation, states, scheduler).
    `target` is the bare name (function, rule, event bus, role, queue, table, trail, StackSet, state machine,
    schedule), the topic ARN (for a
    subscription: the ARN of the topic it belongs to) or the key id; None when the record does not name it. `named`
    is what the record named, when it differs from `target` (a subscription ARN, a queue URL, a StackSet ARN).
    """

    service: str
    action: str  # the event name without Lambda's API-version suffix
    target: str | None
    named: str | None = None


_API_VERSION_SUFFIX = r"\d{8}(v\d+)?$"  # compiled on first use by re's cache: most cold starts never need it


def guard_change(call: ApiCall) -> GuardChange | None:
    """The thing a call on a watched service changes, or None for a call that is not watched."""
    request = call.request
    action = re.sub(_API_VERSION_SUFFIX, "", call.event_name)
    source = call.event_source
    if source == contract.LAMBDA_SOURCE:
        if not action.startswith(contract.LAMBDA_TAMPER_PREFIXES):
            return None
        return GuardChange("lambda", action, _function_name(_str(request.get("functionName"))))
    if source == contract.EVENTS_SOURCE and action in contract.EVENT_BUS_TAMPER_EVENTS:
        # DeleteEventBus names the bus in `name`; PutPermission/RemovePermission in `eventBusName` (absent: default)
        named = _str(request.get("name" if action == "DeleteEventBus" else "eventBusName"))
        if named is None and action != "DeleteEventBus":
            named = "default"
        return GuardChange("events", action, _bus_name(named), named)
    if source == contract.CLOUDFORMATION_SOURCE:
        if action not in contract.STACK_SET_TAMPER_EVENTS:
            return None
        named = _str(request.get("stackSetName"))
        return GuardChange("cloudformation", action, _stack_set_name(named), named)
    if source == contract.STATES_SOURCE:
        if action not in contract.STATE_MACHINE_TAMPER_EVENTS:
            return None
        named = _str(request.get("stateMachineArn"))
        return GuardChange("states", action, _state_machine_name(named), named)
    if source == contract.SCHEDULER_SOURCE:
        if action not in contract.SCHEDULE_TAMPER_EVENTS:
            return None
        # The API's members are Name and GroupName; read either spelling of the first letter. A schedule of
        # another group is not the guard's (its schedule is in the default group): named with its group.
        name = _str(request.get("name")) or _str(request.get("Name"))
        group = _str(request.get("groupName")) or _str(request.get("GroupName")) or "default"
        if name is not None and group != "default":
            return GuardChange("scheduler", action, f"{group}/{name}", name)
        return GuardChange("scheduler", action, name)
    if source == contract.EVENTS_SOURCE:
        if action not in contract.EVENTS_TAMPER_EVENTS:
            return None
        name = _str(request.get("rule")) if action in ("RemoveTargets", "PutTargets") else _str(request.get("name"))
        return GuardChange("events", action, _rule_name(name))
    if action not in contract.INFRASTRUCTURE_TAMPER_EVENTS.get(source, ()):
        return None
    service = source.split(".", 1)[0]
    if source == contract.SNS_SOURCE:
        subscription = _str(request.get("subscriptionArn"))
        if subscription is not None:
            # arn:aws:sns:<region>:<account>:<topic>:<subscription id>: the topic's ARN is everything before the id
            topic = subscription.rsplit(":", 1)[0] if subscription.count(":") >= 6 else None
            return GuardChange(service, action, topic, subscription)
        return GuardChange(service, action, _str(request.get("topicArn")) or _str(request.get("resourceArn")))
    if source == contract.KMS_SOURCE:
        # keyId (an id or an ARN; these calls take no alias), else the key CloudTrail names in `resources`
        # (RetireGrant by grant token records no request parameters).
        named = _str(request.get("keyId")) or next((arn for arn in call.resources if ":key/" in arn), None)
        return GuardChange(service, action, key_id(named), named)
    if source == contract.IAM_SOURCE:
        return GuardChange(service, action, _str(request.get("roleName")))
    if source == contract.SQS_SOURCE:
        url = _str(request.get("queueUrl"))
        # https://sqs.<region>.amazonaws.com/<account>/<name> (or a legacy host): the name is the last segment
        return GuardChange(service, action, url.rstrip("/").rsplit("/", 1)[-1] if url else None, url)
    if source == contract.DYNAMODB_SOURCE:
        name = _str(request.get("tableName"))
        arn = _str(request.get("resourceArn"))
        if name is None and arn is not None and ":table/" in arn:
            name = arn.split(":table/", 1)[1].split("/", 1)[0]
        return GuardChange(service, action, name)
    name = _str(request.get("name")) or _str(request.get("trailName"))
    # A trail is named by its name or its ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>)
    return GuardChange(service, action, name.split(":trail/", 1)[1] if name and ":trail/" in name else name, name)


def _function_name(value: str | None) -> str | None:
    """'arn:aws:lambda:eu-west-1:1:function:f:live', '1:function:f' or 'f' -> 'f'."""
    if value is None:
        return None
    parts = value.split(":")
    if "function" in parts:
        index = parts.index("function")
        return parts[index + 1] if index + 1 < len(parts) else None
    return value


def _rule_name(value: str | None) -> str | None:
    """'arn:aws:events:eu-west-1:1:rule/bus/name', 'arn:...:rule/name' or 'name' -> 'name'."""
    if value is None:
        return None
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _state_machine_name(value: str | None) -> str | None:
    """'arn:aws:states:eu-west-1:1:stateMachine:name' -> 'name'; another ARN is kept whole (it names no state
    machine the guard watches)."""
    if value is None or ":stateMachine:" not in value:
        return value
    return value.split(":stateMachine:", 1)[1].split(":", 1)[0] or None


def _bus_name(value: str | None) -> str | None:
    """'arn:aws:events:eu-west-1:1:event-bus/name' or 'name' -> 'name'."""
    if value is None:
        return None
    return value.split(":event-bus/", 1)[1] if value.startswith("arn:") and ":event-bus/" in value else value


def _stack_set_name(value: str | None) -> str | None:
    """A StackSet by name, by id ('name:uuid') or by ARN ('arn:aws:cloudformation:r:1:stackset/name:uuid') -> 'name'
    (a StackSet's name holds no colon). Another ARN is kept whole: it names no StackSet the guard watches."""
    if value is None:
        return None
    if value.startswith("arn:"):
        if ":stackset/" not in value:
            return value
        value = value.split(":stackset/", 1)[1]
    return value.split(":", 1)[0] or None
