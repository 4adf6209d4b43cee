"""Tamper guard.

Trigger: EventBridge rule on CloudTrail calls that change Lambda functions and EventBridge rules.
Output: a guard-tampered alert when the call changed one of the functions or rules it watches.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ami_guard import contract
from ami_guard.guard import Dependencies, Handler, build_dependencies, once_per_event
from ami_guard.settings import load_settings

logger = Logger(service=contract.POWERTOOLS_SERVICE_NAME)


@cache
def dependencies() -> Dependencies:
    return build_dependencies(load_settings(), ())


@cache
def _run_once() -> Handler:
    """process() once per CloudTrail event; private, so a mistyped handler string fails as Lambda says it."""
    return once_per_event(dependencies(), logger)


@logger.inject_lambda_context(correlation_id_path="detail.eventID")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run_once()(event, context)
