"""What a rule is, registered once beside its function: its id, severity, the CloudTrail calls it reads, what raises
it and what the guard does about it. Pure.

Each domain module (permissions, account_settings, launches, images, copies, guard) ends with `RULES`, a tuple of
`Rule`; everything else follows from them: the severities, which function receives which calls
(`contract.GUARD_DOMAINS` says which domains each function hosts), the EventBridge patterns, the member accounts'
forwarding rule, the engine's routing and the rule table in docs/rules.md (`ami_guard.rules.catalog`).

A rule decided from the record alone carries its `check` (call, policy) -> Finding | None, and the engine runs it on
every call it reads; a rule that needs a lookup, an action or a parse shared with other rules leaves `check` None and
its domain's engine module evaluates it (`ami_guard.engine.<domain>.BY_EVENT`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.findings import Finding, Severity
    from ami_guard.sweep.facts import RegionPosture

EC2 = "ec2.amazonaws.com"
RECYCLE_BIN = "rbin.amazonaws.com"

Call = tuple[str, str]
"""(CloudTrail eventSource, eventName)."""


def ec2(*event_names: str) -> tuple[Call, ...]:
    return tuple((EC2, name) for name in event_names)


class Rule(NamedTuple):
    id: str
    """Public interface: SNS filter policies and users' EventBridge rules select on it."""
    severity: Severity
    reads: tuple[Call, ...]
    """The calls that can raise it. The guard's own rule reads the calls of contract's tamper tables instead."""
    raised_when: str
    """One sentence for the rule table: what in a record raises it."""
    does: str = "reports"
    """What the guard does about it, for the rule table."""
    check: Callable[[ApiCall, Policy], Finding | None] | None = None
    """Decided from the record alone: the engine runs it on each call in `reads`."""
    sweep: Callable[[RegionPosture, Policy], Iterable[Finding | Undecided]] | None = None
    """The standing condition, over what the posture sweep read in one account and region: a finding per resource
    that is exposed now (an Undecided where a fact could not be read). A rule with a sweep has a lifecycle: it is
    alerted once while it stands and resolved when the sweep no longer finds it."""


class Undecided(NamedTuple):
    """A check the sweep could not decide for one resource, and why."""

    rule_id: str
    reason: str
    subject: str | None = None
    """`<resource kind>:<resource id>` the check is about (a finding's key names it the same way): an open finding
    whose check is undecided is not taken for fixed."""
    cause: str = "lookup"


def severities(rules: tuple[Rule, ...]) -> dict[str, Severity]:
    return {rule.id: rule.severity for rule in rules}
