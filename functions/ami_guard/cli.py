"""`amiguard evaluate [--offline] [--config FILE] PATH...`: the guard's rules over CloudTrail records at hand.

Prints one JSON alert document per finding on stdout (JSON Lines) and a summary on stderr.
Exit status: 0 when it ran, 2 when an input or the configuration cannot be read, 1 when AWS lookups failed.

`amiguard sweep [--region R ...] [--config FILE] [--profile NAME] [--json]`: what is exposed now in the account's
regions (ami_guard.cli_sweep).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ami_guard import alerts, contract
from ami_guard.config import ConfigError, Policy, parse_policy
from ami_guard.engine import Lookups, evaluate
from ami_guard.events import SkipEvent, iter_records, parse_call
from ami_guard.findings import Severity
from ami_guard.rules.catalog import routes

EXIT_OK = 0
EXIT_LOOKUP_FAILED = 1
EXIT_UNREADABLE = 2
_SUFFIXES = (".json", ".jsonl", ".ndjson", ".gz")
WARNING_VALUE_MAX = 200  # characters of an event id or name from a record in a warning


class InputError(Exception):
    """An input cannot be read; the message names the file and the problem."""


@dataclass
class Tally:
    files: int = 0
    records: int = 0
    evaluated: int = 0
    skipped_quiet: int = 0
    skipped: int = 0
    unreadable: int = 0
    lookup_errors: int = 0
    undetermined: int = 0
    undetermined_by_cause: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amiguard", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("evaluate", help="evaluate CloudTrail records from files, directories or - (stdin)")
    ev.add_argument("paths", nargs="+", metavar="PATH", help="file, directory (searched for .json/.jsonl/.gz) or -")
    ev.add_argument("--offline", action="store_true", help="make no AWS call; rules that need one say so")
    ev.add_argument("--config", metavar="FILE", help="JSON file with the amiGuard keys (default: ./cdk.json context)")
    from ami_guard import cli_sweep

    cli_sweep.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "sweep":
        return cli_sweep.run(args)

    try:
        policy = load_policy(args.config)
    except ConfigError as exc:
        _warn(f"configuration: {exc}")
        return EXIT_UNREADABLE
    lookups = _offline() if args.offline else _online()
    tally = Tally()
    for label, document in read_inputs(args.paths, tally):
        _evaluate_document(label, document, policy, lookups, tally, sys.stdout)
    _summary(tally, policy, args.offline, sys.stderr)
    if tally.unreadable:
        return EXIT_UNREADABLE
    return EXIT_LOOKUP_FAILED if tally.lookup_errors else EXIT_OK


def load_policy(config_path: str | None) -> Policy:
    """--config FILE (the amiGuard keys; a cdk.json is accepted too), else ./cdk.json, else defaults."""
    path = Path(config_path) if config_path else Path("cdk.json")
    if not path.exists():
        if config_path:
            raise ConfigError(f"{config_path}: no such file")
        return Policy()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as JSON ({exc})") from None
    if isinstance(data, dict) and "context" in data and isinstance(data["context"], dict):
        data = data["context"].get(contract.CONTEXT_KEY)
    try:
        return parse_policy(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_inputs(paths: Sequence[str], tally: Tally) -> Iterator[tuple[str, Any]]:
    """(label, parsed JSON document) for every document in every input; unreadable ones are reported."""
    for raw in paths:
        for path in _expand(raw, tally):
            tally.files += 1
            try:
                yield from _documents(path)
            except InputError as exc:
                tally.unreadable += 1
                _warn(str(exc))


def _expand(raw: str, tally: Tally) -> list[str]:
    if raw == "-":
        return ["-"]
    path = Path(raw)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.endswith(_SUFFIXES))
        if not found:
            _warn(f"{raw}: directory has no .json, .jsonl or .gz files")
        return found
    if not path.exists():
        tally.unreadable += 1
        _warn(f"{raw}: no such file or directory")
        return []
    return [raw]


def _documents(path: str) -> Iterator[tuple[str, Any]]:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    label = "<stdin>" if path == "-" else path
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{label}: not a valid gzip file ({exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not UTF-8 text ({exc})") from None
    if not text.strip():
        raise InputError(f"{label}: empty input")
    try:
        yield label, json.loads(text)
        return
    except json.JSONDecodeError as whole:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2:
            raise InputError(f"{label}: not JSON ({whole})") from None
    documents = []
    for number, line in lines:
        try:
            documents.append((f"{label}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InputError(f"{label}: line {number} is not JSON ({exc.msg})") from None
    yield from documents


def _evaluate_document(label: str, document: Any, policy: Policy, lookups: Lookups, tally: Tally, out: TextIO) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    for envelope in iter_records(document):
        tally.records += 1
        try:
            call = parse_call(envelope, routes().sources)
        except SkipEvent as exc:
            if exc.quiet:
                tally.skipped_quiet += 1
            else:
                tally.skipped += 1
                _warn(f"{label}: skipped a record: {exc.reason}")
            continue
        try:
            evaluation = evaluate(call, policy, lookups, actions=None)
        except (BotoCoreError, ClientError) as exc:
            tally.lookup_errors += 1
            hint = "" if isinstance(exc, ClientError) else " (no AWS access? use --offline)"
            _warn(f"{label}: event {_short(call.event_id)}: AWS lookup failed: {exc}{hint}")
            continue
        tally.evaluated += 1
        for note in evaluation.undetermined:
            tally.undetermined += 1
            tally.undetermined_by_cause[note.get("cause", "lookup")] += 1
            _warn(
                f"{label}: event {_short(call.event_id)} ({_short(call.event_name)}): {note['rules']} not decided: "
                f"{note['reason']}"
            )
        for finding in evaluation.findings:
            if finding.severity < policy.min_severity:
                continue
            tally.findings[finding.severity.name] += 1
            out.write(json.dumps({**alerts.document(finding, call), "input": label}, default=str) + "\n")


def _warn(text: str) -> None:
    """One line on stderr. Its values may come from a record: every control character (a terminal escape
    sequence, a newline, a bidirectional override) is written as an escape, never as itself."""
    sys.stderr.write("amiguard: " + alerts.one_line(text) + "\n")


def _short(value: str) -> str:
    return alerts.cut(value, WARNING_VALUE_MAX)


def _summary(tally: Tally, policy: Policy, offline: bool, err: TextIO) -> None:
    found = sum(tally.findings.values())
    by_severity = ", ".join(
        f"{tally.findings[s.name]} {s.name}" for s in sorted(Severity, reverse=True) if tally.findings[s.name]
    )
    err.write(
        f"amiguard: {tally.files} input(s), {tally.records} record(s): {tally.evaluated} evaluated, "
        f"{tally.skipped_quiet} not EC2 API calls, {tally.skipped} malformed; "
        f"{found} finding(s) at or above {policy.min_severity.name}"
        + (f" ({by_severity})" if by_severity else "")
        + _undecided(tally, offline)
        + (f"; {tally.unreadable} input(s) unreadable" if tally.unreadable else "")
        + (f"; {tally.lookup_errors} lookup error(s)" if tally.lookup_errors else "")
        + "\n"
    )


def _undecided(tally: Tally, offline: bool) -> str:
    """'; N check(s) not decided: L need an AWS lookup (offline), R not settled by the record', or ''."""
    if not tally.undetermined:
        return ""
    lookup, record = tally.undetermined_by_cause["lookup"], tally.undetermined_by_cause["record"]
    parts = [f"{lookup} need an AWS lookup" + (" (offline)" if offline else "")] if lookup else []
    parts += [f"{record} not settled by the record"] if record else []
    return f"; {tally.undetermined} check(s) not decided: {', '.join(parts)}"


def _offline() -> Lookups:
    from ami_guard.offline import OfflineLookups

    return OfflineLookups()


def _online() -> Lookups:
    import boto3

    from ami_guard.aws import Ec2Lookups, InstanceTypeCatalog, client_factory

    clients = client_factory()
    region = boto3.session.Session().region_name or "us-east-1"
    return Ec2Lookups(clients, InstanceTypeCatalog(clients, region))


if __name__ == "__main__":
    sys.exit(main())
