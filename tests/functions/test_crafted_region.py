"""A crafted awsRegion (a trailing newline, non-ASCII digits) is data: no AWS client is made for it, and the
alert still goes out, saying the action or lookup could not be done (before, botocore's ValueError for the
endpoint failed the invocation and the alert went to the failed-events queue)."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from aws_lambda_powertools import Logger

from ami_guard.config import parse_policy
from ami_guard.guard import process
from tests import records as r
from tests.functions.conftest import Account

CRAFTED = ["eu-west-1\n", "eu-west-\u0661", "eu-west-1\nx"]


def logger() -> Logger:
    return Logger(service=f"ami-guard-test-{uuid.uuid4()}", stream=io.StringIO())


@pytest.mark.parametrize("region", CRAFTED)
def test_remediation_in_a_crafted_region_fails_as_an_action_and_the_alert_goes_out(
    account: Account, region: str
) -> None:
    deps = account.deps(parse_policy({"remediate": True}), "permission")
    record = r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}], region=region)
    summary = process(r.envelope(record), deps, logger())
    assert summary["published"] == ["ami-public"]
    (notification,) = account.received()
    body = json.loads(notification["Message"])
    assert body["region"] == region and body["console_url"] is None
    assert body["action"]["status"] == "failed"
    assert body["action"]["detail"] == f"{region!r} is not an AWS region"


@pytest.mark.parametrize("region", CRAFTED)
def test_a_lookup_in_a_crafted_region_is_undecided_not_a_failed_invocation(account: Account, region: str) -> None:
    deps = account.deps(parse_policy({}), "launch")
    record = r.run_instances("ami-0123456789abcdef0", "m5.large", virtualization_type=None, region=region)
    stream = io.StringIO()
    summary = process(r.envelope(record), deps, Logger(service=f"ami-guard-test-{uuid.uuid4()}", stream=stream))
    assert summary["status"] == "evaluated"
    notes = [json.loads(line) for line in stream.getvalue().splitlines() if '"Check not decided"' in line]
    assert [(n["rules"], f"{region!r} is not an AWS region" in n["reason"]) for n in notes] == [
        ("launch-paravirtual", True)
    ]
