"""Where an alert goes besides the alert topic: EventBridge (always), Security Hub (`securityHub`), the chat topic
(`chat`). The AWS edge of `finding_events`, `asff` and `chat`, whose modules (and clients) are imported only when
their output is on.

Nothing lost: the alert topic comes first and its failure fails the publish as before (the event is retried, then
kept in the failed-events queue). Each other output is then tried, every one of them even when one fails. A failure
is never silent: it is logged (`Output failed`, with the output, the rule, the event id and the alert's message id)
and counted (metric `OutputFailures`, dimension `output`). A failure a retry may cure (throttling, a 5xx, an entry or
a finding refused for one of those, after botocore's own retries) is then raised as `OutputFailed` once all outputs
were tried: the invocation fails so that Lambda's retry (then the failed-events queue) delivers the finding to the
output that missed it, and a retry publishes the alert again on every output. Security Hub takes the repeat as an
update of the same finding (its Id is stable); the topic and the bus carry it twice (EventBridge's PutEvents is not
idempotent: a consumer that must see each finding once keys on the detail's `event_id` and `rule_id`). A refusal
no retry cures (access denied, Security Hub not enabled in the account, a finding refused as invalid, an alert that
names no account) is logged and counted only: retrying would repeat the alert on every output to the same refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ami_guard.alerts import Alert

if TYPE_CHECKING:
    from ami_guard.aws import ClientFactory
    from ami_guard.settings import Settings

Log = Callable[[str, dict[str, Any]], None]


class Output(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class AlertPublisher(Protocol):
    def publish(self, alert: Alert) -> str: ...


class OutputRefused(Exception):
    """The output refused the alert for a reason no retry cures: logged and counted, not raised."""


RETRYABLE_ENTRY_ERRORS = frozenset(
    {"ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable", "LimitExceededException"}
)
"""Error codes of a PutEvents entry or an imported finding that a retry may cure."""


def _refused_or_retry(code: Any, reason: str) -> Exception:
    return RuntimeError(reason) if code in RETRYABLE_ENTRY_ERRORS else OutputRefused(reason)


class OutputFailed(Exception):
    """The alert went out on the alert topic (`message_id`), but not on every other output (`failures`)."""

    def __init__(self, message_id: str, failures: Sequence[tuple[str, str]]) -> None:
        self.message_id = message_id
        self.failures = tuple(failures)
        listed = "; ".join(f"{name}: {reason}" for name, reason in self.failures)
        super().__init__(f"alert {message_id} published, but not to {listed}")


class Outputs:
    """The guard's Publisher: the alert topic first, then each output."""

    def __init__(self, topic: AlertPublisher, outputs: Sequence[Output], log: Log | None = None) -> None:
        self.topic = topic
        self.outputs = tuple(outputs)
        self._log = log

    def publish(self, alert: Alert) -> str:
        message_id = self.topic.publish(alert)
        failures: list[tuple[str, str]] = []
        for output in self.outputs:
            try:
                output.send(alert)
            except Exception as exc:
                retry = not isinstance(exc, OutputRefused) and _may_cure(exc)
                reason = f"{type(exc).__name__}: {exc}"[:500]
                if retry:
                    failures.append((output.name, reason))
                self._failed(output.name, alert, message_id, reason, retry)
        if failures:
            raise OutputFailed(message_id, failures)
        return message_id

    def _failed(self, output: str, alert: Alert, message_id: str, reason: str, retry: bool) -> None:
        extra = {
            "output": output,
            "rule_id": alert.document.get("rule_id"),
            "event_id": alert.document.get("event_id"),
            "message_id": message_id,
            "reason": reason,
            "retried": retry,
        }
        (self._log or _log_error)("Output failed", extra)
        _count_failure(output)


