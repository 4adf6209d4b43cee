"""The deployed posture sweep, run in the emulated account the way its state machine runs it.

A workaround, said as such: moto creates the state machine from the template but cannot run Lambda code, so it
cannot run this state machine, and it does not model the EventBridge Scheduler schedule that starts it. The demo
therefore reads the DEPLOYED state machine's definition from the emulator (DescribeStateMachine) and does what Step
Functions would do with it, for the states this definition has and nothing more:
- the first Task state invokes the function its definition names with its Parameters (`$$.Execution.Name` is the
  run's name): the plan, which writes the targets to the sweep bucket and returns where;
- the Distributed Map then reads them as its S3 ItemReader would (GetObject of the ItemReader's Bucket and Key,
  from the emulator's S3, a JSON array), runs its item processor once per item as a child execution, and writes
  the children's outputs as its ResultWriter would (`<Prefix>/<map run id>/SUCCEEDED_0.json` and a
  `manifest.json`, in the emulator's S3);
- in a child: a Task invokes its function with the state's input (no Parameters), a Choice follows the first of its
  rules that holds (And, IsPresent, BooleanEquals), Succeed ends with its input, and a failed Task goes to its
  Catch (ResultPath: the error is kept with the input), whose Pass state ends there.
Each invocation is synchronous, through the event runner (the deployed zip, its role, its environment). Retries are
not replayed: an invocation here fails only for a reason a retry would not change. Any state, field or path this
walker does not know fails the run, rather than being skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from demo.inbox import Alert, Inbox
from demo.runner import Attempt, EventRunner

STATE_MACHINE_NAME = "AmiGuard-Sweep"
MAX_CHILD_STEPS = 1000
"""A child execution that has not ended after this many states is stuck in its loop: the walk fails."""
_TASK_FIELDS = {"Type", "Resource", "Parameters", "Next", "End", "Retry", "Catch", "Comment", "TimeoutSeconds"}
_MAP_FIELDS = {"Type", "Comment", "ItemProcessor", "ItemReader", "ResultWriter", "MaxConcurrency", "ResultPath", "End"}


class SweepError(Exception):
    """The deployed state machine could not be walked, or its plan failed."""


@dataclass
class SweepRun:
    name: str
    region: str
    plan: list[dict[str, Any]]
    """The targets, as the Map's ItemReader read them from the bucket."""
    results: list[dict[str, Any]]
    """Per target: the function's last answer (its summary), or the target with its caught `error`."""
    attempts: list[Attempt] = field(default_factory=list)
    planned: dict[str, Any] = field(default_factory=dict)
    """The plan step's output: {bucket, key, results, targets}."""
    steps: list[int] = field(default_factory=list)
    """Per target: how many times its child execution invoked the function."""
    written: dict[str, Any] = field(default_factory=dict)
    """The Map's output, as its ResultWriter gives it (MapRunArn, ResultWriterDetails)."""

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if "error" in r]


def deployed_definition(emulator: Any, region: str, name: str = STATE_MACHINE_NAME) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions", region)
    machines = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
    if len(machines) != 1:
        raise SweepError(f"{len(machines)} state machines named {name} in {region}: is the sweep deployed?")
    definition: dict[str, Any] = json.loads(
        sfn.describe_state_machine(stateMachineArn=machines[0]["stateMachineArn"])["definition"]
    )
    return definition


def _path(value: str, state_input: Any, execution_name: str) -> Any:
    """The JSONPath values this definition uses: `$$.Execution.Name`, `$` and `$.<key>`."""
    if value == "$$.Execution.Name":
        return execution_name
    if value == "$":
        return state_input
    if value.startswith("$.") and "." not in value[2:] and isinstance(state_input, dict) and value[2:] in state_input:
        return state_input[value[2:]]
    raise SweepError(f"path {value!r}: not one this walker knows (or absent from {str(state_input)[:200]})")


