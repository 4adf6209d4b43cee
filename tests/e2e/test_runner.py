"""The event runner's own promises: the endpoint behaves as EventBridge for the AWS SDK, and a function runs from
its deployed zip only, never from this repository's functions/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from ami_guard import contract
from demo import lambda_runtime
from demo.records import Trail, put_events_entry
from demo.runner import HOST_SCRIPT
from demo.scenario import HOME
from tests.e2e.harness import Played

pytestmark = pytest.mark.e2e


def _events_client(played: Played) -> object:
    emulator, endpoint = played.session.emulator, played.session.endpoint
    assert endpoint is not None
    return boto3.session.Session(
        aws_access_key_id=emulator.access_key_id, aws_secret_access_key=emulator.secret_access_key, region_name=HOME
    ).client("events", endpoint_url=endpoint.url, config=Config(retries={"total_max_attempts": 1}))


def test_the_endpoint_answers_other_calls_from_the_emulator(played: Played) -> None:
    # Given the runner's EventBridge endpoint
    events = _events_client(played)

    # When the SDK lists the rules through it
    rules = events.list_rules()["Rules"]  # type: ignore[attr-defined]

    # Then they are the deployed rules
    assert any("ModifyImageAttribute" in (r.get("EventPattern") or "") for r in rules)


def test_put_events_through_the_endpoint_runs_the_guard(played: Played) -> None:
    # Given a CloudTrail record of AMI block public access being switched off
    session = played.session
    assert session.inbox is not None
    record = Trail(account=session.emulator.account).disable_image_block_public_access(HOME)

    # When the SDK puts it on the bus through the endpoint
    response = _events_client(played).put_events(Entries=[put_events_entry(record)])  # type: ignore[attr-defined]

    # Then EventBridge's answer comes back and the alert arrives in the inbox
    assert response["FailedEntryCount"] == 0
    alerts = session.inbox.drain()
    assert [(a.rule_id, a.event_id) for a in alerts] == [("ami-block-public-access-disabled", record["eventID"])]


def test_a_handler_is_never_imported_from_this_repository(tmp_path: Path) -> None:
    # Given an empty deployment package, with this repository's ami_guard installed in the venv (editable)
    task_root = tmp_path / "task"
    task_root.mkdir()
    paths = lambda_runtime.build(tmp_path / "runtime")
    request = {
        "handler": contract.PERMISSION_HANDLER,
        "task_root": str(task_root),
        "layer_paths": [str(paths.layer)],
        "runtime_paths": [str(paths.runtime)],
        "timeout_seconds": 30,
        "result_file": str(tmp_path / "result.json"),
        "event": {},
        "context": {},
    }
    (tmp_path / "request.json").write_text(json.dumps(request))

    # When the runner's Lambda host runs it
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(HOST_SCRIPT), str(tmp_path / "request.json")],
        cwd=task_root,
        capture_output=True,
        check=False,
    )

    # Then the handler is not found, as in Lambda with a package that lacks it
    outcome = json.loads((tmp_path / "result.json").read_text())
    assert completed.returncode == 1
    assert outcome["errorType"] == "Runtime.ImportModuleError", outcome


def test_the_runtime_offers_powertools_and_boto3_only(tmp_path: Path) -> None:
    # Given the import path the runner gives a function besides its package
    paths = lambda_runtime.build(tmp_path)
    code = (
        "import aws_lambda_powertools, boto3\n"
        "try:\n    import moto\nexcept ImportError:\n    print('no moto')\n"
        "try:\n    import aws_cdk\nexcept ImportError:\n    print('no aws_cdk')\n"
    )

    # When an interpreter started as the host starts imports from it
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path += {paths.as_list()!r}\n{code}"],
        capture_output=True,
        text=True,
        check=False,
    )

    # Then Powertools and boto3 are there, and nothing of the development environment is
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[:2] == ["no moto", "no aws_cdk"]


def test_a_copy_reports_its_source_as_ec2_does(played: Played) -> None:
    # Given an image of the scenario in us-east-1, copied into eu-west-1 (moto keeps no source; the emulator does)
    world = played.session.world
    assert world is not None
    source = world.images["us-source"]
    copy = world.ec2(HOME).copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="source-check")["ImageId"]

    # When the copy is described
    image = world.image(HOME, copy)

    # Then it names its source image and region, as EC2's DescribeImages does
    assert (image.get("SourceImageId"), image.get("SourceImageRegion")) == (source, "us-east-1")
