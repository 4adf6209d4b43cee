"""How the demo reads: each step with the alerts it produced as their reader receives them, then a summary."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from demo.scenario import StepResult

RULE = "-" * 100
FUNCTION_LOG_LINES = 15


def step_text(result: StepResult, *, total: int, full_email: bool = True) -> str:
    lines = [RULE, f"{result.number}/{total}  {result.title}   [{result.region}]"]
    lines.append(f"   expected: {', '.join(result.expected) or 'no alert'}")
    lines += [f"   runner: {note}" for note in result.notes]
    for delivery in result.deliveries:
        timing = ", ".join(f"{a.duration_ms} ms" for a in delivery.attempts)
        lines.append(f"   runner: {delivery.describe()}" + (f" ({timing})" if timing else ""))
        if delivery.attempts and (not delivery.attempts[-1].ok or delivery.refused):
            log_lines = delivery.attempts[-1].log.rstrip().splitlines()[-FUNCTION_LOG_LINES:]
            lines += [f"   log  | {line[:200]}" for line in log_lines]
    for alert in result.alerts:
        lines.append(f"   ALERT  {alert.subject}")
        if full_email and alert.email:
            lines += [f"   | {line}" if line else "   |" for line in alert.email.splitlines()]
        else:
            doc = alert.document
            lines.append(f"   | {doc.get('description', '')}")
            lines.append(f"   | action: {doc.get('action', {}).get('detail', '')}")
    if not result.alerts:
        lines.append("   (no alert)")
    for check in result.checks:
        lines.append(f"   {'ok ' if check.ok else 'NOT'}  {check.text}")
    for problem in result.problems:
        lines += textwrap.wrap(problem, width=110, initial_indent="   !!   ", subsequent_indent="          ")
    lines.append(f"   => {result.verdict}")
    return "\n".join(lines)


def summary_table(results: Sequence[StepResult]) -> str:
    headers = ("#", "step", "expected", "received", "result")
    rows = [
        (
            str(r.number),
            r.key,
            ", ".join(r.expected) or "-",
            ", ".join(r.received) or "-",
            r.verdict,
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in rows]
    passed = sum(r.ok for r in results)
    out.append(f"{passed}/{len(results)} steps as expected")
    return "\n".join(out)