def _parameters(parameters: Any, state_input: Any, execution_name: str) -> Any:
    """Step Functions' Parameters: a constant, or a `.$` key with one of the paths `_path` knows."""
    if parameters is None:
        return state_input
    return {
        key[:-2] if key.endswith(".$") else key: _path(value, state_input, execution_name)
        if key.endswith(".$")
        else value
        for key, value in parameters.items()
    }


def _invoke(runner: EventRunner, region: str, state: Mapping[str, Any], payload: Any, run: SweepRun) -> Attempt:
    if state.get("Type") != "Task" or not str(state.get("Resource", "")).startswith("arn:aws:lambda:"):
        raise SweepError(f"state {state!r}: expected a Task invoking a Lambda function by ARN")
    unknown = set(state) - _TASK_FIELDS
    if unknown:
        raise SweepError(f"Task fields {sorted(unknown)}: not ones this walker knows")
    attempt = runner.invoke(region, str(state["Resource"]), payload)
    run.attempts.append(attempt)
    return attempt


def run_sweep(emulator: Any, runner: EventRunner, region: str, execution_name: str) -> SweepRun:
    """One execution of the deployed sweep state machine in `region`, walked as described above."""
    definition = deployed_definition(emulator, region)
    plan_state = definition["States"][definition["StartAt"]]
    run = SweepRun(execution_name, region, [], [])
    planned = _invoke(runner, region, plan_state, _parameters(plan_state.get("Parameters"), {}, execution_name), run)
    if not planned.ok or not isinstance(planned.result, dict) or "key" not in planned.result:
        raise SweepError(f"the plan failed: {planned.describe()} {planned.result!r}")
    run.planned = dict(planned.result)
    each = definition["States"][plan_state["Next"]]
    if each.get("Type") != "Map" or set(each) - _MAP_FIELDS or not each.get("End"):
        raise SweepError(f"state {plan_state['Next']}: expected the Distributed Map that ends the run, not {each!r}")
    processor = each["ItemProcessor"]
    if processor.get("ProcessorConfig") != {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}:
        raise SweepError(
            f"item processor {processor.get('ProcessorConfig')!r}: not a Distributed Map of STANDARD children"
        )
    s3 = emulator.client("s3", region)
    run.plan = _read_items(s3, each.get("ItemReader"), run.planned, execution_name)
    if len(run.plan) != run.planned.get("targets"):
        raise SweepError(f"the plan says {run.planned.get('targets')} targets, its object holds {len(run.plan)}")
    children: list[tuple[dict[str, Any], str, Any]] = []
    for item in run.plan:  # the Map runs up to MaxConcurrency children at once; one at a time here
        status, output, steps = _child(runner, region, processor, item, run, execution_name)
        run.steps.append(steps)
        children.append((item, status, output))
        refused = isinstance(output, dict) and output.get("status") == "refused"
        if refused:  # not an error to Step Functions, but no sweep either: said as one here
            run.results.append({**item, "error": {"Error": "Refused", "Cause": json.dumps(output)}})
        else:
            run.results.append(output)
    run.written = _write_results(s3, each.get("ResultWriter"), run.planned, execution_name, children)
    return run


def _read_items(s3: Any, reader: Any, state_input: Any, execution_name: str) -> list[dict[str, Any]]:
    """What the Map's S3 ItemReader (a JSON array) reads: GetObject of its Bucket and Key."""
    if not isinstance(reader, dict) or not str(reader.get("Resource", "")).endswith(":states:::s3:getObject"):
        raise SweepError(f"ItemReader {reader!r}: expected an S3 getObject reader")
    if reader.get("ReaderConfig") != {"InputType": "JSON"}:
        raise SweepError(f"ItemReader config {reader.get('ReaderConfig')!r}: expected a JSON array")
    where = _parameters(reader.get("Parameters"), state_input, execution_name)
    if set(where) != {"Bucket", "Key"}:
        raise SweepError(f"ItemReader parameters {where!r}: expected Bucket and Key")
    body = s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read()
    items = json.loads(body)
    if not isinstance(items, list):
        raise SweepError(f"s3://{where['Bucket']}/{where['Key']} is not a JSON array")
    return items


