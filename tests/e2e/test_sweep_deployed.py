"""The deployed posture sweep, run twice in the emulated account after the scenario: it alerts once per standing
exposure the events did not already alert, nothing again on the second run, and one `resolved` for the exposure
fixed in between.

moto cannot run the state machine (nor the schedule): demo.sweep walks the deployed definition, invoking the
function it names as Step Functions would (see its docstring). This module runs last (file order) because it changes
the played account: the web AMI is made private between the two runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from demo.scenario import HOME
from demo.sweep import SweepDemo, play_sweeps
from tests.e2e.harness import Played

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def swept(played: Played) -> Iterator[SweepDemo]:
    session = played.session
    assert session.runner is not None and session.inbox is not None and session.world is not None
    web = session.world.images["web"]

    def make_web_private() -> str:
        session.world.ec2(HOME).modify_image_attribute(ImageId=web, LaunchPermission={"Remove": [{"Group": "all"}]})
        return f"{web} made private"

    yield play_sweeps(session.emulator, session.runner, session.inbox, HOME, make_web_private)


def found(alerts: list[Any]) -> list[tuple[str, str, str, str]]:
    """(status, origin, rule id, first resource id) of each alert, sorted."""
    return sorted(
        (a.document.get("status"), a.document.get("origin"), a.rule_id, a.document["resources"][0]["id"])
        for a in alerts
    )


def test_the_state_machine_plans_the_own_account_region_and_sweeps_it(swept: SweepDemo, played: Played) -> None:
    account = played.session.emulator.account

    for run in (swept.first, swept.second):
        assert run.plan == [{"account": account, "region": HOME, "run": run.name}]
        assert run.failed == []
        assert [a.refused for a in run.attempts] == [[], []]  # no call refused by the deployed role


def test_the_first_run_alerts_once_per_standing_exposure_the_events_left_unalerted(
    swept: SweepDemo, played: Played
) -> None:
    images = played.session.world.images
    alerts = found(swept.first_alerts)

    # each alert once, open, from the sweep
    assert len(alerts) == len(set(alerts))
    assert {(status, origin) for status, origin, _, _ in alerts} == {("open", "sweep")}
    # the exposures the scenario's events already alerted are recorded open: not alerted again
    alerted_by_events = {("ami-public", images["web"]), ("ami-shared-untrusted", images["shared"])}
    assert not {(rule, resource) for _, _, rule, resource in alerts} & alerted_by_events
    assert [(rule, name) for rule, name in EXPECTED_FIRST] == EXPECTED_FIRST  # written out below
    named = {image: name for name, image in images.items()}
    assert sorted((rule, named.get(resource, resource)) for _, _, rule, resource in alerts) == EXPECTED_FIRST


def test_the_second_run_sends_only_the_resolved_notice_of_the_exposure_fixed(swept: SweepDemo, played: Played) -> None:
    web = played.session.world.images["web"]

    assert found(swept.second_alerts) == [("resolved", "sweep", "ami-public", web)]


EXPECTED_FIRST: list[tuple[str, str]] = []
