"""Launch guard: the rules of the launches domain (ami_guard.rules.launches).

Trigger: the EventBridge rule on the CloudTrail calls those rules read (ami_guard.rules.catalog.routes("launch")).
Output: one SNS alert per finding at or above minSeverity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ami_guard.guard import EntryPoint

if TYPE_CHECKING:  # a type only: the module costs an import at every cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

_guard = EntryPoint("launch")
logger = _guard.logger


@logger.inject_lambda_context(correlation_id_path="detail.eventID")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _guard(event, context)