def _write_results(
    s3: Any, writer: Any, state_input: Any, execution_name: str, children: list[tuple[dict[str, Any], str, Any]]
) -> dict[str, Any]:
    """What the Map's ResultWriter writes: the children's records under `<Prefix>/<map run id>/`, by status, and a
    manifest naming them; the Map's output names the manifest."""
    if not isinstance(writer, dict) or not str(writer.get("Resource", "")).endswith(":states:::s3:putObject"):
        raise SweepError(f"ResultWriter {writer!r}: expected an S3 putObject writer")
    where = _parameters(writer.get("Parameters"), state_input, execution_name)
    if set(where) != {"Bucket", "Prefix"}:
        raise SweepError(f"ResultWriter parameters {where!r}: expected Bucket and Prefix")
    map_run = f"{execution_name}-map-run"
    base = f"{str(where['Prefix']).rstrip('/')}/{map_run}"
    records = [
        {
            "Name": f"{execution_name}-{number}",
            "Input": json.dumps(item),
            "Output": json.dumps(output),
            "Status": status,
        }
        for number, (item, status, output) in enumerate(children)
    ]
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status in ("SUCCEEDED", "FAILED"):
        chosen = [r for r in records if r["Status"] == status]
        if chosen:
            body = json.dumps(chosen).encode()
            key = f"{base}/{status}_0.json"
            s3.put_object(Bucket=where["Bucket"], Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = f"{base}/manifest.json"
    s3.put_object(
        Bucket=where["Bucket"],
        Key=manifest,
        Body=json.dumps({"DestinationBucket": where["Bucket"], "MapRunArn": map_run, "ResultFiles": files}).encode(),
    )
    return {"MapRunArn": map_run, "ResultWriterDetails": {"Bucket": where["Bucket"], "Key": manifest}}


def _child(
    runner: EventRunner,
    region: str,
    processor: Mapping[str, Any],
    item: dict[str, Any],
    run: SweepRun,
    execution_name: str,
) -> tuple[str, Any, int]:
    """One child execution over `item`: (its status, its output, the function's invocations)."""
    states = processor["States"]
    name, state_input, invocations = processor["StartAt"], item, 0
    for _ in range(MAX_CHILD_STEPS):
        state = states[name]
        kind = state.get("Type")
        if kind == "Task":
            invocations += 1
            attempt = _invoke(
                runner, region, state, _parameters(state.get("Parameters"), state_input, execution_name), run
            )
            if attempt.ok:
                output: Any = attempt.result
            else:
                catch = next((c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]), None)
                if catch is None:
                    return "FAILED", {"Error": attempt.error_type, "Cause": attempt.error_message}, invocations
                output = {**state_input, catch["ResultPath"].removeprefix("$."): _error(attempt)}
                name, state_input = catch["Next"], output
                continue
        elif kind == "Choice":
            name = next((c["Next"] for c in state["Choices"] if _holds(c, state_input)), state.get("Default"))
            if name is None:
                return "FAILED", {"Error": "States.NoChoiceMatched"}, invocations
            continue
        elif kind == "Succeed":
            return "SUCCEEDED", state_input, invocations
        elif kind == "Pass" and set(state) <= {"Type", "Comment", "End", "Next"}:
            output = state_input
        else:
            raise SweepError(f"state {name} ({kind}): not one this walker knows: {state!r}")
        if state.get("End"):
            return "SUCCEEDED", output, invocations
        name, state_input = state["Next"], output
    raise SweepError(f"target {item}: its child execution did not end within {MAX_CHILD_STEPS} states")


