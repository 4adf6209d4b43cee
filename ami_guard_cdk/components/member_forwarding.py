"""A member's two rules on its default bus, both delivering to the hub bus with one forwarder role.

"AmiGuardMember-ForwardRule" forwards exactly the calls the hub's guards' rules read; "AmiGuardMember-WatchRule"
forwards the calls that change the member's own rules and roles. Each rule forwards the other's deletion (the forward
rule also forwards the calls that change the watch rule): a rule's own deletion cannot be forwarded by that rule.
IAM records its calls in us-east-1 only, so the role changes arrive through the member in us-east-1 (a region the
organization block must then list to see them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from ami_guard import contract
from ami_guard.rules.catalog import routes
from ami_guard_cdk.components.guard_rule import call_clauses, service_source

WATCHED_CALLS = tuple(routes().calls)
"""Every call a rule of the hub's guards reads ((eventSource, eventName) pairs)."""


def _rule_changes(rule_names: Sequence[str]) -> list[dict[str, Any]]:
    """Pattern clauses for calls that change one of these rules: DeleteRule, DisableRule and PutRule name the rule
    in `name`, PutTargets and RemoveTargets in `rule`."""
    return [{"requestParameters": {"name": list(rule_names)}}, {"requestParameters": {"rule": list(rule_names)}}]


def forward_pattern() -> events.EventPattern:
    """Exactly the EC2 calls the hub's guards watch, and the calls that change the watch rule (which cannot forward
    its own deletion)."""
    _, watch_rule = contract.member_rule_names()
    rule_calls = list(contract.EVENTS_TAMPER_EVENTS)
    sources, clauses = call_clauses(WATCHED_CALLS)
    return events.EventPattern(
        source=[*sources, service_source(contract.EVENTS_SOURCE)],
        detail_type=[contract.DETAIL_TYPE],
        detail={
            "$or": [
                *clauses,
                *(
                    {"eventSource": [contract.EVENTS_SOURCE], "eventName": rule_calls, **clause}
                    for clause in _rule_changes([watch_rule])
                ),
            ],
        },
    )


def member_tamper_pattern() -> events.EventPattern:
    """Calls that change a member's own rules (by name) or its access and forwarder roles (by name prefix): what the
    member's watch rule forwards and what the hub routes from its bus to the tamper guard."""
    return events.EventPattern(
        source=["aws.events", "aws.iam"],
        detail_type=[contract.DETAIL_TYPE],
        detail={
            "eventSource": [contract.EVENTS_SOURCE, contract.IAM_SOURCE],
            "eventName": [
                *contract.EVENTS_TAMPER_EVENTS,
                *contract.INFRASTRUCTURE_TAMPER_EVENTS[contract.IAM_SOURCE],
            ],
            "$or": [
                *_rule_changes(contract.member_rule_names()),
                {
                    "requestParameters": {
                        "roleName": [
                            {"prefix": contract.member_role_prefix()},
                            {"prefix": contract.member_forwarder_role_prefix()},
                        ]
                    }
                },
            ],
        },
    )


class MemberForwarding(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, hub_bus_arn: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Its only permission, events:PutEvents on the hub bus, is added by each rule's EventBus target.
        self.role = iam.Role(
            self,
            "Role",
            role_name=f"{contract.member_forwarder_role_prefix()}{stack.region}",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="AMI Guard: forwards this account's watched calls to the hub bus",
        )
        hub_bus = events.EventBus.from_event_bus_arn(self, "HubBus", hub_bus_arn)
        forward_name, watch_name = contract.member_rule_names()
        self.forward_rule = events.Rule(
            self,
            "ForwardRule",
            rule_name=forward_name,
            description="AMI Guard: the watched EC2 calls, forwarded to the hub",
            event_pattern=forward_pattern(),
            targets=[targets.EventBus(hub_bus, role=self.role)],
        )
        self.watch_rule = events.Rule(
            self,
            "WatchRule",
            rule_name=watch_name,
            description="AMI Guard: changes to this member's own rules and roles, forwarded to the hub",
            event_pattern=member_tamper_pattern(),
            targets=[targets.EventBus(hub_bus, role=self.role)],
        )
