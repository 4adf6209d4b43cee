"""A second emulated account, deployed with remediation on: the guard takes the offending permission away."""

from __future__ import annotations

import pytest

from ami_guard import contract
from demo.scenario import HOME, TRUSTED_ACCOUNT, UNTRUSTED_ACCOUNT
from tests.e2e.harness import REMEDIATION_STEPS, Played

pytestmark = pytest.mark.e2e


# Per step, the rule ids of the alerts that must arrive, written out here (not read from the scenario).
EXPECTED_RULES = {"make-public": ["ami-public"], "share-untrusted": ["ami-shared-untrusted"], "share-trusted": []}


def test_the_remediation_steps_are_those_written_here(remediated: Played) -> None:
    # Given the remediation deployment played
    # Then it played these steps, in this order
    assert list(remediated.results) == list(EXPECTED_RULES) == list(REMEDIATION_STEPS)


@pytest.mark.parametrize("key", REMEDIATION_STEPS)
def test_step_goes_as_expected_with_remediation(remediated: Played, key: str) -> None:
    # Given the app deployed with remediate on, and the remediation steps played
    result = remediated.results[key]

    # Then exactly these alerts arrived, nothing was refused or failed, every check held
    # (the message is what the demo printed for the step)
    assert sorted(result.received) == EXPECTED_RULES[key], remediated.explain(key)
    if result.problems or not all(check.ok for check in result.checks):
        pytest.fail(remediated.explain(key), pytrace=False)


def test_the_public_ami_is_private_again(remediated: Played) -> None:
    # Given the AMI made public
    world = remediated.session.world
    assert world is not None
    image = world.images["web"]

    # When its launch permissions are read back from the emulated account
    permissions = world.launch_permissions(HOME, image)

    # Then nobody may launch it, and the one alert, ami-public, said so
    assert permissions == [], remediated.explain("make-public")
    alerts = remediated.results["make-public"].alerts
    assert [a.rule_id for a in alerts] == ["ami-public"], remediated.explain("make-public")
    (alert,) = alerts
    assert alert.action["status"] == "removed"
    assert alert.action["publicNow"] is False
    assert "private" in (alert.email or "")


def test_only_the_untrusted_share_is_removed(remediated: Played) -> None:
    # Given the AMI shared with an untrusted account, then with a trusted one
    world = remediated.session.world
    assert world is not None

    # When its launch permissions are read back
    permissions = world.launch_permissions(HOME, world.images["shared"])

    # Then the trusted share stays and the untrusted one is gone
    assert {"UserId": TRUSTED_ACCOUNT} in permissions
    assert {"UserId": UNTRUSTED_ACCOUNT} not in permissions


def test_the_deployed_permission_guard_was_told_to_remediate(remediated: Played) -> None:
    # Given the remediation deployment
    functions = remediated.session.emulator.client("lambda", HOME).list_functions()["Functions"]

    # When the permission guard's deployed environment is read
    (guard,) = [f for f in functions if f["Handler"] == contract.PERMISSION_HANDLER]

    # Then it says remediate
    assert guard["Environment"]["Variables"][contract.ENV_REMEDIATE] == "true"
