"""What every guard function does with one EventBridge event: parse, evaluate, publish, log, count.

The handlers are thin wrappers around `once_per_event(process)`; tests call `process` with fakes or moto.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ami_guard import alerts, contract, rules
from ami_guard.config import Policy
from ami_guard.engine import Actions, Evaluation, ImageFacts, Lookups, SnapshotFacts, evaluate
from ami_guard.events.calls import Envelope, SkipEvent, parse_call
from ami_guard.settings import Settings

if TYPE_CHECKING:
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.principals import Principals
    from ami_guard.events.run_instances import Launch
    from ami_guard.findings import Finding
    from ami_guard.instance_types import InstanceTypeInfo
    from ami_guard.organization import OrganizationScopes
    from ami_guard.rules.catalog import Routes

Handler = Callable[[Any, Any], dict[str, Any]]


class Publisher(Protocol):
    def publish(self, alert: alerts.Alert) -> str: ...


class Scope(NamedTuple):
    """What one event is evaluated with. Standalone: the function's own policy, lookups and actions. Organization
    mode: those of the event's member account (its member role, the organization's accounts trusted)."""

    policy: Policy
    lookups: Lookups
    actions: Actions | None
    account_name: str | None = None
    """The account's name in the organization (None when unknown, or standalone)."""
    note: str | None = None
    """Why the organization's accounts are not known for this event (added to each alert's evidence)."""


class Dependencies(NamedTuple):
    """What `process` works with. A NamedTuple, not a frozen dataclass: a cold start pays about 0.8 ms to declare
    one."""

    policy: Policy
    lookups: Lookups
    actions: Actions | None
    publisher: Publisher
    routes: Routes
    """The calls this function's rules read, and the domains that read each (`catalog.routes(guard)`)."""
    watched: rules.Watched = rules.Watched()
    idempotency_store: Callable[[], Any] | None = None
    """Makes the Powertools persistence layer (and its DynamoDB client) when an event first needs it."""
    scope: OrganizationScopes | None = None
    """Organization mode: the member account's scope for each event (None: standalone, the fields above)."""
    findings_store: Callable[[], Any] | None = None
    """Makes the store of open findings (`aws_findings.DynamoFindingStore`) when a standing finding is first
    alerted: the posture sweep then alerts it no second time, and resolves it when it is gone."""

    @property
    def sources(self) -> tuple[str, ...]:
        return (*self.routes.sources, *self.watched.sources)


def build_dependencies(settings: Settings, routes: Routes, *, clock: Callable[[], float] | None = None) -> Dependencies:
    """The composition root: AWS adapters over lazily made clients (nothing connects until it is needed).

    With an organization in the settings, EC2 is reached only through the member roles (`OrganizationScopes`);
    `clock` (tests) times their sessions and the organization's account list."""
    from ami_guard.aws import (
        Ec2Actions,
        Ec2Lookups,
        InstanceTypeCatalog,
        client_factory,
    )
    from ami_guard.aws_outputs import alert_publisher

    clients = client_factory()
    scope: OrganizationScopes | None = None
    if settings.policy.organization is not None:
        from ami_guard.organization import OrganizationScopes  # organization mode only: never in a standalone start

        scopes = OrganizationScopes(settings, clients, clock=clock)
        scope = scopes
        # never the hub's own credentials for EC2: the default lookups are those of no account, which refuse
        lookups, actions = scopes.member(None, settings.region)
    else:
        lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, settings.region))
        actions = Ec2Actions(clients, lookups)

    def findings_store() -> Any:
        from ami_guard.aws_findings import DynamoFindingStore

        return DynamoFindingStore(clients, settings.idempotency_table, settings.region)

    def idempotency_store() -> Any:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=clients("dynamodb", settings.region)
        )

    return Dependencies(
        policy=settings.policy,
        lookups=lookups,
        actions=actions,
        publisher=alert_publisher(
            settings, clients, None if scope is None else functools.partial(scope.member_clients, config=None)
        ),
        routes=routes,
        watched=settings.watched,
        idempotency_store=idempotency_store,
        scope=scope,
        findings_store=functools.cache(findings_store),
    )


