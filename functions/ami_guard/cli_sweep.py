"""`amiguard sweep [--region R ...] [--config FILE] [--profile NAME] [--json]`: what is exposed now in the account
your AWS credentials reach, region by region, by the rules' standing conditions (the guard's posture sweep).

sts:GetCallerIdentity names the account; then each region, one after the other, is read by
`ami_guard.sweep.collect.collect_region` (its docstring lists the calls) and evaluated by `evaluate_region`. Read-only:
it never remediates, tags, publishes or records anything.

stdout: one JSON alert document per finding (JSON Lines, as `amiguard evaluate` prints them, `origin: "sweep"`).
stderr: on a terminal (and without --json) a progress display per account-region, then tables by rule and by region;
else one summary line (and a line per failure).
Exit status: 0 it ran, 1 an AWS failure (credentials, sts, a region's listing: the other regions still run), 2 the
configuration or a region name cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from ami_guard import alerts
from ami_guard.cli import EXIT_LOOKUP_FAILED, EXIT_OK, EXIT_UNREADABLE, _warn, load_policy
from ami_guard.config import ConfigError, Policy
from ami_guard.findings import Finding, Severity, is_region

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ami_guard.aws import ClientFactory

EXIT_AWS_FAILED = EXIT_LOOKUP_FAILED
SHOWN_MAX = 10
"""Reasons a terminal lists under the tables ("not decided", "not read"); the counts are whole."""
_SHARE_READS = ("DescribeImageAttribute", "DescribeSnapshotAttribute")
_SETTINGS = ("GetImageBlockPublicAccessState", "GetSnapshotBlockPublicAccessState", "GetAllowedImagesSettings")


def add_parser(commands: Any) -> None:
    sw = commands.add_parser("sweep", help="what is exposed now in your account's regions (read-only)")
    sw.add_argument(
        "--region",
        action="append",
        dest="regions",
        metavar="R",
        help="a region to sweep (repeatable; default: the region of your AWS configuration)",
    )
    sw.add_argument("--config", metavar="FILE", help="JSON file with the amiGuard keys (default: ./cdk.json context)")
    sw.add_argument("--profile", metavar="NAME", help="AWS profile to use (default: AWS_PROFILE, else the default)")
    sw.add_argument("--json", action="store_true", help="JSON lines and a summary line only, even on a terminal")


@dataclass
class RegionRun:
    """What one region's sweep found, as the CLI reports it."""

    region: str
    findings: list[Finding] = field(default_factory=list)
    """At or above the policy's minSeverity, in evaluate_region's order."""
    undecided: list[tuple[str, str]] = field(default_factory=list)
    """(rule id, why), the checks a fact not read left open."""
    unread: list[tuple[str, str]] = field(default_factory=list)
    """(what, why), what the collection could not read (a read refused or failed, a copy's source deregistered);
    the rest of the region was read. Not an exit 1: a source that is gone is not a failure, and the checks it
    leaves open are counted as not decided."""
    calls: int = 0
    failed: str | None = None
    """Why the region could not be swept (a listing failed): its posture is unknown."""
    lines: list[str] = field(default_factory=list)
    """The findings' JSON lines."""


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.config)
    except ConfigError as exc:
        _warn(f"configuration: {exc}")
        return EXIT_UNREADABLE
    try:
        regions = _regions(args.regions or [], args.profile)
    except ConfigError as exc:
        _warn(str(exc))
        return EXIT_UNREADABLE

    from botocore.exceptions import BotoCoreError, ClientError

    from ami_guard.aws import caller_account, client_factory

    try:
        account = caller_account(client_factory(), regions[0])
    except (BotoCoreError, ClientError) as exc:
        _warn(f"sts:GetCallerIdentity failed: {exc}{_credentials_hint(exc)}")
        return EXIT_AWS_FAILED

    reporter: _Plain | _Terminal = (
        _Plain(sys.stdout, policy) if args.json or not _is_terminal(sys.stderr) else _Terminal(policy)
    )
    run_id = f"amiguard-cli-{uuid.uuid4()}"
    runs: list[RegionRun] = []
    sources: dict[str, Any] = {}  # the copies' sources read so far: none is read twice (regions run one by one)
    with reporter.showing(account, regions):
        for region in regions:
            found = _sweep_region(account, region, policy, run_id, reporter, sources)
            runs.append(found)
            reporter.done(account, found)
    reporter.end(account, runs)
    return EXIT_AWS_FAILED if any(r.failed for r in runs) else EXIT_OK


