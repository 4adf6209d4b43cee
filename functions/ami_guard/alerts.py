"""A finding as its reader receives it: one JSON document (machine) and one plain-text email (human).

Pure: the SNS adapter only sends what `render` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ami_guard.events import ApiCall
from ami_guard.findings import Finding

SCHEMA = "ami-guard/alert/v1"
SUBJECT_MAX = 99  # SNS: "must be less than 100 characters"


@dataclass(frozen=True)
class Alert:
    subject: str
    document: dict[str, Any]
    email: str
    attributes: dict[str, str]

    def sns_message(self) -> str:
        """The body for Publish with MessageStructure=json: JSON for every protocol, text for email."""
        default = json.dumps(self.document, sort_keys=True, default=str)
        return json.dumps({"default": default, "email": self.email})


def document(finding: Finding, call: ApiCall) -> dict[str, Any]:
    """The machine-readable alert; also what `amiguard evaluate` prints, one per line."""
    resources = [{**r.as_dict(), "console_url": r.console_url} for r in finding.resources]
    return {
        "schema": SCHEMA,
        "rule_id": finding.rule_id,
        "severity": finding.severity.name,
        "title": finding.title,
        "description": finding.description,
        "account": call.account,
        "region": call.region,
        "event_id": call.event_id,
        "resources": resources,
        "actor": {
            "arn": call.actor.arn,
            "type": call.actor.identity_type,
            "principal_id": call.actor.principal_id,
            "account_id": call.actor.account_id,
            "source_ip": call.actor.source_ip,
            "user_agent": call.actor.user_agent,
            "invoked_by": call.actor.invoked_by,
        },
        "event": {
            "id": call.event_id,
            "name": call.event_name,
            "source": call.event_source,
            "time": call.event_time,
            "request_id": call.request_id,
            "error_code": call.error_code,
            "error_message": call.error_message,
        },
        "evidence": finding.evidence,
        "action": finding.action or {"status": "none", "detail": "this rule only reports"},
        "recommendation": finding.recommendation,
        "console_url": resources[0]["console_url"] if resources else None,
    }


def render(finding: Finding, call: ApiCall) -> Alert:
    doc = document(finding, call)
    return Alert(
        subject=subject(finding, call),
        document=doc,
        email=email_text(doc),
        attributes={
            "severity": finding.severity.name,
            "rule_id": finding.rule_id,
            "account": call.account or "unknown",
            "region": call.region,
        },
    )


def subject(finding: Finding, call: ApiCall) -> str:
    """`[CRITICAL] AMI ami-0abc made public in eu-west-1 (123456789012)`: ASCII, one line, < 100 characters."""
    suffix = f" ({_ascii_line(call.account)})" if call.account else ""
    head = f"[{finding.severity.name}] "
    title = _ascii_line(finding.title)
    room = SUBJECT_MAX - len(head) - len(suffix)
    if len(title) > room:
        title = title[: max(room - 3, 0)].rstrip() + "..."
    return (head + title + suffix)[:SUBJECT_MAX]


def _ascii_line(text: str) -> str:
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text.replace("\n", " ").replace("\t", " "))
    return " ".join(cleaned.split())


def email_text(doc: dict[str, Any]) -> str:
    actor = doc["actor"]
    event = doc["event"]
    action = doc["action"]
    who = actor["arn"] or actor["principal_id"] or "unknown principal"
    if actor["type"]:
        who += f" ({actor['type']})"
    via = ", ".join(
        part
        for part in (
            f"from {actor['source_ip']}" if actor["source_ip"] else "",
            f"using {actor['user_agent']}" if actor["user_agent"] else "",
            f"invoked by {actor['invoked_by']}" if actor["invoked_by"] else "",
        )
        if part
    )
    lines = [
        f"[{doc['severity']}] {doc['title']}",
        "",
        "WHAT HAPPENED",
        f"  {doc['description']}",
        "",
        "WHO",
        f"  {who}",
    ]
    if via:
        lines.append(f"  {via}")
    lines += [
        "",
        "WHEN",
        f"  {event['time'] or 'unknown time'}: {event['name']} (event {event['id']}, request {event['request_id']})",
    ]
    if event["error_code"]:
        lines.append(f"  The call failed: {event['error_code']}: {event['error_message'] or ''}".rstrip())
    lines += ["", "RESOURCES"]
    for resource in doc["resources"]:
        lines.append(f"  {resource['type']} {resource['id']} ({resource['region']})")
        lines.append(f"    {resource['console_url']}")
    lines += ["", "EVIDENCE"]
    lines += [f"  {key}: {_plain(value)}" for key, value in doc["evidence"].items() if value not in (None, [], {})]
    lines += ["", "ACTION TAKEN", f"  {action.get('status')}: {action.get('detail', '')}".rstrip(": ")]
    lines += ["", "WHAT TO DO", f"  {doc['recommendation']}", ""]
    lines.append(f"-- AMI Guard | rule {doc['rule_id']} | account {doc['account']} | region {doc['region']}")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)
