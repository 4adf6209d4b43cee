"""Patches of moto's models for the organization demo, installed by demo.emulator_server in multi-account mode only
(the standalone demo never imports this module). Each is a workaround for something moto does not do as AWS does:

- `delegated_admins_read_the_organization`: moto's Organizations answers ListAccounts / DescribeAccount only in
  the management account (a member account's backend holds no organization); AWS lets a delegated administrator
  read them too. Here an account registered as delegated administrator (for any service) reads the management
  account's answers, and any other member account still gets moto's empty answer. moto also refuses to register
  a delegated administrator for StackSets (member.org.stacksets.cloudformation.amazonaws.com, which AWS allows):
  that service is added to moto's list.
- `judge_cross_account_assume_role`: moto's STS issues credentials for any role ARN and judges the trust policy
  only of a role in the caller's own account, without conditions (moto/iam/access_control.py). When a function of
  the demo (a registered action-level stand-in, see demo.iam_enforcement) assumes a role of another account, the
  harness judges it as AWS would, with demo.policy in the request's context: the deployed role the stand-in stands
  in for must be allowed sts:AssumeRole on that role ARN by its own policies (resource and conditions, e.g.
  aws:ResourceOrgID), and the target role's trust policy must allow that deployed role (principal and conditions,
  e.g. ArnEquals aws:PrincipalArn); a refusal is AccessDenied, recorded like moto's own refusals. Allowed, the
  credentials issued are those of the target role's action-level stand-in, refreshed from the target role's
  policies at every AssumeRole, since moto could not judge the target role's scoped and conditioned grants either.
- `event_bus_ref_is_its_name`: moto's `AWS::Events::EventBus` has no physical resource id, so `Ref` to it in a
  template yields moto's model object instead of the bus name, and a rule created on that bus (EventBusName:
  Ref) fails with HTTP 500. AWS answers the name; so does the patched model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from demo.iam_enforcement import STAND_IN_PATH, STAND_IN_POLICY, action_level_projection, stand_in_role_name
from demo.policy import Request, decide, parse_document

PARTITION = "aws"
STAND_INS: dict[str, str] = {}
"""Action-level stand-in role ARN -> the deployed role it stands in for (registered by the runner)."""
JUDGED: list[dict[str, str]] = []
"""Every cross-account AssumeRole the harness judged, allowed or not (for the demo's report and tests)."""

_redirect = threading.local()


def organization_of(account: str) -> str | None:
    """The id of the organization the account belongs to now (ACTIVE), or None."""
    from moto.organizations.models import organizations_backends

    master = organizations_backends.master_accounts.get(account)
    backend = organizations_backends[master[0] if master else account][PARTITION]
    org = backend.org
    if org is None:
        return None
    for member in backend.accounts:
        if member.id == account and getattr(member, "status", "ACTIVE") == "ACTIVE":
            return str(org.id)
    return None


STACK_SETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"


def delegated_admins_read_the_organization() -> None:
    from moto.organizations.models import FakeDelegatedAdministrator, OrganizationsBackend, organizations_backends

    if STACK_SETS_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(STACK_SETS_PRINCIPAL)

    def management_backend(self: Any) -> Any:
        if self.org is not None:
            return self
        master = organizations_backends.master_accounts.get(self.account_id)
        if master is None:
            return self
        backend = organizations_backends[master[0]][master[1]]
        if any(admin.account.id == self.account_id for admin in backend.admins):
            return backend
        return self

    for name in ("list_accounts", "describe_account", "describe_organization"):
        original = getattr(OrganizationsBackend, name)

        def delegated(self: Any, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            return __original(management_backend(self), *args, **kwargs)

        setattr(OrganizationsBackend, name, delegated)


def _role_documents(role: Any) -> list[dict[str, Any]]:
    documents = [parse_document(document) for document in role.policies.values()]
    for policy in role.managed_policies.values():
        default = next(version for version in policy.versions if version.is_default)
        documents.append(parse_document(default.document))
    return documents


def _caller_role_arn(access_key_id: str) -> tuple[str, str] | None:
    """(account, role ARN) of an assumed-role access key, or None for any other key."""
    from moto.iam.models import get_account_id_from, iam_backends

    account = get_account_id_from(access_key_id)
    key = iam_backends[account][PARTITION].access_keys.get(access_key_id)
    role_arn = getattr(key, "role_arn", None)
    return (account, str(role_arn)) if role_arn else None


def judge(deployed_role_arn: str, target_role_arn: str) -> tuple[bool, str]:
    """Whether the deployed role may assume the target role in AWS, and why."""
    from moto.iam.models import iam_backends

    caller_account = deployed_role_arn.split(":")[4]
    target_account = target_role_arn.split(":")[4]
    context = {
        "aws:PrincipalArn": deployed_role_arn,
        "aws:PrincipalAccount": caller_account,
        "aws:ResourceAccount": target_account,
    }
    caller_org, target_org = organization_of(caller_account), organization_of(target_account)
    if caller_org:
        context["aws:PrincipalOrgID"] = caller_org
    if target_org:
        context["aws:ResourceOrgID"] = target_org
    try:
        deployed = iam_backends[caller_account][PARTITION].get_role_by_arn(deployed_role_arn)
    except Exception:
        return False, f"the deployed role {deployed_role_arn} no longer exists"
    identity = decide(
        _role_documents(deployed),
        Request(action="sts:AssumeRole", resource=target_role_arn, principal_arn=deployed_role_arn, context=context),
    )
    if not identity.allowed:
        return False, f"the policies of {deployed_role_arn}: {identity.reason}"
    try:
        target = iam_backends[target_account][PARTITION].get_role_by_arn(target_role_arn)
    except Exception:
        return False, f"no role {target_role_arn}"
    trust = parse_document(target.assume_role_policy_document)
    verdict = decide([trust], Request(action="sts:AssumeRole", principal_arn=deployed_role_arn, context=context))
    if not verdict.allowed:
        return False, f"the trust policy of {target_role_arn}: {verdict.reason}"
    return True, f"{identity.reason} (identity), {verdict.reason} (trust)"


def refresh_stand_in(target_role_arn: str) -> str:
    """The target role's action-level stand-in in its account, its policy projected from the role as it is now."""
    from moto.iam.models import iam_backends

    account = target_role_arn.split(":")[4]
    backend = iam_backends[account][PARTITION]
    target = backend.get_role_by_arn(target_role_arn)
    projection = action_level_projection(_role_documents(target))
    name = stand_in_role_name(target_role_arn)
    try:
        stand_in = backend.get_role(name)
    except Exception:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*"}]}
        stand_in = backend.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust),
            path=STAND_IN_PATH,
            permissions_boundary=None,
            description=f"AMI Guard demo: action-level stand-in for {target_role_arn}",
            tags=[],
            max_session_duration=None,
        )
    if projection.document is None:
        stand_in.policies.pop(STAND_IN_POLICY, None)
    else:
        backend.put_role_policy(name, STAND_IN_POLICY, json.dumps(projection.document))
    return str(stand_in.arn)