def _regions(given: Sequence[str], profile: str | None) -> list[str]:
    """The regions to sweep, each once, in the order given; else the configuration's. Also makes `profile` (or the
    usual chain: AWS_PROFILE, the default profile, SSO) the default session every client is made from."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    for region in given:
        if not is_region(region):
            raise ConfigError(f"--region: '{region}' is not an AWS region name (like eu-west-1)")
    try:
        boto3.setup_default_session(profile_name=profile)
        configured = boto3.DEFAULT_SESSION.region_name if boto3.DEFAULT_SESSION else None
    except ProfileNotFound as exc:
        raise ConfigError(f"AWS configuration: {exc}") from None
    if given:
        return list(dict.fromkeys(given))
    if not configured:
        raise ConfigError(
            "no region: pass --region R (repeatable), or set one in your AWS configuration (AWS_REGION, or "
            "`region` in the profile)"
        )
    if not is_region(configured):
        raise ConfigError(f"AWS configuration: region '{configured}' is not an AWS region name (like eu-west-1)")
    return [configured]


def _credentials_hint(exc: Exception) -> str:
    from botocore.exceptions import ClientError, NoCredentialsError, SSOError, TokenRetrievalError

    if isinstance(exc, NoCredentialsError):
        return " (set AWS_PROFILE or --profile, run `aws configure`, or `aws sso login`)"
    if isinstance(exc, SSOError | TokenRetrievalError):
        return " (run `aws sso login`)"
    if isinstance(exc, ClientError) and "Expired" in str(exc.response.get("Error", {}).get("Code", "")):
        return " (the credentials have expired: renew them, e.g. `aws sso login`)"
    return ""


def _sweep_region(
    account: str, region: str, policy: Policy, run_id: str, reporter: _Plain | _Terminal, sources: dict[str, Any]
) -> RegionRun:
    from botocore.exceptions import BotoCoreError, ClientError

    from ami_guard.aws import client_factory, sweep_client_config
    from ami_guard.sweep.collect import DEFAULT_CONCURRENCY, RegionFailed, collect_region
    from ami_guard.sweep.evaluate import evaluate_region

    found = RegionRun(region)
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the alert's event.time: when the region was read
    # a factory each region: collect_region calls it on this thread only
    clients = reporter.watch(region, client_factory(sweep_client_config(DEFAULT_CONCURRENCY)))
    try:
        posture = collect_region(clients, account, region, concurrency=DEFAULT_CONCURRENCY, source_cache=sources)
    except RegionFailed as exc:
        found.failed = f"{exc.call} failed: {exc.reason}"
        found.calls = sum(exc.calls.values())
        return found
    except (BotoCoreError, ClientError) as exc:  # a client could not be made
        found.failed = f"{type(exc).__name__}: {exc}"
        return found
    result = evaluate_region(posture, policy)
    found.findings = [f for f in result.findings if f.severity >= policy.min_severity]
    found.undecided = [(u.rule_id, u.reason) for u in result.undecided]
    found.unread = [(u.what, u.reason) for u in posture.unread]
    found.calls = sum(posture.calls.values())
    found.lines = [_line(f, account, region, run_id, when) for f in found.findings]
    return found


def _line(finding: Finding, account: str, region: str, run_id: str, when: str) -> str:
    from ami_guard.sweep.observation import observation

    return json.dumps(alerts.document(finding, observation(account, region, run_id, when)), default=str) + "\n"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def summary(account: str, runs: Sequence[RegionRun], policy: Policy) -> str:
    """One line: the regions, the findings by severity, the checks not decided by rule, what could not be read
    (a read refused or failed, a copy's source gone) and the calls made (sts:GetCallerIdentity included)."""
    severities = Counter(f.severity for r in runs for f in r.findings)
    by_severity = ", ".join(f"{severities[s]} {s.name}" for s in sorted(Severity, reverse=True) if severities[s])
    undecided = Counter(rule for r in runs for rule, _ in r.undecided)
    failed = [r.region for r in runs if r.failed]
    unread = sum(len(r.unread) for r in runs)
    return (
        f"account {account}: {len(runs) - len(failed)} region(s) swept"
        + (f", {len(failed)} failed ({', '.join(failed)})" if failed else "")
        + f"; {sum(severities.values())} finding(s) at or above {policy.min_severity.name}"
        + (f" ({by_severity})" if by_severity else "")
        + (
            f"; {sum(undecided.values())} check(s) not decided ("
            + ", ".join(f"{n} {rule}" for rule, n in sorted(undecided.items()))
            + ")"
            if undecided
            else ""
        )
        + (f"; {unread} item(s) not read" if unread else "")
        + f"; {1 + sum(r.calls for r in runs)} AWS call(s)"
    )


class _Plain:
    """Off a terminal, or --json: the JSON lines as each region ends, a line per failure, one summary line."""

    def __init__(self, out: TextIO, policy: Policy) -> None:
        self.out = out
        self.policy = policy

    @contextmanager
    def showing(self, account: str, regions: Sequence[str]) -> Iterator[None]:
        yield

    def watch(self, region: str, clients: ClientFactory) -> ClientFactory:
        return clients

    def done(self, account: str, found: RegionRun) -> None:
        self.out.writelines(found.lines)
        self.out.flush()
        if found.failed:
            _warn(f"{account} {found.region}: not swept: {found.failed}")

    def end(self, account: str, runs: Sequence[RegionRun]) -> None:
        _warn(summary(account, runs, self.policy))


class _Terminal:
    """stderr is a terminal: a progress row per account-region while it is read, then tables by rule and by region
    (rich, imported here only: the functions never need it). Every value from AWS is shown through alerts.one_line
    and as rich Text, never as markup: an id, a tag or an error message cannot style, link or move anything."""

    def __init__(self, policy: Policy) -> None:
        from rich.console import Console

        self.policy = policy
        self.console: Console = Console(stderr=True, highlight=False, emoji=False)
        self.out = sys.stdout
        self.defer = _is_terminal(sys.stdout)
        """stdout is the same screen: its JSON lines wait until the progress display is done."""
        self.deferred: list[str] = []
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    @contextmanager
    def showing(self, account: str, regions: Sequence[str]) -> Iterator[None]:
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[calls]} calls"),
            TextColumn("{task.fields[phase]}"),
            TimeElapsedColumn(),
            console=self.console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        for region in regions:
            self.tasks[region] = self.progress.add_task(
                escape(alerts.one_line(f"{account} {region}")), total=None, start=False, calls=0, phase="waiting"
            )
        with self.progress:
            yield

    def watch(self, region: str, clients: ClientFactory) -> ClientFactory:
        assert self.progress is not None
        task = self.tasks[region]
        self.progress.start_task(task)
        self.progress.update(task, phase="listing")
        return _Watch(self.progress, task).factory(clients)

    def done(self, account: str, found: RegionRun) -> None:
        from rich.text import Text

        assert self.progress is not None
        task = self.tasks[found.region]
        if found.failed:  # the bar stays where the region stopped
            self.progress.update(task, calls=found.calls, phase="[red]failed[/]")
            self.progress.console.print(
                Text("amiguard: " + alerts.one_line(f"{account} {found.region}: not swept: {found.failed}"), "red"),
                soft_wrap=True,
            )
        else:
            # the reads announced stay the total: a bar short of its end would show a miscount, not hide it
            state = next(t for t in self.progress.tasks if t.id == task)
            self.progress.update(
                task,
                total=max(state.total or 0, state.completed, 1),
                completed=max(state.completed, 1) if state.total is None else state.completed,
                calls=found.calls,
                phase=f"[green]done[/]: {len(found.findings)} finding(s)",
            )
        self.progress.stop_task(task)
        if self.defer:
            self.deferred.extend(found.lines)
        else:
            self.out.writelines(found.lines)
            self.out.flush()

    def end(self, account: str, runs: Sequence[RegionRun]) -> None:
        from rich.text import Text

        self.out.writelines(self.deferred)
        self.out.flush()
        self.console.print(self._by_rule(runs))
        self.console.print(self._by_region(account, runs))
        for title, pairs in (
            ("Not decided", [(rule, why) for r in runs for rule, why in r.undecided]),
            ("Not read", [(what, why) for r in runs for what, why in r.unread]),
        ):
            if not pairs:
                continue
            more = f" (first {SHOWN_MAX} of {len(pairs)})" if len(pairs) > SHOWN_MAX else ""
            self.console.print(Text(f"{title}{more}:", "bold"))
            for subject, why in pairs[:SHOWN_MAX]:
                self.console.print(Text("  " + alerts.one_line(f"{subject}: {why}")), soft_wrap=True)
        self.console.print(Text("amiguard: " + alerts.one_line(summary(account, runs, self.policy))), soft_wrap=True)

    def _by_rule(self, runs: Sequence[RegionRun]) -> Any:
        from rich.table import Table
        from rich.text import Text

        from ami_guard.rules.catalog import all_rules

        severity = {rule.id: rule.severity for rule in all_rules()}
        found = Counter(f.rule_id for r in runs for f in r.findings)
        undecided = Counter(rule for r in runs for rule, _ in r.undecided)
        table = Table(title="Findings by rule", title_justify="left")
        table.add_column("Rule")
        table.add_column("Severity")
        table.add_column("Findings", justify="right")
        table.add_column("Not decided", justify="right")
        for rule in sorted(set(found) | set(undecided), key=lambda r: (-severity.get(r, Severity.INFO), r)):
            level = severity.get(rule, Severity.INFO)
            table.add_row(
                Text(alerts.one_line(rule)), Text(level.name, _STYLE[level]), str(found[rule]), str(undecided[rule])
            )
        if not table.rows:
            table.caption = "nothing found"
        return table

    def _by_region(self, account: str, runs: Sequence[RegionRun]) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(f"Account {alerts.one_line(account)}"), title_justify="left")
        for name, justify in (
            ("Region", "left"),
            ("Result", "left"),
            ("Findings", "right"),
            ("Not decided", "right"),
            ("Not read", "right"),
            ("AWS calls", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in runs:
            table.add_row(
                Text(alerts.one_line(r.region)),
                Text("failed", "red") if r.failed else Text("swept", "green"),
                "-" if r.failed else str(len(r.findings)),
                "-" if r.failed else str(len(r.undecided)),
                "-" if r.failed else str(len(r.unread)),
                str(r.calls),
            )
        return table


_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


class _Watch:
    """One region's progress from its clients' botocore events, as the worker threads make the calls: the calls
    made, and the share and setting reads done out of those expected so far (each listing page adds the resources
    that will need a read)."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task
        self.lock = threading.Lock()
        self.calls = 0
        self.expected = len(_SETTINGS)
        self.done = 0
        self.phase = "listing"
        self.watched: set[int] = set()

    def factory(self, clients: ClientFactory) -> ClientFactory:
        def get(service: str, region: str) -> Any:
            client = clients(service, region)
            if id(client) not in self.watched:
                self.watched.add(id(client))
                client.meta.events.register("before-parameter-build.ec2", self._asked)
                client.meta.events.register("after-call.ec2", self._answered)
            return client

        return get

    def _asked(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["amiguard_public_listing"] = "RestorableByUserIds" in params
        context["amiguard_by_id"] = "ImageIds" in params

    def _answered(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        name = model.name
        with self.lock:
            self.calls += 1
            if name == "DescribeImages" and not context.get("amiguard_by_id"):
                self.expected += sum(1 for i in parsed.get("Images") or [] if i.get("Public") is not True)
            elif name == "DescribeSnapshots":
                listed = len(parsed.get("Snapshots") or [])
                self.expected += -listed if context.get("amiguard_public_listing") else listed
            elif name in _SHARE_READS or name in _SETTINGS:
                self.done += 1
                if name in _SHARE_READS:
                    self.phase = "reading shares"
            total, done, calls, phase = max(self.expected, self.done), self.done, self.calls, self.phase
        self.progress.update(self.task, total=total, completed=done, calls=calls, phase=phase)
