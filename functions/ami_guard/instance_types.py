"""Which virtualization types an EC2 instance type runs, and whether it is current generation.

Three sources, best first: the live DescribeInstanceTypes answer (`InstanceTypeTable.from_describe_pages`),
the bundled snapshot in data/instance_types.json (`bundled_table`), and a family rule over AWS's published
lists for a well-formed type that neither knows (`infer`). The snapshot is read on first use, not at import.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from typing import Any, Final, NamedTuple

HVM: Final = "hvm"
PARAVIRTUAL: Final = "paravirtual"
VIRTUALIZATION_TYPES: Final = frozenset({HVM, PARAVIRTUAL})

# "Previous generation instances" in the Amazon EC2 Instance Types guide
# (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-types.html#previous-gen-instances).
PREVIOUS_GENERATION_FAMILIES: Final = frozenset(
    {"a1", "c1", "c3", "c4", "g3", "i2", "m1", "m2", "m3", "m4", "p3", "p3dn", "r3", "r4", "t1"}
)
# "The following previous generation instance types support PV AMIs: C1, C3, M1, M3, M2, and T1"
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ComponentsAMIs.html#virtualization_types).
PARAVIRTUAL_FAMILIES: Final = frozenset({"c1", "c3", "m1", "m2", "m3", "t1"})
# Families no longer offered: listed in earlier revisions of the EC2 User Guide (previous generation, or P2,
# F1 and G3s as current) and absent from today's lists. None of them is current generation any more.
RETIRED_FAMILIES: Final = frozenset({"cc1", "cc2", "cg1", "cr1", "f1", "g2", "g3s", "hi1", "hs1", "p2"})
# Earlier revisions of the PV page also named HI1 and HS1 ("C1, C3, HS1, M1, M3, M2, and T1").
RETIRED_PARAVIRTUAL_FAMILIES: Final = frozenset({"hi1", "hs1"})

_MAX_LENGTH: Final = 64
_INSTANCE_TYPE = re.compile(
    r"(?P<family>[a-z][a-z0-9]*(?:-[a-z0-9]+)*)"
    r"\.(?:nano|micro|small|medium|large|xlarge|[1-9][0-9]*xlarge|metal(?:-[1-9][0-9]*xl)?)"
)
_DATA_PACKAGE: Final = "ami_guard"
_DATA_FILE: Final = "instance_types.json"


class InstanceTypeInfo(NamedTuple):
    instance_type: str
    virtualization_types: frozenset[str]
    current_generation: bool
    source: str  # "bundled" | "api" | "inferred"

    @property
    def supports_paravirtual(self) -> bool:
        return PARAVIRTUAL in self.virtualization_types

    def supports(self, virtualization_type: str) -> bool:
        """Whether an AMI of this virtualization type ('hvm' or 'paravirtual') can run on the type."""
        return isinstance(virtualization_type, str) and virtualization_type.strip().lower() in self.virtualization_types


def normalize(instance_type: object) -> str | None:
    """'  P2.XLARGE ' -> 'p2.xlarge'; None for anything that is not a well-formed instance type name."""
    if not isinstance(instance_type, str) or len(instance_type) > _MAX_LENGTH:
        return None
    candidate = instance_type.strip().lower()
    return candidate if _family(candidate) is not None else None


def family_of(instance_type: object) -> str | None:
    """'c6gn.large' -> 'c6gn'; None for malformed input."""
    normalized = normalize(instance_type)
    return None if normalized is None else _family(normalized)


def infer(instance_type: object) -> InstanceTypeInfo | None:
    """Classify a well-formed type by its family against AWS's published lists; None for malformed input."""
    normalized = normalize(instance_type)
    if normalized is None:
        return None
    family = _family(normalized)
    if family in PARAVIRTUAL_FAMILIES or family in RETIRED_PARAVIRTUAL_FAMILIES:
        return InstanceTypeInfo(normalized, VIRTUALIZATION_TYPES, current_generation=False, source="inferred")
    previous = family in PREVIOUS_GENERATION_FAMILIES or family in RETIRED_FAMILIES
    return InstanceTypeInfo(normalized, frozenset({HVM}), current_generation=not previous, source="inferred")


class InstanceTypeTable:
    """Exact look-ups, then the fallback table if any, then `infer`."""

    def __init__(self, entries: Iterable[InstanceTypeInfo], *, fallback: InstanceTypeTable | None = None) -> None:
        self._entries = {info.instance_type: info for info in entries}
        self._fallback = fallback

    def get(self, instance_type: object) -> InstanceTypeInfo | None:
        normalized = normalize(instance_type)
        if normalized is None:
            return None
        found = self._entries.get(normalized)
        if found is not None:
            return found
        if self._fallback is not None:
            return self._fallback.get(normalized)
        return infer(normalized)

    def __contains__(self, instance_type: object) -> bool:
        return normalize(instance_type) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[InstanceTypeInfo]:
        return iter(sorted(self._entries.values(), key=lambda info: info.instance_type))

    @classmethod
    def from_describe_pages(
        cls, pages: Iterable[Mapping[str, Any]], *, fallback: InstanceTypeTable | None = None
    ) -> InstanceTypeTable:
        """Build from DescribeInstanceTypes response pages; entries with a malformed shape are skipped."""
        entries: list[InstanceTypeInfo] = []
        for page in pages:
            items = page.get("InstanceTypes") if isinstance(page, Mapping) else None
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                info = _entry(
                    item.get("InstanceType"),
                    item.get("SupportedVirtualizationTypes"),
                    item.get("CurrentGeneration"),
                    source="api",
                )
                if info is not None:
                    entries.append(info)
        return cls(entries, fallback=fallback)

    @classmethod
    def from_snapshot(cls, document: Mapping[str, Any], *, source: str = "bundled") -> InstanceTypeTable:
        """Build from the data/instance_types.json layout: {"types": {"m5.large": {"v": [...], "current": bool}}}."""
        types = document.get("types")
        if not isinstance(types, Mapping):
            return cls([])
        entries = (
            _entry(name, record.get("v"), record.get("current"), source=source)
            for name, record in types.items()
            if isinstance(record, Mapping)
        )
        return cls(info for info in entries if info is not None)


@functools.cache
def bundled_table() -> InstanceTypeTable:
    """The snapshot shipped with the code, read once per process."""
    text = resources.files(_DATA_PACKAGE).joinpath("data").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    return InstanceTypeTable.from_snapshot(document if isinstance(document, Mapping) else {})


def _family(normalized: str) -> str | None:
    match = _INSTANCE_TYPE.fullmatch(normalized)
    if match is None:
        return None
    family = match.group("family")
    return family if any(character.isdigit() for character in family) else None


def _entry(name: object, virtualization: object, current: object, *, source: str) -> InstanceTypeInfo | None:
    normalized = normalize(name)
    if normalized is None or not isinstance(current, bool) or not isinstance(virtualization, list):
        return None
    kinds = frozenset(kind.lower() for kind in virtualization if isinstance(kind, str)) & VIRTUALIZATION_TYPES
    if not kinds:
        return None
    return InstanceTypeInfo(normalized, kinds, current_generation=current, source=source)
