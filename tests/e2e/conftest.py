"""One played demo per test session and configuration, each in its own emulated account: the default configuration
(both regions, every step) and remediation on (the home region, the steps remediation changes); and the same two
for the organization demo (every step; remediation on for the steps it changes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from demo.scenario import HOME, OTHER
from tests.e2e.harness import (
    ORGANIZATION_REMEDIATION_STEPS,
    REMEDIATION_STEPS,
    Played,
    PlayedOrganization,
    play,
    play_organization,
)


@pytest.fixture(scope="session")
def played() -> Iterator[Played]:
    yield from play(remediate=False, regions=(HOME, OTHER), keys=None)


@pytest.fixture(scope="session")
def remediated() -> Iterator[Played]:
    yield from play(remediate=True, regions=(HOME,), keys=REMEDIATION_STEPS)


@pytest.fixture(scope="session")
def organization() -> Iterator[PlayedOrganization]:
    yield from play_organization(remediate=False, keys=None)


@pytest.fixture(scope="session")
def organization_remediated() -> Iterator[PlayedOrganization]:
    yield from play_organization(remediate=True, keys=ORGANIZATION_REMEDIATION_STEPS)
