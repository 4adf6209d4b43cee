"""Who a launch or create-volume permission names: read from records, from EC2, and compared."""

from __future__ import annotations

from typing import NamedTuple


class Principals(NamedTuple):
    """Who a launch or create-volume permission names."""

    groups: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    organization_arns: tuple[str, ...] = ()
    ou_arns: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.user_ids or self.organization_arns or self.ou_arns)

    @property
    def public(self) -> bool:
        return any(group.lower() == "all" for group in self.groups)

    @property
    def named(self) -> tuple[str, ...]:
        """The accounts, organizations and OUs, in that order (groups aside)."""
        return self.user_ids + self.organization_arns + self.ou_arns

    def without(self, other: Principals) -> Principals:
        """These principals less those in `other`."""
        return Principals(
            groups=tuple(g for g in self.groups if g not in other.groups),
            user_ids=tuple(u for u in self.user_ids if u not in other.user_ids),
            organization_arns=tuple(a for a in self.organization_arns if a not in other.organization_arns),
            ou_arns=tuple(a for a in self.ou_arns if a not in other.ou_arns),
        )

    def as_dict(self) -> dict[str, list[str]]:
        out = {
            "groups": list(self.groups),
            "userIds": list(self.user_ids),
            "organizationArns": list(self.organization_arns),
            "organizationalUnitArns": list(self.ou_arns),
        }
        return {key: value for key, value in out.items() if value}