class EntryPoint:
    """What a guard function's module holds: its logger and, built once per container on first use, its
    dependencies and its once-per-event runner. Calling it handles one event."""

    def __init__(self, guard: str) -> None:
        self.guard = guard
        """Its name in contract.GUARD_DOMAINS: the rule domains it hosts."""
        self.logger = Logger(service=contract.POWERTOOLS_SERVICE_NAME)
        self._deps: Dependencies | None = None
        self._run: Handler | None = None

    def dependencies(self) -> Dependencies:
        if self._deps is None:
            from ami_guard.rules.catalog import routes
            from ami_guard.settings import load_settings

            self._deps = build_dependencies(load_settings(), routes(self.guard))
        return self._deps

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        if self._run is None:
            self._run = once_per_event(self.dependencies(), self.logger)
        return self._run(event, context)

    def reset(self) -> None:
        """Forget what this container built (tests change the environment between cases)."""
        self._deps = None
        self._run = None


def once_per_event(deps: Dependencies, logger: Logger) -> Handler:
    """`process`, run at most once per CloudTrail eventID however often EventBridge or Lambda deliver it.

    A duplicate gets the first run's summary back without publishing or acting again. A run that fails
    (throttling, SNS down) leaves no record, so the retry runs in full. An event that can have no effect
    (skipped, or decided from the record alone with nothing found) is settled without the record: there is
    nothing to do once, and the two DynamoDB writes are saved.
    """

    def run(event: Any, context: Any) -> dict[str, Any]:
        return process(event, deps, logger)

    if deps.idempotency_store is None:
        return run
    make_store = deps.idempotency_store

    @functools.cache
    def recorded() -> Handler:
        """`run` under the idempotency record, made (with its DynamoDB client) for the first event that needs it."""
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent

        config = IdempotencyConfig(
            event_key_jmespath="detail.eventID",
            raise_on_no_idempotency_key=False,
            expires_after_seconds=contract.IDEMPOTENCY_TTL_SECONDS,
        )
        wrapped: Handler = idempotent(persistence_store=make_store(), config=config)(run)
        return wrapped

    def once(event: Any, context: Any) -> dict[str, Any]:
        settled = without_effects(event, deps, logger)
        return settled if settled is not None else recorded()(event, context)

    return once


def process(event: Any, deps: Dependencies, logger: Logger) -> dict[str, Any]:
    """Evaluate one EventBridge event and publish its findings at or above minSeverity."""
    evaluated = _evaluate(event, deps, logger, effects=True)
    return evaluated if isinstance(evaluated, dict) else _report(*evaluated, deps, logger)


def without_effects(event: Any, deps: Dependencies, logger: Logger) -> dict[str, Any] | None:
    """`process`'s summary (and logs) for an event that cannot publish, act or count anything; else None.

    It is evaluated without actions and without AWS reads (instance-type facts aside: they are cached per
    container, so the full run would not read them again); an event whose evaluation needs a read is not
    decided here. Nothing found and nothing undecided means the full run would find nothing either.
    """
    try:
        evaluated = _evaluate(event, deps, logger, effects=False)
    except _ReadNeeded:
        return None
    if isinstance(evaluated, dict):
        return evaluated
    if evaluated[0].findings or evaluated[0].undetermined:
        return None
    return _report(*evaluated, deps, logger)


def _evaluate(
    event: Any, deps: Dependencies, logger: Logger, *, effects: bool
) -> tuple[Evaluation, Scope] | dict[str, Any]:
    """The evaluation of one event (with its scope), or the summary of a skipped one (whose reason is logged here,
    once). Without `effects`: no actions, and no AWS reads (`_WithoutReads`)."""
    envelope = Envelope(
        event,
        account=event.get("account") if isinstance(event, Mapping) else None,
        region=event.get("region") if isinstance(event, Mapping) else None,
    )
    try:
        call = parse_call(envelope, deps.sources)
    except SkipEvent as exc:
        logger.warning("Skipped event", extra={"reason": exc.reason, "event_shape": _shape(event)})
        return {"status": "skipped", "reason": exc.reason}

    ruled = call.event_source in deps.routes.sources
    if ruled and (call.event_source, call.event_name) not in deps.routes.calls:
        reason = f"{call.event_name} is not routed to this function (expects {', '.join(deps.routes.names())})"
        logger.warning("Skipped event", extra={"reason": reason, "event_id": call.event_id})
        return {"status": "skipped", "reason": reason}
    scope = Scope(deps.policy, deps.lookups, deps.actions)
    if ruled:
        # The organization's accounts are read when trust decides the event (a share with accounts), else only
        # once there is an alert to name the account in: a quiet launch costs no Organizations call.
        trust_decides = deps.scope is not None and deps.scope.trust_decides(call)
        if deps.scope is not None:
            scope = deps.scope(call, envelope.account, listing=trust_decides)
        if not effects:
            scope = scope._replace(lookups=_WithoutReads(scope.lookups), actions=None)
        evaluation = evaluate(call, scope.policy, scope.lookups, scope.actions, deps.routes)
        if deps.scope is not None and effects and evaluation.findings and not trust_decides:
            named = deps.scope(call, envelope.account)
            scope = scope._replace(account_name=named.account_name, note=named.note)
        return evaluation, scope
    from ami_guard.events.guard import guard_change  # the guard's own domain, on its first call only

    evaluation = Evaluation(call)
    change = guard_change(call)
    if change is not None:
        evaluation.add(rules.guard_tampered(call, change, deps.watched))
    if evaluation.findings and deps.scope is not None:  # decided from the record: the scope only names the account
        scope = deps.scope(call, envelope.account)
    return evaluation, scope