def _may_cure(exc: Exception) -> bool:
    """Whether a retry may cure a failed call: botocore's errors are judged as the tagging path judges them."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        from ami_guard.aws import _not_retryable

        return _not_retryable(exc) is None
    from ami_guard.asff import NotImportable

    return not isinstance(exc, NotImportable)


def _log_error(message: str, extra: dict[str, Any]) -> None:
    from aws_lambda_powertools import Logger

    from ami_guard import contract

    Logger(service=contract.POWERTOOLS_SERVICE_NAME).error(message, extra=extra)


def _count_failure(output: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from ami_guard import contract

    with single_metric(
        name="OutputFailures", unit=MetricUnit.Count, value=1, namespace=contract.METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="output", value=output)


class FindingEvents:
    """PutEvents of the alert's document on one bus. An entry EventBridge did not take (FailedEntryCount) fails."""

    name = "eventbridge"

    def __init__(self, clients: ClientFactory, bus_arn: str) -> None:
        self._clients = clients
        self._bus = bus_arn
        self._region = bus_arn.split(":")[3]

    def send(self, alert: Alert) -> None:
        from ami_guard.finding_events import entry

        response = self._clients("events", self._region).put_events(Entries=[entry(alert.document, self._bus)])
        if response.get("FailedEntryCount"):
            failed = (response.get("Entries") or [{}])[0]
            raise _refused_or_retry(
                failed.get("ErrorCode"),
                f"PutEvents did not take the finding event: {failed.get('ErrorCode')}: {failed.get('ErrorMessage')}",
            )


class SecurityHubImporter:
    """BatchImportFindings of the alert as one ASFF finding, by the account it belongs to, in `region_of`'s region.
    A finding Security Hub lists under FailedFindings fails."""

    name = "securityhub"

    def __init__(
        self,
        clients_for: Callable[[str], ClientFactory],
        region_of: Callable[[Alert], str],
        documentation_url: str | None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._clients_for = clients_for
        self._region_of = region_of
        self._documentation_url = documentation_url
        self._clock = clock or (lambda: datetime.now(UTC))

    def send(self, alert: Alert) -> None:
        from ami_guard import asff
        from ami_guard.findings import utc_millis

        region = self._region_of(alert)
        moment = self._clock()
        now = utc_millis(moment)
        finding = asff.finding(alert.document, now=now, import_region=region, documentation_url=self._documentation_url)
        size = asff.size_bytes(finding)
        if size > asff.FINDING_MAX_BYTES:
            finding["ProductFields"] = {
                key: value for key, value in finding["ProductFields"].items() if "/evidence/" not in key
            }
            finding["ProductFields"][asff.ANY_KEY] = (
                f"the evidence ({size} bytes with it) is left out to fit Security Hub's 240 KB: the alert on SNS "
                "and EventBridge has it"
            )
        client = self._clients_for(finding["AwsAccountId"])("securityhub", region)
        response = client.batch_import_findings(Findings=[finding])
        failed = response.get("FailedFindings") or []
        if failed or response.get("SuccessCount", 1) < 1:
            first = failed[0] if failed else {}
            raise _refused_or_retry(
                first.get("ErrorCode"),
                f"Security Hub did not import finding {finding['Id']}: "
                f"{first.get('ErrorCode')}: {first.get('ErrorMessage')}",
            )


class ChatPublisher:
    """The alert as a custom notification on the chat topic (plain JSON: the format Amazon Q Developer reads)."""

    name = "chat"

    def __init__(self, clients: ClientFactory, topic_arn: str) -> None:
        self._clients = clients
        self._topic_arn = topic_arn
        self._region = topic_arn.split(":")[3]

    def send(self, alert: Alert) -> None:
        import json

        from ami_guard.chat import notification

        self._clients("sns", self._region).publish(
            TopicArn=self._topic_arn, Message=json.dumps(notification(alert.document))
        )


def alert_publisher(
    settings: Settings,
    clients: ClientFactory,
    member_clients: Callable[[str], ClientFactory] | None = None,
    log: Log | None = None,
) -> Outputs:
    """The publisher of the guard functions and the sweep. `member_clients` (organization mode): the clients of an
    account's member role, through which a finding is imported in the account it belongs to, in its region;
    standalone, the function's own clients in its own region."""
    from ami_guard.aws import SnsPublisher

    outputs: list[Output] = []
    if settings.findings_bus:
        outputs.append(FindingEvents(clients, settings.findings_bus))
    if settings.policy.security_hub:
        if member_clients is not None:
            importer = SecurityHubImporter(
                member_clients, _alert_region(settings.region), settings.policy.documentation_url
            )
        else:
            importer = SecurityHubImporter(
                lambda account: clients, lambda alert: settings.region, settings.policy.documentation_url
            )
        outputs.append(importer)
    if settings.chat_topic_arn:
        outputs.append(ChatPublisher(clients, settings.chat_topic_arn))
    return Outputs(SnsPublisher(clients, settings.topic_arn), outputs, log)


def _alert_region(default: str) -> Callable[[Alert], str]:
    def region(alert: Alert) -> str:
        from ami_guard.findings import is_region

        value = alert.document.get("region")
        return value if isinstance(value, str) and is_region(value) else default

    return region
