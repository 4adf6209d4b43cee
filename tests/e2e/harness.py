"""The demo harness for tests: AMI Guard deployed by the real CDK CLI into an emulated account (moto's server), the
scenario played through the event runner, the session kept up for the tests to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from demo import report
from demo.emulator import REPO_ROOT
from demo.org_session import OrgDemoSession
from demo.scenario import StepResult
from demo.session import DemoSession

REMEDIATION_STEPS = ("make-public", "share-untrusted", "share-trusted")


@dataclass
class Played:
    session: DemoSession
    results: dict[str, StepResult]
    log: list[str] = field(default_factory=list)

    def explain(self, key: str) -> str:
        """What the demo printed for the step, for an assertion message."""
        result = self.results[key]
        return "\n" + report.step_text(result, total=len(self.results))


def play(*, remediate: bool, regions: tuple[str, ...], keys: tuple[str, ...] | None) -> Iterator[Played]:
    if shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.skip("the pinned CDK CLI is not installed (make setup installs it from package-lock.json)")
    log: list[str] = []
    session = DemoSession(remediate=remediate, regions=regions, log=log.append)
    try:
        session.start()
    except Exception as exc:
        session.stop()
        pytest.fail(f"the demo could not deploy: {exc}\n" + "\n".join(log) + "\n" + session.emulator.log_tail())
    try:
        results = session.play(keys=keys)
        yield Played(session, {r.key: r for r in results}, log)
    finally:
        session.stop()


ORGANIZATION_REMEDIATION_STEPS = ("member-public-other-region", "share-with-member", "share-outside")


@dataclass
class PlayedOrganization:
    session: OrgDemoSession
    results: dict[str, StepResult]
    log: list[str] = field(default_factory=list)

    def explain(self, key: str) -> str:
        """What the demo printed for the step, for an assertion message."""
        return "\n" + report.step_text(self.results[key], total=len(self.results))


def play_organization(*, remediate: bool, keys: tuple[str, ...] | None) -> Iterator[PlayedOrganization]:
    if shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.skip("the pinned CDK CLI is not installed (make setup installs it from package-lock.json)")
    log: list[str] = []
    session = OrgDemoSession(remediate=remediate, log=log.append)
    try:
        session.start()
    except Exception as exc:
        session.stop()
        pytest.fail(f"the organization could not deploy: {exc}\n" + "\n".join(log) + "\n" + session.emulator.log_tail())
    try:
        results = session.play(keys=keys)
        yield PlayedOrganization(session, {r.key: r for r in results}, log)
    finally:
        session.stop()
