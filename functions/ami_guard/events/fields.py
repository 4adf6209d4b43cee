"""Tolerant readers of a record's fields: a missing, null or wrongly typed field reads as absent, never raises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def string(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def scalar(value: Any) -> str | None:
    """A string field that some producers wrap as {"value": ...}."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return string(value)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def array(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def items(value: Any) -> list[Any]:
    """CloudTrail's `{"items": [...]}` lists, or a bare list."""
    if isinstance(value, Mapping):
        value = value.get("items")
    return list(value) if isinstance(value, list) else []


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | Mapping):
        out: list[str] = []
        for item in items(value):
            if isinstance(item, str) and item:
                out.append(item)
            elif isinstance(item, Mapping):
                out.extend(text for v in item.values() if (text := string(v)))
        return out
    return []


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
