"""One sweep of one account and region: read, evaluate, compare with what is open, alert the new, resolve the gone,
a page at a time, with a checkpoint whenever the invocation's time runs short.

`sweep_target` works through the phases of collect.RegionPages (the settings and paravirtual instances, then each
page of owned images, then each page of owned snapshots) and then the reconcile. Each page is evaluated on its own
(a RegionPosture slice; the account-level rules only over the settings slice) and reconciled at once
(lifecycle.reconcile_page): its new findings are published and recorded open, the open ones it finds again or
cannot decide are stamped seen in this run. The reconcile resolves the account-region's open findings the run did
not see and that were opened before it started (lifecycle.unseen). Before each step but the first, when the time
left (`remaining_ms`) is under `margin_ms`, it stops and returns `{"done": false, "cursor": ...}`: the state machine
invokes it again with that cursor (sweep.cursor), and it goes on from there. A small account-region is done in one
invocation; `sweep_region` runs a whole account-region without a time limit (the same steps).

The order keeps every alert: a finding is published first and recorded as open after (a record that fails leaves
it to be alerted again by the next sweep, never silenced); a resolved notice is published before the finding is
closed. Findings below minSeverity are neither alerted nor recorded. With copyTags, a copy found lacking its
source's tags gets them by the same restore as an event's copy (`engine.copies.restore_tags`: only on a copy EC2
confirms, never overwriting, within EC2's tag limit), and its alert says what was done. A listing that fails raises
collect's RegionFailed: the run does not reach the reconcile, so nothing is resolved for the region (a partial
listing would make exposures look fixed); what earlier pages alerted stays alerted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from ami_guard import alerts
from ami_guard.lifecycle import OpenFinding, finding_key, open_record, reconcile_page, resolved_finding, unseen
from ami_guard.rules.copies import COPY_TAGS_MISSING
from ami_guard.sweep.collect import DEFAULT_CONCURRENCY, PAGE_SIZE, RegionPages
from ami_guard.sweep.cursor import Cursor
from ami_guard.sweep.evaluate import evaluate_region
from ami_guard.sweep.observation import observation

if TYPE_CHECKING:
    from ami_guard.aws import ClientFactory
    from ami_guard.config import Policy
    from ami_guard.engine import Actions, Lookups
    from ami_guard.findings import Finding
    from ami_guard.sweep.facts import RegionPosture, SourceImage

MARGIN_MS = 5 * 60 * 1000
"""The time a step may take: one page is one listing call plus up to 1,000 attribute reads on the sweep's
concurrency under adaptive retry (tens of seconds unthrottled; minutes when EC2 throttles the account hard), and
the reconcile publishes and records one resolution at a time. With 5 of the function's 15 minutes kept for the
step under way, a slow page still ends before Lambda's timeout cuts it off mid-way."""
NO_LIMIT: Callable[[], int] = lambda: 2**62  # noqa: E731  (sweep_region: the whole account-region in one go)


class Store(Protocol):
    def open_findings(self, account: str, region: str) -> dict[str, OpenFinding]: ...

    def opened(
        self,
        key: str,
        finding: Finding,
        account: str,
        region: str,
        origin: str,
        when: str,
        *,
        seen_run: str | None = None,
    ) -> bool: ...

    def seen(self, keys: Iterable[str], run_id: str) -> None: ...

    def resolved(self, record: OpenFinding, when: str) -> None: ...

    def begin(self, account: str, region: str, run_id: str, digest: str) -> None: ...

    def resume(self, account: str, region: str, run_id: str, digest: str) -> None: ...

    def advance(self, account: str, region: str, run_id: str, previous: str, digest: str) -> None: ...


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
    concurrency: int = DEFAULT_CONCURRENCY,
    ec2: tuple[Lookups, Actions] | None = None,
    source_cache: MutableMapping[str, SourceImage | None] | None = None,
    log: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The summary of one account-region's whole sweep, in one go (`sweep_target` without a time limit)."""
    return sweep_target(
        clients,
        account,
        region,
        policy,
        store,
        publisher,
        run_id=run_id,
        now=now,
        cursor=None,
        concurrency=concurrency,
        ec2=ec2,
        source_cache=source_cache,
        log=log,
    )


