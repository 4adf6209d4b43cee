"""One played demo per test session and configuration, each in its own emulated account: the default configuration
(both regions, every step) and remediation on (the home region, the steps remediation changes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from demo.scenario import HOME, OTHER
from tests.e2e.harness import REMEDIATION_STEPS, Played, play


@pytest.fixture(scope="session")
def played() -> Iterator[Played]:
    yield from play(remediate=False, regions=(HOME, OTHER), keys=None)


@pytest.fixture(scope="session")
def remediated() -> Iterator[Played]:
    yield from play(remediate=True, regions=(HOME,), keys=REMEDIATION_STEPS)
