"""One measurement in a fresh process: `python -m bench.child SPEC.json RESULT.json`, run by bench.run.

Modes: `cold` imports a Lambda handler, builds its clients and handles one event; `floor` imports boto3, creates
the named clients and parses the event; `warm` handles one cold event, then times thousands of events per kind.
The clock starts after the interpreter and what a Lambda runtime has loaded before it calls a handler (json, os,
sys, time, logging with a handler on the root logger) and before anything the measured code needs: the AWS seam,
boto3, the handler module. Two clocks: the wall clock (what Lambda bills) and this process's CPU time (the same
work without the time spent waiting for a core that a neighbour holds). `loaded` sorts the code_dir modules by
whether they were loaded from bytecode (an unchecked-hash pyc of this interpreter beside the source: importlib loads
it without reading the source) or compiled in the run. bench.run runs children with PYTHONDONTWRITEBYTECODE=1, as
on Lambda (/var/task is read-only): our asset ships its bytecode (bench/asset.py), Cloud Custodian's none. With
`audit` in the spec, an audit hook records every compile of a code_dir file (not in timed runs: a Python audit
hook is called for each of thousands of events).
Stdlib only at module level: this runs in both benchmark environments.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: typing is not loaded before the clock starts
BATCH = 50

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from bench.aws_stub import CallLog


class Context:
    """The parts of Lambda's context object that Powertools and Cloud Custodian read."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:eu-west-1:111122223333:function:{function_name}"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    with open(spec["event"]) as f:
        raw = f.read()
    logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))  # as Lambda's runtime does
    sys.path.insert(0, spec["code_dir"])
    os.chdir(spec.get("cwd") or spec["code_dir"])
    compiled_files: list[str] = []
    if spec.get("audit"):
        _record_compiles(spec["code_dir"], compiled_files)
    started = time.perf_counter()
    started_cpu = time.process_time()

    from bench.answers import ANSWERS
    from bench.aws_stub import install

    log = install(ANSWERS)
    event = json.loads(raw)
    if spec["mode"] == "floor":
        import boto3

        for service in spec["clients"]:
            boto3.client(service, region_name=os.environ["AWS_REGION"])
        result = code_file = None
    else:
        handler = _handler(spec["handler"])
        result = handler(event, Context())
    elapsed_ms = (time.perf_counter() - started) * 1000
    cpu_ms = (time.process_time() - started_cpu) * 1000
    if spec["mode"] != "floor":
        code_file = sys.modules[spec["handler"].rsplit(".", 1)[0]].__file__
    taken = log.take()
    out = {
        "ms": elapsed_ms,
        "cpu_ms": cpu_ms,
        "loaded": _loaded(spec["code_dir"]),
        "compiled_files": sorted(set(compiled_files)) if spec.get("audit") else None,
        "result": result,
        "code_file": code_file,
        "clients": list(log.clients),
        "calls": [str(call) for call in taken],
        "ec2_calls_with_own_credentials": sum(
            call.service == "ec2" and call.key == os.environ.get("AWS_ACCESS_KEY_ID", "") for call in taken
        ),
        "modules": sorted(sys.modules),
    }
    if spec["mode"] == "warm":
        out["kinds"] = [_warm(handler, log, kind, spec["repeats"]) for kind in spec["kinds"]]
        out["stubbed_call_us"] = _call_cost(spec["repeats"])
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, default=str)


def _record_compiles(code_dir: str, compiled: list[str]) -> None:
    """Record each file under code_dir that builtins.compile is called on: importlib calls it for a module whose
    bytecode it cannot use, never for one it loads from a pyc."""
    prefix = os.path.join(code_dir, "")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "compile" and isinstance(args[1], str) and args[1].startswith(prefix):
            compiled.append(os.path.relpath(args[1], code_dir))

    sys.addaudithook(hook)


