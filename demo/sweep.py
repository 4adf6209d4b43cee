"""The deployed posture sweep, run in the emulated account the way its state machine runs it.

A workaround, said as such: moto creates the state machine from the template but cannot run Lambda code, so it
cannot run this state machine, and it does not model the EventBridge Scheduler schedule that starts it. The demo
therefore reads the DEPLOYED state machine's definition from the emulator (DescribeStateMachine) and does what Step
Functions would do with it, for the states this definition has and nothing more: the first Task state invokes the
function its definition names with its Parameters (`$$.Execution.Name` is the run's name), the Map state then
invokes its item processor's Task function once per item of its ItemsPath, and a failed item goes to its Catch
(ResultPath: the error is kept with the item). Each invocation is synchronous, through the event runner (the deployed
zip, its role, its environment). Retries are not replayed: an invocation here fails only for a reason a retry would
not change. Any state or field this walker does not know fails the run, rather than being skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from demo.inbox import Alert, Inbox
from demo.runner import Attempt, EventRunner

STATE_MACHINE_NAME = "AmiGuard-Sweep"


class SweepError(Exception):
    """The deployed state machine could not be walked, or its plan failed."""


@dataclass
class SweepRun:
    name: str
    region: str
    plan: list[dict[str, Any]]
    results: list[dict[str, Any]]
    """Per target: the function's summary, or the target with its caught `error`."""
    attempts: list[Attempt] = field(default_factory=list)

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


def _parameters(parameters: Any, state_input: Any, execution_name: str) -> Any:
    """Step Functions' Parameters for the paths this definition uses: `$$.Execution.Name`, `$` and `$.<key>`."""
    if parameters is None:
        return state_input
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if not key.endswith(".$"):
            out[key] = value
        elif value == "$$.Execution.Name":
            out[key[:-2]] = execution_name
        elif value == "$":
            out[key[:-2]] = state_input
        elif isinstance(value, str) and value.startswith("$.") and "." not in value[2:]:
            out[key[:-2]] = state_input[value[2:]]
        else:
            raise SweepError(f"Parameters path {value!r}: not one this walker knows")
    return out


def _invoke(runner: EventRunner, region: str, state: Mapping[str, Any], payload: Any, run: SweepRun) -> Attempt:
    if state.get("Type") != "Task" or not str(state.get("Resource", "")).startswith("arn:aws:lambda:"):
        raise SweepError(f"state {state!r}: expected a Task invoking a Lambda function by ARN")
    attempt = runner.invoke(region, str(state["Resource"]), payload)
    run.attempts.append(attempt)
    return attempt


def run_sweep(emulator: Any, runner: EventRunner, region: str, execution_name: str) -> SweepRun:
    """One execution of the deployed sweep state machine in `region`, walked as described above."""
    definition = deployed_definition(emulator, region)
    plan_state = definition["States"][definition["StartAt"]]
    run = SweepRun(execution_name, region, [], [])
    planned = _invoke(runner, region, plan_state, _parameters(plan_state.get("Parameters"), {}, execution_name), run)
    if not planned.ok or not isinstance(planned.result, dict) or "targets" not in planned.result:
        raise SweepError(f"the plan failed: {planned.describe()} {planned.result!r}")
    each = definition["States"][plan_state["Next"]]
    if each.get("Type") != "Map" or each.get("ItemsPath") != "$.targets":
        raise SweepError(f"state {plan_state['Next']}: expected a Map over $.targets")
    processor = each["ItemProcessor"]
    task = processor["States"][processor["StartAt"]]
    run.plan = list(planned.result["targets"])
    for item in run.plan:  # the Map runs up to MaxConcurrency at once; one at a time here
        attempt = _invoke(runner, region, task, _parameters(task.get("Parameters"), item, execution_name), run)
        if attempt.ok and not (isinstance(attempt.result, dict) and attempt.result.get("status") == "refused"):
            run.results.append(attempt.result)
            continue
        catch = next((c for c in task.get("Catch", []) if "States.ALL" in c["ErrorEquals"]), None)
        if catch is None:
            raise SweepError(f"target {item}: {attempt.describe()} and no Catch")
        run.results.append({**item, catch["ResultPath"].removeprefix("$."): _error(attempt)})
    return run


def _error(attempt: Attempt) -> dict[str, str]:
    if attempt.ok:  # the function refused its input: not an error to Step Functions, but no sweep either
        return {"Error": "Refused", "Cause": json.dumps(attempt.result)}
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
        lines.append(f"  {title} ({run.name}): {len(run.plan)} account-region(s){failed}, {len(alerts)} alert(s)")
        lines += [f"    {alert_line(alert)}" for alert in alerts] or ["    (none)"]
    return "\n".join(lines)
