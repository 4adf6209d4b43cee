"""An alert as an Amazon Q Developer in chat applications (formerly AWS Chatbot) custom notification: a card in a
Slack channel or a Microsoft Teams channel subscribed to the chat topic. Pure: `aws_outputs.ChatPublisher` publishes
what `notification` returns; imported only when `chat` is on.

The format: https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html (`version` "1.0", `source`
"custom", `content` with `textType` "client-markdown", `title`, `description`, `nextSteps`, `keywords`, and
`metadata` with `threadId`, `summary`, `eventType`, `relatedResources`, `additionalContext`).

Every value in the card is data rendered as Markdown, so each one (the rules' prose too, since it embeds record
values such as an image's name) is written on one line (`alerts.one_line`) with every Markdown and HTML special
character escaped: a record cannot open a link, an image, a code block, a heading or a mention. Our layout (bold
labels, line breaks, the list of next steps) is added around the escaped values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ami_guard.alerts import cut, one_line
from ami_guard.finding_events import finding_key, fit, section

VERSION = "1.0"
SOURCE = "custom"
TEXT_TYPE = "client-markdown"
TITLE_MAX = 250
DESCRIPTION_MAX = 3500
NEXT_STEP_MAX = 1000
CONTEXT_VALUE_MAX = 256
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
_ICONS = {"CRITICAL": ":rotating_light:", "HIGH": ":red_circle:", "MEDIUM": ":large_orange_circle:"}


def escape(value: Any) -> str:
    """A value as literal text in client-markdown: one line, `&`, `<`, `>` as entities, the other Markdown
    punctuation behind a backslash."""
    text = one_line(str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


def thread_id(document: Mapping[str, Any]) -> str:
    """One thread per rule and resource (the finding key, digested: it holds record values)."""
    return "ami-guard-" + hashlib.sha256(finding_key(document).encode("utf-8")).hexdigest()[:40]


def notification(document: Mapping[str, Any]) -> dict[str, Any]:
    severity = str(document.get("severity"))
    resolved = document.get("status") == "resolved"
    icon = ":white_check_mark:" if resolved else _ICONS.get(severity, ":information_source:")
    event = section(document, "event")
    actor = section(document, "actor")
    action = section(document, "action")
    resources = [r for r in document.get("resources") or [] if isinstance(r, Mapping)]
    lines = [escape(fit(str(document.get("description") or ""), DESCRIPTION_MAX))]
    account = str(document.get("account") or "unknown")
    name = document.get("account_name")
    lines.append(f"*Account:* {escape(account)}" + (f" ({escape(name)})" if name else ""))
    lines.append(f"*Region:* {escape(document.get('region') or '')}")
    for resource in resources[:5]:
        lines.append(f"*Resource:* {escape(resource.get('type'))} {escape(resource.get('id'))}")
    if len(resources) > 5:
        lines.append(f"*Resources:* {len(resources)}, first 5 shown")
    if actor.get("arn"):
        lines.append(f"*Who:* {escape(actor['arn'])}")
    if event.get("name"):
        lines.append(f"*Event:* {escape(event['name'])} at {escape(event.get('time') or 'unknown time')}")
    if action.get("status") and action.get("status") != "none":
        lines.append(f"*Action:* {escape(action['status'])}: {escape(fit(str(action.get('detail') or ''), 500))}")
    rule_id = str(document.get("rule_id"))
    context = {
        "rule_id": rule_id,
        "severity": severity,
        "status": str(document.get("status")),
        "account": account,
        "region": str(document.get("region")),
        "event_id": str(event.get("id")),
    }
    return {
        "version": VERSION,
        "source": SOURCE,
        "id": f"{cut(str(event.get('id')), 128)}/{rule_id}",
        "content": {
            "textType": TEXT_TYPE,
            "title": f"{icon} " + escape(fit(f"[{severity}] {document.get('title') or rule_id}", TITLE_MAX)),
            "description": "\n".join(lines),
            "nextSteps": [escape(fit(str(document.get("recommendation") or "-"), NEXT_STEP_MAX))],
            "keywords": [escape(severity), escape(rule_id), escape(fit(account, 64))],
        },
        "metadata": {
            "threadId": thread_id(document),
            "summary": escape(fit(f"[{severity}] {document.get('title') or rule_id}", TITLE_MAX)),
            "eventType": rule_id,
            "relatedResources": [r["arn"] for r in resources if isinstance(r.get("arn"), str)],
            "additionalContext": {key: fit(value, CONTEXT_VALUE_MAX) for key, value in context.items()},
        },
    }
