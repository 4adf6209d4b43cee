"""The deployed posture sweep, run twice in the emulated account after the scenario: it alerts once per standing
exposure the events did not already alert, nothing again on the second run, and one `resolved` for the exposure
fixed in between.

moto cannot run the state machine (nor the schedule): demo.sweep walks the deployed definition, invoking the
function it names as Step Functions would (see its docstring). The scenario is played in an account of this module's
own: the other modules' tests add to the shared one (a copy, an event), which would change what stands, and the snapshot
the scenario shared outside is unshared here between the two runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from demo.scenario import HOME, OTHER
from demo.sweep import SweepDemo, play_sweeps, unshare_snapshot
from tests.e2e.harness import Played, play

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def played() -> Iterator[Played]:
    """The scenario played once, every step, in an account only this module uses."""
    yield from play(remediate=False, regions=(HOME, OTHER), keys=None)


@pytest.fixture(scope="module")
def swept(played: Played) -> Iterator[SweepDemo]:
    session = played.session
    assert session.runner is not None and session.inbox is not None and session.world is not None
    yield play_sweeps(session.emulator, session.runner, session.inbox, HOME, unshare_snapshot(session.world, HOME))


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


def key(account: str, rule: str, resource: str) -> str:
    """The sweep's finding key (ami_guard.sweep.evaluate.finding_key) in the home region."""
    return f"{account}/{HOME}/{rule}/{resource}"


def test_the_first_run_alerts_the_standing_exposure_no_event_alerted_and_resolves_what_is_gone(
    swept: SweepDemo, played: Played
) -> None:
    images = played.session.world.images
    account = played.session.emulator.account
    # the copy the copy-tagged step made: its tags lost, then restored by the image guard (copyTags on)
    (copy,) = [r["id"] for a in played.results["copy-tagged"].alerts for r in a.document["resources"][:1]]
    (summary,) = swept.first.results

    # one exposure stands that no event alerted: the paravirtual AMI registered before the guard was deployed
    # (the scenario's prepare step). The five others standing were alerted by the events and are recorded open:
    # the web AMI public, the batch AMI shared outside, and the paravirtual, instance-store and untrusted-owner
    # findings of the register and launch steps.
    assert found(swept.first_alerts) == sorted(
        [
            ("open", "sweep", "image-paravirtual", images["legacy-pv"]),
            # what the events alerted and the sweep finds fixed: the guardrails (the scenario's events about them are
            # records only; the emulator answers every guardrail on) and the copy whose tags the guard restored
            ("resolved", "sweep", "allowed-images-audit-only", "allowed-images"),
            ("resolved", "sweep", "ami-block-public-access-disabled", "image-block-public-access"),
            ("resolved", "sweep", "snapshot-block-public-access-disabled", "snapshot-block-public-access"),
            ("resolved", "sweep", "copy-tags-missing", copy),
        ]
    )
    assert (summary["findings"], summary["standing"], summary["undecided"], summary["unread"]) == (6, 5, 0, 0)
    assert summary["alerted"] == [key(account, "image-paravirtual", f"image:{images['legacy-pv']}")]


def test_the_second_run_alerts_nothing_again_and_resolves_the_exposure_fixed(swept: SweepDemo, played: Played) -> None:
    world = played.session.world
    snapshot = world.snapshot_of(HOME, world.images["shared"])
    account = played.session.emulator.account
    (summary,) = swept.second.results

    assert found(swept.second_alerts) == [("resolved", "sweep", "snapshot-shared-untrusted", snapshot)]
    assert (summary["findings"], summary["standing"], summary["alerted"]) == (5, 5, [])
    assert summary["resolved"] == [key(account, "snapshot-shared-untrusted", f"snapshot:{snapshot}")]
