"""Every step of the demo scenario, against the deployed app: the expected alerts arrive, no other alert does,
every event reaches a guard function that evaluates it, and the account is as it should be afterwards."""

from __future__ import annotations

import pytest

from demo.scenario import STEP_KEYS, STEPS
from tests.e2e.harness import Played

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("key", STEP_KEYS)
def test_step_goes_as_expected(played: Played, key: str) -> None:
    # Given the app deployed into the emulated account and the scenario played once
    result = played.results[key]

    # Then (the message is what the demo printed for the step)
    if not result.ok:
        pytest.fail(played.explain(key), pytrace=False)


def test_every_step_names_what_it_expects() -> None:
    # Given the scenario
    # Then the risky changes all expect an alert, and the harmless ones expect none
    quiet = {step.key for step in STEPS if not step.expected}
    assert quiet == {"share-trusted", "launch-hvm", "copy-with-tags"}


def test_the_duplicate_is_delivered_twice_and_alerts_once(played: Played) -> None:
    # Given the step that hands the same CloudTrail record to EventBridge twice
    result = played.results["duplicate-delivery"]

    # Then the guard ran twice, both runs succeeded, and one alert reached the inbox
    assert [d.ok for d in result.deliveries] == [True, True], played.explain("duplicate-delivery")
    assert result.received == ["snapshot-shared-untrusted"], played.explain("duplicate-delivery")


def test_alerts_carry_the_email_text_and_the_json_document(played: Played) -> None:
    # Given the alert of the public AMI
    alert = next(a for a in played.results["make-public"].alerts if a.rule_id == "ami-public")

    # Then the email subscriber's text and the JSON document describe the same finding
    assert alert.email is not None and "WHAT HAPPENED" in alert.email
    assert alert.subject.startswith("[CRITICAL]")
    assert alert.document["event_id"] == played.results["make-public"].event_ids[0]
    assert alert.attributes["rule_id"] == "ami-public"
