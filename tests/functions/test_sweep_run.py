"""The sweep of one account-region against an emulated account (moto): a standing exposure is alerted once, not again
while it stands, and resolved once when it is gone; an open finding the sweep cannot decide is not taken for fixed;
the deployed entry point refuses what is not one of its targets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from ami_guard.aws import SnsPublisher, client_factory, sweep_client_config
from ami_guard.aws_findings import DynamoFindingStore, ProgressRefused
from ami_guard.config import parse_policy
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.sweep.collect import RegionFailed
from ami_guard.sweep.cursor import from_json
from ami_guard.sweep.run import sweep_region, sweep_target
from tests import records as r
from tests.functions.conftest import TABLE, Account, create_table
from tests.functions.sweep_account import CallLog, EmulatedEc2, emulated_account

OUTSIDER = "444455556666"
POLICY = parse_policy({"trustedAccounts": ["555566667777"], "minSeverity": "LOW", "copyTags": False})


@dataclass
class Swept:
    ec2: EmulatedEc2
    inbox: Account

    runs: int = 0

    def run(self, run_id: str, policy: Any = POLICY) -> dict[str, Any]:
        """One whole sweep; each starts an hour after the one before (a run resolves what was opened before it)."""
        hub = client_factory()
        self.runs += 1
        return sweep_region(
            client_factory(sweep_client_config(2)),
            r.ACCOUNT,
            r.REGION,
            policy,
            DynamoFindingStore(hub, TABLE, r.REGION),
            SnsPublisher(hub, self.inbox.topic_arn),
            run_id=run_id,
            now=f"2026-11-30T{self.runs:02d}:00:00Z",
            concurrency=2,
        )

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(n["Message"]) for n in self.inbox.received()]


@pytest.fixture
def swept(monkeypatch: pytest.MonkeyPatch) -> Iterator[Swept]:
    with emulated_account(monkeypatch) as ec2:
        # every guardrail on: the resources below are the only exposures
        ec2.settings.update(
            {
                "GetImageBlockPublicAccessState": "block-new-sharing",
                "GetSnapshotBlockPublicAccessState": "block-all-sharing",
                "GetAllowedImagesSettings": "enabled",
            }
        )
        topic = boto3.client("sns", region_name=r.REGION).create_topic(Name="ami-guard-alerts")["TopicArn"]
        create_table()
        inbox = Account(topic_arn=topic, queue_url="")
        inbox.queue_url = inbox.subscribe_queue("inbox")
        yield Swept(ec2, inbox)


def _seed(ec2: EmulatedEc2) -> dict[str, str]:
    public = ec2.image("web", launch_permissions=[{"Group": "all"}])
    shared = ec2.image("batch", launch_permissions=[{"UserId": OUTSIDER}])
    ec2.image("golden")
    return {"public": public, "shared": shared}


def test_a_standing_exposure_is_alerted_once_and_resolved_once_when_gone(swept: Swept) -> None:
    ids = _seed(swept.ec2)

    # When the sweep runs the first time
    first = swept.run("run-1")

    # Then each standing exposure is alerted once, open, found by the sweep
    alerts = swept.alerts()
    assert sorted((a["rule_id"], a["resources"][0]["id"], a["status"], a["origin"]) for a in alerts) == sorted(
        [
            ("ami-public", ids["public"], "open", "sweep"),
            ("ami-shared-untrusted", ids["shared"], "open", "sweep"),
        ]
    )
    assert (first["alerted"], first["standing"], first["resolved"]) == (2, 0, 0)

    # When it runs again with nothing changed, then nothing is sent
    second = swept.run("run-2")
    assert swept.alerts() == []
    assert (second["alerted"], second["standing"], second["resolved"]) == (0, 2, 0)

    # When the public AMI is made private and the sweep runs, then exactly one notice: that finding resolved
    swept.ec2.ec2().modify_image_attribute(ImageId=ids["public"], LaunchPermission={"Remove": [{"Group": "all"}]})
    third = swept.run("run-3")
    (resolved,) = swept.alerts()
    assert (resolved["rule_id"], resolved["status"], resolved["resources"][0]["id"]) == (
        "ami-public",
        "resolved",
        ids["public"],
    )
    assert resolved["title"].startswith("Resolved: AMI ")
    assert (third["resolved"], third["standing"]) == (1, 1)

    # And when it comes back, it is alerted again
    swept.ec2.ec2().modify_image_attribute(ImageId=ids["public"], LaunchPermission={"Add": [{"Group": "all"}]})
    swept.run("run-4")
    assert [(a["rule_id"], a["status"]) for a in swept.alerts()] == [("ami-public", "open")]


def test_an_open_finding_the_sweep_cannot_decide_stays_open(swept: Swept) -> None:
    ids = _seed(swept.ec2)
    swept.run("run-1")
    swept.alerts()

    # When the launch permissions of the shared image can no longer be read (EC2 refuses the attribute read)
    def refused(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Code": "UnauthorizedOperation", "Message": "You are not authorized to perform this operation."}
        return SimpleNamespace(status_code=403, headers={}), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.ec2.DescribeImageAttribute", refused)
    summary = swept.run("run-2")

    # Then the finding is not resolved: nothing is sent, and the check is counted as undecided
    assert swept.alerts() == []
    assert summary["resolved"] == 0 and summary["undecided"] >= 1
    assert ids["shared"]


def test_below_min_severity_nothing_is_alerted_or_recorded(swept: Swept) -> None:
    swept.ec2.image("legacy", virtualization_type="paravirtual")
    swept.run("run-1", parse_policy({"minSeverity": "HIGH"}))
    assert swept.alerts() == []
    swept.run("run-2", POLICY)
    assert [a["rule_id"] for a in swept.alerts()] == ["image-paravirtual"]


def test_a_finding_an_event_alerted_is_not_alerted_again_and_is_resolved_by_the_sweep(swept: Swept) -> None:
    ids = _seed(swept.ec2)
    # Given the permission guard alerted on the public AMI when it was made public (what it records, as it records it)
    key = f"{r.ACCOUNT}/{r.REGION}/ami-public/image:{ids['public']}"
    alerted = Finding(
        "ami-public",
        Severity.CRITICAL,
        f"AMI {ids['public']} made public",
        "",
        (Resource("image", ids["public"], r.REGION),),
    )
    store = DynamoFindingStore(client_factory(), TABLE, r.REGION)
    assert store.opened(key, alerted, r.ACCOUNT, r.REGION, "event", "2026-11-29T10:00:00Z")

    # When the sweep runs, then it alerts only what no event did
    swept.run("run-1")
    assert [a["rule_id"] for a in swept.alerts()] == ["ami-shared-untrusted"]

    # When the AMI is made private, then the sweep resolves the event's finding
    swept.ec2.ec2().modify_image_attribute(ImageId=ids["public"], LaunchPermission={"Remove": [{"Group": "all"}]})
    swept.run("run-2")
    (resolved,) = swept.alerts()
    assert (resolved["status"], resolved["evidence"]["firstAlertedBy"]) == ("resolved", "event")
    assert resolved["title"] == f"Resolved: AMI {ids['public']} made public"


# --- checkpoints: one account-region over several invocations ----------------------------------------------------


@dataclass
class Stepped:
    """One run of `sweep_target` as the state machine makes it: invoked again with its answer while it is not done,
    the cursor carried as JSON text between invocations."""

    result: dict[str, Any]
    cursors: list[dict[str, Any]]


def run_in_steps(
    swept: Swept,
    run_id: str,
    *,
    now: str,
    time_left_ms: int,
    page_size: int = 2,
    between: Any = None,
) -> Stepped:
    hub = client_factory()
    cursor = None
    cursors: list[dict[str, Any]] = []
    while True:
        result = sweep_target(
            client_factory(sweep_client_config(2)),
            r.ACCOUNT,
            r.REGION,
            POLICY,
            DynamoFindingStore(hub, TABLE, r.REGION),
            SnsPublisher(hub, swept.inbox.topic_arn),
            run_id=run_id,
            now=now,
            cursor=cursor,
            remaining_ms=lambda: time_left_ms,
            page_size=page_size,
            concurrency=2,
        )
        if result["done"]:
            return Stepped(result, cursors)
        carried = json.loads(json.dumps(result))  # what Step Functions hands back
        cursors.append(carried["cursor"])
        if between is not None:
            between(len(cursors))
        cursor = from_json(carried["cursor"], account=r.ACCOUNT, region=r.REGION, run=run_id)


def _seed_pages(ec2: EmulatedEc2) -> dict[str, str]:
    """Exposures spread over several pages of 2: images public, shared, paravirtual; snapshots public and shared."""
    ids = _seed(ec2)
    ids["legacy"] = ec2.image("legacy", virtualization_type="paravirtual")
    ids["open-snapshot"] = ec2.snapshot(groups=["all"])
    ids["shared-snapshot"] = ec2.snapshot(user_ids=[OUTSIDER])
    ec2.snapshot()
    return ids


def _expected_first_run(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    return sorted(
        [
            ("ami-public", ids["public"], "open"),
            ("ami-shared-untrusted", ids["shared"], "open"),
            ("image-paravirtual", ids["legacy"], "open"),
            ("snapshot-public", ids["open-snapshot"], "open"),
            ("snapshot-shared-untrusted", ids["shared-snapshot"], "open"),
        ]
    )


def _seen(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((a["rule_id"], a["resources"][0]["id"], a["status"]) for a in alerts)


@pytest.mark.parametrize(
    ("time_left_ms", "invocations"),
    [
        # the time of a real invocation: the whole account-region in one, as before checkpoints
        (15 * 60 * 1000, 1),
        # under the margin from the start: one step an invocation
        (1_000, None),
    ],
)
def test_a_target_over_several_invocations_alerts_and_resolves_exactly_what_one_invocation_does(
    swept: Swept, time_left_ms: int, invocations: int | None
) -> None:
    # Given exposures spread over several pages
    ids = _seed_pages(swept.ec2)

    # When the run goes in steps (as short as the budget makes them), its cursor carried as JSON
    first = run_in_steps(swept, "run-1", now="2026-11-30T01:00:00Z", time_left_ms=time_left_ms)

    # Then the alerts are those of the whole account-region, each once
    assert _seen(swept.alerts()) == _expected_first_run(ids)
    summary = first.result
    assert (summary["alerted"], summary["standing"], summary["resolved"], summary["undecided"]) == (5, 0, 0, 0)
    # 4 images and 7 snapshots (one behind each image, three alone) in pages of 2: the settings, 2 image pages,
    # 4 snapshot pages, then the reconcile
    assert summary["pages"] == 1 + 2 + 4
    expected_invocations = invocations if invocations is not None else 1 + 2 + 4 + 1
    assert summary["invocations"] == expected_invocations
    assert len(first.cursors) == expected_invocations - 1
    assert [c["phase"] for c in first.cursors] == (
        [] if invocations else ["images", "images", "snapshots", "snapshots", "snapshots", "snapshots", "reconcile"]
    )
    assert all(len(json.dumps(c)) < 1024 for c in first.cursors)

    # When the public AMI is made private and the run goes in steps again, then exactly one notice: it is resolved
    swept.ec2.ec2().modify_image_attribute(ImageId=ids["public"], LaunchPermission={"Remove": [{"Group": "all"}]})
    second = run_in_steps(swept, "run-2", now="2026-11-30T02:00:00Z", time_left_ms=time_left_ms)
    assert _seen(swept.alerts()) == [("ami-public", ids["public"], "resolved")]
    assert (second.result["alerted"], second.result["standing"], second.result["resolved"]) == (0, 4, 1)


def test_a_finding_an_event_opens_while_the_run_reads_is_not_resolved_by_that_run(swept: Swept) -> None:
    ids = _seed(swept.ec2)
    store = DynamoFindingStore(client_factory(), TABLE, r.REGION)
    key = f"{r.ACCOUNT}/{r.REGION}/ami-public/image:{ids['shared']}"

    def event_opens(step: int) -> None:
        # after the image pages were read, an event alerts that the batch AMI was made public (05:10, during the
        # run that started at 05:00); the pages read it before the change
        if step == 2:
            made_public = Finding(
                "ami-public", Severity.CRITICAL, "made public", "", (Resource("image", ids["shared"], r.REGION),)
            )
            assert store.opened(key, made_public, r.ACCOUNT, r.REGION, "event", "2026-11-30T05:10:00Z")

    # When the run goes in steps and the event lands between two of them
    run_in_steps(swept, "run-1", now="2026-11-30T05:00:00Z", time_left_ms=1_000, between=event_opens)

    # Then the run does not resolve it (it read the AMI before the change)
    assert [a["status"] for a in swept.alerts()] == ["open", "open"]
    assert key in store.open_findings(r.ACCOUNT, r.REGION)
    # And the next run, which reads the AMI after (still not public: the change was undone), resolves it
    run_in_steps(swept, "run-2", now="2026-11-30T06:00:00Z", time_left_ms=1_000)
    assert _seen(swept.alerts()) == [("ami-public", ids["shared"], "resolved")]


def test_a_cursor_that_is_not_the_last_one_handed_out_is_refused_before_anything_is_read(swept: Swept) -> None:
    ids = _seed(swept.ec2)
    run_in_steps(swept, "run-1", now="2026-11-30T01:00:00Z", time_left_ms=15 * 60 * 1000)
    swept.alerts()
    # Given the public AMI fixed, and a run in progress whose first step handed out a cursor at the image pages
    swept.ec2.ec2().modify_image_attribute(ImageId=ids["public"], LaunchPermission={"Remove": [{"Group": "all"}]})
    hub = client_factory()
    store = DynamoFindingStore(hub, TABLE, r.REGION)
    first = sweep_target(
        client_factory(sweep_client_config(2)),
        r.ACCOUNT,
        r.REGION,
        POLICY,
        store,
        SnsPublisher(hub, swept.inbox.topic_arn),
        run_id="run-2",
        now="2026-11-30T02:00:00Z",
        cursor=None,
        remaining_ms=lambda: 1_000,
        page_size=2,
    )
    handed_out = from_json(first["cursor"], account=r.ACCOUNT, region=r.REGION, run="run-2")
    assert handed_out.phase == "images"
    log = CallLog()

    # When a cursor of the right shape skips to the reconcile (which would resolve what the skipped pages hold)
    skipping = handed_out._replace(phase="reconcile", token=None)
    with pytest.raises(ProgressRefused) as refused:
        sweep_target(
            client_factory(sweep_client_config(2)),
            r.ACCOUNT,
            r.REGION,
            POLICY,
            store,
            SnsPublisher(hub, swept.inbox.topic_arn),
            run_id="run-2",
            now="2026-11-30T02:05:00Z",
            cursor=skipping,
        )

    # Then it is refused with the reason, nothing of EC2 is read, and nothing is resolved or sent
    assert str(refused.value) == (
        f"the cursor is not the one the last step of run run-2 in {r.ACCOUNT}/{r.REGION} returned"
    )
    assert [k for k in log.calls if k.startswith("ec2:")] == []
    assert swept.alerts() == []
    assert len(store.open_findings(r.ACCOUNT, r.REGION)) == 2
    # And the cursor the step handed out goes on (the refusal changed nothing)
    done = sweep_target(
        client_factory(sweep_client_config(2)),
        r.ACCOUNT,
        r.REGION,
        POLICY,
        store,
        SnsPublisher(hub, swept.inbox.topic_arn),
        run_id="run-2",
        now="2026-11-30T02:06:00Z",
        cursor=handed_out,
    )
    assert done["done"] is True
    assert _seen(swept.alerts()) == [("ami-public", ids["public"], "resolved")]


def test_a_listing_that_fails_on_a_later_page_resolves_nothing(swept: Swept) -> None:
    ids = _seed_pages(swept.ec2)
    run_in_steps(swept, "run-1", now="2026-11-30T01:00:00Z", time_left_ms=15 * 60 * 1000)
    swept.alerts()
    swept.ec2.ec2().modify_image_attribute(ImageId=ids["public"], LaunchPermission={"Remove": [{"Group": "all"}]})

    # When the snapshot listing fails (throttled beyond botocore's retries) after the image pages were reconciled
    def throttled(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if "SnapshotIds" in params:
            return None
        error = {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
        return SimpleNamespace(status_code=503, headers={}), {"Error": error, "ResponseMetadata": {}}

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.ec2.DescribeSnapshots", throttled)
    with pytest.raises(RegionFailed) as failed:
        run_in_steps(swept, "run-2", now="2026-11-30T02:00:00Z", time_left_ms=15 * 60 * 1000)

    # Then the target fails naming the call, and the fixed AMI is not resolved (the run never reached the reconcile)
    assert failed.value.call == "ec2:DescribeSnapshots"
    assert swept.alerts() == []
