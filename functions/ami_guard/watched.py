"""What one guard function watches for tampering, and how the guard names a KMS key. Pure.

Every function builds a Watched at cold start (settings.load_settings); the tamper checks that read it
(rules.guard) are imported only when a call on a watched service arrives.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from ami_guard import contract

if TYPE_CHECKING:
    from ami_guard.events.guard import GuardChange

# An AWS region as it ends a guard role's name: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-7...
# A pattern, compiled on first use by re's cache: a cold start on an EC2 call never needs it.
_REGION = r"[a-z]{2}(-[a-z]+)+-\d{1,2}"


class Watched(NamedTuple):
    """What one function watches for tampering: the guard's own things, each named as guard_change names it."""

    functions: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    """Key ids or ARNs: a key is matched by its id."""
    role_prefixes: frozenset[str] = frozenset()
    """A role is watched when its name is one of these followed by a region (the guard in any region)."""
    queues: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    trails: bool = False
    """Every trail of the account: the guard cannot know which trail feeds EventBridge."""
    stack_sets: frozenset[str] = frozenset()
    """Organization mode, hub: the StackSet that rolls out the member stacks (by name)."""
    buses: frozenset[str] = frozenset()
    """Organization mode, hub: the event bus the members forward to (by name)."""
    state_machines: frozenset[str] = frozenset()
    """The posture sweep's state machine (by name), when the sweep is deployed."""
    schedules: frozenset[str] = frozenset()
    """The posture sweep's schedule (by name, in the default group), when the sweep is deployed."""
    home_account: str | None = None
    """Organization mode: the hub account. A tamper alert then names the account the change was made in."""

    @property
    def sources(self) -> tuple[str, ...]:
        """The CloudTrail eventSources this function must accept to see changes to what it watches."""
        wanted = (
            (contract.LAMBDA_SOURCE, self.functions),
            (contract.EVENTS_SOURCE, self.rules or self.buses),
            (contract.SNS_SOURCE, self.topics),
            (contract.KMS_SOURCE, any(key_id(key) for key in self.keys)),
            (contract.IAM_SOURCE, self.role_prefixes),
            (contract.SQS_SOURCE, self.queues),
            (contract.DYNAMODB_SOURCE, self.tables),
            (contract.CLOUDTRAIL_SOURCE, self.trails),
            (contract.CLOUDFORMATION_SOURCE, self.stack_sets),
            (contract.STATES_SOURCE, self.state_machines),
            (contract.SCHEDULER_SOURCE, self.schedules),
        )
        return tuple(source for source, watched in wanted if watched)

    def covers(self, change: GuardChange) -> bool:
        target = change.target
        if target is None:
            return False
        if change.service == "iam":
            return any(
                target.startswith(prefix) and re.fullmatch(_REGION, target[len(prefix) :]) is not None
                for prefix in self.role_prefixes
            )
        if change.service == "cloudtrail":
            return self.trails
        if change.service == "events" and change.action in contract.EVENT_BUS_TAMPER_EVENTS:
            return target in self.buses
        watched: dict[str, frozenset[str]] = {
            "lambda": self.functions,
            "events": self.rules,
            "sns": self.topics,
            "kms": frozenset(k for key in self.keys if (k := key_id(key))),
            "sqs": self.queues,
            "dynamodb": self.tables,
            "cloudformation": self.stack_sets,
            "states": self.state_machines,
            "scheduler": self.schedules,
        }
        return target in watched.get(change.service, frozenset())


def key_id(value: str | None) -> str | None:
    """'arn:aws:kms:eu-west-1:1:key/<id>' or '<id>' -> '<id>'."""
    if value is None:
        return None
    return value.split(":key/", 1)[1] if ":key/" in value else value
