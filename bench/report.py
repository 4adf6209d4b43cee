"""Figures, budgets and the reports (bench/results.json, bench/RESULTS.md, the console) from what bench.run measured."""

from __future__ import annotations

import statistics
from typing import Any

from bench import scenarios
from bench.aws_stub import READ_PREFIXES

COLD_START_FLOOR_RATIO = 1.2
CUSTODIAN_COLD_START_RATIO = 0.6
WARM_PARSE_RATIO = 20
ZERO_READ_KINDS = ("ModifyImageAttribute", "ModifySnapshotAttribute", "RunInstances")
ONE_READ_KINDS = ("RunInstancesWithoutVirtualizationType",)
CACHED_ACROSS_INVOCATIONS = {
    "ec2:DescribeInstanceTypes": "once per instance type per container (InstanceTypeCatalog), then from memory",
    "clients": "one per service and region per container (aws.client_factory), made on first use",
}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [round(values[0], 1)] * 2
    q1, _, q3 = statistics.quantiles(values, n=4)
    return [round(q1, 1), round(q3, 1)]


def _calls(calls: list[str]) -> dict[str, Any]:
    reads = [c for c in calls if c.split(":", 1)[1].startswith(READ_PREFIXES)]
    return {"per_event": len(calls), "reads": len(reads), "writes": len(calls) - len(reads), "calls": calls}


def conclude(results: dict[str, Any]) -> dict[str, Any]:
    """results.json: the figures named in the issue first, then what explains them."""
    cold = results["cold"]
    out: dict[str, Any] = {"schema": "ami-guard/bench/v1"}
    out["cold_start_ms"] = {name: _median(data["cold_ms"]) for name, data in cold.items()}
    out["floor_ms"] = {name: _median(data["floor_ms"]) for name, data in cold.items()}
    out["cold_start_ratio"] = {name: round(out["cold_start_ms"][name] / out["floor_ms"][name], 3) for name in cold}

    warm_quiet: dict[str, float] = {}
    warm_alert: dict[str, float] = {}
    parse_quiet: dict[str, float] = {}
    parse_alert: dict[str, float] = {}
    api_calls: dict[str, Any] = {}
    for function_name, data in results["warm"].items():
        for kind in data["kinds"]:
            name, quiet = kind["name"], kind["variant"] == "quiet"
            (warm_quiet if quiet else warm_alert)[name] = round(kind["event_us"], 1)
            (parse_quiet if quiet else parse_alert)[name] = round(kind["json_parse_us"], 2)
            entry = api_calls.setdefault(name, {"function": function_name})
            entry["nothing_found" if quiet else "alert"] = _calls(kind["steady_calls"])
            first_only = [c for c in kind["first_calls"] if c not in kind["steady_calls"]]
            if first_only:
                entry.setdefault("first_event_in_container_also", {})["nothing_found" if quiet else "alert"] = (
                    first_only
                )
    out["warm_event_us"] = warm_quiet
    out["json_parse_us"] = parse_quiet
    out["warm_alert_us"] = warm_alert
    out["json_parse_alert_us"] = parse_alert
    out["stubbed_call_us"] = round(statistics.median(d["stubbed_call_us"] for d in results["warm"].values()), 1)
    out["api_calls"] = api_calls
    out["api_calls_cached_across_invocations"] = CACHED_ACROSS_INVOCATIONS
    out["asset_kb"] = results["asset_kb"]

    custodian = results.get("custodian")
    if custodian:
        theirs: dict[str, Any] = {
            "version": ", ".join(custodian["version"]),
            "cold_start_ms": {},
            "warm_event_us": {},
            "warm_nothing_found_us": {},
            "api_calls": {},
            "cold_start_quartiles_ms": {},
            "archive_kb": {},
            "source_compile_ms": {},
            "policies": {},
        }
        for event_name, data in custodian["events"].items():
            theirs["cold_start_ms"][event_name] = _median(data["cold_ms"])
            theirs["cold_start_quartiles_ms"][event_name] = _quartiles(data["cold_ms"])
            for kind in data["warm"]:
                target = theirs["warm_event_us"] if kind["variant"] == "alert" else theirs["warm_nothing_found_us"]
                target[event_name] = round(kind["event_us"], 1)
            by_variant = {kind["variant"]: kind for kind in data["warm"]}
            theirs["api_calls"][event_name] = {
                "cold_start": data["calls"],
                "alert": _calls(by_variant["alert"]["steady_calls"]),
                "nothing_found": _calls(by_variant["quiet"]["steady_calls"]),
                "clients_made_per_warm_event": by_variant["alert"]["clients_per_event"],
            }
            theirs["archive_kb"][event_name] = data["archive_kb"]
            theirs["source_compile_ms"][event_name] = data["source_compile_ms"]
            theirs["policies"][event_name] = data["policy"]
        out["custodian"] = theirs
        out["ours_vs_custodian"] = {"cold_start_ratio": {}, "warm_event_ratio": {}}
        for event_name, fn in scenarios.CUSTODIAN_EVENTS.items():
            out["ours_vs_custodian"]["cold_start_ratio"][event_name] = round(
                out["cold_start_ms"][fn.name] / theirs["cold_start_ms"][event_name], 3
            )
            out["ours_vs_custodian"]["warm_event_ratio"][event_name] = round(
                warm_alert[event_name] / theirs["warm_event_us"][event_name], 4
            )

    out["cold_start_quartiles_ms"] = {name: _quartiles(data["cold_ms"]) for name, data in cold.items()}
    out["floor_quartiles_ms"] = {name: _quartiles(data["floor_ms"]) for name, data in cold.items()}
    out["floor_clients"] = {name: data["clients"] for name, data in cold.items()}
    out["cold_start_calls"] = {name: data["first"]["calls"] for name, data in cold.items()}
    out["source_compile_ms"] = results["source_compile_ms"]
    out["environment"] = results["environment"]
    out["runs"] = results["runs"]
    out["budgets"] = budgets(out)
    return out


