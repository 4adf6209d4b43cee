"""`python -m demo [--organization] [--remediate] [--json] [--keep]`: deploy AMI Guard into an emulated account
(or, with --organization, into an emulated AWS Organization: the hub in its security account, the members in
every member account and region) and play risky AMI changes end to end.

Exit status: 0 every step as expected; 1 a step was not (an alert missing or unexpected, a check or a function
failed); 2 the demo could not run (emulator, deployment); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from demo import report, scenario
from demo.deploy import DeployError
from demo.emulator import EmulatorError
from demo.session import DemoSession


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--organization",
        action="store_true",
        help="an emulated organization: the hub in a security account, the member stack in two member accounts",
    )
    parser.add_argument("--remediate", action="store_true", help="deploy with amiGuard.remediate on")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout (progress on stderr)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the account and the runner up afterwards, until Ctrl-C"
    )
    return parser


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops the account even if started in background
    out = sys.stderr if args.json else sys.stdout

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    session: Any
    if args.organization:
        from demo import org_scenario
        from demo.org_session import OrgDemoSession

        session = OrgDemoSession(remediate=args.remediate, log=log)
        total = len(org_scenario.STEPS)
    else:
        session = DemoSession(remediate=args.remediate, log=log)
        total = len(scenario.STEPS)
    results: list[scenario.StepResult] = []
    try:
        session.start()
        unmodelled = session.emulator.unmodelled_resource_types()
        log("Resource types the emulator does not model (moto: 'No Moto CloudFormation support for ...'):")
        log("  " + (", ".join(unmodelled) or "none"))
        if session.runner is not None and session.runner.runtime_missing:
            log(f"  (Powertools layer extras not installed locally: {', '.join(session.runner.runtime_missing)})")
        log(f"Alerts arrive in SQS queue {session.inbox.queue_url if session.inbox else '?'}")
        log(f"Playing {total} risky changes (remediation {'on' if args.remediate else 'off'}):")

        def show(result: scenario.StepResult) -> None:
            log(report.step_text(result, total=total))

        results = session.play(on_step=show)
        ok = all(r.ok for r in results)
        log(report.RULE)
        log(report.summary_table(results))
        if not args.organization and session.world is not None:
            ok = _sweep_twice(session, log) and ok
        if getattr(session, "outputs", None) is not None:  # after the sweep: its resolved notices update the findings
            log(report.RULE)
            log(session.outputs.report())
        log("Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in session.seconds.items()))
        if args.json:
            print(json.dumps(_document(session, results, unmodelled), indent=2, default=str))
        if not ok:
            session.keep_work_dir = True
            log(f"Not every step went as expected. Emulator log tail ({session.emulator.log_path}):")
            log(session.emulator.log_tail())
        if args.keep:
            _hold(session, log)
        return 0 if ok else 1
    except KeyboardInterrupt:
        log("Interrupted: stopping the emulated account.")
        return 130
    except (DeployError, EmulatorError) as exc:
        session.keep_work_dir = True
        log(f"error: {exc}")
        log(f"Emulator log tail ({session.emulator.log_path}):")
        log(session.emulator.log_tail())
        return 2
    except Exception:
        session.keep_work_dir = True
        log(f"The demo failed. Emulator log tail ({session.emulator.log_path}):")
        log(session.emulator.log_tail())
        raise
    finally:
        session.stop()
        if session.keep_work_dir:
            log(f"Logs kept in {session.work_dir}")


def _sweep_twice(session: Any, log: Any) -> bool:
    """The deployed sweep run twice (demo.sweep), a snapshot share revoked in between; its alerts printed."""
    from demo import sweep

    fix = sweep.unshare_snapshot(session.world, scenario.HOME)
    try:
        swept = sweep.play_sweeps(session.emulator, session.runner, session.inbox, scenario.HOME, fix)
    except sweep.SweepError as exc:
        log(f"Posture sweep: could not run: {exc}")
        return False
    log(report.RULE)
    log(sweep.report(swept))
    resolved = [a for a in swept.second_alerts if a.document.get("status") == "resolved"]
    return not swept.first.failed and not swept.second.failed and len(resolved) == 1


def _document(session: Any, results: list[scenario.StepResult], unmodelled: list[str]) -> dict[str, Any]:
    organization = getattr(session, "layout", None)
    return {
        "ok": all(r.ok for r in results),
        "account": session.emulator.account,
        **({"organization": dataclasses.asdict(organization)} if organization is not None else {}),
        "regions": list(session.regions),
        "config": session.config,
        "endpoint": session.emulator.endpoint_url,
        "unmodelled_resource_types": unmodelled,
        "steps": [r.as_dict() for r in results],
        "seconds": {k: round(v, 2) for k, v in session.seconds.items()},
    }


def _hold(session: Any, log: Any) -> None:
    if getattr(session, "layout", None) is not None:
        _hold_organization(session, log)
        return
    emulator = session.emulator
    assert session.endpoint is not None and session.inbox is not None
    log(
        f"""
The emulated account stays up until Ctrl-C. In another shell:

  export AWS_ACCESS_KEY_ID={emulator.access_key_id} AWS_SECRET_ACCESS_KEY={emulator.secret_access_key}
  export AWS_REGION={scenario.HOME} AWS_DEFAULT_REGION={scenario.HOME} AWS_ENDPOINT_URL={emulator.endpoint_url}
  export AWS_ENDPOINT_URL_EVENTBRIDGE={session.endpoint.url}   # EventBridge calls -> the runner's endpoint

  aws ec2 describe-images --owners self
  aws events list-rules
  aws events put-events --entries '[{{"Source": "aws.ec2", "DetailType": "AWS API Call via CloudTrail",
      "Detail": "<a CloudTrail record as a JSON string>"}}]'
  aws sqs receive-message --queue-url {session.inbox.queue_url} --max-number-of-messages 10
  amiguard evaluate path/to/record.json     # lookups go to the emulated account (no --offline)
"""
    )
    threading.Event().wait()


def _hold_organization(session: Any, log: Any) -> None:
    layout = session.layout
    accounts = [("management", layout.management), ("security (hub)", layout.security)]
    accounts += [(name, account) for name, account in layout.members.items()]
    lines = ["", "The emulated organization stays up until Ctrl-C. Each account's harness key (allowed everything):"]
    for label, account in accounts:
        view = session.emulator if account == session.emulator.account else session.emulator.view(account)
        lines.append(
            f"  {label:16} {account}: AWS_ACCESS_KEY_ID={view.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={view.secret_access_key}"
        )
    lines += [
        "",
        f"  export AWS_ENDPOINT_URL={session.emulator.endpoint_url}",
        f"  export AWS_ENDPOINT_URL_EVENTBRIDGE={session.endpoint.url}   # PutEvents -> the runner",
        f"  alerts: aws sqs receive-message --queue-url {session.inbox.queue_url}   (with the security account's key)",
        "",
    ]
    log("\n".join(lines))
    threading.Event().wait()
