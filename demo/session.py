"""One emulated account with AMI Guard deployed into two regions, the runner, its endpoint and the inbox:
what `python -m demo` and tests/e2e both use.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from ami_guard import contract
from demo import scenario
from demo.deploy import Deployment, demo_config, deploy
from demo.emulator import Emulator
from demo.events_endpoint import EventsEndpoint
from demo.inbox import Inbox
from demo.outputs import Outputs
from demo.runner import EventRunner
from demo.scenario import StepResult, World

REGIONS = (scenario.HOME, scenario.OTHER)


def config_for(*, remediate: bool) -> dict[str, Any]:
    """The repository's amiGuard block, trusting the scenario's trusted account, alerting from LOW."""
    return demo_config(
        {
            "trustedAccounts": [scenario.TRUSTED_ACCOUNT],
            "trustedImageOwners": list(scenario.TRUSTED_IMAGE_OWNERS),
            "minSeverity": "LOW",
            "remediate": remediate,
            # the outputs (docs/integrations.md): findings into Security Hub and onto a chat topic as well
            "securityHub": True,
            "chat": True,
        }
    )


class Session:
    """What the account's and the organization's demo sessions share: playing the scenario, timing it, and stopping
    the endpoint and the emulator (keeping the work directory when the start failed, for the logs)."""

    run_scenario: Callable[..., list[StepResult]]
    world: Any
    endpoint: EventsEndpoint | None
    emulator: Any
    work_dir: Path
    seconds: dict[str, float]
    keep_work_dir: bool
    _own_work_dir: bool

    def start(self) -> None:
        raise NotImplementedError

    def play(
        self, *, keys: Sequence[str] | None = None, on_step: Callable[[StepResult], None] | None = None
    ) -> list[StepResult]:
        assert self.world is not None, "start() first"
        started = time.monotonic()
        results = type(self).run_scenario(self.world, keys=keys, on_step=on_step)
        self.seconds["scenario"] = time.monotonic() - started
        return results

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
        self.emulator.stop()
        if self._own_work_dir and not self.keep_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.keep_work_dir = True
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def topics_of(lambda_client: Any, topics: list[str]) -> list[str]:
    """Add the alert topic each function of this client's account and region publishes to (its deployed environment)."""
    for function in lambda_client.list_functions()["Functions"]:
        topic = function.get("Environment", {}).get("Variables", {}).get(contract.ENV_TOPIC_ARN)
        if topic and topic not in topics:
            topics.append(topic)
    return topics


class DemoSession(Session):
    run_scenario = scenario.run

    def __init__(
        self,
        *,
        remediate: bool = False,
        enforce_iam: bool = True,
        account: str = scenario.ACCOUNT,
        regions: tuple[str, ...] = REGIONS,
        log: Callable[[str], None] = print,
        work_dir: Path | None = None,
    ) -> None:
        self.remediate = remediate
        self.enforce_iam = enforce_iam
        self.regions = regions
        self.config = config_for(remediate=remediate)
        self.log = log
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="ami-guard-demo-"))
        self.emulator = Emulator(account=account, work_dir=self.work_dir)
        self.seconds: dict[str, float] = {}
        self.deployment: Deployment | None = None
        self.runner: EventRunner | None = None
        self.endpoint: EventsEndpoint | None = None
        self.inbox: Inbox | None = None
        self.world: World | None = None
        self.outputs: Outputs | None = None
        self.keep_work_dir = False

    def start(self) -> None:
        started = time.monotonic()
        self.log(f"Starting the emulated account {self.emulator.account} (moto server) ...")
        self.emulator.start()
        self.seconds["emulator"] = time.monotonic() - started
        self.log(f"  listening on {self.emulator.endpoint_url}; log: {self.emulator.log_path}")
        self.log(f"Deploying AMI Guard into {', '.join(self.regions)} with the real CDK CLI ...")
        self.deployment = deploy(self.emulator, config=self.config, regions=self.regions, log=self.log)
        self.seconds.update(self.deployment.seconds)
        if self.enforce_iam:
            # after the deployment: moto could not judge the CDK CLI's bootstrap roles (see demo.iam_enforcement)
            self.emulator.enforce_iam()
            self.log(
                "IAM enforced from now on: each function runs as an action-level stand-in of its deployed role "
                "(same actions, any resource, no conditions); a call whose action its role does not grant fails "
                "the step"
            )
        # Security Hub enabled, the user's own rules on the default bus (with the harness's key, as a user would)
        self.outputs = Outputs.prepare(self.emulator, self.regions)
        self.runner = EventRunner(self.emulator, work_dir=self.work_dir)
        self.endpoint = EventsEndpoint(self.runner)
        self.endpoint.start()
        self.inbox = Inbox(self.emulator, region=scenario.HOME, topic_arns=self.alert_topics())
        self.world = World(
            self.emulator, self.runner, self.inbox, events_url=self.endpoint.url, remediate=self.remediate
        )

    def alert_topics(self) -> list[str]:
        """The topic each region's functions publish to, as their deployed environment says."""
        topics: list[str] = []
        for region in self.regions:
            topics_of(self.emulator.client("lambda", region), topics)
        return topics