def _holds(rule: Mapping[str, Any], state_input: Any) -> bool:
    """A Choice rule: And over rules, IsPresent and BooleanEquals on a `$.<key>` variable."""
    if set(rule) <= {"And", "Next"} and "And" in rule:
        return all(_holds(r, state_input) for r in rule["And"])
    variable = str(rule.get("Variable", ""))
    if not variable.startswith("$.") or "." in variable[2:] or not isinstance(state_input, dict):
        raise SweepError(f"Choice rule {rule!r}: not one this walker knows")
    key = variable[2:]
    if set(rule) - {"Next"} == {"Variable", "IsPresent"}:
        return (key in state_input) is rule["IsPresent"]
    if set(rule) - {"Next"} == {"Variable", "BooleanEquals"}:
        if not isinstance(state_input.get(key), bool):
            raise SweepError(f"Choice on {variable}: not a boolean in {str(state_input)[:200]} (States.Runtime)")
        return bool(state_input[key] is rule["BooleanEquals"])
    raise SweepError(f"Choice rule {rule!r}: not one this walker knows")


def _error(attempt: Attempt) -> dict[str, str]:
    return {"Error": str(attempt.error_type), "Cause": str(attempt.error_message)}


@dataclass
class SweepDemo:
    """Two runs of the deployed sweep with one exposure fixed in between, and the alerts each sent."""

    first: SweepRun
    first_alerts: list[Alert]
    fixed: str
    second: SweepRun
    second_alerts: list[Alert]


def unshare_snapshot(world: Any, region: str) -> Callable[[], str]:
    """The fix played between the two runs: the snapshot the scenario shared with an untrusted account (its
    duplicate-delivery step) shared no more. It stands whether or not the guard remediates (snapshots are only
    reported), so the second run resolves it in either mode."""
    from demo import scenario

    def fix() -> str:
        snapshot = world.snapshot_of(region, world.images["shared"])
        world.ec2(region).modify_snapshot_attribute(
            SnapshotId=snapshot,
            Attribute="createVolumePermission",
            OperationType="remove",
            UserIds=[scenario.UNTRUSTED_ACCOUNT],
        )
        return f"{snapshot} shared no more with {scenario.UNTRUSTED_ACCOUNT}"

    return fix


def play_sweeps(emulator: Any, runner: EventRunner, inbox: Inbox, region: str, fix: Callable[[], str]) -> SweepDemo:
    """Run the sweep, `fix` one standing exposure (it says what it fixed), run it again; the alerts of each run."""
    inbox.drain()  # what the scenario's steps left unread is theirs, not the sweep's
    first = run_sweep(emulator, runner, region, "demo-sweep-1")
    first_alerts = inbox.drain()
    fixed = fix()
    second = run_sweep(emulator, runner, region, "demo-sweep-2")
    return SweepDemo(first, first_alerts, fixed, second, inbox.drain())


def alert_line(alert: Alert) -> str:
    document = alert.document
    resources = ", ".join(str(r.get("id")) for r in document.get("resources", []))
    return (
        f"{document.get('status', '?'):8} {document.get('origin', '?'):5} {document.get('severity', '?'):8} "
        f"{alert.rule_id} {resources}"
    )


def report(demo: SweepDemo) -> str:
    lines = ["Posture sweep (the deployed state machine's steps, run by the demo: moto cannot run it):"]
    for title, run, alerts in (
        ("first run", demo.first, demo.first_alerts),
        (f"second run, after {demo.fixed}", demo.second, demo.second_alerts),
    ):
        failed = f", {len(run.failed)} failed" if run.failed else ""
        invocations = sum(run.steps)
        lines.append(
            f"  {title} ({run.name}): {len(run.plan)} account-region(s) in {invocations} invocation(s){failed}, "
            f"{len(alerts)} alert(s); results in s3://{run.planned.get('bucket')}/{run.planned.get('results')}/"
        )
        lines += [f"    {alert_line(alert)}" for alert in alerts] or ["    (none)"]
    return "\n".join(lines)