def _report(evaluation: Evaluation, scope: Scope, deps: Dependencies, logger: Logger) -> dict[str, Any]:
    """Publish the findings at or above minSeverity, count and log them; the summary."""
    call = evaluation.call
    published: list[str] = []
    if scope.note is not None and evaluation.findings:
        logger.warning("Organization not known", extra={"reason": scope.note, "event_id": call.event_id})
    for finding in evaluation.findings:
        if scope.note is not None:
            finding = finding._replace(evidence={**finding.evidence, "organization": scope.note})
        _count("Findings", {"rule_id": finding.rule_id, "severity": finding.severity.name})
        if finding.severity < deps.policy.min_severity:
            logger.info("Finding below minSeverity, not published", extra={"rule_id": finding.rule_id})
            continue
        log_group = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        alert = alerts.render(finding, call, log_group=log_group, account_name=scope.account_name)
        if alert.truncated:  # the alert says where the values it cut are whole: here, before it is sent
            for part in alerts.full_finding_log(finding, call):
                logger.warning(alerts.FULL_FINDING_LOG, extra=part)
        message_id = deps.publisher.publish(alert)
        published.append(finding.rule_id)
        _record_open(finding, call, deps, logger)
        logger.info(
            "Published finding",
            extra={"rule_id": finding.rule_id, "severity": finding.severity.name, "message_id": message_id},
        )
    for note in evaluation.undetermined:
        _count("UndecidedChecks", {"rules": note["rules"]})
        logger.warning("Check not decided", extra=note)
    summary = {
        "status": "evaluated",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "findings": [f.rule_id for f in evaluation.findings],
        "published": published,
    }
    logger.info("Evaluated event", extra=summary)
    return summary


def _record_open(finding: Finding, call: ApiCall, deps: Dependencies, logger: Logger) -> None:
    """A standing finding, once alerted, is open: the sweep will not alert it again and resolves it when gone.
    Recorded only for an account and a first resource in AWS's formats (a crafted id makes no record), after the
    alert is out; a failure to record is logged and costs a repeated alert at the next sweep, never this one."""
    if deps.findings_store is None or finding.rule_id not in deps.routes.standing() or not call.account:
        return
    from ami_guard.lifecycle import finding_key, standing_after

    resource = finding.resources[0] if finding.resources else None
    if resource is None or not resource.valid or not standing_after(finding):
        return
    key = finding_key(finding, call.account, call.region)
    try:
        deps.findings_store().opened(key, finding, call.account, call.region, "event", call.event_time or "")
    except Exception as exc:
        logger.warning("Open finding not recorded", extra={"key": key, "reason": str(exc)[:300]})


class _ReadNeeded(Exception):
    """Deciding the event takes an AWS read: it is left to the full run, under the idempotency record."""


class _WithoutReads:
    """Lookups that answer only what needs no read for this event."""

    def __init__(self, lookups: Lookups) -> None:
        self._lookups = lookups

    def image(self, image_id: str, region: str) -> ImageFacts:
        raise _ReadNeeded

    def launch_permissions(self, image_id: str, region: str) -> Principals:
        raise _ReadNeeded

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None:
        return self._lookups.instance_type(instance_type)

    def snapshots(self, snapshot_ids: tuple[str, ...], region: str) -> tuple[SnapshotFacts, ...]:
        raise _ReadNeeded

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        raise _ReadNeeded

    def image_owner(self, image_id: str, region: str) -> tuple[str | None, str | None]:
        raise _ReadNeeded


def _count(name: str, dimensions: dict[str, str]) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=contract.METRICS_NAMESPACE) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)


def _shape(event: Any) -> str:
    if isinstance(event, Mapping):
        return "object with keys " + ", ".join(sorted(map(str, event))[:10])
    return type(event).__name__
