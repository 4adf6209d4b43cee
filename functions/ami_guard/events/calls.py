"""CloudTrail records, in any shape a user or EventBridge hands us, to an ApiCall. Pure.

Nothing here raises on odd field shapes: a missing, null or wrongly typed field reads as absent.
Only a record that cannot be an API call the guard evaluates raises SkipEvent, with the reason.
The value types are NamedTuples: immutable and compared by value like frozen dataclasses, at a tenth of their
cost to declare (a cold start pays for every class it declares).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ami_guard import contract
from ami_guard.events.fields import array as _list
from ami_guard.events.fields import mapping as _map
from ami_guard.events.fields import string as _str

_NOTHING: Mapping[str, Any] = MappingProxyType({})

DRY_RUN_ERROR = "DryRunOperation"


class SkipEvent(Exception):
    """The record is not something the guard evaluates. `quiet` marks the expected case (not an EC2 call)."""

    def __init__(self, reason: str, *, quiet: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.quiet = quiet


class Actor(NamedTuple):
    arn: str | None = None
    identity_type: str | None = None
    principal_id: str | None = None
    account_id: str | None = None
    user_name: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    invoked_by: str | None = None

    def describe(self) -> str:
        return self.arn or self.user_name or self.principal_id or self.invoked_by or "an unknown principal"


class ApiCall(NamedTuple):
    """One CloudTrail API-call record, normalised."""

    event_id: str
    event_name: str
    event_source: str
    region: str
    account: str | None
    event_time: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    actor: Actor = Actor()
    request: Mapping[str, Any] = _NOTHING
    response: Mapping[str, Any] = _NOTHING
    resources: tuple[str, ...] = ()
    """The ARNs in the record's `resources` list (KMS names its key there, even when the request does not)."""

    @property
    def dry_run(self) -> bool:
        return self.error_code is not None and self.error_code.endswith(DRY_RUN_ERROR)

    @property
    def failed(self) -> bool:
        """The call changed nothing. A dry run is neither a failure nor a change: check `dry_run` first."""
        return self.error_code is not None and not self.dry_run

    @property
    def succeeded(self) -> bool:
        return self.error_code is None


# --- shapes -------------------------------------------------------------------------------------------


class Envelope(NamedTuple):
    """A record as found in a document, with what its wrapper said about it."""

    record: Any
    account: str | None = None
    region: str | None = None


def iter_records(document: Any) -> Iterator[Envelope]:
    """Every CloudTrail record inside a document of any shape we know.

    Shapes: a raw record; an EventBridge envelope (record in `detail`); a trail log file
    (`{"Records": [...]}`); CloudTrail Event history / LookupEvents output (`{"Events": [...]}` whose
    items carry the record as a JSON string in `CloudTrailEvent`); a list of any of these.
    Anything else is yielded as-is so that parse_call can say why it is skipped.
    """
    if isinstance(document, list):
        for item in document:
            yield from iter_records(item)
        return
    if not isinstance(document, Mapping):
        yield Envelope(document)
        return
    if isinstance(document.get("Records"), list):
        for item in document["Records"]:
            yield from iter_records(item)
    elif isinstance(document.get("Events"), list) and "eventName" not in document:
        for item in document["Events"]:
            yield from iter_records(item)
    elif "detail-type" in document or ("detail" in document and "source" in document):
        yield Envelope(document, account=_str(document.get("account")), region=_str(document.get("region")))
    elif "CloudTrailEvent" in document:
        inner = document["CloudTrailEvent"]
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except json.JSONDecodeError:
                yield Envelope(document)
                return
        yield Envelope(inner)
    else:
        yield Envelope(document)


def parse_call(envelope: Envelope, sources: tuple[str, ...] = (contract.EVENT_SOURCE,)) -> ApiCall:
    """The ApiCall in an envelope from one of `sources` (EC2 by default), or SkipEvent with the reason."""
    record = envelope.record
    if isinstance(record, Mapping) and ("detail-type" in record or "detail" in record):
        detail_type = record.get("detail-type")
        if detail_type != contract.DETAIL_TYPE:
            raise SkipEvent(f"not a CloudTrail API call (detail-type {detail_type!r})", quiet=True)
        record = record.get("detail")
    if not isinstance(record, Mapping):
        raise SkipEvent(f"the record is a {type(record).__name__}, not a JSON object")
    event_source = _str(record.get("eventSource"))
    event_name = _str(record.get("eventName"))
    if event_source not in sources:
        raise SkipEvent(f"not an API call this guard evaluates (eventSource {event_source!r})", quiet=True)
    if not event_name:
        raise SkipEvent("the record has no eventName")
    region = _str(record.get("awsRegion")) or _str(envelope.region)
    if not region:
        raise SkipEvent("the record has no awsRegion")
    identity = _map(record.get("userIdentity"))
    account = _str(record.get("recipientAccountId")) or _str(envelope.account) or _str(identity.get("accountId"))
    actor = Actor(
        arn=_str(identity.get("arn")),
        identity_type=_str(identity.get("type")),
        principal_id=_str(identity.get("principalId")),
        account_id=_str(identity.get("accountId")),
        user_name=_str(identity.get("userName")),
        source_ip=_str(record.get("sourceIPAddress")),
        user_agent=_str(record.get("userAgent")),
        invoked_by=_str(identity.get("invokedBy")),
    )
    return ApiCall(
        event_id=_str(record.get("eventID")) or "unknown",
        event_name=event_name,
        event_source=event_source,
        region=region,
        account=account,
        event_time=_str(record.get("eventTime")),
        request_id=_str(record.get("requestID")),
        error_code=_str(record.get("errorCode")),
        error_message=_str(record.get("errorMessage")),
        actor=actor,
        request=_map(record.get("requestParameters")),
        response=_map(record.get("responseElements")),
        resources=tuple(
            arn
            for item in _list(record.get("resources"))
            if isinstance(item, Mapping) and (arn := _str(item.get("ARN")) or _str(item.get("arn")))
        ),
    )