def _budget(name: str, value: float, limit: float) -> dict[str, Any]:
    """`margin`: how far below its limit the value is, as a fraction of the limit (None for a limit of zero)."""
    margin = round((limit - value) / limit, 3) if limit else None
    return {"budget": name, "value": value, "limit": round(limit, 3), "pass": value <= limit, "margin": margin}


def _margin(budget: dict[str, Any]) -> str:
    return "—" if budget["margin"] is None else f"{budget['margin']:.0%}"


def budgets(out: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [
        _budget(f"cold start / floor, {name} function <= {COLD_START_FLOOR_RATIO}", ratio, COLD_START_FLOOR_RATIO)
        for name, ratio in out["cold_start_ratio"].items()
    ]
    if "ours_vs_custodian" in out:
        for event_name, ratio in out["ours_vs_custodian"]["cold_start_ratio"].items():
            checks.append(
                _budget(
                    f"cold start / Cloud Custodian's, {event_name} <= {CUSTODIAN_COLD_START_RATIO}",
                    ratio,
                    CUSTODIAN_COLD_START_RATIO,
                )
            )
    else:
        checks.append(_budget("Cloud Custodian measured (pass --custodian-python)", 1, 0))
    for kinds, limit in ((ZERO_READ_KINDS, 0), (ONE_READ_KINDS, 1)):
        for kind in kinds:
            for variant in ("nothing_found", "alert"):
                reads = out["api_calls"][kind][variant]["reads"]
                checks.append(_budget(f"read calls per event, {kind} ({variant}) <= {limit}", reads, limit))
    for kind, us in out["warm_event_us"].items():
        if out["api_calls"][kind]["nothing_found"]["per_event"]:
            continue  # see not_budgeted(): an event that needs AWS calls is not decided from the record alone
        parse = out["json_parse_us"][kind]
        checks.append(_budget(f"warm per event / JSON parse, {kind} <= {WARM_PARSE_RATIO}", round(us / parse, 2), 20))
    return checks


def not_budgeted(out: dict[str, Any]) -> list[str]:
    """The warm figures the 20x budget cannot cover, and why: each AWS call alone costs about 20x a parse."""
    notes = []
    for kind, calls in out["api_calls"].items():
        quiet = calls.get("nothing_found", {})
        if quiet.get("per_event"):
            notes.append(
                f"{kind} (nothing found): {out['warm_event_us'][kind]} µs with {quiet['per_event']} AWS calls "
                f"({', '.join(quiet['calls'])}): not settled from the record alone"
            )
    notes.append(
        "events that raise an alert (warm µs, alert) make at least 3 AWS calls (the idempotency record's two writes "
        f"and the Publish); one call, answered by the Stubber, costs {out['stubbed_call_us']} µs by itself"
    )
    return notes


def console(out: dict[str, Any]) -> str:
    lines = ["", tables(out), ""]
    for budget in out["budgets"]:
        mark = "PASS" if budget["pass"] else "FAIL"
        lines.append(f"{mark}  {budget['budget']}: {budget['value']} (margin {_margin(budget)})")
    lines += [f"n/a   {note}" for note in not_budgeted(out)]
    return "\n".join(lines)


def tables(out: dict[str, Any]) -> str:
    custodian = out.get("ours_vs_custodian", {}).get("cold_start_ratio", {})
    by_function = {fn.name: event for event, fn in scenarios.CUSTODIAN_EVENTS.items()}
    rows = [
        "| function (representative event) | cold start ms | floor ms | ratio (≤ 1.2) | / Custodian (≤ 0.6) "
        "| floor: clients | + compiling the source ms |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for fn in scenarios.FUNCTIONS:
        name = fn.name
        event = by_function.get(name)
        versus = f"{custodian[event]} ({event})" if event in custodian else "—"
        rows.append(
            f"| {name} ({fn.alert}) | {out['cold_start_ms'][name]} | {out['floor_ms'][name]} | "
            f"{out['cold_start_ratio'][name]} | {versus} | {', '.join(out['floor_clients'][name])} | "
            f"{out['source_compile_ms'][name]} |"
        )
    rows += [
        "",
        "| event kind | warm µs, nothing found | JSON parse µs | ratio (≤ 20) | AWS calls, nothing found "
        "| warm µs, alert | AWS calls, alert |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for kind, calls in out["api_calls"].items():
        quiet, alert = calls.get("nothing_found"), calls.get("alert")
        us, parse = out["warm_event_us"][kind], out["json_parse_us"][kind]
        ratio = f"{us / parse:.1f}" if quiet and not quiet["per_event"] else f"({us / parse:.0f}, n/a)"
        rows.append(
            f"| {kind} | {us} | {parse} | {ratio} | {_call_list(quiet)} | "
            f"{out['warm_alert_us'].get(kind, '—')} | {_call_list(alert)} |"
        )
    first = {
        f"{kind} ({variant})": ", ".join(only)
        for kind, calls in out["api_calls"].items()
        for variant, only in calls.get("first_event_in_container_also", {}).items()
    }
    if first:
        rows += ["", "First event of a kind in a container also: " + "; ".join(f"{k}: {v}" for k, v in first.items())]
    if "custodian" in out:
        theirs = out["custodian"]
        rows += [
            "",
            f"| same event, Cloud Custodian {theirs['version']} (cloudtrail mode) | Custodian cold start ms "
            "| + compiling the source ms | ours ms | Custodian warm µs | ours µs "
            "| Custodian AWS calls per event | ours |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for event, fn in scenarios.CUSTODIAN_EVENTS.items():
            rows.append(
                f"| {event} | {theirs['cold_start_ms'][event]} | {theirs['source_compile_ms'][event]} | "
                f"{out['cold_start_ms'][fn.name]} | "
                f"{theirs['warm_event_us'][event]} | {out['warm_alert_us'][event]} | "
                f"{_call_list(theirs['api_calls'][event]['alert'])} | {_call_list(out['api_calls'][event]['alert'])} |"
            )
        archive = max(theirs["archive_kb"].values())
        rows += ["", f"Function asset: {out['asset_kb']} kB zipped (Cloud Custodian's policy archive: {archive} kB)."]
    else:
        rows += ["", f"Function asset: {out['asset_kb']} kB zipped."]
    return "\n".join(rows)


def _call_list(calls: dict[str, Any] | None) -> str:
    if not calls:
        return "—"
    return ", ".join(calls["calls"]) or "none"


def markdown(out: dict[str, Any]) -> str:
    env = out["environment"]
    runs = out["runs"]
    lines = [
        "# AMI Guard benchmark",
        "",
        "Written by `make bench` (bench/run.py); the figures behind it are in `bench/results.json`. Cold starts are "
        f"medians over {runs['cold_start_processes']} fresh processes each, ours, its floor and Cloud Custodian "
        "taken in turn; warm "
        f"figures are medians of {runs['warm_repeats']} loops over {runs['warm_events_per_kind']} events per kind "
        f"({runs['custodian_warm_events_per_kind']} for Cloud Custodian). AWS is answered in process by botocore's "
        "Stubber. "
        f"Python {env['python']}, {env['cpus']} CPUs, boto3 {env['boto3']}, Powertools {env['aws_lambda_powertools']}"
        + (
            f"; Cloud Custodian {env['custodian']['c7n']} with boto3 {env['custodian']['boto3']}."
            if "custodian" in env
            else "."
        ),
        "",
        tables(out),
        "",
        "| budget | value | limit | margin | |",
        "|---|---:|---:|---:|---|",
    ]
    for budget in out["budgets"]:
        mark = "pass" if budget["pass"] else "**FAIL**"
        lines.append(f"| {budget['budget']} | {budget['value']} | {budget['limit']} | {_margin(budget)} | {mark} |")
    lines += ["", "Not budgeted:", ""]
    lines += [f"- {note}" for note in not_budgeted(out)]
    return "\n".join(lines) + "\n"
