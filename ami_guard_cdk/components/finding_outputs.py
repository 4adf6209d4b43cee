"""Where findings go besides the alert topic (docs/integrations.md): finding events on a bus (always), Security Hub
(`securityHub`: the grant is in `ec2_grants`, with each guard's other calls), and the chat topic (`chat`).

The functions are told the bus (and the chat topic) through their environment; each guard that alerts may put
events on that one bus and publish to that one topic, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_events as events
from constructs import Construct

from ami_guard import contract
from ami_guard.config import Policy
from ami_guard_cdk.components.alert_topic import AlertTopic
from ami_guard_cdk.components.guard_function import GuardFunction


def default_bus_arn(stack: Stack) -> str:
    return f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/default"


class FindingOutputs:
    """Built into the scope it is given (no construct level of its own, like the guard core): the chat topic's
    logical ids sit beside the alert topic's."""

    def __init__(self, scope: Construct, *, policy: Policy, bus: events.IEventBus | None = None) -> None:
        """`bus`: where finding events go (organization mode: the hub bus); None: the account's default bus."""
        stack = Stack.of(scope)
        self.bus_arn = bus.event_bus_arn if bus is not None else default_bus_arn(stack)
        self.chat: AlertTopic | None = None
        if policy.chat:
            self.chat = AlertTopic(
                scope,
                "Chat",
                alert_emails=(),
                display_name="AMI Guard chat",
                key_description="AMI Guard chat topic encryption",
            )

    @property
    def watched(self) -> Mapping[str, Sequence[str]]:
        """What the tamper guard watches here: the chat topic and its key."""
        if self.chat is None:
            return {}
        return {
            contract.ENV_WATCHED_TOPICS: (self.chat.topic.topic_arn,),
            contract.ENV_WATCHED_KEYS: (self.chat.key.key_arn,),
        }

    def connect(self, functions: Sequence[GuardFunction]) -> None:
        """Each function is told the bus (and the chat topic), and may put events on it (and publish to it)."""
        from aws_cdk import aws_iam as iam

        for guard in functions:
            guard.function.add_environment(contract.ENV_FINDINGS_BUS, self.bus_arn)
            guard.role.add_to_policy(
                iam.PolicyStatement(sid="PutFindingEvents", actions=["events:PutEvents"], resources=[self.bus_arn])
            )
            if self.chat is not None:
                guard.function.add_environment(contract.ENV_CHAT_TOPIC_ARN, self.chat.topic.topic_arn)
                self.chat.grant_publish(guard.role)

    def add_outputs(self, scope: Construct) -> None:
        if self.chat is not None:
            CfnOutput(scope, "ChatTopicArn", value=self.chat.topic.topic_arn)
