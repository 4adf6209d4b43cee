"""A sweep's plan, written where the state machine's Distributed Map reads it: the AWS edge of the plan step.

The targets (one `{"account", "region", "run"}` per account-region) go to the sweep bucket as one JSON array,
`runs/<run>/plan.json` (the Map's S3 ItemReader reads it, one child execution per item); the plan step returns only
where it is and how many targets it holds, so that its output stays a few bytes whether the organization has one
account or a thousand (Step Functions caps a state's payload at 256 KB). One s3:PutObject.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ami_guard import contract


def plan_key(run: str) -> str:
    return f"{contract.SWEEP_RUNS_PREFIX}{run}/plan.json"


def results_prefix(run: str) -> str:
    return f"{contract.SWEEP_RUNS_PREFIX}{run}/results"


def write_plan(s3: Any, bucket: str, run: str, targets: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Write the targets; the plan step's output: `{"bucket", "key", "targets": <count>}`."""
    key = plan_key(run)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(list(targets), separators=(",", ":")).encode(),
        ContentType="application/json",
    )
    return {"bucket": bucket, "key": key, "targets": len(targets)}
