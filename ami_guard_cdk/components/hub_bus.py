"""The hub's event bus: the members' default buses forward the watched calls to it, and only the organization may.

The resource policy is the bus's own `Policy` property (one resource, one statement): `events:PutEvents` for any
principal whose account belongs to the organization (`aws:PrincipalOrgID`), and nothing else. A rule in a member
account delivers with that account's forwarder role, whose account is in the organization; an account outside it is
refused. Sources beginning with `aws.` cannot be put by a caller (EventBridge reserves them for AWS services), so a
member cannot forge an EC2 CloudTrail event on this bus, only forward its own.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct


class HubBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str, organization_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name, description="AMI Guard: the members' events")
        # The bus's own ARN, spelled out: a Fn::GetAtt on the bus inside its own policy would be a circular reference.
        self.bus_arn = f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/{bus_name}"
        document = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="OrganizationMayPutEvents",
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[self.bus_arn],
                    conditions={"StringEquals": {"aws:PrincipalOrgID": organization_id}},
                )
            ]
        )
        bus = self.bus.node.default_child
        assert isinstance(bus, events.CfnEventBus)
        bus.policy = document
