"""A finding as its reader receives it: one JSON document (machine) and one plain-text email (human).

Pure: the SNS adapter only sends what `render` returns.

A value from a CloudTrail record is data, never layout:
- Bounded. Every value copied from the record (ids, ARNs, actor fields, the error message, evidence, action,
  the rules' prose that embeds them) is cut to the limits of a `Limits` level: a string longer than `text`
  keeps its first `text` characters and ends with `…[truncated, N chars]`; a list keeps its first `items`
  entries and ends with `…[N items, first K shown]`; an object keeps its first `keys` keys and gains the key
  `…` saying how many it had; below `depth` levels an object or list is replaced by a one-line summary. A
  value longer than `text` inside the prose is replaced by its cut form, so that the prose keeps its end and a
  large value is never repeated. `render` measures the Publish request as SNS counts it and steps down the
  levels (FULL, TIGHT, REDUCED) until it fits PUBLISH_BUDGET_BYTES. REDUCED fits by construction (every slot
  filled with the costliest characters stays under the budget: tested), so no finding is lost to its size.
  Whatever was cut is named in the document's `truncated` field and in the email, with where the finding is
  whole: the CloudTrail record (by event id) and the guard function's log (`full_finding_log`, written by the
  guard before it publishes).
  An alert that fits whole at FULL (the common case) needs nothing more than this module; the other levels, the
  full-finding log and the "shortened" notes are in `alerts_oversize`, imported on the first alert that needs
  them (a cold start compiles every module it imports: issue 8).
- Never layout. In the email every value from the record stands on a line that starts with our text or our
  indentation; newlines, carriage returns, other control and format characters (U+2028/2029, NEL,
  bidirectional overrides...) are written as escapes (`one_line`), and values are double-quoted, standalone
  or inside our sentences, unless they are plain tokens (ids, ARNs, IP addresses). The JSON document keeps
  every value exact, up to the bounds above.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ami_guard import contract
from ami_guard.events import ApiCall
from ami_guard.findings import Finding

if TYPE_CHECKING:  # what __getattr__ below provides from alerts_oversize, for the type checker
    from ami_guard.alerts_oversize import EXACT as EXACT
    from ami_guard.alerts_oversize import LEVELS as LEVELS
    from ami_guard.alerts_oversize import REDUCED as REDUCED
    from ami_guard.alerts_oversize import TIGHT as TIGHT
    from ami_guard.alerts_oversize import full_finding_log as full_finding_log

SCHEMA = "ami-guard/alert/v2"
"""v2 = v1 plus `status` ("open" / "resolved") and `origin` ("event" / "sweep"): docs/alerts.md says what a v1
consumer sees."""
SUBJECT_MAX = 99  # SNS: "must be less than 100 characters"
SNS_LIMIT_BYTES = 262_144  # SNS: message and message attributes together, UTF-8, at most 256 KiB
PUBLISH_BUDGET_BYTES = SNS_LIMIT_BYTES - 16_384  # headroom for anything SNS counts that we do not
ATTRIBUTE_MAX = 128  # characters of one message attribute value (the account and region come from the record)
NOTES_MAX = 10  # how many of the shortened values `truncated.values` names
FULL_FINDING_LOG = "Full finding"
FULL_FINDING_PART_CHARS = 100_000  # ASCII JSON, at most 2 bytes a character once logged: under CloudWatch's 256 KB
LOG_EVENT_ID_MAX = 128
SECTIONS = ("WHAT HAPPENED", "WHO", "WHEN", "RESOURCES", "EVIDENCE", "ACTION TAKEN", "WHAT TO DO")
SHORTENED_SECTION = "SHORTENED"


class Limits(NamedTuple):
    """How much of a record's values one alert shows (characters, entries, keys, levels)."""

    text: int  # one value from the record
    ident: int  # one identifier: event id, request id, names, codes, account, region, resource id, actor ARN
    items: int  # one list
    keys: int  # one object
    depth: int  # levels of nesting in evidence and action
    title: int
    prose: int  # description, recommendation, action detail
    resources: int
    reduced: bool = False  # say that the alert was reduced to fit


FULL = Limits(text=1024, ident=1024, items=25, keys=50, depth=6, title=300, prose=4000, resources=25)
MORE_KEY = "…"
_OVERSIZE = frozenset(("TIGHT", "REDUCED", "LEVELS", "EXACT", "full_finding_log"))


