"""Tamper guard.

Trigger: EventBridge rule on CloudTrail calls that change Lambda functions and EventBridge rules.
Output: a guard-tampered alert when the call changed one of the functions or rules it watches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard.guard import EntryPoint

if TYPE_CHECKING:  # a type only: the module costs an import at every cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

_guard = EntryPoint("tamper")
logger = _guard.logger


@logger.inject_lambda_context(correlation_id_path="detail.eventID")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _guard(event, context)
