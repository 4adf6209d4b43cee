"""The rules, one module per domain: each rule a pure function from a parsed change (and looked-up facts) to a
Finding or None, with its id and severity beside it. No boto3, no environment, no logging here. Rule ids are a
public interface (SNS filter policies).

Each rule is declared once, in its domain module's RULES (ami_guard.rules.spec.Rule; the registry is
ami_guard.rules.catalog). A guard function imports only its domains' modules; this package re-exports every
name on first use, for the CLI and the tests, without importing every domain at a cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what __getattr__ below provides, for the type checker
    from ami_guard.findings import Severity
    from ami_guard.rules.account_settings import (
        BLOCK_PUBLIC_ACCESS_DISABLED as BLOCK_PUBLIC_ACCESS_DISABLED,
    )
    from ami_guard.rules.account_settings import (
        block_public_access_disabled as block_public_access_disabled,
    )
    from ami_guard.rules.common import (
        HVM as HVM,
    )
    from ami_guard.rules.common import (
        PARAVIRTUAL as PARAVIRTUAL,
    )
    from ami_guard.rules.copies import (
        COPY_PERMISSIONS_NOT_COPIED as COPY_PERMISSIONS_NOT_COPIED,
    )
    from ami_guard.rules.copies import (
        COPY_TAGS_MISSING as COPY_TAGS_MISSING,
    )
    from ami_guard.rules.copies import (
        MAX_USER_TAGS as MAX_USER_TAGS,
    )
    from ami_guard.rules.copies import (
        PROVENANCE_SOURCE_IMAGE as PROVENANCE_SOURCE_IMAGE,
    )
    from ami_guard.rules.copies import (
        PROVENANCE_SOURCE_REGION as PROVENANCE_SOURCE_REGION,
    )
    from ami_guard.rules.copies import (
        TagPlan as TagPlan,
    )
    from ami_guard.rules.copies import (
        copy_permissions_not_copied as copy_permissions_not_copied,
    )
    from ami_guard.rules.copies import (
        copy_tags_missing as copy_tags_missing,
    )
    from ami_guard.rules.copies import (
        not_the_copy as not_the_copy,
    )
    from ami_guard.rules.copies import (
        plan_tags as plan_tags,
    )
    from ami_guard.rules.copies import (
        restored_tags as restored_tags,
    )
    from ami_guard.rules.copies import (
        user_tags as user_tags,
    )
    from ami_guard.rules.guard import (
        GUARD_TAMPERED as GUARD_TAMPERED,
    )
    from ami_guard.rules.guard import (
        guard_tampered as guard_tampered,
    )
    from ami_guard.rules.images import (
        IMAGE_INSTANCE_STORE as IMAGE_INSTANCE_STORE,
    )
    from ami_guard.rules.images import (
        IMAGE_MISSING_REQUIRED_TAGS as IMAGE_MISSING_REQUIRED_TAGS,
    )
    from ami_guard.rules.images import (
        IMAGE_PARAVIRTUAL as IMAGE_PARAVIRTUAL,
    )
    from ami_guard.rules.images import (
        image_instance_store as image_instance_store,
    )
    from ami_guard.rules.images import (
        image_paravirtual as image_paravirtual,
    )
    from ami_guard.rules.images import (
        missing_required_tags as missing_required_tags,
    )
    from ami_guard.rules.launches import (
        LAUNCH_PARAVIRTUAL as LAUNCH_PARAVIRTUAL,
    )
    from ami_guard.rules.launches import (
        LAUNCH_PREVIOUS_GENERATION as LAUNCH_PREVIOUS_GENERATION,
    )
    from ami_guard.rules.launches import (
        LAUNCH_VIRTUALIZATION_MISMATCH as LAUNCH_VIRTUALIZATION_MISMATCH,
    )
    from ami_guard.rules.launches import (
        launch_paravirtual as launch_paravirtual,
    )
    from ami_guard.rules.launches import (
        launch_previous_generation as launch_previous_generation,
    )
    from ami_guard.rules.launches import (
        launch_virtualization_mismatch as launch_virtualization_mismatch,
    )
    from ami_guard.rules.launches import (
        virtualization_error as virtualization_error,
    )
    from ami_guard.rules.permissions import (
        AMI_PUBLIC as AMI_PUBLIC,
    )
    from ami_guard.rules.permissions import (
        AMI_SHARE_DENIED as AMI_SHARE_DENIED,
    )
    from ami_guard.rules.permissions import (
        AMI_SHARED_UNTRUSTED as AMI_SHARED_UNTRUSTED,
    )
    from ami_guard.rules.permissions import (
        SNAPSHOT_PUBLIC as SNAPSHOT_PUBLIC,
    )
    from ami_guard.rules.permissions import (
        SNAPSHOT_SHARED_UNTRUSTED as SNAPSHOT_SHARED_UNTRUSTED,
    )
    from ami_guard.rules.permissions import (
        ami_public as ami_public,
    )
    from ami_guard.rules.permissions import (
        ami_share_denied as ami_share_denied,
    )
    from ami_guard.rules.permissions import (
        ami_shared_untrusted as ami_shared_untrusted,
    )
    from ami_guard.rules.permissions import (
        snapshot_public as snapshot_public,
    )
    from ami_guard.rules.permissions import (
        snapshot_shared_untrusted as snapshot_shared_untrusted,
    )
    from ami_guard.rules.permissions import (
        untrusted_principals as untrusted_principals,
    )
    from ami_guard.watched import (
        Watched as Watched,
    )

    RULE_SEVERITY: dict[str, Severity]

_WHERE = {
    **dict.fromkeys(("BLOCK_PUBLIC_ACCESS_DISABLED", "block_public_access_disabled"), "account_settings"),
    **dict.fromkeys(("HVM", "PARAVIRTUAL"), "common"),
    **dict.fromkeys(("GUARD_TAMPERED", "guard_tampered"), "guard"),
    **dict.fromkeys(
        (
            "COPY_PERMISSIONS_NOT_COPIED",
            "COPY_TAGS_MISSING",
            "MAX_USER_TAGS",
            "PROVENANCE_SOURCE_IMAGE",
            "PROVENANCE_SOURCE_REGION",
            "TagPlan",
            "copy_permissions_not_copied",
            "copy_tags_missing",
            "not_the_copy",
            "plan_tags",
            "restored_tags",
            "user_tags",
        ),
        "copies",
    ),
    **dict.fromkeys(
        (
            "IMAGE_INSTANCE_STORE",
            "IMAGE_MISSING_REQUIRED_TAGS",
            "IMAGE_PARAVIRTUAL",
            "image_instance_store",
            "image_paravirtual",
            "missing_required_tags",
        ),
        "images",
    ),
    **dict.fromkeys(
        (
            "LAUNCH_PARAVIRTUAL",
            "LAUNCH_PREVIOUS_GENERATION",
            "LAUNCH_VIRTUALIZATION_MISMATCH",
            "launch_paravirtual",
            "launch_previous_generation",
            "launch_virtualization_mismatch",
            "virtualization_error",
        ),
        "launches",
    ),
    **dict.fromkeys(
        (
            "AMI_PUBLIC",
            "AMI_SHARE_DENIED",
            "AMI_SHARED_UNTRUSTED",
            "SNAPSHOT_PUBLIC",
            "SNAPSHOT_SHARED_UNTRUSTED",
            "ami_public",
            "ami_share_denied",
            "ami_shared_untrusted",
            "snapshot_public",
            "snapshot_shared_untrusted",
            "untrusted_principals",
        ),
        "permissions",
    ),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "RULE_SEVERITY":
        from ami_guard.rules.catalog import all_rules
        from ami_guard.rules.spec import severities

        value: Any = severities(all_rules())
    elif name == "Watched":
        from ami_guard.watched import Watched as value
    elif name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
