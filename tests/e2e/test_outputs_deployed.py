"""The outputs of the deployed guard (securityHub and chat on, as `make demo` deploys it): the scenario played twice
leaves one Security Hub finding per rule and resource; under remediation the public-AMI finding is resolved; a
user's rule on CRITICAL finding events receives exactly the CRITICAL findings, and no other event of the scenario."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ami_guard import asff
from demo.outputs import ALL_FINDINGS, CRITICAL_FINDINGS, Outputs
from demo.scenario import HOME, OTHER, StepResult
from tests.e2e.harness import Played, play

pytestmark = pytest.mark.e2e


@dataclass
class PlayedTwice:
    first: list[StepResult]
    second: list[StepResult]
    after_first: list[dict[str, Any]]
    after_second: list[dict[str, Any]]


@pytest.fixture(scope="module")
def twice() -> Iterator[PlayedTwice]:
    for played in play(remediate=False, regions=(HOME, OTHER), keys=None):
        outputs = outputs_of(played)
        first = list(played.results.values())
        after_first = outputs.findings()
        second = played.session.play()
        yield PlayedTwice(first, second, after_first, outputs.findings())


def outputs_of(played: Played) -> Outputs:
    outputs = played.session.outputs
    assert outputs is not None
    return outputs


def alert_documents(results: list[StepResult]) -> list[dict[str, Any]]:
    return [alert.document for result in results for alert in result.alerts]


def test_both_plays_went_as_expected(twice: PlayedTwice) -> None:
    assert [r.key for r in twice.first if not r.ok] == []
    assert [r.key for r in twice.second if not r.ok] == []


def test_the_scenario_played_twice_leaves_one_finding_per_rule_and_resource(twice: PlayedTwice) -> None:
    # Given every alert of both plays, and the finding each one is (its rule and resource)
    documents = alert_documents(twice.first) + alert_documents(twice.second)
    expected = {asff.finding_id(doc) for doc in documents}

    # Then Security Hub holds exactly one finding per rule and resource, fewer than the alerts: repeats updated
    ids = [finding["Id"] for finding in twice.after_second]
    assert sorted(ids) == sorted(expected)
    assert len(ids) < len(documents)
    # and a finding about the same resource in both plays (an account setting) was updated, not added
    again = {asff.finding_id(doc) for doc in alert_documents(twice.first)} & {
        asff.finding_id(doc) for doc in alert_documents(twice.second)
    }
    assert again, "the scenario raises no finding about the same resource twice"
    updated = {f["Id"]: f["UpdatedAt"] for f in twice.after_second}
    first = {f["Id"]: f["UpdatedAt"] for f in twice.after_first}
    assert all(updated[key] > first[key] for key in again)


def test_each_finding_is_in_its_accounts_default_product_with_its_rule_as_generator(twice: PlayedTwice) -> None:
    for finding in twice.after_second:
        account, region = finding["AwsAccountId"], finding["Region"]
        assert finding["ProductArn"] == f"arn:aws:securityhub:{region}:{account}:product/{account}/default"
        assert finding["Id"].startswith(f"ami-guard/{account}/") or finding["Id"].startswith("ami-guard/sha256:")
        assert finding["GeneratorId"] == finding["ProductFields"]["ami-guard/rule_id"]


def test_under_remediation_the_public_ami_finding_is_resolved(remediated: Played) -> None:
    # Given the public-AMI step played with remediation on
    (alert,) = [a for a in remediated.results["make-public"].alerts if a.rule_id == "ami-public"]

    # Then its Security Hub finding is passed and resolved
    findings = {f["Id"]: f for f in outputs_of(remediated).findings()}
    finding = findings[asff.finding_id(alert.document)]
    assert finding["Compliance"] == {"Status": "PASSED"}
    assert finding["Workflow"] == {"Status": "RESOLVED"}


def test_a_users_critical_rule_receives_exactly_the_critical_finding_events(played: Played) -> None:
    # Given the alerts of the whole scenario
    documents = alert_documents(list(played.results.values()))
    critical = sorted((d["rule_id"], d["event_id"]) for d in documents if d["severity"] == "CRITICAL")

    # When the user's rules' queues are read
    outputs = outputs_of(played)
    received = outputs.events(CRITICAL_FINDINGS)
    everything = outputs.events(ALL_FINDINGS)

    # Then the CRITICAL rule got one finding event per CRITICAL alert and nothing else (no CloudTrail record the
    # scenario played, no other severity), and the rule on the source got one event per alert
    assert critical, "the scenario raises no CRITICAL finding"
    assert {(e["source"], e["detail-type"]) for e in received} == {("ami-guard", "AMI Guard Finding")}
    assert sorted((e["detail"]["rule_id"], e["detail"]["event_id"]) for e in received) == critical
    assert len(everything) == len(documents)
    assert {e["source"] for e in everything} == {"ami-guard"}


def test_chat_received_a_card_per_alert(played: Played) -> None:
    documents = alert_documents(list(played.results.values()))

    cards = outputs_of(played).chat_cards()

    assert len(cards) == len(documents)
    assert {card["source"] for card in cards} == {"custom"}
