"""The registry: every rule as its domain module declares it (`RULES`), and what follows from them.

A guard function asks for its own routes only (`routes("permission")`), which loads the rule modules of the domains
it hosts (`contract.GUARD_DOMAINS`) and nothing else; the stack, the CLI, the docs and the tests ask for everything.
"""

from __future__ import annotations

import functools
import importlib
from typing import NamedTuple

from ami_guard import contract
from ami_guard.rules.spec import Call, Rule

DOMAINS = tuple(domain for domains in contract.GUARD_DOMAINS.values() for domain in domains)
"""Every rule domain, each hosted by exactly one guard function."""


def domain_rules(domain: str) -> tuple[Rule, ...]:
    rules: tuple[Rule, ...] = importlib.import_module(f"ami_guard.rules.{domain}").RULES
    return rules


class Routes(NamedTuple):
    """What a function (or the CLI: every guard) evaluates: the calls its rules read, and the domains that read
    each of them, in the order they are evaluated."""

    calls: dict[Call, tuple[str, ...]]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({source for source, _ in self.calls}))

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({name for _, name in self.calls}))

    def standing(self) -> frozenset[str]:
        """The ids of these domains' rules that have a standing condition (`Rule.sweep`): their findings have a
        lifecycle (recorded as open when alerted, resolved by the sweep)."""
        return _standing(tuple(sorted({domain for domains in self.calls.values() for domain in domains})))


@functools.cache
def _standing(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(rule.id for domain in domains for rule in domain_rules(domain) if rule.sweep is not None)


@functools.cache
def routes(*guards: str) -> Routes:
    """The routes of these guard functions (all of them when none is named)."""
    calls: dict[Call, tuple[str, ...]] = {}
    for guard in guards or tuple(contract.GUARD_DOMAINS):
        for domain in contract.GUARD_DOMAINS[guard]:
            for rule in domain_rules(domain):
                for call in rule.reads:
                    if domain not in calls.get(call, ()):
                        calls[call] = (*calls.get(call, ()), domain)
    return Routes(calls)


def all_rules() -> tuple[Rule, ...]:
    """Every rule, in the order of the domains; ValueError if two declare the same id."""
    rules = tuple(rule for domain in DOMAINS for rule in domain_rules(domain))
    ids = [rule.id for rule in rules]
    duplicated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if duplicated:
        raise ValueError(f"rule ids declared twice: {', '.join(duplicated)}")
    return rules


def guard_of(rule_id: str) -> str:
    """The function that raises a rule."""
    for guard, domains in contract.GUARD_DOMAINS.items():
        if any(rule.id == rule_id for domain in domains for rule in domain_rules(domain)):
            return guard
    raise KeyError(rule_id)


def markdown_table() -> str:
    """docs/rules.md's rule table (a test keeps the two equal: `python -m ami_guard.rules.catalog` prints it), one
    row per rule with an anchor named after its id (docs/rules.md#<rule id>)."""
    lines = [
        "| rule_id | severity | raised when | what the guard does | the posture sweep finds it standing |",
        "|---|---|---|---|---|",
    ]
    for rule in all_rules():
        standing = "yes" if rule.sweep is not None else "no"
        # the anchor is the rule id (ours, never a record's): a Security Hub finding's SourceUrl ends in #<rule id>
        anchor = f'<a id="{rule.id}"></a>'
        lines.append(f"| {anchor}`{rule.id}` | {rule.severity.name} | {rule.raised_when} | {rule.does} | {standing} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
