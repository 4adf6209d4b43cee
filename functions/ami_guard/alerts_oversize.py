"""What only an alert that is not whole at the FULL level needs: the smaller levels (TIGHT, REDUCED), the exact
level of the full-finding log, where the cut values are whole, and the email's SHORTENED section. Pure.

Split from `alerts` so that a cold start whose alert fits whole (the common case) does not compile it: imported
by `alerts` on the first alert that is cut or does not fit PUBLISH_BUDGET_BYTES. See `alerts` for the rules.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ami_guard.alerts import (
    FULL,
    FULL_FINDING_LOG,
    FULL_FINDING_PART_CHARS,
    LOG_EVENT_ID_MAX,
    PUBLISH_BUDGET_BYTES,
    Alert,
    Limits,
    _render,
    cut,
    document,
    one_line,
)
from ami_guard.events import ApiCall
from ami_guard.findings import Finding

TIGHT = Limits(text=128, ident=128, items=5, keys=10, depth=3, title=200, prose=1000, resources=5)
REDUCED = Limits(text=32, ident=128, items=3, keys=5, depth=2, title=200, prose=200, resources=3, reduced=True)
LEVELS = (FULL, TIGHT, REDUCED)
_ALL = sys.maxsize
EXACT = Limits(text=_ALL, ident=_ALL, items=_ALL, keys=_ALL, depth=_ALL, title=_ALL, prose=_ALL, resources=_ALL)


def fit(finding: Finding, call: ApiCall, log_group: str | None, account_name: str | None = None) -> Alert:
    """`render` once the FULL level does not fit: the first of the next LEVELS that does (REDUCED always does)."""
    alert = _render(finding, call, TIGHT, log_group, account_name)
    if alert.publish_bytes() <= PUBLISH_BUDGET_BYTES:
        return alert
    return _render(finding, call, REDUCED, log_group, account_name)


def _where_in_full(call: ApiCall, finding: Finding, logged: bool, log_group: str | None) -> str:
    event_id = cut(call.event_id, LOG_EVENT_ID_MAX)
    record = f"every value is whole in the CloudTrail record with event id {event_id}"
    if not logged:
        return record
    log = f"log group {log_group}" if log_group else "the guard function's log"
    return (
        f"{record}, and the finding is in {log}: "
        f"the '{FULL_FINDING_LOG}' lines with this event_id and rule_id {finding.rule_id}"
    )


def full_finding_log(finding: Finding, call: ApiCall) -> list[dict[str, Any]]:
    """The exact (unbounded) document as log entries: JSON text in parts that each fit one CloudWatch event.

    Join the `finding` of parts 1..`parts` to read it back.
    """
    text = json.dumps(document(finding, call, EXACT), sort_keys=True, default=str)
    parts = [text[i : i + FULL_FINDING_PART_CHARS] for i in range(0, len(text), FULL_FINDING_PART_CHARS)]
    event_id = cut(call.event_id, LOG_EVENT_ID_MAX)
    return [
        {"event_id": event_id, "rule_id": finding.rule_id, "part": n, "parts": len(parts), "finding": part}
        for n, part in enumerate(parts, 1)
    ]


def _shortened(truncated: Mapping[str, Any]) -> Iterable[str]:
    if truncated["reduced"]:
        yield "  This alert was reduced to fit SNS's 256 KB message limit: values are cut short and some left out."
    yield f"  {truncated['count']} value(s) were too long for an alert and were cut (marked …):"
    for note in truncated["values"]:
        yield f"    {one_line(note)}"
    if truncated["count"] > len(truncated["values"]):
        yield f"    and {truncated['count'] - len(truncated['values'])} more"
    yield f"  In full: {one_line(truncated['full'])}."
