"""The plan step at an organization's scale: 1,000 accounts x 17 regions are 17,000 targets, written to the sweep
bucket for the Distributed Map's ItemReader; the step's own output (what Step Functions carries) stays a few bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ami_guard.config import Organization, Policy
from ami_guard.handlers.sweep_guard import plan
from ami_guard.settings import Settings
from ami_guard.sweep.plan import write_plan

REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-south-1",
    "sa-east-1",
)
BUCKET = "amiguard-sweep-runs"
RUN = "sweep-2026-11-30T06-00"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def test_an_organization_of_1000_accounts_in_17_regions_is_planned_in_s3_and_the_step_output_stays_tiny(
    s3: object,
) -> None:
    # Given an organization of 1,000 ACTIVE accounts guarded in 17 regions
    organization = Organization("o-exampleorg12", "111122223333", "eu-west-1", REGIONS)
    settings = Settings(
        "arn:aws:sns:eu-west-1:111122223333:alerts", "eu-west-1", Policy(organization=organization), "t"
    )
    accounts = [f"{100000000000 + n:012d}" for n in range(1000)]
    assert len(REGIONS) == 17

    # When the plan step runs
    targets = plan(settings, "111122223333", RUN, accounts)
    output = write_plan(s3, BUCKET, RUN, targets)

    # Then its output says where the targets are and how many: never the list
    assert output == {"bucket": BUCKET, "key": f"runs/{RUN}/plan.json", "targets": 17_000}
    assert len(json.dumps(output)) < 200
    # And the object is the JSON array the Map's ItemReader reads: one {account, region, run} per account-region
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"runs/{RUN}/plan.json")["Body"].read())  # type: ignore[attr-defined]
    assert len(stored) == 17_000
    assert stored[0] == {"account": "100000000000", "region": "us-east-1", "run": RUN}
    assert stored[-1] == {"account": "100000000999", "region": "sa-east-1", "run": RUN}
    assert len({(t["account"], t["region"]) for t in stored}) == 17_000
    # (inline, the list alone would be well over Step Functions' 256 KB state payload)
    assert len(json.dumps(stored)) > 256 * 1024
