"""A standing finding's life: alerted once when first seen (by an event or by the posture sweep), not again while it
stands, and one `resolved` notice when the sweep no longer finds it. Pure: the store and the publisher are the
caller's.

A sweep of one account-region reads it a page at a time (possibly over several invocations, sweep.run): each page's
findings are reconciled at once (`reconcile_page`: the new ones alerted and recorded open, the open ones found again
or left undecided stamped "seen in run R"), and once every page is read, the open findings the run did not see are
resolved (`unseen`), except those opened after the run started: an event may open a finding while the sweep runs,
and a page read before the change cannot say it is fixed.

A finding is the same finding across sweeps and events when its key is (`sweep.evaluate.finding_key`): its account,
region, rule and first resource. Only rules with a standing condition (`Rule.sweep`) have a lifecycle: the others
are alerted per event and never recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from ami_guard.findings import Finding, Resource, Severity

if TYPE_CHECKING:
    from ami_guard.sweep.evaluate import RegionFindings

OPEN = "open"
RESOLVED = "resolved"


def finding_key(finding: Finding, account: str, region: str) -> str:
    """`<account>/<region>/<rule id>/<resource kind>:<resource id>`: one finding per rule and resource."""
    resource = finding.resources[0] if finding.resources else None
    subject = f"{resource.kind}:{resource.id}" if resource is not None else "-"
    return f"{account}/{region}/{finding.rule_id}/{subject}"


def standing_after(finding: Finding) -> bool:
    """Whether an event's finding still stands once alerted: not when the guard removed what made it."""
    return not (finding.action is not None and finding.action.get("status") == "removed")


class OpenFinding(NamedTuple):
    """What the store keeps of a finding that was alerted and is not resolved: enough to say it is resolved."""

    key: str
    rule_id: str
    severity: str
    title: str
    account: str
    region: str
    resource_kind: str | None
    resource_id: str | None
    origin: str
    """"event" or "sweep": who alerted on it first."""
    first_seen: str
    seen_run: str | None = None
    """The last sweep run that found it again (or could not decide it): not resolved by that run."""


class PageReconciled(NamedTuple):
    new: tuple[tuple[str, Finding], ...]
    """(key, finding) of the findings to alert on: found on this page, not open before."""
    standing: tuple[str, ...]
    """Keys found on this page and already open: nothing is sent; they are stamped seen."""
    undecided: tuple[str, ...]
    """Keys open before whose check this page could not decide: stamped seen too (not taken for fixed)."""

    @property
    def seen(self) -> tuple[str, ...]:
        return (*self.standing, *self.undecided)


def reconcile_page(
    found: RegionFindings, open_findings: Mapping[str, OpenFinding], keys: Mapping[str, Finding]
) -> PageReconciled:
    """Compare what one page (a slice of the account-region) finds (`keys`: each of `found.findings` by its key)
    with what is open there. Nothing is resolved here: a finding not on this page may be on another."""
    undecided = {
        f"{found.account}/{found.region}/{note.rule_id}/{note.subject}" for note in found.undecided if note.subject
    }
    new = tuple((key, finding) for key, finding in keys.items() if key not in open_findings)
    standing = tuple(key for key in keys if key in open_findings)
    left_open = tuple(sorted(key for key in undecided if key in open_findings and key not in keys))
    return PageReconciled(new, standing, left_open)


def unseen(open_findings: Mapping[str, OpenFinding], run_id: str, started: str) -> tuple[OpenFinding, ...]:
    """The open findings to resolve once run `run_id` has read every page: not seen by it, and opened before it
    started (`first_seen` earlier than `started`, both ISO 8601 UTC text as the sweep and CloudTrail write them)."""
    return tuple(
        record
        for _, record in sorted(open_findings.items())
        if record.seen_run != run_id and opened_before(record.first_seen, started)
    )


def opened_before(first_seen: str, started: str) -> bool:
    """Whether a finding first seen at `first_seen` was open before a run that started at `started` (ISO 8601 UTC,
    with or without a fraction of a second). A time given to the second (CloudTrail's eventTime) may be anywhere in
    that second, so it counts as its second's last instant: a finding opened in the second the run started is left
    for the next run, never resolved by a run that may have read its resource before the change. A finding with no
    readable time was never stamped: it is not held back."""
    opened = _instant(first_seen, latest=True)
    begun = _instant(started, latest=False)
    if opened is None or begun is None:
        return begun is not None or first_seen < started
    return opened < begun


def _instant(text: str, *, latest: bool) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    if latest and "." not in text:
        moment += timedelta(microseconds=999_999)
    return moment


def open_record(key: str, finding: Finding, account: str, region: str, origin: str, when: str) -> OpenFinding:
    resource = finding.resources[0] if finding.resources else None
    return OpenFinding(
        key=key,
        rule_id=finding.rule_id,
        severity=finding.severity.name,
        title=finding.title,
        account=account,
        region=region,
        resource_kind=resource.kind if resource is not None else None,
        resource_id=resource.id if resource is not None else None,
        origin=origin,
        first_seen=when,
    )


def resolved_finding(record: OpenFinding, run_id: str) -> Finding:
    """The notice that a finding is gone: its rule, severity and resource, status `resolved`."""
    resources = (
        (Resource(record.resource_kind, record.resource_id, record.region, record.account),)
        if record.resource_kind and record.resource_id
        else ()
    )
    found_by = "an event" if record.origin == "event" else "the posture sweep"
    return Finding(
        rule_id=record.rule_id,
        severity=Severity[record.severity] if record.severity in Severity.__members__ else Severity.INFO,
        title=f"Resolved: {record.title}",
        description=(
            f"The posture sweep (run {run_id}) no longer finds this: first alerted by {found_by} at "
            f"{record.first_seen}, it is fixed now (or the resource is gone)."
        ),
        resources=resources,
        evidence={"firstSeen": record.first_seen, "firstAlertedBy": record.origin, "run": run_id},
        recommendation="Nothing to do; if it comes back, the guard alerts again.",
        status=RESOLVED,
    )
