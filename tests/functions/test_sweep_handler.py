"""The sweep function's entry point as its state machine invokes it: the plan written to the bucket, a target swept
in as many invocations as its time allows (the answer handed back as the next input), and a cursor that is not one
it handed out refused before anything is read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ami_guard import contract
from ami_guard.config import parse_policy, to_environment
from ami_guard.handlers import sweep_guard
from tests import records as r
from tests.functions.conftest import TABLE, Account, create_table
from tests.functions.sweep_account import CallLog, EmulatedEc2, emulated_account

BUCKET = "amiguard-sweep-runs"
OUTSIDER = "444455556666"


@dataclass
class Context:
    """Lambda's context, with as much time left as the test says."""

    remaining_ms: int
    invoked_function_arn: str = f"arn:aws:lambda:{r.REGION}:{r.ACCOUNT}:function:AmiGuard-SweepGuard"
    function_name: str = "AmiGuard-SweepGuard"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Deployed:
    ec2: EmulatedEc2
    inbox: Account

    def alerts(self) -> list[tuple[str, str, str]]:
        return sorted(
            (a["rule_id"], a["resources"][0]["id"], a["status"])
            for a in (json.loads(n["Message"]) for n in self.inbox.received())
        )


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    with emulated_account(monkeypatch) as ec2:
        ec2.settings.update(
            {
                "GetImageBlockPublicAccessState": "block-new-sharing",
                "GetSnapshotBlockPublicAccessState": "block-all-sharing",
                "GetAllowedImagesSettings": "enabled",
            }
        )
        topic = boto3.client("sns", region_name=r.REGION).create_topic(Name="ami-guard-alerts")["TopicArn"]
        create_table()
        boto3.client("s3", region_name=r.REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": r.REGION}
        )
        inbox = Account(topic_arn=topic, queue_url="")
        inbox.queue_url = inbox.subscribe_queue("inbox")
        environment = {
            **to_environment(parse_policy({"trustedAccounts": ["555566667777"], "minSeverity": "LOW"})),
            contract.ENV_TOPIC_ARN: topic,
            contract.ENV_IDEMPOTENCY_TABLE: TABLE,
            contract.ENV_SWEEP_BUCKET: BUCKET,
            contract.ENV_SWEEP_CONCURRENCY: "2",
            "AWS_REGION": r.REGION,
        }
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        sweep_guard._state.clear()  # a cold container
        yield Deployed(ec2, inbox)
        sweep_guard._state.clear()


def state_machine(event: dict[str, Any], remaining_ms: int) -> tuple[dict[str, Any], int]:
    """SweepTarget, then MoreToSweep's loop: the function's answer (through JSON) is its next input while it says
    it is not done. (Its last answer, and how many invocations it took.)"""
    answer = sweep_guard.lambda_handler(event, Context(remaining_ms))
    invocations = 1
    while answer.get("done") is False:
        answer = sweep_guard.lambda_handler(json.loads(json.dumps(answer)), Context(remaining_ms))
        invocations += 1
    return answer, invocations


def test_the_plan_goes_to_the_bucket_and_a_target_is_swept_over_as_many_invocations_as_its_time_allows(
    deployed: Deployed,
) -> None:
    public = deployed.ec2.image("web", launch_permissions=[{"Group": "all"}])
    shared = deployed.ec2.snapshot(user_ids=[OUTSIDER])

    # When the state machine plans
    planned = sweep_guard.lambda_handler({"plan": True, "run": "run-1"}, Context(900_000))

    # Then the targets are in the bucket, and the step's output says where
    assert planned == {"bucket": BUCKET, "key": "runs/run-1/plan.json", "results": "runs/run-1/results", "targets": 1}
    stored = boto3.client("s3", region_name=r.REGION).get_object(Bucket=BUCKET, Key="runs/run-1/plan.json")
    (target,) = json.loads(stored["Body"].read())
    assert target == {"account": r.ACCOUNT, "region": r.REGION, "run": "run-1"}

    # When the target is swept with 2 minutes left in each invocation (under the 5-minute margin: one step each)
    summary, invocations = state_machine(target, 120_000)

    # Then it took one invocation per phase (settings, images, snapshots, reconcile), and alerted each exposure once
    assert invocations == 4
    assert (summary["done"], summary["status"], summary["invocations"], summary["alerted"]) == (True, "swept", 4, 2)
    assert deployed.alerts() == [
        ("ami-public", public, "open"),
        ("snapshot-shared-untrusted", shared, "open"),
    ]
    # And with a whole invocation's time, the next run is one invocation that finds both standing
    again, invocations = state_machine({**target, "run": "run-2"}, 900_000)
    assert (invocations, again["standing"], again["alerted"], again["resolved"]) == (1, 2, 0, 0)
    assert deployed.alerts() == []


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        ("garbled", "the cursor is not an object: str"),
        ({"v": 1}, "the cursor's fields are not a cursor's:"),
        (
            {
                "v": 1,
                "account": r.ACCOUNT,
                "region": r.REGION,
                "run": "run-1",
                "started": "2026-11-30T06:00:00Z",
                "phase": "snapshots",
                "token": None,
                "counts": dict.fromkeys(
                    ("findings", "alerted", "standing", "resolved", "undecided", "unread", "pages", "invocations"), 0
                ),
                "calls": {},
            },
            f"the cursor is not the one the last step of run run-1 in {r.ACCOUNT}/{r.REGION} returned",
        ),
    ],
)
def test_a_cursor_the_function_did_not_hand_out_is_refused_and_nothing_is_read(
    deployed: Deployed, cursor: Any, reason: str
) -> None:
    deployed.ec2.image("web", launch_permissions=[{"Group": "all"}])
    log = CallLog()

    answer = sweep_guard.lambda_handler(
        {"account": r.ACCOUNT, "region": r.REGION, "run": "run-1", "cursor": cursor}, Context(900_000)
    )

    assert answer["status"] == "refused"
    assert answer["reason"].startswith(reason)
    assert [call for call in log.calls if call.startswith("ec2:")] == []
    assert deployed.alerts() == []
