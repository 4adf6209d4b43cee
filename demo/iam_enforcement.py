"""IAM in the emulated account: moto's access control, judging the functions' calls at the action level.

moto's server authorizes each request against the caller's IAM policies once `INITIAL_NO_AUTH_ACTION_COUNT` is
reached (moto/core/authorization.py); POST /moto-api/reset-auth with "0" switches that on at run time, for every
request after it. Its limits (moto/iam/access_control.py, moto 5.2.5):

- outside S3 each statement's `Resource` is matched against "*" (SQS and IAM/STS role calls name their queue or
  role), so an Allow scoped to a resource reads as no Allow at all;
- `Condition` blocks are evaluated without the request's context, so an Allow with a condition reads as an
  explicit Deny (a failed condition makes moto answer DENIED, not "not applicable");
- only IAM users and assumed roles are principals; resource-based policies (topic, queue, key, bucket) are not
  read; permission boundaries, SCPs and session policies neither.

The guard's roles are scoped to resources and, in places, conditioned: judged as deployed, every call would be
refused. The workaround, and it is one: after the deployment (the CDK CLI deploys with enforcement off, as moto
could not judge its bootstrap roles either), each function runs as a stand-in role whose only policy is an
action-level projection of its deployed role's policies: the same actions, on Resource "*", without conditions.
A call whose action no Allow of the deployed role names is refused, as AWS would refuse it; a call on the wrong
resource, or outside a condition, is not. The harness itself (deploy checks, scenario, inbox, runner) uses an IAM
user allowed everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

HARNESS_USER = "ami-guard-demo-harness"
HARNESS_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
STAND_IN_PATH = "/ami-guard-demo/action-level/"
STAND_IN_POLICY = "action-level-projection"


@dataclass(frozen=True)
class Projection:
    """What a role's policies allow at the action level, and what of them the emulator cannot judge."""

    document: dict[str, Any] | None
    not_judged: tuple[str, ...] = field(default=())


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def action_level_projection(documents: Sequence[Mapping[str, Any]]) -> Projection:
    """One policy allowing, on every resource and without conditions, each action an Allow of `documents` names.

    A Deny on every resource without a condition is kept (AWS denies that action everywhere); any other Deny is
    left out and listed, as are the resource scopes and conditions that are not judged.
    """
    allowed: set[str] = set()
    allowed_except: list[list[str]] = []
    denied: set[str] = set()
    not_judged: list[str] = []
    for source in documents:
        for statement in _as_list(source.get("Statement")):
            effect = statement.get("Effect")
            scoped = _as_list(statement.get("Resource")) != ["*"] or "NotResource" in statement
            conditioned = bool(statement.get("Condition"))
            name = statement.get("Sid") or ", ".join(_as_list(statement.get("Action") or statement.get("NotAction")))
            if effect == "Allow":
                if "NotAction" in statement:
                    allowed_except.append(sorted(str(a) for a in _as_list(statement["NotAction"])))
                else:
                    allowed.update(str(action) for action in _as_list(statement.get("Action")))
                if scoped or conditioned:
                    what = " and ".join(w for w, on in (("resource", scoped), ("condition", conditioned)) if on)
                    not_judged.append(f"Allow {name}: its {what} not judged")
            elif effect == "Deny":
                if scoped or conditioned or "NotAction" in statement:
                    not_judged.append(f"Deny {name}: left out (only an unconditioned Deny on '*' is kept)")
                else:
                    denied.update(str(action) for action in _as_list(statement.get("Action")))
    statements: list[dict[str, Any]] = []
    if allowed:
        statements.append({"Sid": "ActionLevelAllow", "Effect": "Allow", "Action": sorted(allowed), "Resource": "*"})
    for number, excepted in enumerate(allowed_except, start=1):
        statements.append(
            {"Sid": f"ActionLevelAllowNot{number}", "Effect": "Allow", "NotAction": excepted, "Resource": "*"}
        )
    if denied:
        statements.append({"Sid": "ActionLevelDeny", "Effect": "Deny", "Action": sorted(denied), "Resource": "*"})
    document = {"Version": "2012-10-17", "Statement": statements} if statements else None
    return Projection(document=document, not_judged=tuple(not_judged))


def role_policy_documents(iam: Any, role_name: str) -> list[dict[str, Any]]:
    """The documents of a role's inline and attached managed policies, as IAM holds them now."""
    documents: list[dict[str, Any]] = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for policy_name in page["PolicyNames"]:
            documents.append(_document(iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)))
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            found = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
            documents.append(_document({"PolicyDocument": found["Document"]}))
    return documents


def _document(response: Mapping[str, Any]) -> dict[str, Any]:
    document = response["PolicyDocument"]
    parsed: dict[str, Any] = json.loads(document) if isinstance(document, str) else dict(document)
    return parsed


def stand_in_role_name(role_arn: str) -> str:
    """A role name of IAM's 64 characters at most, one per deployed role."""
    return "ami-guard-demo-" + hashlib.sha256(role_arn.encode()).hexdigest()[:24]


def stand_in_role(iam: Any, role_arn: str, *, harness_arn: str) -> tuple[str, Projection]:
    """The stand-in role of a deployed role, its policy projected from the deployed role's policies as they are
    now (a grant removed from the deployed role is gone from the stand-in at the next invocation)."""
    role_name = role_arn.rsplit("/", 1)[-1]
    projection = action_level_projection(role_policy_documents(iam, role_name))
    name = stand_in_role_name(role_arn)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": harness_arn}, "Action": "sts:AssumeRole"}],
    }
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
        arn = str(
            iam.create_role(
                RoleName=name,
                Path=STAND_IN_PATH,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"AMI Guard demo: action-level stand-in for {role_arn}"[:1000],
            )["Role"]["Arn"]
        )
    if projection.document is None:
        try:
            iam.delete_role_policy(RoleName=name, PolicyName=STAND_IN_POLICY)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
    else:
        iam.put_role_policy(RoleName=name, PolicyName=STAND_IN_POLICY, PolicyDocument=json.dumps(projection.document))
    return arn, projection


def refusal_text(refusal: Mapping[str, Any]) -> str:
    return f"IAM refused {refusal.get('action')} ({refusal.get('error')})"
