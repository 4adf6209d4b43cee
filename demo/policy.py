"""A small IAM policy evaluator for what moto cannot judge in the organization demo: a resource or trust policy
with a principal, an identity policy scoped to a resource, and their conditions, in a request context.

moto's access control matches `Resource` only against "*", evaluates `Condition` without the request's context,
never reads an EventBridge bus policy, and judges a trust policy only for a role of the caller's own account
(moto/iam/access_control.py, moto 5.2.5). The organization demo needs all four: the hub bus accepts events only
from the organization (`aws:PrincipalOrgID`), a member role trusts only the hub's guard roles
(`aws:PrincipalArn`), a hub role may assume only roles of the organization (`aws:ResourceOrgID`), and a member's
forwarder role may put events on the hub bus only. This module judges them as IAM would for the statements the
app writes; anything it does not know (an operator, a principal type) counts as not matching, so an Allow it
cannot read allows nothing. It is a harness workaround, not a full IAM.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_POSITIVE = {
    "StringEquals": ("exact", False),
    "StringLike": ("glob", False),
    "ArnEquals": ("exact", False),
    "ArnLike": ("glob", False),
    "StringNotEquals": ("exact", True),
    "StringNotLike": ("glob", True),
    "ArnNotEquals": ("exact", True),
    "ArnNotLike": ("glob", True),
}
_CASE_INSENSITIVE = {"StringEqualsIgnoreCase": False, "StringNotEqualsIgnoreCase": True}


@dataclass(frozen=True)
class Request:
    """Who asks to do what on which resource, and the condition keys AWS would set for the request."""

    action: str
    resource: str | None = None
    principal_arn: str | None = None
    """The calling principal as policies name it: a role ARN (arn:aws:iam::A:role/R), a user ARN, or None for a
    service principal."""
    service: str | None = None
    """A service principal (events.amazonaws.com) instead of an AWS one."""
    context: Mapping[str, str] = field(default_factory=dict)
    """Condition keys (any case: IAM's keys are case-insensitive)."""

    @property
    def principal_account(self) -> str | None:
        if self.principal_arn is None:
            return None
        parts = self.principal_arn.split(":")
        return parts[4] if len(parts) > 4 else None


def parse_document(document: Any) -> dict[str, Any]:
    """A policy document as IAM or moto hands it over: a dict, JSON text, or (moto's CloudFormation stores a role's
    inline `Policies` so) the Python repr of a dict."""
    if isinstance(document, Mapping):
        return dict(document)
    try:
        parsed = json.loads(document)
    except ValueError:
        parsed = ast.literal_eval(document)
    if not isinstance(parsed, dict):
        raise ValueError(f"not a policy document: {document!r}"[:200])
    return parsed


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    # IAM's wildcards are * and ?; fnmatch's [..] classes are escaped
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _matches_action(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(_glob(str(a), action, case_sensitive=False) for a in as_list(statement["NotAction"]))
    return any(_glob(str(a), action, case_sensitive=False) for a in as_list(statement.get("Action")))


def _matches_resource(statement: Mapping[str, Any], resource: str | None) -> bool:
    if "NotResource" in statement:
        return resource is not None and not any(_glob(str(r), resource) for r in as_list(statement["NotResource"]))
    if "Resource" not in statement:
        return True  # a resource-based or trust policy: the resource is the policy's own
    return resource is not None and any(_glob(str(r), resource) for r in as_list(statement["Resource"]))


def _aws_principal_matches(entry: str, request: Request) -> bool:
    if entry == "*":
        return True
    if request.principal_arn is None:
        return False
    account = request.principal_account
    if entry == account or entry == f"arn:aws:iam::{account}:root":
        return True  # the account: any of its principals (whose own policies then decide)
    return entry == request.principal_arn


def _matches_principal(statement: Mapping[str, Any], request: Request) -> bool:
    if "NotPrincipal" in statement:
        return False  # not written by the app; not judged
    if "Principal" not in statement:
        return True  # an identity policy
    principal = statement["Principal"]
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if request.service is not None:
        return request.service in as_list(principal.get("Service"))
    return any(_aws_principal_matches(str(entry), request) for entry in as_list(principal.get("AWS")))


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    actual = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if actual is None:
        if base == "Null":
            return str(expected).lower() == "true"
        return if_exists
    if base == "Null":
        return str(expected).lower() == "false"
    patterns = [str(p) for p in as_list(expected)]
    if base in _POSITIVE:
        kind, negated = _POSITIVE[base]
        found = any(_glob(p, actual) if kind == "glob" else p == actual for p in patterns)
        return not found if negated else found
    if base in _CASE_INSENSITIVE:
        found = any(p.lower() == actual.lower() for p in patterns)
        return not found if _CASE_INSENSITIVE[base] else found
    if base == "Bool":
        return any(p.lower() == actual.lower() for p in patterns)
    return False  # an operator this evaluator does not know: the statement does not apply


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    conditions = statement.get("Condition") or {}
    if not isinstance(conditions, Mapping):
        return False
    return all(
        _condition_holds(str(operator), str(key), expected, context)
        for operator, pairs in conditions.items()
        for key, expected in (pairs.items() if isinstance(pairs, Mapping) else [])
    )


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _matches_action(statement, request.action)
        and _matches_resource(statement, request.resource)
        and _matches_principal(statement, request)
        and _conditions_hold(statement, request.context)
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(documents: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    """IAM's answer for one policy set: an applicable Deny wins, else an applicable Allow allows, else nothing
    does (implicit deny)."""
    allow: str | None = None
    for document in documents:
        for number, statement in enumerate(as_list(document.get("Statement")), start=1):
            if not isinstance(statement, Mapping) or not _applies(statement, request):
                continue
            name = str(statement.get("Sid") or f"statement {number}")
            if statement.get("Effect") == "Deny":
                return Decision(False, f"explicitly denied by {name}")
            if statement.get("Effect") == "Allow" and allow is None:
                allow = name
    if allow is not None:
        return Decision(True, f"allowed by {allow}")
    return Decision(False, "no statement allows it")
