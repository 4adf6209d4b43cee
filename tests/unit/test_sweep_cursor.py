"""The cursor a checkpointed sweep hands back to itself: it survives JSON, stays small whatever the account holds,
and a cursor that is not exactly one of this target's is refused with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ami_guard.sweep.cursor import COUNTS, MAX_BYTES, Cursor, CursorRefused, from_json

ACCOUNT, REGION, RUN = "111122223333", "eu-west-1", "sweep-2026-11-30"


def cursor(**changes: Any) -> Cursor:
    return Cursor(
        ACCOUNT,
        REGION,
        RUN,
        "2026-11-30T06:00:00Z",
        "snapshots",
        "eyJ2IjoyLCJjIjoiNGZmZSJ9",
        {**dict.fromkeys(COUNTS, 0), "findings": 3, "alerted": 2, "pages": 4, "invocations": 1},
        {"ec2:DescribeSnapshots": 6, "ec2:DescribeSnapshotAttribute": 5000},
    )._replace(**changes)


def test_a_cursor_survives_the_state_machine_s_json_and_keeps_its_digest() -> None:
    # Given a cursor, as the state machine carries it (JSON text between two invocations)
    sent = cursor()
    carried = json.loads(json.dumps(sent.as_json()))

    # When it comes back with its target
    back = from_json(carried, account=ACCOUNT, region=REGION, run=RUN)

    # Then it is the same cursor, with the same digest (what the store compares)
    assert back == sent
    assert back.digest() == sent.digest()
    assert carried["phase"] == "snapshots" and carried["token"] == "eyJ2IjoyLCJjIjoiNGZmZSJ9"


def test_a_cursor_stays_small_whatever_the_account_holds() -> None:
    # Given a cursor deep in an account-region of 100,000 snapshots, with EC2's longest token a cursor accepts
    big = cursor(
        token="A" * 2048,
        counts={name: 99_999_999 for name in COUNTS},
        calls={f"ec2:Operation{chr(ord('A') + n)}": 10**9 for n in range(16)},
    )

    # Then it is well under the bound, and the bound well under Step Functions' payload
    size = len(json.dumps(big.as_json()))
    assert size < 4 * 1024 < MAX_BYTES
    assert from_json(big.as_json(), account=ACCOUNT, region=REGION, run=RUN) == big


def _with(**changes: Any) -> dict[str, Any]:
    value = cursor().as_json()
    value.update(changes)
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not an object", "the cursor is not an object: str"),
        (_with(account="444455556666"), "the cursor is for ('444455556666', 'eu-west-1', 'sweep-2026-11-30'), not for"),
        (_with(region="us-east-1"), "the cursor is for ('111122223333', 'us-east-1', 'sweep-2026-11-30'), not for"),
        (_with(run="another-run"), "the cursor is for ('111122223333', 'eu-west-1', 'another-run'), not for"),
        (_with(phase="done"), "the cursor's phase 'done' is not one of images, snapshots, reconcile"),
        (_with(phase="settings"), "the cursor's phase 'settings' is not one of images, snapshots, reconcile"),
        (_with(v=2), "cursor version 2: this function reads version 1"),
        (_with(started="yesterday"), "the cursor's start time is not an ISO 8601 UTC time: 'yesterday'"),
        (_with(token="a b"), "the cursor's token is not a listing token of phase snapshots"),
        (_with(token=12), "the cursor's token is not a listing token of phase snapshots"),
        (_with(phase="reconcile"), "the cursor's token is not a listing token of phase reconcile"),
        (_with(counts={"findings": 1}), "the cursor's counts are not findings, alerted"),
        (_with(counts={**dict.fromkeys(COUNTS, 0), "pages": -1}), "the cursor's count pages is not a count: '-1'"),
        (_with(counts={**dict.fromkeys(COUNTS, 0), "pages": True}), "the cursor's count pages is not a count: 'True'"),
        (_with(calls={"rm -rf": 1}), "the cursor's call count 'rm -rf' is not a count by service:Operation"),
        (_with(extra="x"), "the cursor's fields are not a cursor's: extra missing or unexpected"),
        ({k: v for k, v in cursor().as_json().items() if k != "started"}, "the cursor's fields are not a cursor's: st"),
        (_with(token="A" * 9000), "the cursor is 9"),
    ],
)
def test_a_cursor_that_is_not_exactly_one_of_this_target_is_refused_with_the_reason(value: Any, reason: str) -> None:
    with pytest.raises(CursorRefused) as refused:
        from_json(value, account=ACCOUNT, region=REGION, run=RUN)

    assert str(refused.value).startswith(reason)
