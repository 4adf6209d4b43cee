"""An emulated organization with AMI Guard's hub deployed in its security account and the member stack in each
member account and region, the runner across accounts, its endpoint and the inbox: what
`python -m demo --organization` and tests/e2e use.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from demo.deploy import demo_config
from demo.events_endpoint import EventsEndpoint
from demo.inbox import Inbox
from demo.org_runner import OrgRunner
from demo.org_scenario import HUB_REGION, OrgWorld
from demo.org_scenario import run as run_scenario
from demo.organization import (
    OUTSIDE_ACCOUNT,
    Layout,
    OrgDeployment,
    OrgEmulator,
    build_organization,
    deploy_hub,
    organization_block,
    roll_out_members,
)
from demo.scenario import OTHER
from demo.session import Session, topics_of

REGIONS = (HUB_REGION, OTHER)


def config_for(layout: Layout, *, remediate: bool, regions: Sequence[str] = REGIONS) -> dict[str, Any]:
    """The repository's amiGuard block with the organization's: own accounts trusted through Organizations."""
    return demo_config(
        {
            "trustedAccounts": [],
            "minSeverity": "LOW",
            "remediate": remediate,
            "organization": organization_block(layout, hub_region=HUB_REGION, regions=regions),
        }
    )


class OrgDemoSession(Session):
    run_scenario = run_scenario

    def __init__(
        self,
        *,
        remediate: bool = False,
        enforce_iam: bool = True,
        regions: tuple[str, ...] = REGIONS,
        log: Callable[[str], None] = print,
        work_dir: Path | None = None,
    ) -> None:
        self.remediate = remediate
        self.enforce_iam = enforce_iam
        self.regions = regions
        self.log = log
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="ami-guard-org-demo-"))
        self.emulator = OrgEmulator(work_dir=self.work_dir)
        self.config: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}
        self.layout: Layout | None = None
        self.deployment: OrgDeployment | None = None
        self.runner: OrgRunner | None = None
        self.endpoint: EventsEndpoint | None = None
        self.inbox: Inbox | None = None
        self.world: OrgWorld | None = None
        self.keep_work_dir = False

    def start(self) -> None:
        started = time.monotonic()
        self.log("Starting the emulated accounts (one moto server, every account) ...")
        self.emulator.start()
        self.seconds["emulator"] = time.monotonic() - started
        self.log(f"  listening on {self.emulator.endpoint_url}; log: {self.emulator.log_path}")
        started = time.monotonic()
        self.log("Building the organization (emulated AWS Organizations) ...")
        layout = self.layout = build_organization(self.emulator, self.log)
        for account in (layout.security, *layout.members.values(), OUTSIDE_ACCOUNT):
            self.emulator.view(account)  # each account's harness user, made before IAM is enforced
        self.seconds["organization"] = time.monotonic() - started
        self.config = config_for(layout, remediate=self.remediate, regions=self.regions)
        self.log(
            f"Deploying the hub into the security account {layout.security} ({HUB_REGION}) with the real CDK CLI ..."
        )
        deployment = self.deployment = deploy_hub(
            self.emulator, layout, config=self.config, hub_region=HUB_REGION, log=self.log
        )
        self.log(f"Rolling out the member stack into the Workloads OU's accounts in {', '.join(self.regions)} ...")
        roll_out_members(self.emulator, layout, deployment, regions=self.regions, log=self.log)
        self.seconds.update(deployment.seconds)
        if self.enforce_iam:
            self.emulator.enforce_iam()
            self.log(
                "IAM enforced from now on: each function runs as an action-level stand-in of its deployed role; "
                "a member role is assumed only if its trust policy and the function's own policy allow it (judged "
                "by the harness), and then acts as the action-level stand-in of that member role"
            )
        self.runner = OrgRunner(self.emulator, work_dir=self.work_dir)
        self.runner.runner(layout.security)
        self.endpoint = EventsEndpoint(self.runner)
        self.endpoint.start()
        hub = self.emulator.view(layout.security)
        self.inbox = Inbox(hub, region=HUB_REGION, topic_arns=self.alert_topics())
        self.world = OrgWorld(
            self.emulator, layout, self.runner, self.inbox, events_url=self.endpoint.url, remediate=self.remediate
        )

    def alert_topics(self) -> list[str]:
        """The topic the hub's functions publish to, as their deployed environment says."""
        assert self.layout is not None
        return topics_of(self.emulator.view(self.layout.security).client("lambda", HUB_REGION), [])
