"""The chat topic's message: an Amazon Q Developer in chat applications custom notification, valid against the
documented format, one thread per rule and resource, and every value from a record escaped (no link, no code, no
layout)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from ami_guard import alerts, chat
from ami_guard.events import Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from tests import records as r

# The custom notification format as documented (event schema and parameter details):
# https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html
# version "1.0" and source "custom" are required; content with its description is required; textType accepts
# client-markdown only; the other fields are optional strings or lists of strings, additionalContext a map of strings.
STRINGS = {"type": "array", "items": {"type": "string"}}
CUSTOM_NOTIFICATION = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "source", "content"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": "1.0"},
        "source": {"const": "custom"},
        "id": {"type": "string"},
        "content": {
            "type": "object",
            "required": ["description"],
            "additionalProperties": False,
            "properties": {
                "textType": {"const": "client-markdown"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "nextSteps": STRINGS,
                "keywords": STRINGS,
            },
        },
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threadId": {"type": "string"},
                "summary": {"type": "string"},
                "eventType": {"type": "string"},
                "relatedResources": STRINGS,
                "additionalContext": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}
AMI = "ami-0123456789abcdef0"
HOSTILE = "[click](https://evil.example) `rm -rf` <https://evil.example|x> **bold**\n# heading"


def alert_document(image_id: str = AMI, name: str = "golden", **changes: Any) -> dict[str, Any]:
    call = parse_call(Envelope(r.modify_image_attribute(image_id, [{"group": "all"}])))
    finding = Finding(
        rule_id="ami-public",
        severity=Severity.CRITICAL,
        title=f"AMI {image_id} ({name}) made public in {r.REGION}",
        description=f"Image {name} can be launched by anyone.",
        resources=(Resource("image", image_id, r.REGION, r.ACCOUNT),),
        evidence={"imageName": name},
        recommendation=f"Remove the public permission from {name}.",
    )._replace(**changes)
    return alerts.render(finding, call).document


def test_the_notification_is_valid_against_the_documented_format() -> None:
    message = chat.notification(alert_document())

    jsonschema.validate(message, CUSTOM_NOTIFICATION)
    assert message["content"]["title"] == (
        ":rotating_light: \\[CRITICAL\\] AMI ami\\-0123456789abcdef0 \\(golden\\) made public in eu\\-west\\-1"
    )
    assert message["content"]["nextSteps"] == ["Remove the public permission from golden\\."]
    assert message["content"]["keywords"] == ["CRITICAL", "ami\\-public", r.ACCOUNT]
    assert message["metadata"]["eventType"] == "ami-public"
    assert message["metadata"]["relatedResources"] == [f"arn:aws:ec2:eu-west-1::image/{AMI}"]
    assert message["metadata"]["additionalContext"]["rule_id"] == "ami-public"


def test_a_resolved_alert_is_marked_resolved() -> None:
    message = chat.notification(alert_document(status="resolved"))

    jsonschema.validate(message, CUSTOM_NOTIFICATION)
    assert message["content"]["title"].startswith(":white_check_mark: ")


def test_one_thread_per_rule_and_resource() -> None:
    first = chat.notification(alert_document())["metadata"]["threadId"]
    again = chat.notification(alert_document())["metadata"]["threadId"]
    other = chat.notification(alert_document("ami-0fedcba9876543210"))["metadata"]["threadId"]

    assert first == again
    assert other != first


@pytest.mark.parametrize("field", ["title", "description", "nextSteps"])
def test_a_hostile_image_name_cannot_make_a_link_code_or_layout(field: str) -> None:
    # Given an alert about an image whose name is Markdown, HTML-ish link syntax and a new line
    message = chat.notification(alert_document(name=HOSTILE))

    # Then the card is valid, and the name stands in it only escaped
    jsonschema.validate(message, CUSTOM_NOTIFICATION)
    text = "\n".join(message["content"][field]) if field == "nextSteps" else message["content"][field]
    assert "](" not in text and "[click]" not in text
    assert "`" not in text.replace("\\`", "")
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    assert "\\[click\\]\\(https://evil\\.example\\) \\`rm \\-rf\\` &lt;https://evil\\.example\\|x&gt;" in text
    assert "\n# heading" not in text and "\\\\n\\# heading" in text


def test_escape_leaves_plain_words_alone_and_escapes_every_markdown_character() -> None:
    assert chat.escape("golden image 42") == "golden image 42"
    assert chat.escape("*_`[]()#+-.!|~>\\{}") == "\\*\\_\\`\\[\\]\\(\\)\\#\\+\\-\\.\\!\\|\\~&gt;\\\\\\\\\\{\\}"
