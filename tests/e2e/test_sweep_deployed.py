"""The deployed posture sweep, run twice in the emulated account after the scenario: it alerts once per standing
exposure the events did not already alert, nothing again on the second run, and one `resolved` for the exposure
fixed in between.

moto cannot run the state machine (nor the schedule): demo.sweep walks the deployed definition, invoking the
function it names as Step Functions would (see its docstring). The scenario is played in an account of this module's
own: the other modules' tests add to the shared one (a copy, an event), which would change what stands, and the snapshot
the scenario shared outside is unshared here between the two runs.
"""

from __future__ import annotations

import json
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


def test_the_state_machine_plans_the_own_account_region_in_its_bucket_and_sweeps_it(
    swept: SweepDemo, played: Played
) -> None:
    account = played.session.emulator.account

    for run in (swept.first, swept.second):
        # the plan step wrote the targets to the sweep bucket and said where; the Distributed Map read them there
        assert run.planned["key"] == f"runs/{run.name}/plan.json"
        assert (run.planned["results"], run.planned["targets"]) == (f"runs/{run.name}/results", 1)
        assert run.plan == [{"account": account, "region": HOME, "run": run.name}]
        assert run.failed == []
        # a small account-region is swept in one invocation, as before checkpoints
        assert run.steps == [1]
        assert [a.refused for a in run.attempts] == [[], []]  # no call refused by the deployed role
        # and the children's outputs are in the bucket, where the ResultWriter puts them
        s3 = played.session.emulator.client("s3", HOME)
        manifest_key = run.written["ResultWriterDetails"]["Key"]
        assert manifest_key.startswith(f"runs/{run.name}/results/")
        manifest = json.loads(s3.get_object(Bucket=run.planned["bucket"], Key=manifest_key)["Body"].read())
        (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
        (record,) = json.loads(s3.get_object(Bucket=run.planned["bucket"], Key=succeeded["Key"])["Body"].read())
        assert json.loads(record["Output"]) == run.results[0]


def test_the_first_run_alerts_the_standing_exposure_no_event_alerted_and_resolves_what_is_gone(
    swept: SweepDemo, played: Played
) -> None:
    images = played.session.world.images
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
    assert (summary["done"], summary["alerted"], summary["resolved"], summary["invocations"]) == (True, 1, 4, 1)


def test_the_second_run_alerts_nothing_again_and_resolves_the_exposure_fixed(swept: SweepDemo, played: Played) -> None:
    world = played.session.world
    snapshot = world.snapshot_of(HOME, world.images["shared"])
    (summary,) = swept.second.results

    assert found(swept.second_alerts) == [("resolved", "sweep", "snapshot-shared-untrusted", snapshot)]
    assert (summary["findings"], summary["standing"], summary["alerted"], summary["resolved"]) == (5, 5, 0, 1)
