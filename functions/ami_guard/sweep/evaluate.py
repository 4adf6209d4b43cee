"""What is exposed now in one account and region: every registered rule's standing condition (`Rule.sweep`) over the
facts the sweep read. Pure: the function, the CLI and the tests evaluate the same way.

Each finding has a key, stable across sweeps and events: its rule and its first resource (kind and id), in its
account and region. The lifecycle (alert once, resolve when gone) rests on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ami_guard.lifecycle import finding_key
from ami_guard.rules.catalog import all_rules, domain_rules
from ami_guard.rules.spec import Undecided

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.findings import Finding
    from ami_guard.sweep.facts import RegionPosture


class RegionFindings(NamedTuple):
    account: str
    region: str
    findings: tuple[Finding, ...]
    """Sorted by key: the same facts give the same list, in the same order."""
    undecided: tuple[Undecided, ...]
    """The checks a missing fact left open (each names the resource and why), then what the collection could not
    read at all."""


ACCOUNT_LEVEL_DOMAIN = "account_settings"
"""The rules over the account's guardrails in the region: evaluated only over a posture that read them (a whole
region, or the settings slice of a checkpointed sweep; `RegionPosture.settings_read`)."""


def evaluate_region(posture: RegionPosture, policy: Policy) -> RegionFindings:
    """The findings of a whole region's posture, or of one slice of it (the same rules; a slice's resources only)."""
    findings: list[Finding] = []
    undecided: list[Undecided] = []
    account_level = {rule.id for rule in domain_rules(ACCOUNT_LEVEL_DOMAIN)}
    for rule in all_rules():
        if rule.sweep is None or (rule.id in account_level and not posture.settings_read):
            continue
        for outcome in rule.sweep(posture, policy):
            if isinstance(outcome, Undecided):
                undecided.append(outcome)
            else:
                findings.append(outcome)
    findings.sort(key=lambda f: finding_key(f, posture.account, posture.region))
    return RegionFindings(posture.account, posture.region, tuple(findings), tuple(undecided))
