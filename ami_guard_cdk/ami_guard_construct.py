"""AmiGuard: the whole guard as one L3 construct, for this repository's app and for a CDK app of one's own.

Its keyword-only properties mirror the `amiGuard` configuration block key by key: each property's annotation names
its key (ConfigKey), and that is the one table from property to key. The properties become the block's dict form and
go through `ami_guard.config.parse_policy`, so a bad value raises ConfigError with the message cdk.json would give.

Without `organization`: the standalone shape in the stack the construct is added to. With it: the hub shape, in a
stack whose env is the hub's account and region; the member stack of the management account (which the hub's
StackSet does not target) stays a stack of its own (ami_guard_cdk.member_stack.MemberStack, see docs/construct.md).
Physical names derive from the stack's name (`<stack>-PermissionGuard`, roles `<stack>-<Guard>-<region>`), so a
stack holds at most one AmiGuard.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from aws_cdk import Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from ami_guard.config import DEFAULT_SWEEP_SCHEDULE, ConfigError, Organization, Policy, parse_policy
from ami_guard.findings import Severity
from ami_guard_cdk.guard_core import GuardCore


@dataclass(frozen=True)
class ConfigKey:
    """The `amiGuard` configuration key a property stands for.

    A property left at None leaves its key out of the block (the configuration's default applies), unless
    `none_is_null`: then None is the block's JSON null (for sweepSchedule: no sweep)."""

    name: str
    none_is_null: bool = False


@dataclass(frozen=True, kw_only=True)
class OrganizationProps:
    """The `organization` block: a hub in one region of the security account, members in every account and region
    of the organizational units."""

    organization_id: Annotated[str, ConfigKey("organizationId")]
    hub_account: Annotated[str, ConfigKey("hubAccount")]
    hub_region: Annotated[str, ConfigKey("hubRegion")]
    regions: Annotated[Sequence[str], ConfigKey("regions")]
    """The regions guarded in every member account, the hub region among them."""
    organizational_units: Annotated[Sequence[str], ConfigKey("organizationalUnits")]
    """The OUs (ou-...) or the root (r-...) whose accounts the member StackSet deploys to."""


class AmiGuard(Construct):
    """AMI Guard in the stack it is added to: the guard functions, their EventBridge rules, the alert and health
    topics, the idempotency table, the failed-events queues, the alarms and the posture sweep.

    Every property is the `amiGuard` configuration key its annotation names, with the configuration's default
    (docs/construct.md). Raises ConfigError, naming the key and the value, when a property is malformed.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        trusted_accounts: Annotated[Sequence[str], ConfigKey("trustedAccounts")] = (),
        trusted_organizations: Annotated[Sequence[str], ConfigKey("trustedOrganizations")] = (),
        alert_emails: Annotated[Sequence[str], ConfigKey("alertEmails")] = (),
        min_severity: Annotated[str, ConfigKey("minSeverity")] = Severity.INFO.name,
        remediate: Annotated[bool, ConfigKey("remediate")] = False,
        copy_tags: Annotated[bool, ConfigKey("copyTags")] = True,
        required_tags: Annotated[Sequence[str], ConfigKey("requiredTags")] = (),
        operations_topic_arn: Annotated[str | None, ConfigKey("operationsTopicArn")] = None,
        organization: Annotated[OrganizationProps | None, ConfigKey("organization")] = None,
        trust_own_organization: Annotated[bool | None, ConfigKey("trustOwnOrganization")] = None,
        trusted_image_owners: Annotated[Sequence[str], ConfigKey("trustedImageOwners")] = (),
        sweep_schedule: Annotated[str | None, ConfigKey("sweepSchedule", none_is_null=True)] = DEFAULT_SWEEP_SCHEDULE,
        security_hub: Annotated[bool, ConfigKey("securityHub")] = False,
        chat: Annotated[bool, ConfigKey("chat")] = False,
        documentation_url: Annotated[str | None, ConfigKey("documentationUrl")] = None,
    ) -> None:
        """`trust_own_organization` None: true with an organization, false without (the configuration's default).
        `sweep_schedule` None: no posture sweep is deployed."""
        properties = {name: value for name, value in locals().items() if name in PROPERTY_KEYS}
        super().__init__(scope, construct_id)
        self.policy: Policy = parse_policy(configuration_block(properties))
        """The validated configuration, as the functions receive it."""
        stack = Stack.of(self)
        others = [c.node.path for c in stack.node.find_all() if isinstance(c, AmiGuard) and c is not self]
        if others:
            raise ValueError(
                f"stack {stack.stack_name!r} already holds an AmiGuard ({others[0]}): the guard's functions, roles, "
                f"rules, state machine and schedule are named after the stack ({stack.stack_name}-PermissionGuard, "
                "...), so a second one would collide with it. Add each AmiGuard to a stack of its own."
            )
        # Imported here: a standalone synth loads neither cdk-stacksets nor the organization shapes.
        if self.policy.organization is None:
            from ami_guard_cdk.ami_guard_stack import standalone

            self.core: GuardCore = standalone(self, policy=self.policy)
        else:
            from ami_guard_cdk.hub_stack import hub

            refuse_outside_hub(stack, self.policy.organization)
            self.core = hub(self, policy=self.policy, organization=self.policy.organization)

    @classmethod
    def from_policy(cls, scope: Construct, construct_id: str, policy: Policy) -> AmiGuard:
        """The construct for a Policy already parsed (the app reads it from the cdk.json context)."""
        return cls(scope, construct_id, **{name: property_value(getattr(policy, name)) for name in PROPERTY_KEYS})

    @classmethod
    def from_configuration(cls, scope: Construct, construct_id: str, block: Any) -> AmiGuard:
        """The construct for an `amiGuard` block as cdk.json spells it (a mapping, or its JSON text)."""
        return cls.from_policy(scope, construct_id, parse_policy(block))

    @property
    def alert_topic(self) -> sns.Topic:
        """Where the findings are published (subscribe to it)."""
        return self.core.alerts.topic

    @property
    def health_topic(self) -> sns.Topic:
        """Where the alarms and the changes to the alert path are published."""
        return self.core.health.topic

    @property
    def idempotency_table(self) -> dynamodb.Table:
        return self.core.idempotency.table

    @property
    def functions(self) -> Mapping[str, lambda_.Function]:
        """Guard name (PermissionGuard, LaunchGuard, ImageGuard, TamperGuard, SweepGuard) -> its function."""
        guards = {name: guard.function for name, guard in self.core.guards.items()}
        if self.core.sweep is not None:
            guards["SweepGuard"] = self.core.sweep.function
        return guards


def refuse_outside_hub(stack: Stack, organization: Organization) -> None:
    """The hub's names, bus and StackSet are the hub account's and region's: its stack must be deployed there."""
    account = "an unspecified account" if Token.is_unresolved(stack.account) else repr(stack.account)
    region = "an unspecified region" if Token.is_unresolved(stack.region) else repr(stack.region)
    if (stack.account, stack.region) != (organization.hub_account, organization.hub_region):
        raise ConfigError(
            f"organization: the hub is deployed in organization.hubAccount {organization.hub_account!r} and "
            f"organization.hubRegion {organization.hub_region!r}, but stack {stack.stack_name!r} is in {account} and "
            f"{region}: create the stack with env=Environment(account={organization.hub_account!r}, "
            f"region={organization.hub_region!r})"
        )


def keys_of(annotated: Any) -> dict[str, ConfigKey]:
    """Parameter or field name -> the ConfigKey in its annotation."""
    hints = typing.get_type_hints(annotated, include_extras=True)
    return {
        name: key
        for name, hint in hints.items()
        for key in getattr(hint, "__metadata__", ())
        if isinstance(key, ConfigKey)
    }


def block_value(value: Any) -> Any:
    """A property value as the configuration block holds it (JSON-like); a wrong type is left for parse_policy to
    refuse with its message."""
    if isinstance(value, OrganizationProps):
        return {
            key.name: block_value(getattr(value, name))
            for name, key in ORGANIZATION_PROPERTY_KEYS.items()
            if getattr(value, name) is not None
        }
    if isinstance(value, list | tuple):
        return list(value)
    return value


def configuration_block(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The `amiGuard` block for the construct's properties (property name -> value)."""
    return {
        key.name: block_value(properties[name])
        for name, key in PROPERTY_KEYS.items()
        if properties[name] is not None or key.none_is_null
    }


def property_value(value: Any) -> Any:
    """A Policy field as the construct's property of the same name takes it."""
    if isinstance(value, Organization):
        return OrganizationProps(**value._asdict())
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, Severity):
        return value.name
    return value


PROPERTY_KEYS: Mapping[str, ConfigKey] = keys_of(AmiGuard.__init__)
"""AmiGuard's property -> the configuration key it stands for, read from the annotations above."""
ORGANIZATION_PROPERTY_KEYS: Mapping[str, ConfigKey] = keys_of(OrganizationProps)