def sweep_target(
    clients: ClientFactory,
    account: str,
    region: str,
    policy: Policy,
    store: Store,
    publisher: Publisher,
    *,
    run_id: str,
    now: str,
    cursor: Cursor | None,
    remaining_ms: Callable[[], int] = NO_LIMIT,
    margin_ms: int = MARGIN_MS,
    concurrency: int = DEFAULT_CONCURRENCY,
    page_size: int = PAGE_SIZE,
    ec2: tuple[Lookups, Actions] | None = None,
    source_cache: MutableMapping[str, SourceImage | None] | None = None,
    log: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One step of the account-region's sweep from `cursor` (None: the run's first): `{"done": false, "cursor":
    {...}}` when the time ran short, else `{"done": true, ...the summary}`. `ec2`: the lookups and actions the tag
    restore uses (None: no restore is attempted, the alert says so). Raises RegionFailed when a listing fails, and
    aws_findings.ProgressRefused (before reading anything) when `cursor` is not the last one this run handed out."""
    if cursor is None:
        at = Cursor.start(account, region, run_id, now)
        store.begin(account, region, run_id, at.digest())
    else:
        at = cursor
        store.resume(account, region, run_id, at.digest())
    step = _Step(account, region, policy, store, publisher, run_id, now, ec2, log, at)
    phase, token = at.phase, at.token
    with RegionPages(
        clients, account, region, concurrency=concurrency, page_size=page_size, source_cache=source_cache
    ) as pages:
        first = True
        while phase != "done":
            if not first and remaining_ms() < margin_ms:
                return step.pause(phase, token)
            first = False
            if phase == "settings":
                step.page(pages.settings())
                phase, token = "images", None
            elif phase == "images":
                part, token = pages.images(token)
                step.page(part)
                phase = "images" if token is not None else "snapshots"
            elif phase == "snapshots":
                part, token = pages.snapshots(token)
                step.page(part)
                phase = "snapshots" if token is not None else "reconcile"
            elif step.reconcile(remaining_ms, margin_ms):
                phase = "done"
    return step.finish()


class _Step:
    """One invocation's work on the account-region: the pages it reconciles, and the running counts."""

    def __init__(
        self,
        account: str,
        region: str,
        policy: Policy,
        store: Store,
        publisher: Publisher,
        run_id: str,
        now: str,
        ec2: tuple[Lookups, Actions] | None,
        log: Callable[[str, dict[str, Any]], None] | None,
        at: Cursor,
    ) -> None:
        self.account, self.region, self.policy = account, region, policy
        self.store, self.publisher = store, publisher
        self.run_id, self.now, self.ec2, self.log = run_id, now, ec2, log
        self.at = at
        self.counts: Counter[str] = Counter(at.counts)
        self.counts["invocations"] += 1
        self.calls: Counter[str] = Counter(at.calls)
        self.call = observation(account, region, run_id, now)
        self._open: dict[str, OpenFinding] | None = None

    def open_findings(self) -> dict[str, OpenFinding]:
        """The account-region's open findings, read once per invocation and kept up to date with what it opens."""
        if self._open is None:
            self._open = self.store.open_findings(self.account, self.region)
        return self._open

    def page(self, part: RegionPosture) -> None:
        found = evaluate_region(part, self.policy)
        keys = {
            finding_key(f, self.account, self.region): f
            for f in found.findings
            if f.severity >= self.policy.min_severity
        }
        open_now = self.open_findings()
        plan = reconcile_page(found, open_now, keys)
        for key, finding in plan.new:
            if finding.rule_id == COPY_TAGS_MISSING and self.policy.copy_tags:
                finding = finding.with_action(_restore(part, finding, self.policy, self.ec2, self.now, self.run_id))
            self.publisher.publish(alerts.render(finding, self.call))
            self.store.opened(key, finding, self.account, self.region, "sweep", self.now, seen_run=self.run_id)
            open_now[key] = open_record(key, finding, self.account, self.region, "sweep", self.now)._replace(
                seen_run=self.run_id
            )
        self.store.seen(plan.seen, self.run_id)
        for note in found.undecided:
            if self.log is not None:
                self.log("Check not decided", {"rules": note.rule_id, "reason": note.reason, "cause": note.cause})
        self.counts.update(
            {
                "findings": len(found.findings),
                "alerted": len(plan.new),
                "standing": len(plan.standing),
                "undecided": len(found.undecided),
                "unread": len(part.unread),
                "pages": 1,
            }
        )
        self.calls.update(part.calls)

    def reconcile(self, remaining_ms: Callable[[], int], margin_ms: int) -> bool:
        """Resolve what the run did not see; False when the time ran short first (the rest is left for the next
        step: a resolved finding leaves the open ones, so that step resolves only what is left)."""
        self._open = None  # what events opened or closed while the pages were read
        for number, record in enumerate(unseen(self.open_findings(), self.run_id, self.at.started)):
            if number and remaining_ms() < margin_ms:
                return False
            self.publisher.publish(alerts.render(resolved_finding(record, self.run_id), self.call))
            self.store.resolved(record, self.now)
            self.counts["resolved"] += 1
        return True

    def cursor(self, phase: str, token: str | None) -> Cursor:
        return self.at._replace(phase=phase, token=token, counts=dict(self.counts), calls=dict(self.calls))

    def pause(self, phase: str, token: str | None) -> dict[str, Any]:
        following = self.cursor(phase, token)
        self.store.advance(self.account, self.region, self.run_id, self.at.digest(), following.digest())
        return {
            "done": False,
            "account": self.account,
            "region": self.region,
            "run": self.run_id,
            "cursor": following.as_json(),
        }

    def finish(self) -> dict[str, Any]:
        self.store.advance(self.account, self.region, self.run_id, self.at.digest(), "done")
        return {
            "done": True,
            "status": "swept",
            "account": self.account,
            "region": self.region,
            "run": self.run_id,
            "started": self.at.started,
            **{name: self.counts[name] for name in ("findings", "alerted", "standing", "resolved", "undecided")},
            **{name: self.counts[name] for name in ("unread", "pages", "invocations")},
            "calls": dict(sorted(self.calls.items())),
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
