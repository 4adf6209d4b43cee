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
from ami_guard.aws_findings import DynamoFindingStore
from ami_guard.config import parse_policy
from ami_guard.sweep.run import sweep_region
from tests import records as r
from tests.functions.conftest import TABLE, Account, create_table
from tests.functions.sweep_account import EmulatedEc2, emulated_account

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
    from ami_guard.findings import Finding, Resource, Severity

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
