"""Every step of the demo scenario, against the deployed app: the alerts written out here arrive, no other alert
does, every event reaches a guard function that evaluates it with no call refused by IAM, and the account is as it
should be afterwards."""

from __future__ import annotations

import pytest

from demo.scenario import STEPS
from tests.e2e.harness import Played

pytestmark = pytest.mark.e2e

# Per step, the rule ids of the alerts that must arrive, written out here (not read from the scenario).
EXPECTED_RULES = {
    "make-public": ["ami-public"],
    "share-untrusted": ["ami-shared-untrusted"],
    "share-trusted": [],
    "register-default-virtualization": ["image-paravirtual"],
    "register-instance-store": ["image-instance-store"],
    "launch-paravirtual-m5": ["launch-virtualization-mismatch"],
    "launch-hvm": [],
    "copy-tagged": ["copy-tags-missing"],
    "copy-with-tags": [],
    "disable-block-public-access": ["ami-block-public-access-disabled"],
    "snapshot-public": ["snapshot-public"],
    "duplicate-delivery": ["snapshot-shared-untrusted"],
    "disable-snapshot-block-public-access": ["snapshot-block-public-access-disabled"],
    "allowed-images-audit-mode": ["allowed-images-audit-only"],
    "unlock-snapshot": ["snapshot-unlocked"],
    "delete-recycle-bin-rule": ["recycle-bin-rule-weakened"],
    "export-image": ["image-exported"],
    "launch-public-ami": ["launch-untrusted-image"],
    "disable-guard-rule": ["guard-tampered"],
}


def test_the_scenario_plays_the_steps_written_here(played: Played) -> None:
    # Given the scenario played once
    # Then it played these steps, in this order
    assert list(played.results) == list(EXPECTED_RULES)


def test_the_scenario_expects_what_is_written_here() -> None:
    # Given the scenario's own expectations (what the demo prints as "expected")
    # Then they are the rule ids written out here
    assert {step.key: list(step.expected) for step in STEPS} == EXPECTED_RULES


@pytest.mark.parametrize("key", list(EXPECTED_RULES))
def test_step_raises_the_rules_written_here(played: Played, key: str) -> None:
    # Given the app deployed into the emulated account and the scenario played once
    result = played.results[key]

    # Then exactly these alerts arrived (the message is what the demo printed for the step)
    assert sorted(result.received) == EXPECTED_RULES[key], played.explain(key)
    # and each is about the step's own event
    assert [a.event_id in result.event_ids for a in result.alerts] == [True] * len(EXPECTED_RULES[key])


@pytest.mark.parametrize("key", list(EXPECTED_RULES))
def test_step_was_evaluated_without_problem(played: Played, key: str) -> None:
    # Given the step played
    result = played.results[key]

    # Then every event reached a guard that evaluated it, no call of the guard was refused, every check held
    if result.problems or not all(check.ok for check in result.checks):
        pytest.fail(played.explain(key), pytrace=False)


def test_the_duplicate_is_delivered_twice_and_alerts_once(played: Played) -> None:
    # Given the step that hands the same CloudTrail record to EventBridge twice
    result = played.results["duplicate-delivery"]

    # Then the guard ran twice, both runs succeeded, and one alert reached the inbox
    assert [d.ok for d in result.deliveries] == [True, True], played.explain("duplicate-delivery")
    assert result.received == ["snapshot-shared-untrusted"], played.explain("duplicate-delivery")


def test_alerts_carry_the_email_text_and_the_json_document(played: Played) -> None:
    # Given the alerts of the public AMI step: exactly one, ami-public
    result = played.results["make-public"]
    assert [a.rule_id for a in result.alerts] == ["ami-public"], played.explain("make-public")
    (alert,) = result.alerts

    # Then the email subscriber's text and the JSON document describe the same finding
    assert alert.email is not None and "WHAT HAPPENED" in alert.email
    assert alert.subject.startswith("[CRITICAL]")
    assert alert.document["event_id"] == result.event_ids[0]
    assert alert.attributes["rule_id"] == "ami-public"
