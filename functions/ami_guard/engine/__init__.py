"""The evaluation core shared by the Lambdas and the CLI: ApiCall + Policy -> findings.

Facts that the record does not carry come from a Lookups object and side effects go through an Actions
object, both injected: the Lambdas pass AWS adapters, the CLI passes offline or read-only ones. Nothing
here imports boto3. The calls each domain reads and the rules decided from the record alone are declared in
ami_guard.rules (the registry); the evaluation a domain needs beyond that lives in its own module here (permissions,
launches, images, copies), imported on the first event that needs it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.principals import Principals
    from ami_guard.events.run_instances import Launch
    from ami_guard.findings import Finding
    from ami_guard.instance_types import InstanceTypeInfo
    from ami_guard.rules.catalog import Routes

_NO_TAGS: Mapping[str, str] = MappingProxyType({})


class LookupUnavailable(Exception):
    """A fact could not be looked up; the reason says why (offline, not found, access denied...)."""


class NotLookedUp(LookupUnavailable):
    """No lookup was made at all (the CLI's --offline): a check that needs one is not decided, and not raised."""


class ActionFailed(Exception):
    """A remediation or tagging call was refused for good; the reason goes into the alert."""


class ImageFacts(NamedTuple):
    image_id: str
    region: str
    virtualization_type: str | None = None
    tags: Mapping[str, str] = _NO_TAGS
    snapshot_ids: tuple[str, ...] = ()
    owner_id: str | None = None
    owner_alias: str | None = None
    """DescribeImages' ImageOwnerAlias: "amazon", "aws-marketplace" (None for an account's own AMIs)."""
    source_image_id: str | None = None
    """What EC2 says the image is a copy of (DescribeImages' SourceImageId / SourceImageRegion); None: not a copy."""
    source_region: str | None = None


class SnapshotFacts(NamedTuple):
    snapshot_id: str
    owner_id: str | None = None
    tags: Mapping[str, str] = _NO_TAGS


class Lookups(Protocol):
    def image(self, image_id: str, region: str) -> ImageFacts: ...

    def launch_permissions(self, image_id: str, region: str) -> Principals: ...

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None: ...

    def snapshots(self, snapshot_ids: tuple[str, ...], region: str) -> tuple[SnapshotFacts, ...]:
        """Owner and tags of these snapshots, read in one call; those not found are left out."""
        ...

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        """(image id, instance type) of the launch template version a launch used."""
        ...

    def image_owner(self, image_id: str, region: str) -> tuple[str | None, str | None]:
        """(owner account id, owner alias) of an AMI. An AMI's owner never changes: adapters cache it."""
        ...


class Actions(Protocol):
    def remove_launch_permissions(self, image_id: str, region: str, principals: Principals) -> Principals:
        """Remove exactly these principals, then return the launch permissions as they are now."""
        ...

    def add_tags(self, resource_ids: tuple[str, ...], region: str, tags: Mapping[str, str]) -> None:
        """Put exactly these tags on exactly these resources (the engine has checked that none is there yet)."""
        ...


class Evaluation:
    """What one API call raised, and the checks it left undecided. Mutable: the domain evaluators add to it."""

    __slots__ = ("call", "findings", "undetermined")

    def __init__(
        self,
        call: ApiCall,
        findings: list[Finding] | None = None,
        undetermined: list[dict[str, str]] | None = None,
    ) -> None:
        self.call = call
        self.findings: list[Finding] = [] if findings is None else findings
        self.undetermined: list[dict[str, str]] = [] if undetermined is None else undetermined

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Evaluation):
            return NotImplemented
        return (self.call, self.findings, self.undetermined) == (other.call, other.findings, other.undetermined)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass would be

    def __repr__(self) -> str:
        return f"Evaluation(call={self.call!r}, findings={self.findings!r}, undetermined={self.undetermined!r})"

    def add(self, finding: Finding | None) -> None:
        if finding is not None:
            self.findings.append(finding)

    def cannot_tell(self, rule_ids: str, reason: str, *, cause: str = "lookup") -> None:
        """A check not decided. `cause`: "lookup" (a fact was not looked up) or "record" (the record does not say)."""
        self.undetermined.append({"rules": rule_ids, "reason": reason, "cause": cause})

    def record_lacks(self, rule_ids: tuple[str, ...], reason: str) -> None:
        for rule_id in rule_ids:
            self.cannot_tell(rule_id, reason, cause="record")


def evaluate(
    call: ApiCall, policy: Policy, lookups: Lookups, actions: Actions | None = None, routes: Routes | None = None
) -> Evaluation:
    """Every finding one API call raises, with the actions taken (when `actions` is given).

    `routes`: the domains that read each call (a guard function's own; None: every domain, as the CLI)."""
    result = Evaluation(call)
    if call.dry_run:
        return result
    from ami_guard.rules import catalog

    for domain in (routes or catalog.routes()).calls.get((call.event_source, call.event_name), ()):
        evaluator = _evaluators(domain).get(call.event_name)
        if evaluator is not None:
            evaluator(result, policy, lookups, actions)
        for rule in catalog.domain_rules(domain):
            if rule.check is not None and (call.event_source, call.event_name) in rule.reads:
                result.add(rule.check(call, policy))
    return result


Evaluator = Callable[[Evaluation, "Policy", Lookups, "Actions | None"], None]
"""Adds to the evaluation what one event raises, for the rules of a domain that need more than the record (a
lookup, an action, a parse several rules share): each domain's engine module maps its events to one in BY_EVENT.
A domain whose rules are all decided from the record by their `check` has no engine module."""


@functools.cache
def _evaluators(domain: str) -> Mapping[str, Evaluator]:
    """The domain's engine module's BY_EVENT, imported with the domain's first event; {} if it has none."""
    name = f"{__name__}.{domain}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return {}
    evaluators: Mapping[str, Evaluator] = module.BY_EVENT
    return evaluators
