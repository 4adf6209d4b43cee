"""The "call" a posture sweep's finding is rendered with: nobody made it, the sweep observed it.

An alert is built from a finding and the ApiCall that raised it; a sweep finding has no call, so it gets this one:
event source `ami-guard.sweep` (the alert's `origin: "sweep"`), event name `PostureSweep`, event id the sweep's run,
the time the sweep read the account, and no actor (the email says the change predates the guard or was not seen).
"""

from __future__ import annotations

from ami_guard import contract
from ami_guard.events.calls import Actor, ApiCall


def observation(account: str, region: str, run_id: str, when: str) -> ApiCall:
    return ApiCall(
        event_id=run_id,
        event_name=contract.SWEEP_EVENT_NAME,
        event_source=contract.SWEEP_SOURCE,
        region=region,
        account=account,
        event_time=when,
        actor=Actor(invoked_by="AMI Guard posture sweep"),
    )
