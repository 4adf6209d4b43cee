"""What a million events cost at the hub, from the measured warm time and AWS calls per event (bench/results.json)
and the prices below: `python -m bench.cost` prints the tables that docs/scale.md quotes.

The model, stated so that it can be argued with:
- Lambda bills wall time. The warm figure is CPU time on one whole core; at MEMORY_SIZE_MB Lambda gives the function
  MEMORY_SIZE_MB / LAMBDA_MB_PER_VCPU of a vCPU, so the same work takes LAMBDA_MB_PER_VCPU / MEMORY_SIZE_MB times
  longer. To that: every AWS call's wait (CALL_MS in the region, EC2_CALL_MS for an EC2 call, which in organization
  mode goes to the member's region, often another one) and RUNTIME_MS for Lambda's own work around the handler;
  rounded up to the millisecond, as Lambda bills.
- Each event reaches the hub through a member's rule: one cross-account delivery, billed to the member (the sender)
  as a custom event, plus inter-region data transfer for an event from another region than the hub's.
- The idempotency record's writes are DynamoDB on-demand writes of an item under 1 KB (one write unit each).
- CloudWatch Logs ingests what the function logs (measured, see LOG_BYTES) and Lambda's START/END/REPORT lines.
Prices are us-east-1 list prices without free tiers; where each comes from and how sure it is: docs/scale.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# ami_guard_cdk/components/guard_function.py MEMORY_SIZE_MB (tests/unit/test_bench.py keeps them equal)
MEMORY_SIZE_MB = 256
LAMBDA_MB_PER_VCPU = 1769  # "At 1,769 MB, a function has the equivalent of one vCPU" (Lambda developer guide)
CALL_MS = 20.0  # assumed wait of one DynamoDB, SNS, STS or Organizations call (not measured here)
EC2_CALL_MS = 150.0  # assumed wait of one EC2 call, in another region than the hub's (not measured here)
RUNTIME_MS = 1.0  # assumed: Lambda's runtime and Powertools around the handler

LAMBDA_REQUEST_PER_MILLION = 0.20
LAMBDA_ARM_GB_SECOND = 0.0000133334
EVENTBRIDGE_CROSS_ACCOUNT_PER_MILLION = 1.00  # the upper of the two candidate rates (docs/scale.md)
EVENT_KB = 4.0  # a RunInstances record of one instance in its EventBridge envelope: 3.2 to 5.0 KB (real samples)
INTER_REGION_PER_GB = 0.02  # not verified: the usual inter-region data transfer rate
DYNAMODB_WRITE_PER_MILLION = 0.625
SNS_PUBLISH_PER_MILLION = 0.50
SNS_EMAIL_PER_MILLION = 20.00  # $2.00 per 100,000 email notifications, per subscriber
LOGS_INGEST_PER_GB = 0.50
LOG_BYTES = {"nothing_found": 530, "alert": 1350}
"""What the guard logs per event, measured on the bench's events (520 to 547 bytes nothing found, 1,309 to 1,398 with
an alert: the summary line, the published finding and its metric)."""
PLATFORM_LOG_BYTES = 300  # assumed: Lambda's START, END and REPORT lines


@dataclass(frozen=True)
class EventCost:
    """Dollars per million events of one kind and outcome, by service."""

    kind: str
    variant: str
    billed_ms: int
    calls: tuple[str, ...]
    eventbridge: float
    lambda_: float
    dynamodb: float
    sns: float
    logs: float

    @property
    def total(self) -> float:
        return self.eventbridge + self.lambda_ + self.dynamodb + self.sns + self.logs


def billed_ms(cpu_us: float, calls: tuple[str, ...]) -> int:
    """Lambda's billed duration of one warm event: CPU time at the function's share of a vCPU, plus the waits."""
    cpu_ms = cpu_us / 1000 * LAMBDA_MB_PER_VCPU / MEMORY_SIZE_MB
    waits = sum(EC2_CALL_MS if call.startswith("ec2:") else CALL_MS for call in calls)
    return math.ceil(cpu_ms + waits + RUNTIME_MS)


def event_cost(kind: str, variant: str, cpu_us: float, calls: tuple[str, ...]) -> EventCost:
    duration = billed_ms(cpu_us, calls)
    gb_seconds = MEMORY_SIZE_MB / 1024 * duration / 1000 * 1e6
    writes = sum(call in ("dynamodb:PutItem", "dynamodb:UpdateItem") for call in calls)
    publishes = sum(call == "sns:Publish" for call in calls)
    log_gb = (LOG_BYTES[variant] + PLATFORM_LOG_BYTES) * 1e6 / 1e9
    return EventCost(
        kind=kind,
        variant=variant,
        billed_ms=duration,
        calls=calls,
        eventbridge=EVENTBRIDGE_CROSS_ACCOUNT_PER_MILLION + EVENT_KB * 1e3 * 1e6 / 1e9 * INTER_REGION_PER_GB,
        lambda_=LAMBDA_REQUEST_PER_MILLION + gb_seconds * LAMBDA_ARM_GB_SECOND,
        dynamodb=writes * DYNAMODB_WRITE_PER_MILLION,
        sns=publishes * (SNS_PUBLISH_PER_MILLION + SNS_EMAIL_PER_MILLION),
        logs=log_gb * LOGS_INGEST_PER_GB,
    )


def costs(results: dict[str, Any]) -> list[EventCost]:
    """Every kind and outcome the bench measured, warm, as results.json holds them: the hub's warm time in
    organization mode where results.json has it (a little more than standalone's: each event's member scope), else
    standalone's; the calls are standalone's (the organization-mode budgets hold a warm event to them)."""
    organization = results.get("organization", {}).get("api_calls", {})
    out = []
    for kind, calls in results["api_calls"].items():
        for variant, figures in (("nothing_found", results["warm_event_us"]), ("alert", results["warm_alert_us"])):
            if variant in calls:
                us = organization.get(kind, {}).get(variant, {}).get("warm_us", figures[kind])
                out.append(event_cost(kind, variant, us, tuple(calls[variant]["calls"])))
    return out


@dataclass(frozen=True)
class Scenario:
    """An organization's watched events, per account and day (docs/scale.md says where the figures come from)."""

    name: str
    run_instances_per_account_day: float
    ami_events_per_account_day: float
    accounts: int = 1000
    lookup_share_run_instances: float = 0.01  # launches whose record lacks the virtualization type
    lookup_share_ami: float = 0.25  # CopyImage among the AMI events: its tag check reads the source image
    alerts_per_month: float = 100
    peak_to_average: float = 10


