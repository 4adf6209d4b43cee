"""The event runner: plays EventBridge and the Lambda service in the emulated account, from what was deployed.

moto cannot run Lambda code (that needs Docker) and its PutEvents fails when a rule targets a function, so for
every event put on a bus the runner does what the two services would do, reading everything from the emulator:

- EventBridge: the bus's rules (ListRules) and their targets (ListTargetsByRule); each enabled rule's deployed
  EventPattern is matched by moto's EventBridge pattern engine (moto.events.models.EventPattern); a function
  target is invoked only if the function's resource policy lets events.amazonaws.com invoke it from that rule;
  an event that cannot be delivered goes to the target's dead-letter queue when it has one.
- Lambda, asynchronous invocation: the function's configuration (GetFunction: handler, environment, timeout,
  role, layers); its code, the zip at the S3 location in the deployed stack template, i.e. what `cdk deploy`
  uploaded (checked against the function's CodeSha256); its layer, which must be the Powertools public layer of
  the version installed here (demo.layers: any other layer is refused, the invocation fails); the role's trust
  policy and credentials (AssumeRole; with IAM enforced, of the role's action-level stand-in, demo.iam_enforcement);
  then the handler runs in a fresh interpreter (demo/lambda_host.py) with exactly the deployed environment plus
  what the Lambda runtime sets, and boto3 pointed at the emulator. Every call of the function that moto's access
  control refused is kept on the attempt (`refused`): the function may handle the error, the demo still fails.
  A failed invocation is retried as Lambda retries async invocations (immediately here, not after one and two
  minutes), then sent to the on-failure destination or the dead-letter queue if one is configured. What the
  function prints goes to its log group.

Nothing from this repository's functions/ runs: only the deployed zip, with the runtime of demo.lambda_runtime.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from demo import iam_enforcement, lambda_runtime
from demo.emulator import Emulator
from demo.layers import LayerRefused, PowertoolsLayers, check_layers, installed_powertools, sourced_mapping

HOST_SCRIPT = Path(__file__).resolve().parent / "lambda_host.py"
DEFAULT_ASYNC_RETRIES = 2  # Lambda's default MaximumRetryAttempts for asynchronous invocations
EVENTS_PRINCIPALS = ("events.amazonaws.com", "*")
LAMBDA_BASE_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC"}


@dataclass
class Attempt:
    number: int
    ok: bool
    duration_ms: int
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    log: str = ""
    refused: list[dict[str, str]] = field(default_factory=list)
    """The function's calls that IAM refused during this attempt (moto's access control, action level)."""

    def describe(self) -> str:
        outcome = "ok" if self.ok else f"{self.error_type}: {self.error_message}"
        if self.refused:
            outcome += "; " + "; ".join(iam_enforcement.refusal_text(r) for r in self.refused)
        return outcome


@dataclass
class Delivery:
    """One event, one rule, one target: what EventBridge and Lambda made of it."""

    region: str
    envelope_id: str
    detail_event_id: str | None
    rule: str
    target_id: str
    target_arn: str
    function_name: str | None = None
    delivered: bool = False
    reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    sent_to: str | None = None

    @property
    def ok(self) -> bool:
        return self.delivered and bool(self.attempts) and self.attempts[-1].ok

    @property
    def result(self) -> Any:
        return self.attempts[-1].result if self.ok else None

    @property
    def refused(self) -> list[dict[str, str]]:
        return [refusal for attempt in self.attempts for refusal in attempt.refused]

    def describe(self) -> str:
        target = self.function_name or self.target_arn
        if not self.delivered:
            return f"rule {self.rule} -> {target}: not delivered: {self.reason}" + (
                f" (sent to {self.sent_to})" if self.sent_to else ""
            )
        tries = len(self.attempts)
        outcome = self.attempts[-1].describe() if self.attempts else "no attempt"
        suffix = f" (sent to {self.sent_to})" if self.sent_to else ""
        return f"rule {self.rule} -> {target}: {outcome} after {tries} attempt(s){suffix}"


@dataclass(frozen=True)
class DeployedCode:
    task_root: Path
    stack_name: str
    logical_id: str
    log_group: str
    template_layers: tuple[str, ...] = ()


class RunnerError(Exception):
    """The runner itself could not do its part (as opposed to a deployment that does not work)."""


class EventRunner:
    def __init__(self, emulator: Emulator, *, work_dir: Path) -> None:
        self.emulator = emulator
        self.work_dir = work_dir
        self.deliveries: list[Delivery] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._import_path = lambda_runtime.build(work_dir / "lambda-runtime")
        self._code: dict[tuple[str, str, str], DeployedCode] = {}
        self._stacks: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self._templates: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._powertools_layers: PowertoolsLayers | None = None
        self._noted: set[tuple[str, str]] = set()

    def _note(self, line: str) -> None:
        self.notes.append(line.strip())

    def _note_once(self, key: tuple[str, str], line: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self._note(line)

    @property
    def runtime_missing(self) -> tuple[str, ...]:
        return self._import_path.missing

    # --- EventBridge ---------------------------------------------------------------------------------------

    def put_events(self, region: str, entries: Sequence[Mapping[str, Any]]) -> list[str]:
        """PutEvents: each entry becomes an event in EventBridge's envelope and is delivered before returning."""
        ids = []
        with self._lock:
            for entry in entries:
                envelope = self.envelope(region, entry)
                ids.append(envelope["id"])
                self.deliver(region, envelope, bus=str(entry.get("EventBusName") or "default"))
        return ids

    def envelope(self, region: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        when = entry.get("Time")
        if isinstance(when, datetime):
            time_text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(when, int | float):
            time_text = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(when, str) and when:
            time_text = when
        else:
            time_text = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": self.emulator.account,
            "time": time_text,
            "region": region,
            "resources": list(entry.get("Resources") or []),
            "detail": json.loads(entry["Detail"]) if isinstance(entry.get("Detail"), str) else entry.get("Detail"),
        }

    def deliver(self, region: str, envelope: Mapping[str, Any], *, bus: str = "default") -> list[Delivery]:
        events = self.emulator.client("events", region)
        detail = envelope.get("detail")
        detail_event_id = detail.get("eventID") if isinstance(detail, Mapping) else None
        done: list[Delivery] = []
        for rule in _paginate(events, "list_rules", "Rules", EventBusName=bus):
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if not EventPattern.load(rule["EventPattern"]).matches_event(dict(envelope)):  # type: ignore[arg-type]
                continue
            targets = _paginate(events, "list_targets_by_rule", "Targets", Rule=rule["Name"], EventBusName=bus)
            for target in targets:
                delivery = Delivery(
                    region=region,
                    envelope_id=str(envelope["id"]),
                    detail_event_id=detail_event_id,
                    rule=rule["Name"],
                    target_id=target["Id"],
                    target_arn=target["Arn"],
                )
                # recorded before it is played: a bus target's own deliveries (demo.org_runner) come after it
                self.deliveries.append(delivery)
                done.append(delivery)
                self._to_target(delivery, rule, target, envelope)
        if not done:
            self._note(f"no rule on bus {bus!r} in {region} matched event {detail_event_id or envelope['id']}")
        return done

    def _to_target(
        self, delivery: Delivery, rule: Mapping[str, Any], target: Mapping[str, Any], envelope: Mapping[str, Any]
    ) -> None:
        if "Input" in target:
            payload: Any = json.loads(target["Input"])
        elif "InputPath" in target or "InputTransformer" in target:
            delivery.reason = "InputPath and InputTransformer targets are not played by the runner"
            return
        else:
            payload = envelope
        arn = target["Arn"]
        service = arn.split(":")[2]
        if service == "lambda":
            self._to_function(delivery, rule, target, payload)
        elif service == "sqs":
            self._send(arn, delivery.region, json.dumps(payload))
            delivery.delivered = True
            delivery.attempts.append(Attempt(number=1, ok=True, duration_ms=0))
        elif service == "events":
            self._to_bus(delivery, rule, target, payload)
        else:
            delivery.reason = f"{service} targets are not played by the runner"

    def _to_bus(self, delivery: Delivery, rule: Mapping[str, Any], target: Mapping[str, Any], payload: Any) -> None:
        """An event bus target (another account's or region's bus): played by demo.org_runner only."""
        delivery.reason = "events targets are not played by the runner"

    def _to_function(
        self, delivery: Delivery, rule: Mapping[str, Any], target: Mapping[str, Any], payload: Any
    ) -> None:
        region = delivery.region
        lambda_ = self.emulator.client("lambda", region)
        function_name = target["Arn"].split(":")[6]
        delivery.function_name = function_name
        try:
            function = lambda_.get_function(FunctionName=target["Arn"])
        except ClientError as exc:
            self._undeliverable(delivery, target, payload, f"{_code(exc)}: {_message(exc)}")
            return
        refusal = self._invoke_permission_refusal(lambda_, target["Arn"], rule["Arn"])
        if refusal is not None:
            self._undeliverable(delivery, target, payload, refusal)
            return
        delivery.delivered = True
        config = function["Configuration"]
        retries, on_failure = self._async_config(lambda_, region, config)
        for number in range(1, retries + 2):
            attempt = self._invoke(region, config, payload, number)
            delivery.attempts.append(attempt)
            if attempt.ok:
                return
        if on_failure:
            self._send_failure_record(on_failure, region, config, payload, delivery.attempts)
            delivery.sent_to = on_failure

    def _undeliverable(self, delivery: Delivery, target: Mapping[str, Any], payload: Any, reason: str) -> None:
        """EventBridge could not hand the event to the target: its dead-letter queue gets it, if it has one."""
        delivery.reason = reason
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        if dead_letter:
            self._send(dead_letter, delivery.region, json.dumps(payload))
            delivery.sent_to = dead_letter

    def _invoke_permission_refusal(self, lambda_: Any, function_arn: str, rule_arn: str) -> str | None:
        """Why EventBridge may not invoke the function from this rule, or None when its resource policy allows it."""
        try:
            policy = json.loads(lambda_.get_policy(FunctionName=function_arn)["Policy"])
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return "AccessDenied: the function has no resource-based policy, so EventBridge may not invoke it"
            raise
        if events_may_invoke(policy, rule_arn):
            return None
        return f"AccessDenied: no statement of the function's resource policy lets {rule_arn} invoke it"

    def invoke(self, region: str, function: str, payload: Any) -> Attempt:
        """One synchronous invocation (RequestResponse), as a Step Functions Lambda task makes it: the deployed
        function run once with `payload`, its result or error returned to the caller; no retry, no on-failure
        destination (those are the asynchronous invocation's)."""
        config = self.emulator.client("lambda", region).get_function(FunctionName=function)["Configuration"]
        return self._invoke(region, config, payload, 1)

    # --- Lambda ----------------------------------------------------------------------------------------------

    def _async_config(self, lambda_: Any, region: str, config: Mapping[str, Any]) -> tuple[int, str | None]:
        """(retries, on-failure destination) of the function's asynchronous invocations."""
        name = str(config["FunctionName"])
        try:
            invoke_config = lambda_.get_function_event_invoke_config(FunctionName=name)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            invoke_config = self._template_invoke_config(region, name)
        retries = int(invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        destination = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        return retries, destination or config.get("DeadLetterConfig", {}).get("TargetArn")

    def _template_invoke_config(self, region: str, function_name: str) -> Mapping[str, Any]:
        """moto does not model AWS::Lambda::EventInvokeConfig (it says so in its log), so the one in the deployed
        template stands in for GetFunctionEventInvokeConfig."""
        try:
            stack_name, resources, template = self._stack_of(region, function_name)
        except DeploymentProblem:
            return {}
        resolve = _Resolver(self.emulator.account, region, stack_name, resources, template)
        for resource in template.get("Resources", {}).values():
            props = resource.get("Properties", {})
            if resource.get("Type") != "AWS::Lambda::EventInvokeConfig":
                continue
            if resolve(props.get("FunctionName")) != function_name:
                continue
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            found: dict[str, Any] = {"MaximumRetryAttempts": props.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES)}
            if destination is not None:
                found["DestinationConfig"] = {"OnFailure": {"Destination": resolve(destination)}}
            return found
        return {}

    def _invoke(self, region: str, config: Mapping[str, Any], payload: Any, number: int) -> Attempt:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        try:
            code = self._deployed_code(region, config)
            layer_paths = self._layer_paths(region, config, code)
            credentials = self._role_credentials(region, config)
        except DeploymentProblem as exc:
            return Attempt(number, False, 0, error_type=exc.error_type, error_message=str(exc))
        refused_before = self.emulator.refused(since=2**31)[0] if self.emulator.iam_enforced else 0

        scratch = self.work_dir / "invocations" / request_id
        scratch.mkdir(parents=True)
        timeout_seconds = int(config.get("Timeout", 3))
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        request = {
            "handler": config["Handler"],
            "task_root": str(code.task_root),
            "layer_paths": layer_paths,
            "runtime_paths": [str(self._import_path.runtime)],
            "timeout_seconds": timeout_seconds,
            "result_file": str(scratch / "result.json"),
            "event": payload,
            "context": {
                "function_name": config["FunctionName"],
                "function_version": config.get("Version", "$LATEST"),
                "invoked_function_arn": config["FunctionArn"],
                "memory_limit_in_mb": config.get("MemorySize", 128),
                "aws_request_id": request_id,
                "log_group_name": code.log_group,
                "log_stream_name": stream,
            },
        }
        (scratch / "request.json").write_text(json.dumps(request, default=str))
        environment = {
            # a bare environment as in Lambda, not this shell's (a POWERTOOLS_* or other setting here must not leak in)
            **self.emulator.environment(region, base=LAMBDA_BASE_ENVIRONMENT),
            # the function's own configuration, exactly as deployed
            **config.get("Environment", {}).get("Variables", {}),
            # what the Lambda runtime adds; the credentials are its role's
            **credentials,
            "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"],
            "AWS_LAMBDA_FUNCTION_VERSION": config.get("Version", "$LATEST"),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
            "AWS_LAMBDA_LOG_GROUP_NAME": code.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.get('Runtime', 'python')}",
            "LAMBDA_TASK_ROOT": str(code.task_root),
            "_HANDLER": config["Handler"],
        }
        try:
            completed = subprocess.run(
                [sys.executable, "-I", "-S", "-B", str(HOST_SCRIPT), str(scratch / "request.json")],
                cwd=code.task_root,
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_seconds,
                check=False,
            )
            output = (completed.stdout + completed.stderr).decode(errors="replace")
            outcome = _read_json(scratch / "result.json")
        except subprocess.TimeoutExpired as exc:
            output = ((exc.stdout or b"") + (exc.stderr or b"")).decode(errors="replace")
            outcome = {
                "ok": False,
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {timeout_seconds}.00 seconds",
            }
        duration_ms = int((time.monotonic() - started) * 1000)
        if outcome is None:
            outcome = {"ok": False, "errorType": "Runtime.ExitError", "errorMessage": "the runtime exited early"}
        self._write_logs(region, code.log_group, stream, request_id, output, duration_ms)
        refused: list[dict[str, str]] = []
        if self.emulator.iam_enforced:
            _total, since = self.emulator.refused(since=refused_before)
            refused = [r for r in since if r.get("access_key_id") == credentials["AWS_ACCESS_KEY_ID"]]
        return Attempt(
            number=number,
            ok=bool(outcome.get("ok")),
            duration_ms=duration_ms,
            result=outcome.get("result"),
            error_type=outcome.get("errorType"),
            error_message=outcome.get("errorMessage"),
            log=output,
            refused=refused,
        )

    def _layer_paths(self, region: str, config: Mapping[str, Any], code: DeployedCode) -> list[str]:
        """The layer directory to put on the function's path: the installed Powertools if, and only if, the deployed
        layer is the public Powertools layer of that version (none without a layer); any other layer is refused."""
        name = str(config["FunctionName"])
        reported = [str(layer["Arn"]) for layer in config.get("Layers") or []]
        # moto's CloudFormation does not pass Layers on to the function it creates (GetFunction reports none), so
        # the deployed template's stands in when GetFunction reports none, as for the EventInvokeConfig
        arns, where = (reported, "GetFunction") if reported else (list(code.template_layers), "the deployed template")
        try:
            if self._powertools_layers is None:
                self._powertools_layers = sourced_mapping()
            installed = installed_powertools()
            version = check_layers(arns, region=region, layers=self._powertools_layers, installed=installed)
        except LayerRefused as exc:
            raise DeploymentProblem("Runner.LayerRefused", f"{name}: layer from {where} refused: {exc}") from None
        if version is None:
            self._note_once((name, "layer"), f"{name}: no layer ({where}): nothing beside the package and boto3")
            return []
        self._note_once(
            (name, "layer"),
            f"{name}: layer {arns[0].rsplit(':', 2)[-2]}:{arns[0].rsplit(':', 1)[-1]} ({where}) is Powertools "
            f"{version}, the installed version: supplied from it",
        )
        return [str(self._import_path.layer)]

    def _role_credentials(self, region: str, config: Mapping[str, Any]) -> dict[str, str]:
        role_arn = str(config.get("Role", ""))
        iam = self.emulator.client("iam", region)
        try:
            role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
        except ClientError as exc:
            raise DeploymentProblem("InvalidRole", f"the function's role {role_arn} does not exist: {exc}") from None
        trust = role.get("AssumeRolePolicyDocument")
        if isinstance(trust, str):
            trust = json.loads(trust)
        if not any(_allows_lambda(statement) for statement in _as_list((trust or {}).get("Statement"))):
            raise DeploymentProblem("InvalidRole", f"the role {role_arn} cannot be assumed by Lambda")
        name = str(config["FunctionName"])
        assumed = role_arn
        if self.emulator.iam_enforced:
            assumed, projection = iam_enforcement.stand_in_role(iam, role_arn, harness_arn=self.emulator.harness_arn)
            self._note_once(
                (name, "iam"),
                f"{name}: runs as the action-level stand-in of its role (IAM judges actions; "
                f"{len(projection.not_judged)} statement(s) of the role scoped or conditioned, not judged)",
            )
        session = self.emulator.client("sts", region).assume_role(RoleArn=assumed, RoleSessionName=name[:64])[
            "Credentials"
        ]
        return {
            "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
            "AWS_SESSION_TOKEN": session["SessionToken"],
        }

    def _deployed_code(self, region: str, config: Mapping[str, Any]) -> DeployedCode:
        key = (region, str(config["FunctionName"]), str(config.get("CodeSha256")))
        if key not in self._code:
            self._code[key] = self._fetch_code(region, config)
        return self._code[key]

    def _fetch_code(self, region: str, config: Mapping[str, Any]) -> DeployedCode:
        name = str(config["FunctionName"])
        stack_name, resources, template = self._stack_of(region, name)
        logical_id = next(logical for logical, physical in resources.items() if physical == name)
        props = template["Resources"][logical_id].get("Properties", {})
        resolve = _Resolver(self.emulator.account, region, stack_name, resources, template)
        code = props.get("Code", {})
        if "S3Bucket" not in code or "S3Key" not in code:
            raise DeploymentProblem("Runner.UnsupportedCode", f"{logical_id}: code is not an S3 object: {code}")
        bucket, object_key = resolve(code["S3Bucket"]), resolve(code["S3Key"])
        try:
            body = self.emulator.client("s3", region).get_object(Bucket=bucket, Key=object_key)["Body"].read()
        except ClientError as exc:
            raise DeploymentProblem("Runner.CodeNotFound", f"s3://{bucket}/{object_key}: {exc}") from None
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if config.get("CodeSha256") and digest != config["CodeSha256"]:
            raise DeploymentProblem(
                "Runner.CodeMismatch",
                f"s3://{bucket}/{object_key} is not the code {name} was created from "
                f"(sha256 {digest}, function {config['CodeSha256']})",
            )
        task_root = self.work_dir / "tasks" / region / name / digest.replace("/", "_")
        task_root.mkdir(parents=True, exist_ok=True)
        archive = task_root.parent / "code.zip"
        archive.write_bytes(body)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(task_root)
        log_group = props.get("LoggingConfig", {}).get("LogGroup")
        template_layers = tuple(resolve(layer) for layer in props.get("Layers") or [])
        shown = object_key if len(object_key) <= 24 else f"{object_key[:12]}...{object_key[-8:]}"
        self._note(f"{name}: deployed code s3://{bucket}/{shown}, {len(body)} bytes, CodeSha256 matches")
        return DeployedCode(
            task_root=task_root,
            stack_name=stack_name,
            logical_id=logical_id,
            log_group=resolve(log_group) if log_group else f"/aws/lambda/{name}",
            template_layers=template_layers,
        )

    def _stack_of(self, region: str, physical_id: str) -> tuple[str, dict[str, str], Mapping[str, Any]]:
        cloudformation = self.emulator.client("cloudformation", region)
        if region not in self._stacks:
            self._stacks[region] = [
                (
                    stack["StackName"],
                    {
                        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                        for r in cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
                        if "LogicalResourceId" in r
                    },
                )
                for stack in _paginate(cloudformation, "describe_stacks", "Stacks")
            ]
        for stack_name, resources in self._stacks[region]:
            if physical_id in resources.values():
                if (region, stack_name) not in self._templates:
                    body = cloudformation.get_template(StackName=stack_name)["TemplateBody"]
                    try:
                        self._templates[region, stack_name] = json.loads(body) if isinstance(body, str) else body
                    except ValueError:
                        raise DeploymentProblem("Runner.UnsupportedTemplate", f"{stack_name}: not JSON") from None
                return stack_name, resources, self._templates[region, stack_name]
        raise DeploymentProblem("Runner.NoStack", f"no deployed stack in {region} holds {physical_id}")

    def _write_logs(self, region: str, group: str, stream: str, request_id: str, output: str, duration: int) -> None:
        """The invocation's output into the function's log group, framed as Lambda frames it."""
        now = int(time.time() * 1000)
        lines = [f"START RequestId: {request_id} Version: $LATEST", *output.splitlines()]
        lines += [f"END RequestId: {request_id}", f"REPORT RequestId: {request_id}\tDuration: {duration} ms"]
        logs = self.emulator.client("logs", region)
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines if line],
            )
        except ClientError as exc:
            self._note(f"    (function output not written to log group {group}: {_code(exc)})")

    def _send_failure_record(
        self, destination: str, region: str, config: Mapping[str, Any], payload: Any, attempts: list[Attempt]
    ) -> None:
        last = attempts[-1]
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{config['FunctionArn']}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": len(attempts),
            },
            "requestPayload": payload,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": last.error_type, "errorMessage": last.error_message},
        }
        self._send(destination, region, json.dumps(record))

    def _send(self, arn: str, region: str, body: str) -> None:
        parts = arn.split(":")
        service, target_region = parts[2], parts[3] or region
        if service == "sqs":
            sqs = self.emulator.client("sqs", target_region)
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body)
        elif service == "sns":
            self.emulator.client("sns", target_region).publish(TopicArn=arn, Message=body)
        else:
            self._note(f"    (destination {arn} is not played by the runner)")


