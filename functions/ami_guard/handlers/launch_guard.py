"""Launch guard.

Trigger: EventBridge rule on CloudTrail RunInstances.
Output: one SNS alert per finding at or above minSeverity.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ami_guard import contract
from ami_guard.guard import EntryPoint

_guard = EntryPoint(contract.LAUNCH_EVENTS)
logger = _guard.logger


@logger.inject_lambda_context(correlation_id_path="detail.eventID")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _guard(event, context)
