"""The AMI Guard CDK code: the AmiGuard construct, the stacks and their components.

`AmiGuard` and `OrganizationProps` are imported on first use, so that importing a component (bench/ imports the
stdlib-only components.bytecode) does not load the CDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ami_guard_cdk.ami_guard_construct import AmiGuard, OrganizationProps

__all__ = ["AmiGuard", "OrganizationProps"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ami_guard_cdk import ami_guard_construct

        return getattr(ami_guard_construct, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
