"""Evaluation of changes to the account's EC2 settings: DisableImageBlockPublicAccess."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ami_guard.engine import Actions, Evaluation, Evaluator, Lookups
from ami_guard.rules import account_settings as rules

if TYPE_CHECKING:
    from ami_guard.config import Policy


def _disable_block_public_access(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    result.add(rules.block_public_access_disabled(result.call))


BY_EVENT: dict[str, Evaluator] = {"DisableImageBlockPublicAccess": _disable_block_public_access}