def judge_cross_account_assume_role(record_refusal: Callable[[dict[str, str]], None]) -> None:
    from moto.core.exceptions import AccessDeniedError
    from moto.sts.models import STSBackend
    from moto.sts.responses import TokenResponse

    respond = TokenResponse.assume_role
    assume = STSBackend.assume_role

    def assume_role_response(self: Any) -> Any:
        target = str(self._get_param("RoleArn") or "")
        key = self.get_access_key()
        caller = _caller_role_arn(key)
        stand_in = caller[1] if caller else None
        deployed = STAND_INS.get(stand_in or "")
        if caller is None or deployed is None or target.split(":")[4:5] == [caller[0]]:
            return respond(self)  # not a function of the demo, or a role of its own account: moto as it is
        allowed, reason = judge(deployed, target)
        JUDGED.append({"caller": deployed, "target": target, "allowed": str(allowed).lower(), "reason": reason})
        if not allowed:
            record_refusal(
                {
                    "access_key_id": key,
                    "action": "sts:AssumeRole",
                    "resource": target,
                    "error": "AccessDenied",
                    "message": f"(judged by the harness, demo.org_patches) {reason}"[:500],
                }
            )
            raise AccessDeniedError(user_arn=deployed, action="sts:AssumeRole")
        _redirect.role_arn = refresh_stand_in(target)
        try:
            return respond(self)
        finally:
            _redirect.role_arn = None

    def assume_role_backend(self: Any, *args: Any, **kwargs: Any) -> Any:
        replacement = getattr(_redirect, "role_arn", None)
        if replacement:
            kwargs["role_arn"] = replacement
        return assume(self, *args, **kwargs)

    TokenResponse.assume_role = assume_role_response  # type: ignore[method-assign]
    STSBackend.assume_role = assume_role_backend  # type: ignore[method-assign]


def event_bus_ref_is_its_name() -> None:
    from moto.events.models import EventBus

    if not hasattr(EventBus, "physical_resource_id"):
        EventBus.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]


def install(record_refusal: Callable[[dict[str, str]], None]) -> None:
    event_bus_ref_is_its_name()
    delegated_admins_read_the_organization()
    judge_cross_account_assume_role(record_refusal)
