"""Where a checkpointed sweep of one account-region stands between two invocations: a small JSON value the state
machine hands back to the function (sweep.run.sweep_target), and its check when it comes back. Pure.

A cursor says which phase comes next (the settings are always read by the first step, so a cursor names "images",
"snapshots" or "reconcile"), EC2's NextToken within that phase's listing, when the run started in the account-region
(findings opened after it are not resolved by it) and the running counts of the summary. It holds no resource ids:
its size does not grow with what the account holds (MAX_BYTES).

It comes back as a claim: anything that is not exactly a cursor of this account, region and run, in this format, is
refused with the reason before anything is read. What the format cannot check (that it is the cursor the previous
step returned, and not an older or a made-up one skipping pages) the store checks: aws_findings'
`resume` compares its digest with the one recorded by that step.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

VERSION = 1
PHASES = ("images", "snapshots", "reconcile")
"""The phases a cursor can resume at, in order (the first, the settings and paravirtual instances, never)."""
COUNTS = ("findings", "alerted", "standing", "resolved", "undecided", "unread", "pages", "invocations")
MAX_TOKEN_CHARS = 2048
"""EC2's NextToken is opaque; those of DescribeImages and DescribeSnapshots are a few hundred characters."""
MAX_CALL_KINDS = 16
MAX_COUNT = 10**12
MAX_BYTES = 8 * 1024
"""Well above what a cursor holds (a token, 8 counts, at most MAX_CALL_KINDS call counts: under 4 KB)."""
_STARTED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_TOKEN = re.compile(r"[\x21-\x7e]+")
_CALL = re.compile(r"[a-z0-9-]{1,32}:[A-Za-z]{1,64}")
_FIELDS = {"v", "account", "region", "run", "started", "phase", "token", "counts", "calls"}


class CursorRefused(Exception):
    """The cursor that came back is not one this sweep hands out."""


class Cursor(NamedTuple):
    account: str
    region: str
    run: str
    started: str
    """When the run's first step began in the account-region (ISO 8601 UTC, seconds)."""
    phase: str
    token: str | None
    """EC2's NextToken for the phase's listing; None: its first page (or, for "reconcile", nothing)."""
    counts: Mapping[str, int]
    calls: Mapping[str, int]

    @staticmethod
    def start(account: str, region: str, run: str, started: str) -> Cursor:
        return Cursor(account, region, run, started, "settings", None, dict.fromkeys(COUNTS, 0), {})

    def as_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "account": self.account,
            "region": self.region,
            "run": self.run,
            "started": self.started,
            "phase": self.phase,
            "token": self.token,
            "counts": {name: int(self.counts.get(name, 0)) for name in COUNTS},
            "calls": dict(sorted(self.calls.items())),
        }

    def digest(self) -> str:
        """The cursor's fingerprint, as the store records it between steps."""
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def from_json(value: Any, *, account: str, region: str, run: str) -> Cursor:
    """The cursor `value` claims to be, for the target (`account`, `region`, `run`) it came with; CursorRefused
    says what is wrong with it."""
    if not isinstance(value, dict):
        raise CursorRefused(f"the cursor is not an object: {type(value).__name__}")
    size = len(json.dumps(value, default=str))
    if size > MAX_BYTES:
        raise CursorRefused(f"the cursor is {size} bytes, more than a cursor holds ({MAX_BYTES})")
    if set(value) != _FIELDS:
        odd = sorted(set(value) ^ _FIELDS)
        raise CursorRefused(f"the cursor's fields are not a cursor's: {', '.join(odd)} missing or unexpected")
    if value["v"] != VERSION:
        raise CursorRefused(f"cursor version {value['v']!r}: this function reads version {VERSION}")
    claimed = (value["account"], value["region"], value["run"])
    if claimed != (account, region, run):
        raise CursorRefused(f"the cursor is for {claimed!r}, not for this target {(account, region, run)!r}")
    started = value["started"]
    if not isinstance(started, str) or _STARTED.fullmatch(started) is None:
        raise CursorRefused(f"the cursor's start time is not an ISO 8601 UTC time: {str(started)[:40]!r}")
    phase = value["phase"]
    if phase not in PHASES:
        raise CursorRefused(f"the cursor's phase {str(phase)[:40]!r} is not one of {', '.join(PHASES)}")
    token = value["token"]
    if token is not None and (
        not isinstance(token, str)
        or len(token) > MAX_TOKEN_CHARS
        or _TOKEN.fullmatch(token) is None
        or phase == "reconcile"
    ):
        raise CursorRefused(f"the cursor's token is not a listing token of phase {phase}")
    return Cursor(account, region, run, started, phase, token, _counts(value["counts"]), _calls(value["calls"]))


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) != set(COUNTS):
        raise CursorRefused(f"the cursor's counts are not {', '.join(COUNTS)}")
    for name, count in value.items():
        if not _is_count(count):
            raise CursorRefused(f"the cursor's count {name} is not a count: {str(count)[:40]!r}")
    return {name: int(value[name]) for name in COUNTS}


def _calls(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_CALL_KINDS:
        raise CursorRefused("the cursor's calls are not a few counts by service:Operation")
    for name, count in value.items():
        if not isinstance(name, str) or _CALL.fullmatch(name) is None or not _is_count(count):
            raise CursorRefused(f"the cursor's call count {str(name)[:70]!r} is not a count by service:Operation")
    return {str(name): int(count) for name, count in value.items()}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT
