"""A user's own CDK app adds the AmiGuard construct after `pip install` of this project: the project's wheel is
installed into a directory of its own, and a 12-line app in a directory outside the repository, with that directory
and this environment's site-packages on its path and not the repository, synthesizes with cdk-nag clean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ami_guard_cdk.components import bytecode
from tests.infra.conftest import REPO_ROOT

TIMEOUT_SECONDS = 600
PACKAGED = ("functions", "ami_guard_cdk")
"""The directories pyproject.toml packages (ami_guard from functions/, the CDK code)."""
USER_APP = textwrap.dedent(
    """\
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from ami_guard_cdk import AmiGuard

    app = App()
    stack = Stack(app, "Platform")
    s3.Bucket(stack, "Artifacts", enforce_ssl=True, server_access_logs_prefix="access-logs/")
    AmiGuard(stack, "Guard", trusted_accounts=["111122223333"], alert_emails=["secops@example.com"])
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    """
)
RUNNER = textwrap.dedent(
    """\
    import json, runpy, sys
    sys.path[:0] = sys.argv[1:]
    user = runpy.run_path("app.py", run_name="__main__")
    import ami_guard, ami_guard_cdk.ami_guard_construct as construct
    from cdk_nag import AwsSolutionsChecks
    report = AwsSolutionsChecks().validate_scope(user["app"])
    print(json.dumps({
        "modules": [ami_guard.__file__, construct.__file__],
        "violations": [[v.rule_name, str(v.severity)] for v in report.violations],
    }))
    """
)
"""Runs the user's app as `python app.py` would (after putting the install target and site-packages on a path
without the repository: -S leaves this environment's .pth files, the editable install among them, unread), then
checks the same app as tests/infra/test_compliance.py checks ours."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project built as a wheel and installed, without dependencies, into a directory of its own."""
    wheels = tmp_path_factory.mktemp("wheel")
    target = tmp_path_factory.mktemp("site")

    def pip(*arguments: str) -> None:
        completed = subprocess.run(
            [sys.executable, "-m", "pip", *arguments, "--no-deps", "--quiet"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            cwd=wheels,
        )
        assert completed.returncode == 0, completed.stderr[-4000:]

    # Built from a copy of what the wheel is made of: an in-tree build would leave build/ in the repository
    source = tmp_path_factory.mktemp("source")
    shutil.copy2(REPO_ROOT / "pyproject.toml", source)
    for tree in PACKAGED:
        shutil.copytree(REPO_ROOT / tree, source / tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip("wheel", "--wheel-dir", str(wheels), str(source))
    (wheel,) = wheels.glob("*.whl")
    pip("install", "--target", str(target), str(wheel))
    return target


@pytest.fixture(scope="module")
def user_app(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The user's app synthesized: what the runner printed, and its cloud assembly's directory."""
    project = tmp_path_factory.mktemp("user-project")
    (project / "app.py").write_text(USER_APP, encoding="utf-8")
    outdir = project / "cdk.out"
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "CDK_"))}
    completed = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, str(installed), sysconfig.get_paths()["purelib"]],
        cwd=project,
        env={**environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["outdir"] = outdir
    return result


def test_the_users_app_imports_the_installed_project_not_the_repository(
    user_app: dict[str, Any], installed: Path
) -> None:
    for module in user_app["modules"]:
        assert Path(module).is_relative_to(installed), module
        assert not Path(module).resolve().is_relative_to(REPO_ROOT.resolve()), module


def test_the_users_app_synthesizes_the_guard_beside_its_own_bucket(user_app: dict[str, Any]) -> None:
    template = json.loads((user_app["outdir"] / "Platform.template.json").read_text(encoding="utf-8"))
    resources = template["Resources"].values()

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [resource for resource in resources if resource["Type"] == kind]

    assert sorted(f["Properties"]["FunctionName"] for f in of_type("AWS::Lambda::Function")) == [
        "Platform-ImageGuard",
        "Platform-LaunchGuard",
        "Platform-PermissionGuard",
        "Platform-SweepGuard",
        "Platform-TamperGuard",
    ]
    assert sorted(t["Properties"]["DisplayName"] for t in of_type("AWS::SNS::Topic")) == [
        "AMI Guard alerts",
        "AMI Guard health",
    ]
    assert len(of_type("AWS::DynamoDB::Table")) == 1
    # the user's own bucket, and the guard's sweep bucket (the plans and results of its runs)
    assert sorted("LoggingConfiguration" in b["Properties"] for b in of_type("AWS::S3::Bucket")) == [False, True]
    (sweep_bucket,) = [b for b in of_type("AWS::S3::Bucket") if "LifecycleConfiguration" in b["Properties"]]
    assert sweep_bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["Prefix"] == "runs/"
    assert len(of_type("AWS::Scheduler::Schedule")) == 1
    emails = sorted(s["Properties"]["Endpoint"] for s in of_type("AWS::SNS::Subscription"))
    assert emails == ["secops@example.com", "secops@example.com"]


def test_the_users_function_asset_is_the_installed_package_alone(user_app: dict[str, Any]) -> None:
    (asset,) = user_app["outdir"].glob("asset.*")
    top_level = sorted(path.name for path in asset.iterdir())

    assert top_level == ["ami_guard"]
    assert (asset / "ami_guard" / "handlers" / "permission_guard.py").is_file()
    assert (asset / "ami_guard" / "data" / "instance_types.json").is_file()


def test_cdk_nag_finds_no_error_or_warning_in_the_users_app(user_app: dict[str, Any]) -> None:
    report = json.loads((user_app["outdir"] / "validation-report.json").read_text(encoding="utf-8"))

    assert user_app["violations"] == []
    assert [plugin for plugin in report["pluginReports"] if plugin.get("violations")] == []


def test_the_staged_package_is_the_package_alone_and_follows_its_content(tmp_path: Path) -> None:
    # Given a package installed among others, with a developer's bytecode beside it
    site = tmp_path / "site-packages"
    package = site / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"stale")
    (site / "other").mkdir()
    (site / "other" / "__init__.py").write_text("", encoding="utf-8")
    staging = tmp_path / "staging"
    staging.mkdir()

    # When it is staged twice, then once more after a change
    first = bytecode.staged_package(package, root=staging)
    again = bytecode.staged_package(package, root=staging)
    (package / "__init__.py").write_text("VALUE = 2\n", encoding="utf-8")
    changed = bytecode.staged_package(package, root=staging)

    # Then the staged directory holds the package's source alone, the same content is the same directory,
    # a change is another
    assert sorted(path.relative_to(first).as_posix() for path in first.rglob("*")) == ["pkg", "pkg/__init__.py"]
    assert again == first
    assert changed != first
    assert (changed / "pkg" / "__init__.py").read_text(encoding="utf-8") == "VALUE = 2\n"
    assert sorted(path.name for path in staging.iterdir()) == sorted([first.name, changed.name])