def __getattr__(name: str) -> Any:
    """The names that moved to alerts_oversize, imported on first use."""
    if name not in _OVERSIZE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ami_guard import alerts_oversize

    value = getattr(alerts_oversize, name)
    globals()[name] = value
    return value


class Alert(NamedTuple):
    subject: str
    document: dict[str, Any]
    email: str
    attributes: dict[str, str]

    def sns_message(self) -> str:
        """The body for Publish with MessageStructure=json: JSON for every protocol, text for email."""
        default = json.dumps(self.document, sort_keys=True, default=str)
        return json.dumps({"default": default, "email": self.email})

    @property
    def truncated(self) -> bool:
        """Some value was cut to fit: the guard logs the full finding (`full_finding_log`)."""
        return self.document.get("truncated") is not None

    def publish_bytes(self) -> int:
        """The Publish request's size as SNS counts it: message, subject, and each attribute's name, type, value."""
        size = len(self.sns_message().encode("utf-8")) + len(self.subject.encode("utf-8"))
        for name, value in self.attributes.items():
            size += len(name.encode("utf-8")) + len("String") + len(value.encode("utf-8"))
        return size


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters followed by a marker that says how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated, {len(text)} chars]"


class _Bounder:
    """Bounds values to one Limits level and remembers what it cut."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.count = 0
        self.notes: list[str] = []

    def note(self, path: str, what: str) -> None:
        self.count += 1
        if len(self.notes) < NOTES_MAX:
            self.notes.append(f"{path}: {what}")

    def text(self, value: str, path: str, limit: int | None = None) -> str:
        limit = self.limits.text if limit is None else limit
        if len(value) <= limit:
            return value
        self.note(path, f"{len(value)} chars, first {limit} kept")
        return cut(value, limit)

    def optional(self, value: str | None, path: str, limit: int | None = None) -> str | None:
        return None if value is None else self.text(value, path, limit)

    def value(self, value: Any, path: str, depth: int = 0) -> Any:
        """A JSON-ready copy of `value` within the limits (non-finite floats and other types become strings)."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.text(value, path)
        if isinstance(value, int):
            return value if value.bit_length() <= 64 else self.text(str(value), path)
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, Mapping):
            return self._object(value, path, depth)
        if isinstance(value, list | tuple | set | frozenset):
            return self._list(list(value), path, depth)
        return self.text(str(value), path)

    def _object(self, value: Mapping[Any, Any], path: str, depth: int) -> Any:
        if depth >= self.limits.depth and value:
            self.note(path, f"object of {len(value)} keys not shown")
            return f"…[object of {len(value)} keys, not shown]"
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index == self.limits.keys:
                self.note(path, f"{len(value)} keys, first {self.limits.keys} kept")
                out[MORE_KEY] = f"[{len(value)} keys, first {self.limits.keys} shown]"
                break
            name = self.text(str(key), f"{path}.<key>")
            while name in out:  # two long keys cut to the same text
                name += "'"
            out[name] = self.value(item, f"{path}.{cut(name, 40)}", depth + 1)
        return out

    def _list(self, value: list[Any], path: str, depth: int) -> Any:
        if depth >= self.limits.depth and value:
            self.note(path, f"list of {len(value)} items not shown")
            return f"…[list of {len(value)} items, not shown]"
        shown = [self.value(item, f"{path}[{n}]", depth + 1) for n, item in enumerate(value[: self.limits.items])]
        if len(value) > self.limits.items:
            self.note(path, f"{len(value)} items, first {self.limits.items} kept")
            shown.append(f"…[{len(value)} items, first {self.limits.items} shown]")
        return shown

    def prose(self, text: str, path: str, limit: int, long_values: list[str]) -> str:
        """Our sentence around record values: each long value in it cut in place, then the whole bounded."""
        replaced = 0
        for value in long_values:
            if value in text:
                text = text.replace(value, cut(value, self.limits.text))
                replaced += 1
        if replaced:
            self.note(path, f"{replaced} value(s) of over {self.limits.text} chars cut inside it")
        return self.text(text, path, limit)


