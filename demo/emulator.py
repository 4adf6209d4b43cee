"""The emulated AWS account: moto's server (demo.emulator_server) in a child process on a free loopback port.

One account per emulator. Every AWS client the harness makes, and the environment of every process it starts
(the CDK CLI, the functions), point at it and at nothing else: the caller's own AWS settings are dropped.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "localhost"  # not 127.0.0.1: moto's CloudFormation finds the uploaded template in its S3 only by this name
START_TIMEOUT_SECONDS = 30
UNSUPPORTED = re.compile(r"No Moto CloudFormation support for (\S+)")


class EmulatorError(Exception):
    """The emulator did not start, or stopped answering."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without any AWS or CDK setting, so that nothing reaches a real account."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_"))}


class Emulator:
    multi_account = False
    """One account per emulator (MOTO_ACCOUNT_ID); demo.organization's OrgEmulator holds every account instead."""

    def __init__(self, *, account: str, work_dir: Path) -> None:
        self.account = account
        self.work_dir = work_dir
        self.log_path = work_dir / "emulator.log"
        self.access_key_id = "AKIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secrets.token_hex(20)
        self.port = 0
        self.iam_enforced = False
        self.harness_arn = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # --- life cycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # the free port can be taken between probing and binding it
            self.port = _free_port()
            command = [sys.executable, "-m", "demo.emulator_server", "--host", HOST, "--port", str(self.port)]
            environment = {**clean_environment(), "PYTHONUNBUFFERED": "1"}
            if self.multi_account:
                command.append("--multi-account")
            else:
                environment["MOTO_ACCOUNT_ID"] = self.account
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    command,
                    cwd=REPO_ROOT,
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready():
                return
        raise EmulatorError(f"the emulator did not start; its log:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                self.admin("health")
                return True
            except (OSError, EmulatorError):
                time.sleep(0.1)
        self.stop()
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what it says -------------------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no emulator log)"
        with self.log_path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines))

    def unmodelled_resource_types(self) -> list[str]:
        """Resource types moto's CloudFormation skipped during the deployments ("No Moto CloudFormation support")."""
        if not self.log_path.exists():
            return []
        return sorted(set(UNSUPPORTED.findall(self.log_path.read_text(errors="replace"))))

    # --- talking to it ------------------------------------------------------------------------------------

    def environment(self, region: str, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a process that must use the emulator, and only the emulator, in `region`: `base` (by
        default this process's environment without its AWS and CDK settings) and the emulator's settings."""
        return {
            **(clean_environment() if base is None else base),
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # no profile, config or credentials file of the caller's may change where calls go
            "AWS_CONFIG_FILE": str(self.work_dir / "aws-config-unused"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.work_dir / "aws-credentials-unused"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, region: str, **config: Any) -> Any:
        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=region,
        ).client(
            service,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, **config),
        )

    def admin(self, route: str, body: Any = None) -> Any:
        """One of demo.emulator_server's /_demo/ routes: GET without a body, POST with one."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}/_demo/{route}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="GET" if data is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise EmulatorError(f"/_demo/{route}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def enforce_iam(self) -> None:
        """From now on moto authorizes every request against the caller's IAM policies (demo.iam_enforcement).

        The harness's own key is no IAM user's, so it becomes one's first: a user allowed everything, whose key
        every later client, process environment and the `--keep` instructions use.
        """
        from demo.iam_enforcement import HARNESS_POLICY, HARNESS_USER

        iam = self.client("iam", "us-east-1")
        user = iam.create_user(UserName=HARNESS_USER)["User"]
        iam.put_user_policy(UserName=HARNESS_USER, PolicyName="everything", PolicyDocument=json.dumps(HARNESS_POLICY))
        key = iam.create_access_key(UserName=HARNESS_USER)["AccessKey"]
        self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        self.harness_arn = str(user["Arn"])
        # the count of requests let through unchecked, from now on: none (plain text, or werkzeug reads a form)
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())
        self.iam_enforced = True
        self._check_enforced()

    def _check_enforced(self) -> None:
        """A key that belongs to nobody must now be refused: else enforcement is not on, and the demo says so."""
        from botocore.exceptions import ClientError

        stranger = boto3.session.Session(
            aws_access_key_id="AKIA" + secrets.token_hex(8).upper(),
            aws_secret_access_key=secrets.token_hex(20),
            region_name="us-east-1",
        ).client("sts", endpoint_url=self.endpoint_url, config=Config(retries={"total_max_attempts": 1}))
        try:
            stranger.get_caller_identity()
        except ClientError:
            return
        raise EmulatorError("IAM enforcement did not switch on: a key of no IAM user was accepted")

    def refused(self, since: int = 0) -> tuple[int, list[dict[str, str]]]:
        """(how many requests moto's access control refused so far, those from the `since`-th on)."""
        answer = self.admin(f"iam/refused?since={since}")
        return int(answer["total"]), list(answer["refused"])

    def set_image_attributes(self, region: str, image_id: str, **attributes: str) -> None:
        """What EC2 would have recorded for an image that moto's RegisterImage registered with its name only."""
        body = {"region": region, "image_id": image_id, "attributes": attributes}
        self.admin("ec2/image", {**body, "account": self.account} if self.multi_account else body)

    def published(self, topic_arn: str) -> list[dict[str, Any]]:
        """Every message published to the topic, as the publisher sent it (MessageStructure=json: all keys)."""
        from urllib.parse import quote

        result: list[dict[str, Any]] = self.admin(f"sns/published?topic={quote(topic_arn, safe='')}")
        return result