class DeploymentProblem(Exception):
    """Something a real Lambda would also refuse: the invocation fails with this error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class _Resolver:
    """The CloudFormation intrinsics a CDK template uses for code, log and destination locations: Ref, Fn::Sub,
    Fn::Join, pseudo parameters, and Fn::GetAtt Arn of a queue, topic or function."""

    def __init__(
        self,
        account: str,
        region: str,
        stack_name: str,
        resources: Mapping[str, str],
        template: Mapping[str, Any],
    ) -> None:
        self._account = account
        self._region = region
        self._resources = resources
        self._types = {k: v.get("Type") for k, v in template.get("Resources", {}).items()}
        self._values = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            **resources,
        }

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and "Ref" in value:
            return self._values[value["Ref"]]
        if isinstance(value, Mapping) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            text: str = value["Fn::Sub"]
            for name, replacement in self._values.items():
                text = text.replace("${" + name + "}", replacement)
            return text
        if isinstance(value, Mapping) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self(part) for part in parts)
        if isinstance(value, Mapping) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
            logical_id = value["Fn::GetAtt"][0]
            physical, kind = self._resources.get(logical_id, ""), self._types.get(logical_id)
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{self._region}:{self._account}:{physical.rstrip('/').rsplit('/', 1)[-1]}"
            if kind == "AWS::SNS::Topic":
                return physical
            if kind == "AWS::Lambda::Function":
                return f"arn:aws:lambda:{self._region}:{self._account}:function:{physical}"
        raise DeploymentProblem("Runner.UnsupportedTemplate", f"cannot resolve {value!r}")


def events_may_invoke(policy: Mapping[str, Any], rule_arn: str) -> bool:
    """Whether a function's resource policy lets EventBridge invoke it on behalf of this rule."""
    account = rule_arn.split(":")[4]
    return any(_allows_events(statement, rule_arn, account) for statement in _as_list(policy.get("Statement")))