SCENARIOS = (
    Scenario("quiet", run_instances_per_account_day=20, ami_events_per_account_day=2),
    Scenario("typical", run_instances_per_account_day=500, ami_events_per_account_day=20),
    Scenario("heavy", run_instances_per_account_day=10_000, ami_events_per_account_day=100),
)
CONFIG_EVALUATION_FIRST_TIER = 0.001  # AWS Config, per rule evaluation, first 100,000 per region
CONFIG_EVALUATION_LOWEST_TIER = 0.0005  # AWS Config, beyond 500,000 per region (third-party figure)
DAYS_PER_MONTH = 30


def monthly(scenario: Scenario, results: dict[str, Any]) -> dict[str, float]:
    """Events per month and second, dollars per month, Lambda concurrency at the peak; AWS Config's price for one
    rule evaluating the same events."""
    by_key = {(cost.kind, cost.variant): cost for cost in costs(results)}
    quiet = by_key[("RunInstances", "nothing_found")]
    launch_lookup = by_key[("RunInstancesWithoutVirtualizationType", "nothing_found")]
    ami_lookup = by_key[("CopyImage", "nothing_found")]
    alert = by_key[("RunInstances", "alert")]
    per_day = scenario.accounts * (scenario.run_instances_per_account_day + scenario.ami_events_per_account_day)
    events = per_day * DAYS_PER_MONTH
    launches = scenario.accounts * scenario.run_instances_per_account_day * DAYS_PER_MONTH
    amis = events - launches
    mix = (
        (launches * (1 - scenario.lookup_share_run_instances) + amis * (1 - scenario.lookup_share_ami), quiet),
        (launches * scenario.lookup_share_run_instances, launch_lookup),
        (amis * scenario.lookup_share_ami, ami_lookup),
        (scenario.alerts_per_month, alert),
    )
    dollars = sum(count / 1e6 * cost.total for count, cost in mix)
    mean_ms = sum(count * cost.billed_ms for count, cost in mix) / sum(count for count, _ in mix)
    peak_per_second = per_day / 86400 * scenario.peak_to_average
    return {
        "events_per_month": events,
        "average_per_second": per_day / 86400,
        "peak_per_second": peak_per_second,
        "dollars_per_month": dollars,
        "mean_billed_ms": mean_ms,
        "peak_concurrency": peak_per_second * mean_ms / 1000,
        "config_first_tier": events * CONFIG_EVALUATION_FIRST_TIER,
        "config_lowest_tier": events * CONFIG_EVALUATION_LOWEST_TIER,
    }


def scenario_table(results: dict[str, Any]) -> str:
    rows = [
        "| organization (1,000 accounts) | RunInstances / AMI events per account per day | events per month "
        "| average / peak per second | Lambda concurrency at the peak | $ per month "
        "| AWS Config, one rule, $ per month |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        m = monthly(scenario, results)
        rows.append(
            f"| {scenario.name} | {scenario.run_instances_per_account_day:,.0f} / "
            f"{scenario.ami_events_per_account_day:,.0f} | {m['events_per_month'] / 1e6:,.1f} M "
            f"| {m['average_per_second']:,.1f} / {m['peak_per_second']:,.0f} | {m['peak_concurrency']:,.1f} "
            f"| {m['dollars_per_month']:,.0f} | {m['config_lowest_tier']:,.0f} to {m['config_first_tier']:,.0f} |"
        )
    return "\n".join(rows)


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| event kind (outcome) | billed ms | AWS calls | EventBridge | Lambda | DynamoDB | SNS (1 email) | Logs "
        "| total $ per million |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cost in costs(results):
        outcome = "nothing found" if cost.variant == "nothing_found" else "alert"
        rows.append(
            f"| {cost.kind} ({outcome}) | {cost.billed_ms} | {len(cost.calls)} | {cost.eventbridge:.2f} "
            f"| {cost.lambda_:.2f} | {cost.dynamodb:.2f} | {cost.sns:.2f} | {cost.logs:.2f} | {cost.total:.2f} |"
        )
    return "\n".join(rows)


def main() -> int:
    import json
    from pathlib import Path

    results = json.loads((Path(__file__).resolve().parent / "results.json").read_text(encoding="utf-8"))
    print(markdown(results))
    print()
    print(scenario_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
