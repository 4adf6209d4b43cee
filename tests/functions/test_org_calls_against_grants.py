"""Organization mode: every AWS call a hub function makes is granted where it is made, and every grant is used.

For each combination of `remediate` and `copyTags` (what changes the hub roles and the member role), the app is
synthesized as `cdk synth` builds it, its organization block naming the emulated organization (moto, several accounts:
the hub is moto's default account, which created the organization; "Production" is the member the events come from,
"Sandbox" a sibling). Each hub function runs through its template Handler with its template environment over the
standalone catalogue of paths (tests/functions/test_calls_against_grants.py: EC2 events made and recorded in the
member account, changes to the hub's own resources in the hub account) and the paths only an organization has (a share
with a sibling, a member's forwarding rule deleted). Every call is recorded with its parameters, its region and the
credentials that made it: the function's own (the default session) or a member access role it assumed (each member
session, as `tests/functions/test_organization_calls.py` records them). Then:

1. each call made with the function's own credentials is allowed by its role in the hub stack "AmiGuard": action,
   resource and conditions;
2. each call made with member credentials is allowed by the member access role it was made with, read from the
   member template resolved in that member's account and the region the role was assumed for (the template the
   StackSet carries, and the stack "AmiGuardMember" the management account deploys); and that role trusts the hub role
   of every function that assumed it;
3. nothing is granted that no path uses: each hub role's actions (as standalone), each action of each statement of
   the member access role (used by a call that statement allows, its conditions met), each hub role the member role
   trusts.

Conditions are evaluated with the real values of the call where the emulated organization has them: `ec2:Owner` is
the owner of the image or snapshot in the member account, `aws:ResourceOrgID` the organization of the account whose
role is assumed (from moto's Organizations), `aws:PrincipalArn` the ARN of the hub role of the function that assumed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.ec2 import ec2_backends  # the test's own view of the member account's images

from ami_guard import aws_organization, contract
from tests import records as r
from tests.functions.conftest import Call, CallRecorder
from tests.functions.sweep_account import EmulatedEc2, emulate_ec2_gaps
from tests.functions.test_calls_against_grants import (
    BASE_BLOCK,
    CATALOGUE,
    Case,
    EmulatedAccount,
    called_actions,
    on,
    run_catalogue,
)
from tests.functions.test_organization_runtime import (  # noqa: F401  (org: the fixture)
    TABLE,
    Organization,
    org,
)
from tests.grants import (
    Context,
    DeployedFunction,
    Resolver,
    Statement,
    deployed_functions,
    differences,
    iam_action,
    judged,
    requests,
    role_arn,
    role_statements,
    trust_statements,
    trusts,
)
from tests.infra.test_organization import synthesize_organization

PARTITION = "aws"
REGIONS = [r.REGION, r.OTHER_REGION]  # the hub's region, and the region a copy's source is in
CONFIGURATIONS: dict[str, Mapping[str, Any]] = {
    f"remediate_{on(remediate)}-copyTags_{on(copy_tags)}": {"remediate": remediate, "copyTags": copy_tags}
    for remediate in (False, True)
    for copy_tags in (False, True)
}
# The posture sweep on: the hub's sweep plans over the organization and sweeps a member through its access role
# (copyTags on: it restores a copy's tags there too).
CONFIGURATIONS["sweep-copyTags_on"] = {"copyTags": True, "sweepSchedule": "rate(1 day)"}
# Security Hub on: every hub guard that alerts imports its findings through the member's access role.
CONFIGURATIONS["securityHub_on"] = {"copyTags": True, "sweepSchedule": "rate(1 day)", "securityHub": True}
SWEEP = "ami_guard.handlers.sweep_guard.lambda_handler"
SWEEP_RUN = "sweep-run-1"
SWEEP_BUCKET = "amiguard-sweep-runs"
FUNCTIONS = ["AmiGuard-ImageGuard", "AmiGuard-LaunchGuard", "AmiGuard-PermissionGuard", "AmiGuard-TamperGuard"]
PERMISSION, LAUNCH, IMAGE, TAMPER = (
    "ami_guard.handlers.permission_guard.lambda_handler",
    "ami_guard.handlers.launch_guard.lambda_handler",
    "ami_guard.handlers.image_guard.lambda_handler",
    "ami_guard.handlers.tamper_guard.lambda_handler",
)


@dataclass(frozen=True)
class Member:
    """A member account of the emulated organization as the catalogue's paths set it up (`EmulatedAccount`):
    through the test's own administrator role there, never through the hub's credentials."""

    org: Organization
    id: str

    def ec2(self, region: str = r.REGION) -> Any:
        return self.org.ec2(self.id, region)

    def make_image(
        self, region: str = r.REGION, *, tags: dict[str, str] | None = None, virtualization_type: str = "hvm"
    ) -> str:
        image = self.org.make_image(self.id, region, tags=tags)
        ec2_backends[self.id][region].amis[image].virtualization_type = virtualization_type
        return image


def into(event: dict[str, Any], account: str) -> dict[str, Any]:
    """The event as EventBridge delivers it from `account` (its envelope's and its record's account)."""
    event["account"] = account
    event["detail"]["recipientAccountId"] = account
    event["detail"]["userIdentity"]["accountId"] = account
    event["detail"]["userIdentity"]["arn"] = f"arn:aws:sts::{account}:assumed-role/PlatformAdmin/alice"
    return event


def placed(case: Case, member: str, hub: str) -> Case:
    """A standalone path in the organization: an EC2 call happens in the member (its events reach the hub bus
    through the member's forwarding rule); a change to the hub's own functions or rules happens in the hub."""

    def events(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
        made = case.events(account, env, calls)
        return [into(event, member if event["source"] == "aws.ec2" else hub) for event in made]

    return Case(case.path, events, case.fails)


def catalogue(guarded: Organization) -> dict[str, list[Case]]:
    """The standalone catalogue placed in the organization, and the paths only an organization has."""
    member, hub, sibling = guarded.member, guarded.hub, guarded.sibling

    def sibling_share(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
        image = account.make_image()
        account.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": sibling}]})
        return [into(r.envelope(r.modify_image_attribute(image, [{"userId": sibling}])), member)]

    def member_rule_deleted(
        account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder
    ) -> list[dict[str, Any]]:
        forward_rule = contract.member_rule_names()[0]
        return [into(r.envelope_for_source(r.events_call("DeleteRule", forward_rule)), member)]

    paths = {handler: [placed(case, member, hub) for case in cases] for handler, cases in CATALOGUE.items()}
    paths[PERMISSION].append(Case("an own image shared with a sibling account of the organization", sibling_share))
    paths[TAMPER].append(Case("a member's forwarding rule deleted", member_rule_deleted))

    def exposed_member(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
        ec2 = account.ec2()
        public = account.make_image()
        ec2.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
        shared = account.make_image()
        ec2.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": "444455556666"}]})
        volume = ec2.create_volume(Size=8, AvailabilityZone=f"{r.REGION}a")["VolumeId"]
        snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
        )
        source = account.make_image(r.OTHER_REGION, tags={"Owner": "platform", "CostCenter": "42"})
        ec2.copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="base-copy")
        return [{"account": member, "region": r.REGION, "run": SWEEP_RUN}]

    paths[SWEEP] = [
        Case("the sweep's plan over the organization", lambda account, env, calls: [{"plan": True, "run": SWEEP_RUN}]),
        Case("a sweep of a member's exposed region, through its access role", exposed_member),
    ]
    return paths


def watch_member_sessions(monkeypatch: pytest.MonkeyPatch, calls: CallRecorder) -> None:
    """Every member session the hub makes reports its calls, named by the role whose credentials it holds (read
    back from STS, not assumed)."""
    make = aws_organization._boto3_session

    def made(credentials: Mapping[str, Any], region: str) -> Any:
        session = make(credentials, region)
        # arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>
        identity = session.client("sts", region_name=region).get_caller_identity()["Arn"]
        _, partition, _, _, account, resource = identity.split(":", 5)
        calls.watch(session, role=f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}")
        return session

    monkeypatch.setattr(aws_organization, "_boto3_session", made)


@dataclass(frozen=True)
class MemberRole:
    """The member access role of one stack instance (a member account and region) of a member template."""

    arn: str
    statements: list[Statement]
    trust: list[Statement]


def member_role(template: Mapping[str, Any], arn: str) -> MemberRole | None:
    """The access role whose ARN is `arn`, in the instance of the member template in the ARN's account and in one of
    the organization's regions; None when no instance has such a role."""
    resources: Mapping[str, Any] = template["Resources"]
    account = arn.split(":")[4]
    for region in REGIONS:
        resolve = Resolver(resources, {"Partition": PARTITION, "Region": region, "AccountId": account})
        for role_id, resource in resources.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            if role_arn(resources, role_id, resolve, partition=PARTITION, account=account) == arn:
                return MemberRole(
                    arn, role_statements(resources, role_id, resolve), trust_statements(resources, role_id, resolve)
                )
    return None


def organization_of(guarded: Organization) -> dict[str, str]:
    """account id -> the id of the organization it is in, as Organizations lists them (the test's own client)."""
    organizations = guarded.own.client("organizations", region_name=r.REGION)
    organization_id = organizations.describe_organization()["Organization"]["Id"]
    listed = organizations.get_paginator("list_accounts").paginate()
    return {account["Id"]: organization_id for page in listed for account in page["Accounts"]}


def trusted_principal_arns(trust: list[Statement]) -> set[str]:
    """The principals the trust names by aws:PrincipalArn (a statement without it would trust a whole account)."""
    named: set[str] = set()
    for statement in trust:
        arns = statement.conditions.get("ArnEquals", {}).get("aws:PrincipalArn")
        assert arns, f"{statement}: trusts {statement.principals} without naming the roles by aws:PrincipalArn"
        named.update(arns)
    return named


@dataclass(frozen=True)
class Deployed:
    hub: Mapping[str, Any]
    members: dict[str, Mapping[str, Any]]
    """The member template by what carries it."""
    functions: list[DeployedFunction]
    hub_roles: dict[str, str]
    """function name -> the ARN of its role in the hub account"""
    resolve: Resolver


def deploy(guarded: Organization, configuration: str, outdir: Path) -> Deployed:
    organization = {
        "organizationId": guarded.organization_id,
        "hubAccount": guarded.hub,
        "hubRegion": r.REGION,
        "regions": REGIONS,
        "organizationalUnits": ["r-abcd"],
    }
    block = {
        **BASE_BLOCK,
        "requiredTags": ["Owner", "CostCenter"],
        **CONFIGURATIONS[configuration],
        "organization": organization,
    }
    synthesized = synthesize_organization(block, outdir)
    hub = synthesized.hub.template.to_json()
    table = boto3.client("dynamodb", region_name=r.REGION).describe_table(TableName=TABLE)["Table"]["TableArn"]
    boto3.client("s3", region_name=r.REGION).create_bucket(
        Bucket=SWEEP_BUCKET, CreateBucketConfiguration={"LocationConstraint": r.REGION}
    )
    # the hub bus, as the hub stack makes it: the hub's guards put their finding events there
    events = boto3.client("events", region_name=r.REGION)
    if not events.list_event_buses(NamePrefix=contract.hub_bus_name("AmiGuard"))["EventBuses"]:
        events.create_event_bus(Name=contract.hub_bus_name("AmiGuard"))
    resolve = Resolver(
        hub["Resources"],
        {"Partition": PARTITION, "Region": r.REGION, "AccountId": guarded.hub},
        refs={"AWS::SNS::Topic": guarded.topic_arn, "AWS::DynamoDB::Table": TABLE, "AWS::S3::Bucket": SWEEP_BUCKET},
        attributes={
            ("AWS::DynamoDB::Table", "Arn"): table,
            ("AWS::S3::Bucket", "Arn"): f"arn:{PARTITION}:s3:::{SWEEP_BUCKET}",
            # the hub bus, where the hub's guards put their finding events
            ("AWS::Events::EventBus", "Arn"): (
                f"arn:{PARTITION}:events:{r.REGION}:{guarded.hub}:event-bus/{contract.hub_bus_name('AmiGuard')}"
            ),
        },
    )
    functions = list(deployed_functions(hub, resolve))
    return Deployed(
        hub=hub,
        members={
            "the StackSet's template": synthesized.stack_set_template.to_json(),
            "the stack AmiGuardMember": synthesized.member.to_json(),
        },
        functions=functions,
        hub_roles={
            f.name: role_arn(hub["Resources"], f.role_id, resolve, partition=PARTITION, account=guarded.hub)
            for f in functions
        },
        resolve=resolve,
    )


def hub_differences(deployed: Deployed, calls: list[Call], hub: str, context: Context) -> Iterator[str]:
    """(1) and the hub half of (3)."""
    for function in deployed.functions:
        own = [call for call in calls if call.function == function.name and call.role is None]
        # the sweep is invoked synchronously by its state machine: no on-failure queue
        yield from differences(
            function.name, function.granted, called_actions(own, function.name), asynchronous=function.handler != SWEEP
        )
        for call in own:
            action = iam_action(call.service, call.operation)
            for request in requests(
                action,
                call.params,
                partition=PARTITION,
                region=call.region,
                account=hub,
                context_of=lambda arn: context.of(hub, arn),
            ):
                if not judged(function.statements, request, context.absent)[0]:
                    yield (
                        f"{function.name}: {action} on {request.resource} ({dict(request.context)}) in {call.region},"
                        f" on {call.path}: not allowed by its hub role"
                    )


def member_differences(
    deployed: Deployed, carrier: str, template: Mapping[str, Any], calls: list[Call], context: Context
) -> Iterator[str]:
    """(2) and the member half of (3), for the member template `carrier` carries."""
    used: set[tuple[int, str]] = set()  # (statement index in the role's policy, action)
    assumed_by: dict[str, set[str]] = {}  # member role ARN -> the functions that assumed it
    for call in calls:
        if call.role is None and (call.service, call.operation) == ("sts", "AssumeRole"):
            assumed_by.setdefault(call.params["RoleArn"], set()).add(call.function)
    roles: dict[str, MemberRole | None] = {arn: member_role(template, arn) for arn in assumed_by}
    for arn, functions in sorted(assumed_by.items()):
        role = roles[arn]
        if role is None:
            yield f"{carrier}: {sorted(functions)} assumed {arn}, a role no instance of the member template has"
            continue
        for function in sorted(functions):
            if not trusts(role.trust, deployed.hub_roles[function]):
                yield f"{carrier}: {arn} does not trust {deployed.hub_roles[function]}, the role of {function}"
    for call in calls:
        if call.role is None:
            continue
        action = iam_action(call.service, call.operation)
        role = roles.get(call.role)
        if role is None or call.function not in assumed_by[call.role]:
            yield f"{carrier}: {call.function} called {action} as {call.role}, a role it did not assume itself"
            continue
        account = call.role.split(":")[4]
        for request in requests(
            action,
            call.params,
            partition=PARTITION,
            region=call.region,
            account=account,
            context_of=lambda arn, account=account: context.of(account, arn),
        ):
            allowed, met = judged(role.statements, request, context.absent)
            used.update((i, request.action) for i, s in enumerate(role.statements) if any(s is m for m in met))
            if not allowed:
                yield (
                    f"{carrier}: {call.function} {action} on {request.resource} ({dict(request.context)}) in "
                    f"{call.region}, on {call.path}: not allowed by {call.role}"
                )
    # nothing granted that no call uses, nobody trusted who never assumes
    any_role = next((role for role in roles.values() if role is not None), None)
    if any_role is None:
        yield f"{carrier}: no function assumed a member access role"
        return
    for index, statement in enumerate(any_role.statements):
        for action in sorted(statement.actions - {a for i, a in used if i == index}):
            yield f"{carrier}: the member access role grants {action} ({statement}) but no call uses it"
    trusted = trusted_principal_arns(any_role.trust)
    assuming = {deployed.hub_roles[f] for functions in assumed_by.values() for f in functions}
    for principal in sorted(trusted - assuming):
        yield f"{carrier}: the member access role trusts {principal}, which assumed it on no path"


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_hub_roles_and_member_role_grant_exactly_the_calls_each_hub_function_makes_where_it_makes_them(
    configuration: str,
    org: Organization,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given the hub and member templates synthesized for this configuration and the emulated organization
    deployed = deploy(org, configuration, tmp_path)
    sweep = "sweepSchedule" in CONFIGURATIONS[configuration]
    assert sorted(f.name for f in deployed.functions) == sorted(FUNCTIONS + (["AmiGuard-SweepGuard"] if sweep else []))
    if sweep:  # the three account settings, paging and the snapshot filters, as EC2 answers them
        emulate_ec2_gaps(monkeypatch, EmulatedEc2(account=org.member))
    assert boto3.DEFAULT_SESSION is not None  # the hub functions' clients: the org fixture's fresh default session
    calls = CallRecorder()
    calls.watch(boto3.DEFAULT_SESSION)
    watch_member_sessions(monkeypatch, calls)
    paths = catalogue(org)
    # When each hub function handles every event of its catalogue, through its entry point
    for function in deployed.functions:
        with monkeypatch.context() as env:
            variables = {key: deployed.resolve(value) for key, value in function.environment.items()}
            for key, value in {**variables, "AWS_LAMBDA_FUNCTION_NAME": function.name}.items():
                env.setenv(key, value)
            run_catalogue(function, variables, Member(org, org.member), calls, paths)
    # Then every call is granted where it is made, every grant is used, every trusted hub role assumes
    context = Context(organization_of(org))
    found = list(hub_differences(deployed, calls.calls, org.hub, context))
    for carrier, template in deployed.members.items():
        found += member_differences(deployed, carrier, template, calls.calls, context)
    assert not found, "\n".join([f"calls and grants differ ({configuration}):", *found])
