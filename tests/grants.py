"""The statements of a synthesized template as IAM reads them in one deployment, and the calls they allow: the
matching shared by the calls-against-grants tests (tests/functions/test_calls_against_grants.py, standalone, and
tests/functions/test_org_calls_against_grants.py, organization mode).

Only what the guard's templates use is evaluated: Allow statements listing their actions and resources, conditions
`StringEquals` and `ArnEquals`/`ArnLike`, `AWS` principals (an account root or a role ARN). A statement or a call
with anything else fails the test with a message that names what to add here, rather than being read as allowing
or as denying.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from moto.ec2 import ec2_backends

from tests.infra.test_guard_roles import DESCRIBES_WITHOUT_RESOURCE_LEVEL_PERMISSIONS

# botocore service name -> IAM service prefix. For the operations of these services the IAM action is named after
# the API operation (Service Authorization Reference); a service where it is not would need a table of its own.
IAM_PREFIX = {
    "ec2": "ec2",
    "sns": "sns",
    "dynamodb": "dynamodb",
    "sts": "sts",
    "organizations": "organizations",
    "s3": "s3",  # the sweep's plan: PutObject (an object call, named after its operation)
    "events": "events",
    "securityhub": "securityhub",
}

LAMBDA_USES = "Lambda itself, not our code"
ON_OUR_BEHALF: dict[str, tuple[str | None, str]] = {
    # action granted: (the call of ours that needs it, or None when every function needs it; why no call of ours
    # appears for it)
    "logs:CreateLogStream": (None, f"{LAMBDA_USES}: the runtime creates the log stream in the function's log group"),
    "logs:PutLogEvents": (None, f"{LAMBDA_USES}: the runtime writes what the function prints to its log group"),
    "sqs:SendMessage": (
        None,
        f"{LAMBDA_USES}: an event that failed its asynchronous retries is sent to the function's on-failure "
        "queue with the execution role",
    ),
    "kms:GenerateDataKey": (
        "sns:Publish",
        "SNS encrypts each message published to the topic with its customer managed key, calling KMS with the "
        "publisher's permissions",
    ),
    "kms:Decrypt": ("sns:Publish", "as kms:GenerateDataKey: SNS needs it from the publisher to use the data key"),
}

# Actions with no resource type in the Service Authorization Reference: IAM evaluates them against Resource "*".
NO_RESOURCE_LEVEL_PERMISSIONS = DESCRIBES_WITHOUT_RESOURCE_LEVEL_PERMISSIONS | {
    "organizations:ListAccounts",
    # the posture sweep's list and account-setting reads
    "ec2:DescribeInstances",
    "ec2:GetImageBlockPublicAccessState",
    "ec2:GetSnapshotBlockPublicAccessState",
    "ec2:GetAllowedImagesSettings",
}
IDEMPOTENCY_ITEM_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def iam_action(service: str, operation: str) -> str:
    assert service in IAM_PREFIX, f"a call to {service}.{operation}: add the service's IAM prefix to IAM_PREFIX"
    return f"{IAM_PREFIX[service]}:{operation}"


class Resolver:
    """A template's intrinsics as CloudFormation resolves them in one deployment: the pseudo parameters given;
    a Ref or a Fn::GetAtt of a resource whose type (and attribute) has a value in `refs` / `attributes` gets that
    value (the emulated topic, say); any other resource a stand-in name, which matches no real ARN."""

    def __init__(
        self,
        resources: Mapping[str, Any],
        pseudo: Mapping[str, str],
        refs: Mapping[str, str] | None = None,
        attributes: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._resources = resources
        self._pseudo = {f"AWS::{name}": value for name, value in pseudo.items()}
        self._refs = refs or {}
        self._attributes = attributes or {}

    def __call__(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, Mapping) and set(node) == {"Ref"}:
            name = node["Ref"]
            if name.startswith("AWS::"):
                assert name in self._pseudo, f"{name}: a pseudo parameter this deployment gives no value"
                return self._pseudo[name]
            return self._refs.get(self._resources[name]["Type"], f"stand-in-{name}")
        if isinstance(node, Mapping) and set(node) == {"Fn::GetAtt"}:
            name, attribute = node["Fn::GetAtt"]
            kind = self._resources[name]["Type"]
            return self._attributes.get((kind, attribute), f"stand-in-{name}-{attribute}")
        if isinstance(node, Mapping) and set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return str(separator).join(self(part) for part in parts)
        raise AssertionError(f"{node}: an intrinsic this test does not resolve")


@dataclass(frozen=True)
class Statement:
    """One Allow statement, its intrinsics resolved."""

    sid: str
    actions: frozenset[str]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]
    """operator -> condition key -> the values (any of which satisfies the key)"""
    principals: tuple[str, ...] = ()
    """A trust policy's AWS principals (empty in an identity policy)."""

    def __str__(self) -> str:
        return self.sid or f"{sorted(self.actions)} on {list(self.resources)}"


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def statements(document: Mapping[str, Any], resolve: Resolver, *, trust: bool = False) -> list[Statement]:
    out: list[Statement] = []
    for statement in document["Statement"]:
        unread = set(statement) - {
            "Sid",
            "Effect",
            "Action",
            "Resource",
            "Condition",
            *(["Principal"] if trust else []),
        }
        assert statement["Effect"] == "Allow" and not unread, f"a statement this test does not evaluate: {statement}"
        principals: list[str] = []
        if trust:
            assert set(statement["Principal"]) == {"AWS"}, f"a principal this test does not evaluate: {statement}"
            principals = [resolve(p) for p in _listed(statement["Principal"]["AWS"])]
        else:
            assert "Resource" in statement, f"an identity statement without Resource: {statement}"
        out.append(
            Statement(
                sid=statement.get("Sid", ""),
                actions=frozenset(_listed(statement["Action"])),
                resources=tuple(resolve(r) for r in _listed(statement.get("Resource", []))),
                conditions={
                    operator: {key: tuple(resolve(v) for v in _listed(values)) for key, values in pairs.items()}
                    for operator, pairs in statement.get("Condition", {}).items()
                },
                principals=tuple(principals),
            )
        )
    return out