def _loaded(code_dir: str) -> dict[str, list[str]]:
    """The modules imported from code_dir, by how: from bytecode (a pyc of this interpreter in unchecked-hash mode
    beside the source, which importlib loads without looking at the source) or else compiled in this process."""
    import importlib.util

    out: dict[str, list[str]] = {"compiled": [], "bytecode": []}
    prefix = os.path.join(code_dir, "")
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        cached = getattr(module, "__cached__", None)
        if not (path.startswith(prefix) and path.endswith(".py")):
            continue
        header = b""
        if cached and os.path.exists(cached):
            with open(cached, "rb") as f:
                header = f.read(8)
        unchecked = header[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(header[4:8], "little") == 0b01
        out["bytecode" if unchecked else "compiled"].append(name)
    return {key: sorted(names) for key, names in out.items()}


def _handler(path: str) -> Callable[[Any, Any], Any]:
    import importlib

    module_name, function_name = path.rsplit(".", 1)
    handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), function_name)
    return handler


def _warm(handler: Callable[[Any, Any], Any], log: CallLog, kind: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Per-event time over every event in the kind's file, `repeats` times; the same events' JSON parse time."""
    import statistics

    with open(kind["events"]) as f:
        raws = json.load(f)
    context = Context()
    own_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
    first = handler(json.loads(raws[0]), context)
    taken = log.take()
    first_calls = [str(call) for call in taken]
    own_ec2 = sum(call.service == "ec2" and call.key == own_key for call in taken)
    second = handler(json.loads(raws[1]), context)
    taken = log.take()
    steady_calls = [str(call) for call in taken]
    own_ec2 += sum(call.service == "ec2" and call.key == own_key for call in taken)
    handled, parsed = [], []
    clients = len(log.clients)
    timed = raws[2:]
    calls = 0
    for _ in range(repeats):
        elapsed = parse = 0.0
        # Parsed a batch at a time, outside the handler's clock: a warm Lambda holds one event, not thousands (a big
        # live heap would make the garbage collector's passes, and so the figure, depend on the batch size). The
        # parse of each batch is timed right after it is handled, so a busy neighbour touches both alike; both on
        # this process's CPU time.
        for start in range(0, len(timed), BATCH):
            batch = timed[start : start + BATCH]
            events = [json.loads(raw) for raw in batch]
            began = time.process_time()
            for event in events:
                handler(event, context)
            elapsed += time.process_time() - began
            taken = log.take()
            calls += len(taken)
            own_ec2 += sum(call.service == "ec2" and call.key == own_key for call in taken)
            began = time.process_time()
            for raw in batch:
                json.loads(raw)
            parse += time.process_time() - began
        handled.append(elapsed / len(timed) * 1e6)
        parsed.append(parse / len(timed) * 1e6)
    return {
        "name": kind["name"],
        "variant": kind["variant"],
        "events": len(timed),
        "event_us": statistics.median(handled),
        "event_us_runs": handled,
        "json_parse_us": statistics.median(parsed),
        "first": first,
        "second": second,
        "first_calls": first_calls,
        "steady_calls": steady_calls,
        "calls_per_event": calls / (repeats * len(timed)),
        "ec2_calls_with_own_credentials": own_ec2,
        "clients_per_event": (len(log.clients) - clients) / (repeats * len(timed)),
    }


def _call_cost(repeats: int, calls: int = 1000) -> float:
    """What one AWS call costs when the Stubber answers it: an SNS Publish of an alert-sized message."""
    import statistics

    import boto3

    client = boto3.client("sns", region_name=os.environ["AWS_REGION"])
    message = json.dumps({"default": "d" * 1500, "email": "e" * 1200})
    attributes = {key: {"DataType": "String", "StringValue": "value"} for key in ("severity", "rule_id", "account")}

    def publish() -> None:
        client.publish(
            TopicArn="arn:aws:sns:eu-west-1:111122223333:ami-guard-alerts",
            Subject="[CRITICAL] AMI ami-0123456789abcdef0 made public in eu-west-1 (111122223333)",
            Message=message,
            MessageStructure="json",
            MessageAttributes=attributes,
        )

    publish()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(calls):
            publish()
        times.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(times)


if __name__ == "__main__":
    main()
