"""The evaluation core shared by the Lambdas and the CLI: ApiCall + Policy -> findings.

Facts that the record does not carry come from a Lookups object and side effects go through an Actions
object, both injected: the Lambdas pass AWS adapters, the CLI passes offline or read-only ones. Nothing
here imports boto3. Each domain's evaluation lives in its own module (permissions, account_settings, launches,
images, copies), imported on the first event that needs it.
"""

from __future__ import annotations

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


def evaluate(call: ApiCall, policy: Policy, lookups: Lookups, actions: Actions | None = None) -> Evaluation:
    """Every finding one API call raises, with the actions taken (when `actions` is given)."""
    result = Evaluation(call)
    if call.dry_run:
        return result
    domain = DOMAINS.get(call.event_name)
    if domain is not None:
        evaluators: dict[str, Evaluator] = importlib.import_module(f"{__name__}.{domain}").BY_EVENT
        evaluators[call.event_name](result, policy, lookups, actions)
    return result


Evaluator = Callable[[Evaluation, "Policy", Lookups, "Actions | None"], None]
"""Adds to the evaluation what one event raises: each domain module's BY_EVENT maps its events to one."""

DOMAINS = {
    "ModifyImageAttribute": "permissions",
    "ModifySnapshotAttribute": "permissions",
    "DisableImageBlockPublicAccess": "account_settings",
    "RunInstances": "launches",
    "RegisterImage": "images",
    "CreateImage": "images",
    "CopyImage": "copies",
}
"""Event name -> the module of this package that evaluates it, imported when its first event arrives: a function
loads the rules of its own domain only."""
