"""The event runner across the accounts of an emulated organization (`python -m demo --organization`).

One demo.runner.EventRunner per account plays EventBridge and Lambda there, as in the standalone demo; this module
adds what crosses accounts and regions, read from what was deployed, as EventBridge would do it:

- an event bus target (a member's rule forwarding to the hub bus, possibly in another region): EventBridge puts
  the event on that bus with the target's role, so the role must trust events.amazonaws.com and its policies must
  allow events:PutEvents on that bus; the receiving bus's resource policy must allow the role too (across
  accounts; in the same account the role's own policy suffices). The event keeps its envelope (account, region),
  and the receiving bus's rules are followed as any bus's;
- PutEvents naming another account's bus (the scenario's outsider): the sender's policies and the bus policy.

The bus policy is the deployed one: moto keeps a policy given by PutPermission but its CloudFormation does not
create `AWS::Events::EventBusPolicy` (and its own bus-to-bus delivery reads no policy at all), so the runner
reads the statements from the template deployed in the bus's account and region, with any PutPermission policy
moto holds, and judges them with demo.policy in the request's context (`aws:PrincipalOrgID` from the emulated
Organizations). That is a harness workaround: in AWS, EventBridge does it.

The hub functions reach the member accounts through the member role: the runner registers each function's
action-level stand-in with the emulator, which judges the cross-account AssumeRole (demo.org_patches), and every
call moto refused during an invocation, with the function's credentials or with the credentials it got from
AssumeRole, fails the step.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from demo import iam_enforcement
from demo.organization import OrgEmulator
from demo.policy import Decision, Request, decide, parse_document
from demo.runner import Attempt, Delivery, EventRunner, _paginate

EVENTS_SERVICE = "events.amazonaws.com"


class PutEventsRefused(Exception):
    """EventBridge refused a PutEvents call: the endpoint answers with this error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def bus_arn_parts(arn: str) -> tuple[str, str, str]:
    """(region, account, bus name) of arn:aws:events:REGION:ACCOUNT:event-bus/NAME."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("event-bus/"):
        raise ValueError(f"not an event bus ARN: {arn}")
    return parts[3], parts[4], parts[5][len("event-bus/") :]


class AccountRunner(EventRunner):
    """The runner of one account of the organization."""

    def __init__(self, org: OrgRunner, emulator: Any, *, work_dir: Path) -> None:
        super().__init__(emulator, work_dir=work_dir)
        self.org = org
        self.deliveries = org.deliveries
        self.notes = org.notes
        self._registered: set[str] = set()

    def _to_bus(self, delivery: Delivery, rule: Mapping[str, Any], target: Mapping[str, Any], payload: Any) -> None:
        self.org.to_bus(self, delivery, target, payload)

    def _role_credentials(self, region: str, config: Mapping[str, Any]) -> dict[str, str]:
        credentials = super()._role_credentials(region, config)
        role_arn = str(config.get("Role", ""))
        if self.emulator.iam_enforced and role_arn not in self._registered:
            name = iam_enforcement.stand_in_role_name(role_arn)
            stand_in = self.emulator.client("iam", region).get_role(RoleName=name)["Role"]["Arn"]
            self.org.emulator.register_stand_in(str(stand_in), role_arn)
            self._registered.add(role_arn)
        return credentials

    def _invoke(self, region: str, config: Mapping[str, Any], payload: Any, number: int) -> Attempt:
        enforced = self.emulator.iam_enforced
        before = self.emulator.refused(since=2**31)[0] if enforced else 0
        attempt = super()._invoke(region, config, payload, number)
        if enforced:
            # the calls made with credentials the function obtained (a member role's), refused by moto or judged
            # by the harness: the base runner keeps only those made with the function's own key
            _total, since = self.emulator.refused(since=before)
            harness = self.org.harness_keys()
            known = {json.dumps(r, sort_keys=True) for r in attempt.refused}
            for refusal in since:
                if refusal.get("access_key_id") in harness or json.dumps(refusal, sort_keys=True) in known:
                    continue
                attempt.refused.append(refusal)
        return attempt


class OrgRunner:
    """The runners of every account, one lock, one record of deliveries for the scenario."""

    def __init__(self, emulator: OrgEmulator, *, work_dir: Path) -> None:
        self.emulator = emulator
        self.work_dir = work_dir
        self.deliveries: list[Delivery] = []
        self.notes: list[str] = []
        self.refused_puts: list[dict[str, str]] = []
        self.runners: dict[str, AccountRunner] = {}
        self._lock = threading.Lock()

    def runner(self, account: str) -> AccountRunner:
        if account not in self.runners:
            self.runners[account] = AccountRunner(
                self, self.emulator.view(account), work_dir=self.work_dir / "accounts" / account
            )
        return self.runners[account]

    @property
    def runtime_missing(self) -> tuple[str, ...]:
        return next(iter(self.runners.values())).runtime_missing if self.runners else ()

    def harness_keys(self) -> set[str]:
        return {self.emulator.access_key_id, *(view.access_key_id for view in self.emulator.views.values())}

    # --- PutEvents, from the scenario (CloudTrail's records) or anyone ------------------------------------

    def put_events(self, region: str, access_key_id: str, entries: Sequence[Mapping[str, Any]]) -> list[str]:
        account = self.emulator.account_of_key(access_key_id)
        if account is None:
            raise PutEventsRefused("UnrecognizedClientException", "The security token included is invalid.")
        ids = []
        with self._lock:
            for entry in entries:
                bus = str(entry.get("EventBusName") or "default")
                bus_region, bus_account, bus_name = (
                    bus_arn_parts(bus) if bus.startswith("arn:") else (region, account, bus)
                )
                sender = self.runner(account)
                if bus_account != account:
                    principal = self.emulator.view(account).harness_arn
                    decision = self.bus_decision(bus_account, bus_region, bus_name, principal, identity_allows=True)
                    if not decision.allowed:
                        bus_arn = f"arn:aws:events:{bus_region}:{bus_account}:event-bus/{bus_name}"
                        message = (
                            f"User: {principal} is not authorized to perform: events:PutEvents on resource: "
                            f"{bus_arn} because no resource-based policy allows the events:PutEvents action "
                            f"({decision.reason})"
                        )
                        self.refused_puts.append({"principal": principal, "bus": bus_arn, "reason": decision.reason})
                        raise PutEventsRefused("AccessDeniedException", message)
                envelope = sender.envelope(bus_region, entry)
                ids.append(str(envelope["id"]))
                self.runner(bus_account).deliver(bus_region, envelope, bus=bus_name)
        return ids

    # --- a bus target ----------------------------------------------------------------------------------------

    def to_bus(self, source: AccountRunner, delivery: Delivery, target: Mapping[str, Any], payload: Any) -> None:
        try:
            bus_region, bus_account, bus_name = bus_arn_parts(str(target["Arn"]))
        except ValueError as exc:
            delivery.reason = str(exc)
            return
        account = source.emulator.account
        role_arn = target.get("RoleArn")
        if role_arn:
            identity = self._role_may_put(source, str(role_arn), str(target["Arn"]))
            principal = str(role_arn)
        else:
            identity = Decision(True, "no role: EventBridge puts the event as the account")
            principal = f"arn:aws:iam::{account}:root"
        if role_arn and not identity.allowed:
            source._undeliverable(delivery, target, payload, f"AccessDenied: role {role_arn}: {identity.reason}")
            return
        decision = self.bus_decision(bus_account, bus_region, bus_name, principal, identity_allows=identity.allowed)
        if not decision.allowed:
            source._undeliverable(
                delivery, target, payload, f"AccessDenied: the policy of bus {target['Arn']}: {decision.reason}"
            )
            return
        delivery.delivered = True
        delivery.attempts.append(Attempt(number=1, ok=True, duration_ms=0, result={"bus": decision.reason}))
        self.runner(bus_account).deliver(bus_region, payload, bus=bus_name)

    def _role_may_put(self, source: AccountRunner, role_arn: str, bus_arn: str) -> Decision:
        """EventBridge assumes the target's role (its trust must name events.amazonaws.com), then puts the event
        with the role's permissions (events:PutEvents on the bus, resource and conditions judged)."""
        if role_arn.split(":")[4] != source.emulator.account:
            return Decision(False, "the role is not in the rule's account")
        iam = source.emulator.client("iam", "us-east-1")
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            return Decision(False, f"{exc.response.get('Error', {}).get('Code')}: no role {name}")
        trust = parse_document(role.get("AssumeRolePolicyDocument") or {})
        trusted = decide([trust], Request(action="sts:AssumeRole", service=EVENTS_SERVICE))
        if not trusted.allowed:
            return Decision(False, f"its trust policy does not let EventBridge assume it ({trusted.reason})")
        documents = _role_documents(iam, name)
        context = self._principal_context(role_arn)
        return decide(
            documents, Request(action="events:PutEvents", resource=bus_arn, principal_arn=role_arn, context=context)
        )

    # --- the bus policy -----------------------------------------------------------------------------------------

    def bus_decision(
        self, bus_account: str, bus_region: str, bus_name: str, principal_arn: str, *, identity_allows: bool
    ) -> Decision:
        """Whether events:PutEvents on the bus is allowed for the principal: across accounts the bus policy and the
        principal's own policies must both allow it; within the account either does."""
        bus_arn = f"arn:aws:events:{bus_region}:{bus_account}:event-bus/{bus_name}"
        documents, where = self.bus_policy(bus_account, bus_region, bus_name)
        context = self._principal_context(principal_arn)
        resource = decide(
            documents,
            Request(action="events:PutEvents", resource=bus_arn, principal_arn=principal_arn, context=context),
        )
        org = context.get("aws:PrincipalOrgID", "no organization")
        text = f"bus policy ({where}) for {principal_arn} of {org}: {resource.reason}"
        if principal_arn.split(":")[4] == bus_account:
            return Decision(identity_allows or resource.allowed, text)
        return Decision(identity_allows and resource.allowed, text)

    def _principal_context(self, principal_arn: str) -> dict[str, str]:
        account = principal_arn.split(":")[4]
        context = {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": account}
        organizations = self.emulator.client("organizations", "us-east-1")
        organization = organizations.describe_organization()["Organization"]
        accounts = _paginate(organizations, "list_accounts", "Accounts")
        if any(a["Id"] == account and a.get("Status", "ACTIVE") == "ACTIVE" for a in accounts):
            context["aws:PrincipalOrgID"] = str(organization["Id"])
        return context

    def bus_policy(self, account: str, region: str, bus_name: str) -> tuple[list[dict[str, Any]], str]:
        """The bus's resource policy statements: PutPermission's (moto keeps them) and the deployed template's."""
        view = self.emulator.view(account)
        documents: list[dict[str, Any]] = []
        sources = []
        try:
            policy = view.client("events", region).describe_event_bus(Name=bus_name).get("Policy")
        except ClientError:
            policy = None
        if policy:
            documents.append(json.loads(policy) if isinstance(policy, str) else policy)
            sources.append("PutPermission")
        cloudformation = view.client("cloudformation", region)
        for stack in _paginate(cloudformation, "describe_stacks", "Stacks"):
            statements = _template_bus_statements(cloudformation, stack, account, region, bus_name)
            if statements:
                documents.append({"Version": "2012-10-17", "Statement": statements})
                sources.append(f"stack {stack['StackName']}")
        return documents, " and ".join(sources) or "none"


def _role_documents(iam: Any, role_name: str) -> list[dict[str, Any]]:
    """A role's inline and attached policy documents (as demo.iam_enforcement reads them, but tolerant of moto's
    CloudFormation, which stores a role's inline `Policies` as the Python repr of a dict)."""
    documents = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for policy_name in page["PolicyNames"]:
            documents.append(
                parse_document(iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"])
            )
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            found = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
            documents.append(parse_document(found["Document"]))
    return documents


def _template_bus_statements(
    cloudformation: Any, stack: Mapping[str, Any], account: str, region: str, bus_name: str
) -> list[dict[str, Any]]:
    body = cloudformation.get_template(StackName=stack["StackName"])["TemplateBody"]
    try:
        template = json.loads(body) if isinstance(body, str) else body
    except ValueError:  # not JSON: not a CDK template (the CDK CLI's bootstrap stack is YAML), no bus of the app's
        return []
    resources = template.get("Resources", {})
    kinds = {"AWS::Events::EventBusPolicy", "AWS::Events::EventBus"}
    if not any(r.get("Type") in kinds for r in resources.values()):
        return []
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
        if "LogicalResourceId" in r  # moto lists skipped resource types without one
    }
    resolve = _PolicyResolver(account, region, str(stack["StackName"]), physical, resources)
    statements: list[dict[str, Any]] = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Events::EventBus" and resolve(props.get("Name")) == bus_name:
            policy = resolve(props.get("Policy"))
            if isinstance(policy, str):
                policy = json.loads(policy)
            if isinstance(policy, Mapping):
                statements += list(policy.get("Statement") or [])
        elif resource.get("Type") == "AWS::Events::EventBusPolicy":
            named = resolve(props.get("EventBusName", "default"))
            if named != bus_name and not str(named).endswith(f":event-bus/{bus_name}"):
                continue
            statement = resolve(props.get("Statement"))
            if isinstance(statement, Mapping):
                statements.append(dict(statement))
            elif props.get("Action"):  # the legacy form: Action, Principal (an account id), Condition
                legacy: dict[str, Any] = {
                    "Sid": resolve(props.get("StatementId")) or logical_id,
                    "Effect": "Allow",
                    "Action": resolve(props["Action"]),
                    "Principal": {"AWS": resolve(props.get("Principal"))},
                }
                condition = resolve(props.get("Condition"))
                if isinstance(condition, Mapping):  # {Type: StringEquals, Key: aws:PrincipalOrgID, Value: o-...}
                    legacy["Condition"] = {condition["Type"]: {condition["Key"]: condition["Value"]}}
                statements.append(legacy)
    return statements


class _PolicyResolver:
    """The intrinsics a CDK template uses inside a policy: Ref, Fn::GetAtt (Arn, Name), Fn::Join, Fn::Sub."""

    def __init__(
        self, account: str, region: str, stack_name: str, physical: Mapping[str, str], resources: Mapping[str, Any]
    ) -> None:
        self._account, self._region = account, region
        self._types = {k: v.get("Type") for k, v in resources.items()}
        self._physical = physical
        self._values = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            **physical,
        }

    def _bus_name(self, logical_id: str) -> str:
        physical = self._physical.get(logical_id, "")
        return physical.rsplit("/", 1)[-1] if physical.startswith("arn:") else physical

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                if self._types.get(argument) == "AWS::Events::EventBus":
                    return self._bus_name(argument)
                return self._values.get(argument, f"<unresolved Ref {argument}>")
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
                if self._types.get(logical_id) == "AWS::Events::EventBus":
                    name = self._bus_name(logical_id)
                    if attribute == "Name":
                        return name
                    if attribute == "Arn":
                        return f"arn:aws:events:{self._region}:{self._account}:event-bus/{name}"
                return f"<unresolved GetAtt {logical_id}.{attribute}>"
            if key == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self(part)) for part in parts)
            if key == "Fn::Sub" and isinstance(argument, str):
                text = argument
                for name, replacement in self._values.items():
                    text = text.replace("${" + name + "}", replacement)
                return text
        return {key: self(item) for key, item in value.items()}
