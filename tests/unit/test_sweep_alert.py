"""A finding the posture sweep observed, as its reader gets it: origin sweep, no caller named, the run and time."""

from __future__ import annotations

import json

from ami_guard import alerts
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.sweep.observation import observation

ACCOUNT = "111122223333"
REGION = "eu-west-1"
FOUND = Finding(
    rule_id="ami-public",
    severity=Severity.CRITICAL,
    title="AMI ami-0aaaaaaaaaaaaaaa1 is public in eu-west-1",
    description="The posture sweep found AMI ami-0aaaaaaaaaaaaaaa1 launchable by every AWS account.",
    resources=(Resource("image", "ami-0aaaaaaaaaaaaaaa1", REGION, ACCOUNT),),
    evidence={"public": True},
    recommendation="Make it private.",
)
CALL = observation(ACCOUNT, REGION, "sweep-2026-11-30T06:00:00Z", "2026-11-30T06:00:12Z")


def test_the_document_says_the_sweep_found_it() -> None:
    doc = alerts.document(FOUND, CALL)
    assert (doc["schema"], doc["status"], doc["origin"]) == ("ami-guard/alert/v2", "open", "sweep")
    assert doc["event"]["name"] == "PostureSweep" and doc["event"]["id"] == "sweep-2026-11-30T06:00:00Z"
    assert doc["actor"]["arn"] is None


def test_the_email_names_no_caller_and_says_when_the_sweep_found_it() -> None:
    alert = alerts.render(FOUND, CALL)
    email = json.loads(alert.sns_message())["email"]
    lines = email.splitlines()
    who = lines[lines.index("WHO") + 1]
    when = lines[lines.index("WHEN") + 1]
    assert who == "  the posture sweep: the change that made this predates the guard, or was not seen as it happened"
    assert when == "  2026-11-30T06:00:12Z: posture sweep (run sweep-2026-11-30T06:00:00Z)"
    assert alert.attributes["status"] == "open"


def test_a_resolved_finding_is_marked_in_the_document_and_the_attributes() -> None:
    alert = alerts.render(FOUND._replace(status="resolved"), CALL)
    assert alert.document["status"] == "resolved" and alert.attributes["status"] == "resolved"
