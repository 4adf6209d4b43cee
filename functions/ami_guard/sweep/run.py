"""One sweep of one account and region: read, evaluate, compare with what is open, alert the new, resolve the gone.

The order keeps every alert: a finding is published first and recorded as open after (a record that fails leaves
it to be alerted again by the next sweep, never silenced); a resolved notice is published before the finding is
closed. Findings below minSeverity are neither alerted nor recorded. With copyTags, a copy found lacking its
source's tags gets them by the same restore as an event's copy (`engine.copies.restore_tags`: only on a copy EC2
confirms, never overwriting, within EC2's tag limit), and its alert says what was done.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from ami_guard import alerts
from ami_guard.lifecycle import OpenFinding, finding_key, reconcile, resolved_finding
from ami_guard.rules.copies import COPY_TAGS_MISSING
from ami_guard.sweep.collect import collect_region
from ami_guard.sweep.evaluate import evaluate_region
from ami_guard.sweep.observation import observation

if TYPE_CHECKING:
    from ami_guard.aws import ClientFactory
    from ami_guard.config import Policy
    from ami_guard.engine import Actions, Lookups
    from ami_guard.findings import Finding
    from ami_guard.sweep.facts import RegionPosture, SourceImage


class Store(Protocol):
    def open_findings(self, account: str, region: str) -> dict[str, OpenFinding]: ...

    def opened(self, key: str, finding: Finding, account: str, region: str, origin: str, when: str) -> bool: ...

    def resolved(self, record: OpenFinding, when: str) -> None: ...


class Publisher(Protocol):
    def publish(self, alert: alerts.Alert) -> str: ...


def sweep_region(
    clients: ClientFactory,
    account: str,
    region: str,
    policy: Policy,
    store: Store,
    publisher: Publisher,
    *,
    run_id: str,
    now: str,
    concurrency: int = 8,
    ec2: tuple[Lookups, Actions] | None = None,
    source_cache: MutableMapping[str, SourceImage | None] | None = None,
    log: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The summary of one account-region's sweep. `ec2`: the lookups and actions the tag restore uses (None: no
    restore is attempted, the alert says so). Raises collect's RegionFailed when a listing fails: nothing is then
    alerted or resolved for the region (a partial listing would make exposures look fixed)."""
    posture = collect_region(clients, account, region, concurrency=concurrency, source_cache=source_cache)
    found = evaluate_region(posture, policy)
    keys = {finding_key(f, account, region): f for f in found.findings if f.severity >= policy.min_severity}
    plan = reconcile(found, store.open_findings(account, region), keys)
    call = observation(account, region, run_id, now)
    alerted: list[str] = []
    for key, finding in plan.new:
        if finding.rule_id == COPY_TAGS_MISSING and policy.copy_tags:
            finding = finding.with_action(_restore(posture, finding, policy, ec2, now, run_id))
        publisher.publish(alerts.render(finding, call))
        store.opened(key, finding, account, region, "sweep", now)
        alerted.append(key)
    resolved: list[str] = []
    for record in plan.resolved:
        publisher.publish(alerts.render(resolved_finding(record, run_id), call))
        store.resolved(record, now)
        resolved.append(record.key)
    for note in found.undecided:
        if log is not None:
            log("Check not decided", {"rules": note.rule_id, "reason": note.reason, "cause": note.cause})
    return {
        "status": "swept",
        "account": account,
        "region": region,
        "run": run_id,
        "findings": len(found.findings),
        "alerted": alerted,
        "standing": len(plan.standing),
        "resolved": resolved,
        "undecided": len(found.undecided),
        "unread": len(posture.unread),
        "calls": dict(sorted(posture.calls.items())),
    }


def _restore(
    posture: RegionPosture,
    finding: Finding,
    policy: Policy,
    ec2: tuple[Lookups, Actions] | None,
    now: str,
    run_id: str,
) -> dict[str, Any]:
    """The copy's tags restored as an event's copy would have them: the same engine path, with the copy named as
    CopyImage would name it."""
    from ami_guard.engine.copies import restore_tags
    from ami_guard.events.images import NewImage

    image = next(i for i in posture.images if i.image_id == finding.resources[0].id)
    source = posture.sources.get(image.source_image_id or "")
    if ec2 is None or source is None:
        return {"type": "tag-restore", "status": "not applied", "detail": "evaluation only: no change was made"}
    copy = NewImage(
        image_id=image.image_id,
        name=image.name,
        tags=image.tags,
        source_image_id=image.source_image_id,
        source_region=image.source_region,
    )
    lookups, actions = ec2
    action, _ = restore_tags(
        observation(posture.account, posture.region, run_id, now), copy, source.tags, policy, lookups, actions
    )
    return action