def _strings(value: Any, out: list[str], minimum: int) -> None:
    """Every string in `value` (keys too) longer than `minimum`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > minimum:
                out.append(item)
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)


def _long_values(finding: Finding, call: ApiCall, limit: int) -> list[str]:
    """The values from the record longer than `limit`, longest first: the ones prose must not repeat."""
    if limit == sys.maxsize:
        return []
    found: list[str] = []
    actor = call.actor
    fields = (call.event_id, call.event_name, call.region, call.account, call.error_code, call.error_message)
    actor_fields = (actor.arn, actor.user_name, actor.principal_id, actor.invoked_by, actor.identity_type)
    _strings([*fields, *actor_fields, call.request, call.response], found, limit)
    _strings([[r.id, r.region, r.account] for r in finding.resources], found, limit)
    action = {key: value for key, value in (finding.action or {}).items() if key != "detail"}  # detail is prose
    _strings([finding.evidence, action], found, limit)
    return sorted(set(found), key=len, reverse=True)


def document(
    finding: Finding,
    call: ApiCall,
    limits: Limits = FULL,
    *,
    logged: bool = False,
    log_group: str | None = None,
    account_name: str | None = None,
) -> dict[str, Any]:
    """The machine-readable alert; also what `amiguard evaluate` prints, one per line (at the FULL level).

    `truncated` is None when every value is whole; else it names the shortened values and where they are
    whole: the CloudTrail record, and when `logged` (a guard function publishing it) the `full_finding_log`
    lines in `log_group` (the function's log group, when known). `account_name`: the account's name in the
    organization (organization mode; None when unknown or standalone), data from AWS like every other value.
    """
    b = _Bounder(limits)
    long_values = _long_values(finding, call, limits.text)
    resources = []
    for n, resource in enumerate(finding.resources[: limits.resources]):
        resources.append(
            {
                "type": resource.kind,
                "id": b.text(resource.id, f"resources[{n}].id", limits.ident),
                "arn": resource.arn,
                "region": b.text(resource.region, f"resources[{n}].region", limits.ident),
                "console_url": resource.console_url,
            }
        )
    if len(finding.resources) > limits.resources:
        b.note("resources", f"{len(finding.resources)} resources, first {limits.resources} kept")
    actor = call.actor
    action = finding.action or {"status": "none", "detail": "this rule only reports"}
    evidence = b.value(finding.evidence, "evidence")
    detail = action.get("detail")
    bounded_action = b.value({k: v for k, v in action.items() if k != "detail" or not isinstance(v, str)}, "action")
    if isinstance(detail, str):
        bounded_action["detail"] = b.prose(detail, "action.detail", limits.prose, long_values)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "rule_id": finding.rule_id,
        "severity": finding.severity.name,
        "status": finding.status,
        "origin": "sweep" if call.event_source == contract.SWEEP_SOURCE else "event",
        "title": b.prose(finding.title, "title", limits.title, long_values),
        "description": b.prose(finding.description, "description", limits.prose, long_values),
        "account": b.optional(call.account, "account", limits.ident),
        "account_name": b.optional(account_name, "account_name", limits.ident),
        "region": b.text(call.region, "region", limits.ident),
        "event_id": b.text(call.event_id, "event_id", limits.ident),
        "resources": resources,
        "actor": {
            "arn": b.optional(actor.arn, "actor.arn", limits.ident),
            "type": b.optional(actor.identity_type, "actor.type"),
            "principal_id": b.optional(actor.principal_id, "actor.principal_id"),
            "user_name": b.optional(actor.user_name, "actor.user_name"),
            "account_id": b.optional(actor.account_id, "actor.account_id", limits.ident),
            "source_ip": b.optional(actor.source_ip, "actor.source_ip"),
            "user_agent": b.optional(actor.user_agent, "actor.user_agent"),
            "invoked_by": b.optional(actor.invoked_by, "actor.invoked_by"),
        },
        "event": {
            "id": b.text(call.event_id, "event.id", limits.ident),
            "name": b.text(call.event_name, "event.name", limits.ident),
            "source": b.text(call.event_source, "event.source", limits.ident),
            "time": b.optional(call.event_time, "event.time", limits.ident),
            "request_id": b.optional(call.request_id, "event.request_id", limits.ident),
            "error_code": b.optional(call.error_code, "event.error_code", limits.ident),
            "error_message": b.optional(call.error_message, "event.error_message"),
        },
        "evidence": evidence,
        "action": bounded_action,
        "recommendation": b.prose(finding.recommendation, "recommendation", limits.prose, long_values),
        "console_url": resources[0]["console_url"] if resources else None,
        "truncated": None,
    }
    if b.count or limits.reduced:
        from ami_guard.alerts_oversize import _where_in_full

        doc["truncated"] = {
            "count": b.count,
            "values": [cut(note, 200) for note in b.notes],
            "reduced": limits.reduced,
            "full": _where_in_full(call, finding, logged, log_group),
        }
    return doc


def render(finding: Finding, call: ApiCall, *, log_group: str | None = None, account_name: str | None = None) -> Alert:
    """The alert to publish: at the first level of LEVELS whose Publish request fits PUBLISH_BUDGET_BYTES (REDUCED
    always does). Its caller logs `full_finding_log` when the alert is `truncated`; `log_group` names where.
    `account_name` (organization mode): the account's name, in the document, an attribute and the email."""
    alert = _render(finding, call, FULL, log_group, account_name)
    if alert.publish_bytes() <= PUBLISH_BUDGET_BYTES:
        return alert
    from ami_guard.alerts_oversize import fit

    return fit(finding, call, log_group, account_name)


def _render(
    finding: Finding, call: ApiCall, limits: Limits, log_group: str | None, account_name: str | None = None
) -> Alert:
    doc = document(finding, call, limits, logged=True, log_group=log_group, account_name=account_name)
    attributes = {
        "severity": finding.severity.name,
        "rule_id": finding.rule_id,
        "status": finding.status,
        "account": _attribute(call.account or "unknown"),
        "region": _attribute(call.region),
    }
    if account_name is not None:  # organization mode (a standalone alert has no such attribute)
        attributes["account_name"] = _attribute(account_name)
    request: list[str] = []
    _strings([call.request, call.response], request, QUOTED_MIN - 1)
    request = [cut(value, limits.text) for value in request]
    return Alert(
        subject=subject_line(finding.severity.name, _prose(doc["title"], _record_values(doc, request)), call.account),
        document=doc,
        email=email_text(doc, request),
        attributes=attributes,
    )


def subject_line(severity: str, title: str, account: str | None) -> str:
    """`[CRITICAL] AMI ami-0abc made public in eu-west-1 (123456789012)`: ASCII, one line, < 100 characters."""
    suffix = f" ({_ascii_line(account)[:20]})" if account else ""
    head = f"[{severity}] "
    title = _ascii_line(title)
    room = SUBJECT_MAX - len(head) - len(suffix)
    if len(title) > room:
        title = title[: max(room - 3, 0)].rstrip() + "..."
    return (head + title + suffix)[:SUBJECT_MAX]


def _ascii_line(text: str) -> str:
    text = text.replace("…", "...").replace("\n", " ").replace("\t", " ")
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return " ".join(cleaned.split())


def _attribute(value: str) -> str:
    """A message attribute value: printable ASCII, one line, never empty, at most ATTRIBUTE_MAX characters."""
    cleaned = _ascii_line(value) or "?"
    return cleaned if len(cleaned) <= ATTRIBUTE_MAX else cleaned[: ATTRIBUTE_MAX - 3] + "..."


# --- the email ----------------------------------------------------------------------------------------

_NOT_PLAIN = re.compile(r"[^\x20-\x5b\x5d-\x7e]")  # anything but printable ASCII less the backslash
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TOKEN = re.compile(r"[A-Za-z0-9._:/@+=-]+")
QUOTED_MIN = 3  # a shorter value from the record is not looked for in our prose (it would match our own words)


def one_line(text: str) -> str:
    """`text` on one line, every character that could move, hide or reorder text written as an escape.

    Escaped: control characters (C0, DEL, C1 with NEL), format characters (bidirectional overrides and
    isolates, zero-width characters, BOM), line and paragraph separators, surrogates, and the backslash,
    so that an escape in the output always stands for an escaped character.
    """
    return _NOT_PLAIN.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code >= 0x80:
        import unicodedata  # only for text with non-ASCII characters

        if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return char
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quoted(value: str) -> str:
    """A standalone value from a record: as is when it is a plain token (an id, an ARN, an IP address),
    else in double quotes (inner quotes escaped), so that it cannot read as our text; one line either way."""
    if _TOKEN.fullmatch(value):
        return value
    return '"' + one_line(value).replace('"', '\\"') + '"'


def _prose(text: str, values: list[str]) -> str:
    """Our sentence on one line, each record value in it (from `values`, longest first) quoted."""
    found = [value for value in values if value in text]
    if not found:
        return one_line(text)
    out: list[str] = []
    position = 0
    for match in re.finditer("|".join(map(re.escape, found)), text):
        out += [one_line(text[position : match.start()]), quoted(match.group())]
        position = match.end()
    out.append(one_line(text[position:]))
    return "".join(out)


def _record_values(doc: Mapping[str, Any], more: Iterable[str] = ()) -> list[str]:
    """The values in the document that came from the record, and `more`, that are not plain tokens, longest
    first: where one of them stands in our prose, it is quoted."""
    found: list[str] = [value for value in more if len(value) >= QUOTED_MIN]
    action = {k: v for k, v in doc["action"].items() if k not in ("status", "detail")}
    sources = [
        doc["account"],
        doc.get("account_name"),
        doc["region"],
        doc["resources"],
        doc["actor"],
        doc["event"],
        doc["evidence"],
        action,
    ]
    _strings(sources, found, QUOTED_MIN - 1)
    return sorted({value for value in found if not _TOKEN.fullmatch(value)}, key=len, reverse=True)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return quoted(value)
    return json.dumps(value, sort_keys=True, default=str)  # ASCII: json escapes every other character


def email_text(doc: dict[str, Any], more_values: Iterable[str] = ()) -> str:
    """The plain-text email: section headings at the start of a line, every record value after our text.

    `more_values`: values from the record that the document does not hold but the prose may (request fields)."""
    actor = doc["actor"]
    event = doc["event"]
    action = doc["action"]
    principal = actor["arn"] or actor["user_name"] or actor["principal_id"]
    who = quoted(principal) if principal else "unknown principal"
    if actor["type"]:
        who += f" ({quoted(actor['type'])})"
    via = ", ".join(
        part
        for part in (
            f"from {quoted(actor['source_ip'])}" if actor["source_ip"] else "",
            f"using {quoted(actor['user_agent'])}" if actor["user_agent"] else "",
            f"invoked by {quoted(actor['invoked_by'])}" if actor["invoked_by"] else "",
        )
        if part
    )
    values = _record_values(doc, more_values)
    lines = [f"[{doc['severity']}] {_prose(doc['title'], values)}", ""]
    truncated = doc.get("truncated")
    if truncated:
        from ami_guard.alerts_oversize import _shortened

        lines += [SHORTENED_SECTION, *_shortened(truncated), ""]
    swept = doc["origin"] == "sweep"
    if swept:  # found standing by the posture sweep: no call, so nobody to name
        who = "the posture sweep: the change that made this predates the guard, or was not seen as it happened"
        via = ""
    lines += [SECTIONS[0], f"  {_prose(doc['description'], values)}", "", SECTIONS[1], f"  {who}"]
    if via:
        lines.append(f"  {via}")
    account = quoted(doc["account"]) if doc["account"] else "unknown"
    named = doc.get("account_name")
    if named is not None:  # organization mode: which member account, by id and by its name in the organization
        account += f" {quoted(named)}"
        lines.append(f"  in account {account}, region {quoted(doc['region'])}")
    when = quoted(event["time"]) if event["time"] else "unknown time"
    request = quoted(event["request_id"]) if event["request_id"] else "none"
    if swept:
        lines += ["", SECTIONS[2], f"  {when}: posture sweep (run {quoted(event['id'])})"]
    else:
        lines += [
            "",
            SECTIONS[2],
            f"  {when}: {quoted(event['name'])} (event {quoted(event['id'])}, request {request})",
        ]
    if event["error_code"]:
        message = f": {quoted(event['error_message'])}" if event["error_message"] else ""
        lines.append(f"  The call failed: {quoted(event['error_code'])}{message}")
    lines += ["", SECTIONS[3]]
    for resource in doc["resources"]:
        lines.append(f"  {resource['type']} {quoted(resource['id'])} ({quoted(resource['region'])})")
        url = resource["console_url"]
        beside = f" (in account {account}: sign in to it first)" if named is not None else ""
        lines.append(f"    {url}{beside}" if url else "    (no console link: the id or region is not in AWS's format)")
    lines += ["", SECTIONS[4]]
    lines += [
        f"  {one_line(str(key))}: {_value(value)}"
        for key, value in doc["evidence"].items()
        if value not in (None, [], {})
    ]
    status = one_line(str(action.get("status")))
    detail = _prose(str(action.get("detail") or ""), values)
    lines += ["", SECTIONS[5], f"  {status}: {detail}".rstrip(": ")]
    lines += ["", SECTIONS[6], f"  {_prose(doc['recommendation'], values)}", ""]
    lines.append(f"-- AMI Guard | rule {doc['rule_id']} | account {account} | region {quoted(doc['region'])}")
    return "\n".join(lines)
