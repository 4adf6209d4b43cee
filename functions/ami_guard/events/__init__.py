"""CloudTrail records, in any shape a user or EventBridge hands us, to small immutable values. Pure.

One module per domain: calls (the record as an ApiCall, for every function), permissions, run_instances
(launches), images and guard (calls on what the guard depends on). A guard function imports only what its events
need; this package re-exports every name on first use, for the CLI and the tests, without importing every domain
at a cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what __getattr__ below provides, for the type checker
    from ami_guard.events.calls import (
        DRY_RUN_ERROR as DRY_RUN_ERROR,
    )
    from ami_guard.events.calls import (
        Actor as Actor,
    )
    from ami_guard.events.calls import (
        ApiCall as ApiCall,
    )
    from ami_guard.events.calls import (
        Envelope as Envelope,
    )
    from ami_guard.events.calls import (
        SkipEvent as SkipEvent,
    )
    from ami_guard.events.calls import (
        iter_records as iter_records,
    )
    from ami_guard.events.calls import (
        parse_call as parse_call,
    )
    from ami_guard.events.guard import (
        GuardChange as GuardChange,
    )
    from ami_guard.events.guard import (
        guard_change as guard_change,
    )
    from ami_guard.events.images import (
        NewImage as NewImage,
    )
    from ami_guard.events.images import (
        new_image as new_image,
    )
    from ami_guard.events.permissions import (
        PermissionChange as PermissionChange,
    )
    from ami_guard.events.permissions import (
        UnreadChange as UnreadChange,
    )
    from ami_guard.events.permissions import (
        read_create_volume_permission_change as read_create_volume_permission_change,
    )
    from ami_guard.events.permissions import (
        read_launch_permission_change as read_launch_permission_change,
    )
    from ami_guard.events.principals import (
        Principals as Principals,
    )
    from ami_guard.events.run_instances import (
        Launch as Launch,
    )
    from ami_guard.events.run_instances import (
        LaunchTemplateRef as LaunchTemplateRef,
    )
    from ami_guard.events.run_instances import (
        launches as launches,
    )
    from ami_guard.watched import (
        key_id as key_id,
    )

_WHERE = {
    **dict.fromkeys(
        ("DRY_RUN_ERROR", "Actor", "ApiCall", "Envelope", "SkipEvent", "iter_records", "parse_call"), "calls"
    ),
    **dict.fromkeys(("GuardChange", "guard_change"), "guard"),
    **dict.fromkeys(("NewImage", "new_image"), "images"),
    **dict.fromkeys(("Launch", "LaunchTemplateRef", "launches"), "run_instances"),
    **dict.fromkeys(
        (
            "PermissionChange",
            "UnreadChange",
            "read_create_volume_permission_change",
            "read_launch_permission_change",
        ),
        "permissions",
    ),
    "Principals": "principals",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "key_id":
        from ami_guard.watched import key_id as value
    elif name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