def role_statements(resources: Mapping[str, Any], role_id: str, resolve: Resolver) -> list[Statement]:
    """The statements of every policy attached to the role. Only the role's own AWS::IAM::Policy resources are
    expected: a managed or an inline role policy would need more than this to be compared."""
    role = resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role, f"{role_id}: policies beside its own"
    out: list[Statement] = []
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            out += statements(resource["Properties"]["PolicyDocument"], resolve)
    return out


def trust_statements(resources: Mapping[str, Any], role_id: str, resolve: Resolver) -> list[Statement]:
    return statements(resources[role_id]["Properties"]["AssumeRolePolicyDocument"], resolve, trust=True)


def role_arn(resources: Mapping[str, Any], role_id: str, resolve: Resolver, *, partition: str, account: str) -> str:
    """The role's ARN as IAM names it (its RoleName resolved; no Path in these templates)."""
    role = resources[role_id]["Properties"]
    assert "Path" not in role, f"{role_id}: a role path this test does not name"
    return f"arn:{partition}:iam::{account}:role/{resolve(role['RoleName'])}"


def granted_actions(granted: list[Statement]) -> frozenset[str]:
    return frozenset(action for statement in granted for action in statement.actions)


def _glob(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` any one; nothing else is special."""
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), re.DOTALL)


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM matching of a Resource (or ArnLike) pattern against an ARN, segment by segment (a wildcard never spans
    the colon between two ARN segments; the resource segment may itself hold colons)."""
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return False
    return all(_glob(w).fullmatch(a) is not None for w, a in zip(wanted, actual, strict=True))


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern.lower()).fullmatch(action.lower()) is not None


def conditions_hold(conditions: Mapping[str, Mapping[str, tuple[str, ...]]], context: Mapping[str, str]) -> bool | None:
    """Whether the request's context satisfies every condition; None when a key is not in the context and the
    others hold (the call alone cannot tell)."""
    unknown = False
    for operator, pairs in conditions.items():
        for key, values in pairs.items():
            if key not in context:
                unknown = True
                continue
            if operator == "StringEquals":
                satisfied = context[key] in values
            elif operator in ("ArnEquals", "ArnLike"):  # the same test in IAM: both take wildcards
                satisfied = any(arn_matches(value, context[key]) for value in values)
            else:
                raise AssertionError(f"condition operator {operator}: add its evaluation to tests/grants.py")
            if not satisfied:
                return False
    return None if unknown else True


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes for a call: an action on one resource, with the condition keys it carries."""

    action: str
    resource: str
    context: Mapping[str, str]


def requests(
    action: str,
    params: Mapping[str, Any],
    *,
    partition: str,
    region: str,
    account: str,
    context_of: Callable[[str], Mapping[str, str]],
) -> list[Request]:
    """The authorizations a call needs: one per resource it names (Service Authorization Reference), each with
    the context `context_of(resource ARN)` gives it (ec2:Owner, aws:ResourceOrgID: the test knows them)."""
    if action in NO_RESOURCE_LEVEL_PERMISSIONS:
        arns = ["*"]
    elif action == "sts:AssumeRole":
        arns = [params["RoleArn"]]
    elif action == "sns:Publish":
        arns = [params["TopicArn"]]
    elif action == "events:PutEvents":
        # authorized on each entry's bus (a bus named without its ARN is the caller's, in the client's region)
        buses = {entry.get("EventBusName") or "default" for entry in params["Entries"]}
        arns = [
            b if b.startswith("arn:") else f"arn:{partition}:events:{region}:{account}:event-bus/{b}" for b in buses
        ]
    elif action == "securityhub:BatchImportFindings":
        # authorized on the product each finding is imported for (Service Authorization Reference: `product`)
        arns = sorted({finding["ProductArn"] for finding in params["Findings"]})
    elif action in IDEMPOTENCY_ITEM_ACTIONS:
        arns = [f"arn:{partition}:dynamodb:{region}:{account}:table/{params['TableName']}"]
    elif action == "dynamodb:Query":
        # a query of an index is authorized on the index's ARN; of the table, on the table's
        table = f"arn:{partition}:dynamodb:{region}:{account}:table/{params['TableName']}"
        arns = [f"{table}/index/{params['IndexName']}" if "IndexName" in params else table]
    elif action in ("ec2:ModifyImageAttribute", "ec2:DescribeImageAttribute"):
        arns = [f"arn:{partition}:ec2:{region}::image/{params['ImageId']}"]
    elif action == "ec2:DescribeSnapshotAttribute":
        arns = [f"arn:{partition}:ec2:{region}::snapshot/{params['SnapshotId']}"]
    elif action == "s3:PutObject":
        arns = [f"arn:{partition}:s3:::{params['Bucket']}/{params['Key']}"]
    elif action == "ec2:CreateTags":
        kinds = {"ami": "image", "snap": "snapshot"}
        arns = [f"arn:{partition}:ec2:{region}::{kinds[rid.split('-')[0]]}/{rid}" for rid in params["Resources"]]
    else:
        raise AssertionError(f"{action}: add the resources such a call names to tests/grants.py: requests")
    return [Request(action, arn, context_of(arn)) for arn in arns]


def allowing(granted: list[Statement], request: Request) -> Iterator[tuple[Statement, bool | None]]:
    """Each statement granting the action on the resource, with whether its conditions hold (None: unknown)."""
    for statement in granted:
        if any(action_matches(a, request.action) for a in statement.actions) and any(
            arn_matches(r, request.resource) for r in statement.resources
        ):
            yield statement, conditions_hold(statement.conditions, request.context)


class Context:
    """The condition keys of a request, read from the emulated accounts as AWS would evaluate them: ec2:Owner the
    owner of the image or snapshot in the account, aws:ResourceOrgID the organization of the account a role is in."""

    def __init__(self, organization_of: Mapping[str, str] | None = None) -> None:
        self._organization_of = organization_of or {}
        """account id -> the id of the organization it is in"""
        self.absent: set[str] = set()
        """Images and snapshots a call named that the account does not have: they have no owner."""

    def of(self, account: str, arn: str) -> Mapping[str, str]:
        """The keys of a request on `arn` by a principal of `account`."""
        if arn == "*":
            return {}
        _, _, service, region, owner_account, resource = arn.split(":", 5)
        if service == "iam":  # a role: the organization of the account it is in
            found = self._organization_of.get(owner_account)
            return {"aws:ResourceOrgID": found} if found else {}
        if service == "ec2":  # an image or a snapshot (their ARNs name no account) of `account` in `region`
            kind, resource_id = resource.split("/", 1)
            backend = ec2_backends[account][region]
            item = (backend.amis if kind == "image" else backend.snapshots).get(resource_id)
            if item is None:
                self.absent.add(arn)
                return {}
            return {"ec2:Owner": str(item.owner_id)}
        return {}


def judged(granted: list[Statement], request: Request, absent: set[str]) -> tuple[bool, list[Statement]]:
    """(whether the request is allowed, the statements that allow it with their conditions met).

    A request on an image or snapshot that does not exist has no ec2:Owner: it is counted as allowed when a
    statement would allow it whatever the owner were, since AWS refuses it either way (not found, or unauthorized
    for want of the key) and the path expects the call to fail (an image gone before it could be reverted)."""
    verdicts = list(allowing(granted, request))
    met = [statement for statement, holds in verdicts if holds is True]
    undecided = [statement for statement, holds in verdicts if holds is None]
    return bool(met) or (bool(undecided) and request.resource in absent), met


def principal_matches(principal: str, caller: str) -> bool:
    """An AWS principal against the ARN of the role making the request: `*`, an account (its root ARN or its
    id: any principal of the account), or the exact ARN."""
    caller_account = caller.split(":")[4]
    if principal == "*":
        return True
    if re.fullmatch(r"[0-9]{12}", principal) or re.fullmatch(r"arn:[a-z-]+:iam::[0-9]{12}:root", principal):
        return principal.split(":")[4 if ":" in principal else 0] == caller_account
    return principal == caller


def trusts(trust: list[Statement], caller: str) -> bool:
    """Whether the trust policy lets the role `caller` (its ARN: aws:PrincipalArn) call sts:AssumeRole."""
    context = {"aws:PrincipalArn": caller, "aws:PrincipalAccount": caller.split(":")[4]}
    return any(
        any(action_matches(a, "sts:AssumeRole") for a in statement.actions)
        and any(principal_matches(p, caller) for p in statement.principals)
        and conditions_hold(statement.conditions, context) is True
        for statement in trust
    )


ASYNCHRONOUS_ONLY = {"sqs:SendMessage"}
"""What Lambda does on a function's behalf only when it is invoked asynchronously (its on-failure queue)."""


def differences(
    name: str, granted: frozenset[str], called: Mapping[str, list[str]], *, asynchronous: bool = True
) -> list[str]:
    """What is called without a grant, and what is granted without a call (nor a reason written out above).
    `called`: action -> the paths that called it. `asynchronous`: False for a function only ever invoked
    synchronously (the sweep, by its state machine), which has no on-failure queue."""
    needed = set(called) | {
        action
        for action, (needed_by, _) in ON_OUR_BEHALF.items()
        if (needed_by is None or needed_by in called) and (asynchronous or action not in ASYNCHRONOUS_ONLY)
    }
    return [
        *(f"{name}: {a} called without a grant, on: {'; '.join(called[a])}" for a in sorted(set(called) - granted)),
        *(f"{name}: {a} granted but called on no path" for a in sorted(granted - needed)),
        *(f"{name}: {a} needed on our behalf but not granted" for a in sorted(needed - set(called) - granted)),
    ]


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    handler: str
    environment: Mapping[str, Any]
    role_id: str
    statements: list[Statement]
    """The Allow statements of the policies attached to its role."""

    @property
    def granted(self) -> frozenset[str]:
        return granted_actions(self.statements)


def deployed_functions(template: Mapping[str, Any], resolve: Resolver) -> Iterator[DeployedFunction]:
    """Each function of the template, its role found through the function's Role reference."""
    resources: Mapping[str, Any] = template["Resources"]
    for resource in resources.values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        role_id = props["Role"]["Fn::GetAtt"][0]
        yield DeployedFunction(
            name=props["FunctionName"],
            handler=props["Handler"],
            environment=props["Environment"]["Variables"],
            role_id=role_id,
            statements=role_statements(resources, role_id, resolve),
        )