def _allows_events(statement: Mapping[str, Any], rule_arn: str, account: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not any(action in ("lambda:InvokeFunction", "lambda:*", "*") for action in _as_list(statement.get("Action"))):
        return False
    principal = statement.get("Principal")
    services = _as_list(principal.get("Service")) if isinstance(principal, Mapping) else _as_list(principal)
    if not any(service in EVENTS_PRINCIPALS for service in services):
        return False
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, expected in conditions.items():
            actual = {"aws:sourcearn": rule_arn, "aws:sourceaccount": account}.get(key.lower())
            if actual is None:
                return False
            patterns = _as_list(expected)
            if operator in ("ArnLike", "StringLike"):
                matched = any(fnmatch.fnmatchcase(actual, pattern) for pattern in patterns)
            elif operator in ("ArnEquals", "StringEquals"):
                matched = actual in patterns
            else:
                return False
            if not matched:
                return False
    return True


def _allows_lambda(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    services = _as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
    actions = _as_list(statement.get("Action"))
    return statement.get("Effect") == "Allow" and "lambda.amazonaws.com" in services and "sts:AssumeRole" in actions


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    token_key = "NextToken"
    while True:
        page = getattr(client, operation)(**kwargs)
        items.extend(page.get(key, []))
        token = page.get(token_key)
        if not token:
            return items
        kwargs[token_key] = token


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))
