"""Finding and Severity: what a rule reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    INFO = 10
    LOW = 20
    MEDIUM = 30
    HIGH = 40
    CRITICAL = 50

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Severity from its name, case-insensitively; ValueError names the allowed values."""
        try:
            return cls[value.strip().upper()]
        except (KeyError, AttributeError):
            allowed = ", ".join(s.name for s in cls)
            raise ValueError(f"{value!r} is not a severity (allowed: {allowed})") from None


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one change. `evidence` and `action` are JSON-ready mappings."""

    rule_id: str
    severity: Severity
    title: str
    description: str
    resources: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""
    action: dict[str, Any] | None = None

    def with_action(self, action: dict[str, Any]) -> Finding:
        return Finding(
            rule_id=self.rule_id,
            severity=self.severity,
            title=self.title,
            description=self.description,
            resources=self.resources,
            evidence=self.evidence,
            recommendation=self.recommendation,
            action=action,
        )
