"""`make bench`: cold start against its floor, warm per-event time, AWS calls per event and asset size, measured
against Cloud Custodian in the same run; writes bench/results.json and bench/RESULTS.md, checks the budgets.

Every figure about start-up is a median over fresh processes (bench/child.py), ours, its floor and Cloud
Custodian taken in turn so that a drift of the machine touches them alike. AWS is answered in process by botocore's
Stubber (bench/aws_stub.py): nothing goes to the network and no account is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ami_guard_cdk.components import bytecode
from bench import asset, report, scenarios, stats, sweep
from bench.custodian import HANDLER as CUSTODIAN_HANDLER
from bench.custodian import POLICIES as CUSTODIAN_POLICIES

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Workspace:
    """A temporary directory for the asset, the event files and the specs; children write results into it."""

    path: Path
    runs: int = 0

    def write_json(self, name: str, data: Any) -> Path:
        target = self.path / name
        target.write_text(json.dumps(data), encoding="utf-8")
        return target


@dataclass
class Interpreter:
    """A Python that runs children: ours (.venv) or Cloud Custodian's (.venv-bench), with a Lambda-like env."""

    python: str
    env: dict[str, str]

    def run(self, workspace: Workspace, spec: dict[str, Any], bytecode: bool = False) -> dict[str, Any]:
        """One child. Without `bytecode` it writes no bytecode (PYTHONDONTWRITEBYTECODE=1): a module without a
        usable pyc is compiled in every run, as on Lambda, where /var/task is read-only."""
        workspace.runs += 1
        spec_path = workspace.write_json(f"spec-{workspace.runs}.json", spec)
        out_path = workspace.path / f"result-{workspace.runs}.json"
        completed = subprocess.run(
            [self.python, "-m", "bench.child", str(spec_path), str(out_path)],
            env=self.env if bytecode else {**self.env, "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=900,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"child failed ({spec['mode']} {spec.get('handler', '')}):\n{completed.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
        out_path.unlink()
        return result


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Nothing of the caller's environment but PATH: no AWS profile, no PYTHON* settings leak in."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", **extra}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--custodian-python", help="the Python of the Cloud Custodian environment (.venv-bench)")
    parser.add_argument("--runs", type=int, default=21, help="rounds of fresh processes per function, at first")
    parser.add_argument("--more", type=int, default=20, help="rounds added while a budget is undecided")
    parser.add_argument("--max-runs", type=int, default=41, help="the most rounds per function; undecided after")
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="what the cold-start budgets judge (both reported)"
    )
    parser.add_argument("--events", type=int, default=2000, help="events per kind in the warm loop")
    parser.add_argument("--custodian-events", type=int, default=20, help="events per kind for Cloud Custodian")
    parser.add_argument("--repeats", type=int, default=3, help="warm loops per kind (the median is kept)")
    parser.add_argument("--functions", default=str(ROOT / "functions"), help="the code to measure")
    parser.add_argument("--out", default=str(ROOT / "bench"), help="where results.json and RESULTS.md go")
    parser.add_argument("--raw", help="also keep every measurement in this JSON file")
    parser.add_argument("--report-from", metavar="RAW", help="measure nothing: write the reports from a --raw file")
    parser.add_argument(
        "--calls-only",
        action="store_true",
        help="only the AWS calls per event, standalone and in organization mode, and their budgets (quick with "
        "--events 20 --repeats 1); writes nothing",
    )
    parser.add_argument(
        "--sweep-rounds", type=int, default=5, help="paired rounds of the posture sweep against Cloud Custodian, first"
    )
    parser.add_argument("--sweep-more", type=int, default=5, help="sweep rounds added while its wall time is undecided")
    parser.add_argument("--sweep-max-rounds", type=int, default=15, help="the most sweep rounds; undecided after")
    parser.add_argument(
        "--sweep-latency-ms",
        type=float,
        default=None,
        help="the budgeted sweep rounds: the emulator waits this long before answering each call, a network round "
        f"trip (default: bench.cost.CALL_MS, {sweep.BUDGET_LATENCY_MS:g} ms, assumed); 0 judges the budgets on plain "
        "moto and leaves out the information rounds",
    )
    parser.add_argument(
        "--sweep-plain-rounds",
        type=int,
        default=sweep.PLAIN_ROUNDS,
        help="paired sweep rounds on plain moto (no added wait) first, for information: reported, not budgeted",
    )
    parser.add_argument(
        "--no-sweep",
        action="store_true",
        help="leave out the posture sweep against Cloud Custodian (its budgets then fail the gate as not measured)",
    )
    parser.add_argument(
        "--sweep-only",
        action="store_true",
        help="only the posture sweep against Cloud Custodian and its budgets (needs --custodian-python); writes only "
        "--raw",
    )
    args = parser.parse_args(argv)
    sweep_plan = sweep.Rounds(args.sweep_rounds, args.sweep_more, args.sweep_max_rounds)
    if args.sweep_only:
        if not args.custodian_python:
            parser.error("--sweep-only needs --custodian-python")
        return sweep_only(args.custodian_python, sweep_plan, args.raw, args.sweep_latency_ms, args.sweep_plain_rounds)
    if args.report_from:
        return write_reports(json.loads(Path(args.report_from).read_text(encoding="utf-8")), Path(args.out))
    if args.calls_only:
        return calls_only(Path(args.functions), args.events, args.repeats)

    started = time.perf_counter()
    loads = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="ami-guard-bench-") as temp:
        workspace = Workspace(Path(temp))
        ours = Interpreter(sys.executable, child_env(scenarios.environment()))
        zip_path, code_dir, names = build_asset(workspace, Path(args.functions))
        custodian, custodian_info = (
            prepare_custodian(workspace, args.custodian_python) if args.custodian_python else ({}, {})
        )
        plan = Sampling(args.runs, args.more, args.max_runs, f"{args.clock}_ms" if args.clock == "cpu" else "ms")
        cold = cold_starts(workspace, ours, code_dir, custodian, plan, loads)
        warm = {
            fn.name: warm_run(workspace, ours, code_dir, fn, args.events, args.repeats) for fn in scenarios.FUNCTIONS
        }
        hub = Interpreter(sys.executable, child_env(scenarios.environment(organization=True)))
        # One loop per kind: the budgets are about calls; the time beside them is for information
        organization = {
            fn.name: organization_run(workspace, hub, code_dir, fn, args.events, 1) for fn in scenarios.FUNCTIONS
        }
        results: dict[str, Any] = {
            "asset_kb": round(zip_path.stat().st_size / 1024, 1),
            "asset_files": len(names),
            "asset_bytecode": asset_bytecode(),
            "cold": cold,
            "warm": warm,
            "organization": organization,
            "source_compile_ms": {
                name: compile_ms(code_dir, data["first"]["modules"], ("ami_guard",)) for name, data in cold.items()
            },
        }
        if custodian:
            results["custodian"] = measure_custodian(workspace, custodian, custodian_info, args)
    if args.custodian_python and not args.no_sweep:
        results["sweep"] = sweep.measure(
            args.custodian_python, sweep_plan, loads, args.sweep_latency_ms, args.sweep_plain_rounds
        )
    results["environment"] = environment(args.custodian_python)
    results["runs"] = {
        "cold_start_rounds": {"first": args.runs, "more": args.more, "max": args.max_runs},
        "clock": args.clock,
        "warm_events_per_kind": args.events,
        "warm_repeats": args.repeats,
        "custodian_warm_events_per_kind": args.custodian_events,
        "bench_seconds": round(time.perf_counter() - started, 1),
        "load_average": [*loads, round(os.getloadavg()[0], 2)],
        "sweep_rounds": {
            "first": args.sweep_rounds,
            "more": args.sweep_more,
            "max": args.sweep_max_rounds,
            "plain_moto_information": args.sweep_plain_rounds,
        },
    }
    if args.raw:
        Path(args.raw).write_text(json.dumps(results), encoding="utf-8")
    return write_reports(results, Path(args.out))


def write_reports(results: dict[str, Any], out: Path) -> int:
    """results.json, RESULTS.md and the console table with each budget; 1 when a budget fails."""
    outcome = report.conclude(results)
    (out / "results.json").write_text(json.dumps(outcome, indent=2) + "\n", encoding="utf-8")
    (out / "RESULTS.md").write_text(report.markdown(outcome), encoding="utf-8")
    written = f"{out / 'results.json'} and {out / 'RESULTS.md'}"
    if out.resolve() == (ROOT / "bench").resolve():  # the README's figures are the committed results' figures
        readme = ROOT / report.README
        readme.write_text(report.rewrite_readme(readme.read_text(encoding="utf-8"), outcome), encoding="utf-8")
        written += f" and the figures in {report.README}"
    print(report.console(outcome))
    print(f"wrote {written} ({results['runs']['bench_seconds']} s of measuring)")
    return 0 if report.passed(outcome["budgets"]) else 1


# --- ours ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    """How many rounds a function's cold starts get: `runs` first, then `more` at a time while one of its budgets
    is undecided (its interval straddles the limit), up to `max_runs`; `clock` is the figure the budgets judge."""

    runs: int = 21
    more: int = 20
    max_runs: int = 41
    clock: str = "cpu_ms"

    def next_batch(self, done: int) -> int:
        return min(self.runs if done == 0 else self.more, self.max_runs - done)


@dataclass
class Target:
    """One kind of fresh process to time: ours, its floor, or Cloud Custodian on the same event."""

    label: str
    interpreter: Interpreter
    spec: dict[str, Any]
    ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    first: dict[str, Any] = field(default_factory=dict)


def build_asset(workspace: Workspace, functions_dir: Path) -> tuple[Path, Path, list[str]]:
    """The zipped asset with its bytecode, unzipped where the children import it from."""
    zip_path = workspace.path / "asset.zip"
    names = asset.build(zip_path, functions_dir)
    code_dir = workspace.path / "asset"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(code_dir)
    # The asset ships bytecode, made as the synth makes it (for this Python here, for 3.13 there): every child
    # loads it and compiles none of the asset (checked in each cold start), as Lambda's runtime does. boto3 and
    # Powertools come with their bytecode too, as in Lambda's runtime and layer.
    print(f"asset: {len(names)} files with bytecode, {zip_path.stat().st_size / 1024:.1f} kB zipped", flush=True)
    return zip_path, code_dir, names


def asset_bytecode() -> dict[str, str]:
    """How the measured asset's bytecode was made: for this interpreter, with the synth's compileall options."""
    return {"cache_tag": str(sys.implementation.cache_tag), "compileall": " ".join(bytecode.COMPILE_OPTIONS)}


def cold_starts(
    workspace: Workspace,
    ours: Interpreter,
    code_dir: Path,
    custodian: dict[str, Target],
    plan: Sampling,
    loads: list[float],
) -> dict[str, Any]:
    """Per function: rounds of fresh processes, ours, the floor and (on the events it evaluates) Cloud Custodian,
    back to back in rotating order; each round gives one ratio per budget. More rounds while a budget is undecided.
    """
    out: dict[str, Any] = {}
    for fn in scenarios.FUNCTIONS:
        event = workspace.write_json(f"{fn.name}-cold.json", fn.representative())
        base = {"code_dir": str(code_dir), "event": str(event)}
        targets = [
            Target("ours", ours, {**base, "mode": "cold", "handler": fn.handler}),
            Target("floor", ours, {**base, "mode": "floor", "clients": list(fn.clients)}),
        ]
        event_name = next((name for name, f in scenarios.CUSTODIAN_EVENTS.items() if f is fn), None)
        if event_name in custodian:
            theirs = custodian[event_name]
            theirs.spec["event"] = str(event)
            targets.append(theirs)
        for target in targets:
            # Discarded, and the only run allowed to write bytecode: boto3's, Powertools' and the stdlib's that a
            # fresh install may lack are written now (Lambda's runtime has them). Ours finds its asset's bytecode
            # and must compile none of it (an audit hook records every compile); Cloud Custodian's archive ships
            # none, so what this run wrote into it is removed again.
            first = target.interpreter.run(workspace, {**target.spec, "audit": True}, bytecode=True)
            check_compiles(fn.name, target.label, first)
            if target.label == "custodian":
                remove_bytecode(Path(target.spec["code_dir"]))
        limits = {"floor": report.COLD_START_FLOOR_RATIO, "custodian": report.CUSTODIAN_COLD_START_RATIO}
        ours_target, others = targets[0], targets[1:]
        pairs: dict[str, dict[str, list[float]]] = {
            other.label: {"ours_ms": [], "ours_cpu_ms": [], "ms": [], "cpu_ms": []} for other in others
        }
        undecided = list(others)
        rounds = 0
        while True:
            for _ in range(plan.next_batch(rounds)):
                # Ours and every comparison still undecided, back to back; a decided one is not run again.
                present = [ours_target, *undecided]
                shift = rounds % len(present)
                results = {}
                for target in present[shift:] + present[:shift]:
                    result = target.interpreter.run(workspace, target.spec)
                    check_loaded(fn.name, target.label, result)
                    target.ms.append(result["ms"])
                    target.cpu_ms.append(result["cpu_ms"])
                    target.first = target.first or result
                    results[target.label] = result
                for other in undecided:
                    pair = pairs[other.label]
                    pair["ours_ms"].append(results["ours"]["ms"])
                    pair["ours_cpu_ms"].append(results["ours"]["cpu_ms"])
                    pair["ms"].append(results[other.label]["ms"])
                    pair["cpu_ms"].append(results[other.label]["cpu_ms"])
                rounds += 1
            ours_key = "ours_" + plan.clock
            verdicts = {
                other.label: stats.summary(
                    stats.ratios(pairs[other.label][ours_key], pairs[other.label][plan.clock]), limits[other.label]
                )["verdict"]
                for other in undecided
            }
            undecided = [other for other in undecided if verdicts[other.label] == "undecided"]
            loads.append(round(os.getloadavg()[0], 2))
            if not undecided or rounds >= plan.max_runs:
                break
            labels = ", ".join(other.label for other in undecided)
            print(f"  {fn.name}: {rounds} rounds, undecided against {labels}: sampling more", flush=True)
        floor_target = targets[1]
        check_handled(fn.name, ours_target.first, fn.alert, code_dir)
        out[fn.name] = {
            "cold_ms": ours_target.ms,
            "cold_cpu_ms": ours_target.cpu_ms,
            "floor_ms": floor_target.ms,
            "floor_cpu_ms": floor_target.cpu_ms,
            "pairs": pairs,
            "first": ours_target.first,
            "clients": list(fn.clients),
        }
        floor_pairs = pairs["floor"]
        ratio = statistics.median(stats.ratios(floor_pairs["ours_" + plan.clock], floor_pairs[plan.clock]))
        line = f"cold start {fn.name}: {statistics.median(ours_target.ms):.1f} ms"
        line += f", floor {statistics.median(floor_target.ms):.1f} ms, median ratio {ratio:.3f} ({plan.clock})"
        line += f" over {len(floor_pairs['ms'])} pairs"
        if len(targets) > 2:
            check_custodian(event_name or "", targets[2].first)
            line += f", Cloud Custodian on {event_name} {statistics.median(targets[2].ms):.1f} ms"
            line += f" over {len(pairs['custodian']['ms'])} pairs"
            out[fn.name]["custodian_event"] = event_name
        print(line, flush=True)
    return out


def remove_bytecode(code_dir: Path) -> None:
    for cache in sorted(code_dir.rglob("__pycache__")):
        shutil.rmtree(cache)


def check_loaded(name: str, label: str, result: dict[str, Any]) -> None:
    """The measured code was loaded as on Lambda: ours from the asset's bytecode, every module of it, none compiled;
    Cloud Custodian's archive, which ships no bytecode, compiled; the floor imports nothing of either."""
    compiled, loaded = result["loaded"]["compiled"], result["loaded"]["bytecode"]
    if label == "ours":
        expected, as_expected = "every module from its bytecode", bool(loaded) and not compiled
    elif label == "floor":
        expected, as_expected = "nothing of the asset", not loaded and not compiled
    else:
        expected, as_expected = "every module from source", bool(compiled) and not loaded
    if not as_expected:
        raise RuntimeError(f"{name} ({label}): expected {expected}, as on Lambda: {result['loaded']}")


def check_compiles(name: str, label: str, result: dict[str, Any]) -> None:
    """The audited run: ours compiled no file of the asset (and imported some), Cloud Custodian compiled its own."""
    compiled = result["compiled_files"]
    if label == "ours" and (compiled or not result["loaded"]["bytecode"]):
        raise RuntimeError(f"{name}: the asset was compiled although it ships bytecode: {compiled}")
    if label == "custodian" and not compiled:
        raise RuntimeError(f"{name}: Cloud Custodian's archive was not compiled from source: {result['loaded']}")


def check_handled(name: str, result: dict[str, Any], alert: str | None, code_dir: Path) -> None:
    """A figure counts only if the run did what it claims: the asset's code, the event evaluated, the alert sent."""
    summary = result["result"]
    if not isinstance(summary, dict) or summary.get("status") != "evaluated":
        raise RuntimeError(f"{name}: the event was not evaluated: {summary}")
    if alert is not None and alert not in summary.get("published", []):
        raise RuntimeError(f"{name}: expected {alert} to be published, got {summary}")
    if alert is not None and not {"sns:Publish", "events:PutEvents"} <= set(result["calls"]):
        raise RuntimeError(f"{name}: the alert did not go to the topic and the findings bus: {result['calls']}")
    if not str(result.get("code_file", "")).startswith(str(code_dir)):
        raise RuntimeError(f"{name}: the handler was not imported from the asset ({result.get('code_file')})")


def check_custodian(event_name: str, result: dict[str, Any]) -> None:
    if result["result"] is not True or "sns:Publish" not in result["calls"]:
        raise RuntimeError(f"Cloud Custodian did not evaluate and notify on {event_name}: {result['calls']}")


def warm_run(
    workspace: Workspace, ours: Interpreter, code_dir: Path, fn: scenarios.Function, events: int, repeats: int
) -> dict[str, Any]:
    kinds = []
    for kind in fn.kinds:
        for variant, record in (("quiet", kind.quiet), ("alert", kind.alerting)):
            if record is None:
                continue
            path = workspace.write_json(f"{fn.name}-{kind.name}-{variant}.json", scenarios.copies(record, events + 2))
            kinds.append({"name": kind.name, "variant": variant, "events": str(path)})
    event = workspace.write_json(f"{fn.name}-warm.json", fn.representative())
    spec = {
        "mode": "warm",
        "code_dir": str(code_dir),
        "event": str(event),
        "handler": fn.handler,
        "kinds": kinds,
        "repeats": repeats,
    }
    result = ours.run(workspace, spec)
    for kind_result in result["kinds"]:
        expected = next(k for k in fn.kinds if k.name == kind_result["name"])
        alert = expected.alert if kind_result["variant"] == "alert" else None
        label = f"{fn.name} {kind_result['name']} ({kind_result['variant']})"
        for summary in (kind_result["first"], kind_result["second"]):
            published = summary.get("published", []) if isinstance(summary, dict) else None
            if published is None or (alert is None and published) or (alert is not None and alert not in published):
                raise RuntimeError(f"{label}: {summary}")
        if kind_result["calls_per_event"] != len(kind_result["steady_calls"]):
            raise RuntimeError(f"{label}: {kind_result['calls_per_event']} calls per event in the loop, not as counted")
        print(
            f"warm {kind_result['name']} ({kind_result['variant']}): {kind_result['event_us']:.0f} us/event, "
            f"JSON parse {kind_result['json_parse_us']:.1f} us",
            flush=True,
        )
    return {"kinds": result["kinds"], "cold_calls": result["calls"], "stubbed_call_us": result["stubbed_call_us"]}


def organization_run(
    workspace: Workspace, hub: Interpreter, code_dir: Path, fn: scenarios.Function, events: int, repeats: int
) -> dict[str, Any]:
    """The same events handled by the hub in organization mode, each kind and outcome in a fresh process of its own:
    its first event is a container's first (member session and account list still to be made), then the warm loop.
    """
    kinds = []
    for kind in fn.kinds:
        for variant, record in (("quiet", kind.quiet), ("alert", kind.alerting)):
            if record is None:
                continue
            raws = scenarios.copies(record, events + 3)
            first = workspace.path / f"org-{fn.name}-{kind.name}-{variant}-first.json"
            first.write_text(raws[0], encoding="utf-8")
            path = workspace.write_json(f"org-{fn.name}-{kind.name}-{variant}.json", raws[1:])
            spec = {
                "mode": "warm",
                "code_dir": str(code_dir),
                "event": str(first),
                "handler": fn.handler,
                "kinds": [{"name": kind.name, "variant": variant, "events": str(path)}],
                "repeats": repeats,
            }
            result = hub.run(workspace, spec)
            label = f"{fn.name} {kind.name} ({variant}), organization mode"
            alert = kind.alert if variant == "alert" else None
            (kind_result,) = result["kinds"]
            for summary in (result["result"], kind_result["first"], kind_result["second"]):
                published = summary.get("published", []) if isinstance(summary, dict) else None
                if published is None or (alert is None and published) or (alert is not None and alert not in published):
                    raise RuntimeError(f"{label}: {summary}")
            if kind_result["calls_per_event"] != len(kind_result["steady_calls"]):
                raise RuntimeError(
                    f"{label}: {kind_result['calls_per_event']} calls per event in the loop, not as counted"
                )
            check_member_session(label, result["calls"], kind_result["steady_calls"])
            kind_result["container_first_calls"] = result["calls"]
            kind_result["ec2_calls_with_own_credentials"] += result["ec2_calls_with_own_credentials"]
            kinds.append(kind_result)
            print(
                f"organization mode {kind.name} ({variant}): first event {len(result['calls'])} AWS calls, "
                f"warm {len(kind_result['steady_calls'])}",
                flush=True,
            )
    return {"kinds": kinds}


def check_member_session(label: str, first_calls: list[str], steady_calls: list[str]) -> None:
    """A figure of organization mode counts only if the hub went through a member role: an event that reads EC2
    assumed it in the container's first event."""
    if any(call.startswith("ec2:") for call in steady_calls) and "sts:AssumeRole" not in first_calls:
        raise RuntimeError(f"{label}: EC2 was read without assuming a member role first: {first_calls}")


def calls_only(functions_dir: Path, events: int, repeats: int) -> int:
    """`--calls-only`: the AWS calls per event of every kind, standalone and in organization mode, and their budgets;
    nothing timed is judged, nothing is written."""
    with tempfile.TemporaryDirectory(prefix="ami-guard-bench-") as temp:
        workspace = Workspace(Path(temp))
        _, code_dir, _ = build_asset(workspace, functions_dir)
        ours = Interpreter(sys.executable, child_env(scenarios.environment()))
        hub = Interpreter(sys.executable, child_env(scenarios.environment(organization=True)))
        results = {
            "warm": {fn.name: warm_run(workspace, ours, code_dir, fn, events, repeats) for fn in scenarios.FUNCTIONS},
            "organization": {
                fn.name: organization_run(workspace, hub, code_dir, fn, events, repeats) for fn in scenarios.FUNCTIONS
            },
        }
    summary = report.organization_summary(results)
    if summary is not None:
        print(report.organization_table(summary))
    checks = report.organization_budgets(summary)
    for budget in checks:
        print(f"{budget['verdict'].upper():<9} {budget['budget']}: {budget['value']}")
    return 0 if report.passed(checks) else 1


def sweep_only(
    custodian_python: str,
    plan: sweep.Rounds,
    raw: str | None,
    latency_ms: float | None = None,
    plain_rounds: int = sweep.PLAIN_ROUNDS,
) -> int:
    """`--sweep-only`: the posture sweep against Cloud Custodian, its table and its budgets; writes only --raw."""
    loads = [round(os.getloadavg()[0], 2)]
    measured = sweep.measure(custodian_python, plan, loads, latency_ms, plain_rounds)
    loads.append(round(os.getloadavg()[0], 2))
    if raw:
        Path(raw).write_text(json.dumps({"sweep": measured, "load_average": loads}), encoding="utf-8")
    summary = report.sweep_summary(measured)
    print(report.sweep_table(summary))
    checks = report.sweep_budgets(summary)
    for budget in checks:
        print(f"{budget['verdict'].upper():<9} {report._budget_line(budget)}")
    print(f"load average (1-minute) while measuring: {min(loads)} to {max(loads)}")
    return 0 if report.passed(checks) else 1


def compile_ms(code_dir: Path, modules: list[str], packages: tuple[str, ...]) -> float:
    """What compiling the loaded modules of `packages` from source costs: what a cold start pays without bytecode
    (ours synthesized without Python 3.13; Cloud Custodian's archive always)."""
    total = 0.0
    for module in modules:
        if not module.startswith(packages):
            continue
        base = code_dir.joinpath(*module.split("."))
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8")
        best = min(_compile_once(source, str(path)) for _ in range(3))
        total += best
    return round(total, 1)


def _compile_once(source: str, filename: str) -> float:
    began = time.perf_counter()
    compile(source, filename, "exec")
    return (time.perf_counter() - began) * 1000


# --- Cloud Custodian ----------------------------------------------------------------------------------


def prepare_custodian(workspace: Workspace, python: str) -> tuple[dict[str, Target], dict[str, Any]]:
    """Custodian's own archive per policy, unzipped and run from source like ours; a cold-start target per event."""
    archives = workspace.path / "custodian"
    archives.mkdir()
    built = subprocess.run(
        [python, "-m", "bench.custodian", str(archives)],
        env=child_env(scenarios.lambda_environment()),
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"Cloud Custodian's archive could not be built:\n{built.stderr[-4000:]}")
    versions: dict[str, str] = json.loads(built.stdout)
    targets: dict[str, Target] = {}
    info: dict[str, Any] = {"version": sorted(set(versions.values())), "events": {}}
    for event_name in scenarios.CUSTODIAN_EVENTS:
        code_dir = archives / event_name
        with zipfile.ZipFile(archives / f"{event_name}.zip") as archive:
            archive.extractall(code_dir)
        policy_name = CUSTODIAN_POLICIES[event_name]["name"]
        interpreter = Interpreter(
            python,
            child_env({**scenarios.lambda_environment(), "AWS_LAMBDA_FUNCTION_NAME": f"custodian-{policy_name}"}),
        )
        spec = {"mode": "cold", "code_dir": str(code_dir), "handler": CUSTODIAN_HANDLER}
        targets[event_name] = Target("custodian", interpreter, spec)
        info["events"][event_name] = {
            "policy": CUSTODIAN_POLICIES[event_name],
            "archive_kb": round((archives / f"{event_name}.zip").stat().st_size / 1024, 1),
            "code_dir": str(code_dir),
        }
    return targets, info


def measure_custodian(
    workspace: Workspace, targets: dict[str, Target], info: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Cold starts (timed with ours) and warm loops over the same events, the alerting and the quiet one."""
    for event_name, fn in scenarios.CUSTODIAN_EVENTS.items():
        target = targets[event_name]
        kind = next(k for k in fn.kinds if k.name == event_name)
        kinds = []
        for variant, record in (("alert", kind.alerting), ("quiet", kind.quiet)):
            assert record is not None
            path = workspace.write_json(
                f"custodian-{event_name}-{variant}.json", scenarios.copies(record, args.custodian_events + 2)
            )
            kinds.append({"name": event_name, "variant": variant, "events": str(path)})
        warm = target.interpreter.run(
            workspace, {**target.spec, "mode": "warm", "kinds": kinds, "repeats": args.repeats}
        )
        code_dir = Path(info["events"][event_name].pop("code_dir"))
        info["events"][event_name].update(
            {
                "cold_ms": target.ms,
                "cold_cpu_ms": target.cpu_ms,
                "calls": target.first["calls"],
                "clients": target.first["clients"],
                "warm": warm["kinds"],
                "source_compile_ms": compile_ms(code_dir, target.first["modules"], ("c7n", "custodian_policy")),
            }
        )
        for kind_result in warm["kinds"]:
            print(
                f"Cloud Custodian warm {event_name} ({kind_result['variant']}): {kind_result['event_us']:.0f} us/event",
                flush=True,
            )
    return info


def environment(custodian_python: str | None) -> dict[str, Any]:
    import boto3
    import botocore
    from aws_lambda_powertools.shared.version import VERSION as POWERTOOLS_VERSION

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "aws_lambda_powertools": POWERTOOLS_VERSION,
    }
    if custodian_python:
        versions = subprocess.run(
            [
                custodian_python,
                "-c",
                "import boto3, botocore, c7n.version as v; print(v.version, boto3.__version__, botocore.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        info["custodian"] = {"c7n": versions[0], "boto3": versions[1], "botocore": versions[2]}
    return info
