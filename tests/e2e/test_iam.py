"""IAM in the emulated account: enforced after the deployment, the functions' calls judged at the action level
against their deployed roles, and a deployed layer the runner cannot supply refused.

The tests that break a role or a layer put it back afterwards, and replay the step to show it passes again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ami_guard import contract
from demo import report
from demo.scenario import HOME, STEP_KEYS, STEPS, StepResult, run_step
from tests.e2e.harness import Played

pytestmark = pytest.mark.e2e

LAUNCH_GUARD_ACTION = "ec2:DescribeInstanceTypes"
QUIET_LAUNCH_STEP = "launch-hvm"  # expects no alert: a guard that silently fails to look up passes it unless IAM says


def _replay(played: Played, key: str) -> StepResult:
    world = played.session.world
    assert world is not None
    number = STEP_KEYS.index(key) + 1
    return run_step(world, number, STEPS[number - 1])


def _function(played: Played, handler: str) -> dict[str, Any]:
    functions = played.session.emulator.client("lambda", HOME).list_functions()["Functions"]
    (found,) = [f for f in functions if f["Handler"] == handler]
    return found


def test_iam_is_enforced_after_the_deployment(played: Played) -> None:
    # Given the played session, and a key that belongs to no IAM user
    emulator = played.session.emulator
    stranger = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE000000000", aws_secret_access_key="0" * 40, region_name=HOME
    ).client("ec2", endpoint_url=emulator.endpoint_url, config=Config(retries={"total_max_attempts": 1}))

    # When it asks for the account's images
    with pytest.raises(ClientError) as refused:
        stranger.describe_images(Owners=["self"])

    # Then the emulator refuses it (it would answer anyone without enforcement)
    assert emulator.iam_enforced
    assert refused.value.response["Error"]["Code"] == "AuthFailure"


def test_no_call_of_a_guard_function_was_refused_in_the_scenario(played: Played) -> None:
    # Given every delivery the scenario made to a guard function
    deliveries = [d for result in played.results.values() for d in result.deliveries if d.function_name]
    assert len(deliveries) >= len(played.results)

    # Then IAM refused none of their calls
    assert [(d.function_name, d.refused) for d in deliveries if d.refused] == []


@pytest.fixture
def launch_guard_without_describe_instance_types(played: Played) -> Iterator[str]:
    """The launch guard's deployed role without its ec2:DescribeInstanceTypes grant, put back afterwards."""
    iam = played.session.emulator.client("iam", HOME)
    role = _function(played, contract.LAUNCH_HANDLER)["Role"].rsplit("/", 1)[-1]
    originals: dict[str, dict[str, Any]] = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if LAUNCH_GUARD_ACTION in actions:
                originals.setdefault(name, json.loads(json.dumps(document)))
                statement["Action"] = [a for a in actions if a != LAUNCH_GUARD_ACTION] or ["ec2:DescribeRegions"]
        if name in originals:
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
    assert originals, f"the deployed launch guard role {role} does not grant {LAUNCH_GUARD_ACTION}"
    try:
        yield role
    finally:
        for name, document in originals.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def test_a_grant_removed_from_a_role_fails_the_step(
    played: Played, launch_guard_without_describe_instance_types: str
) -> None:
    # Given the launch guard's role without ec2:DescribeInstanceTypes, and the step that launches on a current type
    # When the step is played again
    result = _replay(played, QUIET_LAUNCH_STEP)

    # Then the refused call fails the step, although no alert was expected and none came
    refused = [(d.function_name, r["action"], r["error"]) for d in result.deliveries for r in d.refused]
    assert refused == [("AmiGuard-LaunchGuard", LAUNCH_GUARD_ACTION, "AccessDenied")]
    assert not result.ok
    assert result.verdict == "failed"
    assert any(LAUNCH_GUARD_ACTION in problem and "AmiGuard-LaunchGuard" in problem for problem in result.problems)
    # and the demo prints it
    assert f"IAM refused {LAUNCH_GUARD_ACTION}" in report.step_text(result, total=len(STEP_KEYS))


def test_the_step_passes_again_with_the_grant_back(played: Played) -> None:
    # Given the launch guard's role as deployed (the test above put the grant back)
    # When the same step is played again
    result = _replay(played, QUIET_LAUNCH_STEP)

    # Then nothing is refused and the step is as expected
    assert [d.refused for d in result.deliveries] == [[]]
    assert result.ok, report.step_text(result, total=len(STEP_KEYS))


@pytest.fixture
def launch_guard_with_a_foreign_layer(played: Played) -> Iterator[str]:
    """The launch guard given a layer named as Powertools' but published in the emulated account; removed after."""
    lambda_ = played.session.emulator.client("lambda", HOME)
    name = _function(played, contract.LAUNCH_HANDLER)["FunctionName"]
    layer = lambda_.publish_layer_version(
        LayerName="AWSLambdaPowertoolsPythonV3-python313-arm64", Content={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}
    )["LayerVersionArn"]
    lambda_.update_function_configuration(FunctionName=name, Layers=[layer])
    try:
        yield layer
    finally:
        lambda_.update_function_configuration(FunctionName=name, Layers=[])


def test_a_layer_the_runner_cannot_supply_fails_the_invocation(
    played: Played, launch_guard_with_a_foreign_layer: str
) -> None:
    # Given the launch guard's configuration naming a layer of this account (GetFunction reports it)
    # When the step that launches on a current type is played again
    result = _replay(played, QUIET_LAUNCH_STEP)

    # Then the runner refuses the layer: every attempt fails, saying which layer, and the step fails
    (delivery,) = result.deliveries
    assert [a.error_type for a in delivery.attempts] == ["Runner.LayerRefused"] * 3
    assert launch_guard_with_a_foreign_layer in str(delivery.attempts[-1].error_message)
    assert "not the Powertools public layer" in str(delivery.attempts[-1].error_message)
    assert not result.ok
