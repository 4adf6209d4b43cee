"""Organization mode as `cdk synth` builds it: the hub "AmiGuard", the member stack "AmiGuardMember" and the member
template the StackSet carries; and the standalone template as it was before organization mode existed.

Events are routed through the synthesized patterns by moto's EventBridge pattern engine, with the templates'
intrinsics replaced by made-up physical values: a member's rule forwards a call to the hub bus, and a rule on the
hub bus sends it to a guard function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]
from moto.events.models import EventPattern

import app as cdk_app
from ami_guard.rules import catalog
from tests import records as r
from tests.infra.conftest import (
    DEFAULT_BLOCK,
    HANDLERS,
    IMAGE_HANDLER,
    LAUNCH_HANDLER,
    PERMISSION_HANDLER,
    SWEEP_BLOCK,
    TAMPER_HANDLER,
    Synthesized,
    action_values,
    render,
    resolve,
    synthesize,
)
from tests.infra.test_guard_roles import Grant, grants, render_conditions

ORGANIZATION_ID = "o-a1b2c3d4e5"
HUB_ACCOUNT = "222233334444"
HUB_REGION = "eu-west-1"
REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2"]
UNITS = ["ou-ab12-cdefgh34", "ou-ab12-ijklmn56"]
ORGANIZATION = {
    "organizationId": ORGANIZATION_ID,
    "hubAccount": HUB_ACCOUNT,
    "hubRegion": HUB_REGION,
    "regions": REGIONS,
    "organizationalUnits": UNITS,
}
MEMBER_ACCOUNT = "444455556666"
MEMBER_REGION = "ap-southeast-2"

HUB_BUS = "AmiGuard-Hub"
HUB_BUS_ARN = f"arn:aws:events:{HUB_REGION}:{HUB_ACCOUNT}:event-bus/{HUB_BUS}"
HUB_BUS_ARN_RENDERED = f"arn:${{AWS::Partition}}:events:{HUB_REGION}:{HUB_ACCOUNT}:event-bus/{HUB_BUS}"
STACK_SET = "AmiGuard-Members"
FORWARD_RULE, WATCH_RULE = "AmiGuardMember-ForwardRule", "AmiGuardMember-WatchRule"
MEMBER_TAMPER_RULE = "AmiGuard-MemberTamperRule"
ACCESS_PREFIX, FORWARDER_PREFIX = "AmiGuardMember-Access-", "AmiGuardMember-Forwarder-"

# The watched calls, written out, and the hub guard each one must reach.
EC2, RBIN = "ec2.amazonaws.com", "rbin.amazonaws.com"
WATCHED = {
    (EC2, "ModifyImageAttribute"): PERMISSION_HANDLER,
    (EC2, "ModifySnapshotAttribute"): PERMISSION_HANDLER,
    (EC2, "DisableImageBlockPublicAccess"): PERMISSION_HANDLER,
    (EC2, "DisableSnapshotBlockPublicAccess"): PERMISSION_HANDLER,
    (EC2, "EnableSnapshotBlockPublicAccess"): PERMISSION_HANDLER,
    (EC2, "DisableAllowedImagesSettings"): PERMISSION_HANDLER,
    (EC2, "EnableAllowedImagesSettings"): PERMISSION_HANDLER,
    (EC2, "ReplaceImageCriteriaInAllowedImagesSettings"): PERMISSION_HANDLER,
    (EC2, "DisableImageDeregistrationProtection"): PERMISSION_HANDLER,
    (EC2, "UnlockSnapshot"): PERMISSION_HANDLER,
    (EC2, "CreateStoreImageTask"): PERMISSION_HANDLER,
    (EC2, "ExportImage"): PERMISSION_HANDLER,
    (RBIN, "DeleteRule"): PERMISSION_HANDLER,
    (RBIN, "UpdateRule"): PERMISSION_HANDLER,
    (RBIN, "UnlockRule"): PERMISSION_HANDLER,
    (EC2, "RunInstances"): LAUNCH_HANDLER,
    (EC2, "RegisterImage"): IMAGE_HANDLER,
    (EC2, "CopyImage"): IMAGE_HANDLER,
    (EC2, "CreateImage"): IMAGE_HANDLER,
}
UNWATCHED_EC2 = ["DescribeImages", "TerminateInstances", "DeregisterImage", "CreateSnapshot", "CreateTags"]


def hub_role(guard: str) -> str:
    return f"arn:${{AWS::Partition}}:iam::{HUB_ACCOUNT}:role/AmiGuard-{guard}-{HUB_REGION}"


@dataclass(frozen=True)
class Organization:
    hub: Synthesized
    member: Template
    stack_set_template: Template
    stack_set_stack: Stack
    member_stack: Stack
    outdir: Path
    template_file: str


def synthesize_organization(block: Mapping[str, Any], outdir: Path) -> Organization:
    app = App(context={"amiGuard": dict(block)}, outdir=str(outdir))
    hub = cdk_app.build(app)
    app.synth()
    member_stack = app.node.find_child("AmiGuardMember")
    stack_set_stack = hub.node.find_child("Default").node.find_child("MemberTemplate")
    assert isinstance(member_stack, Stack) and isinstance(stack_set_stack, Stack)
    template_file = str(stack_set_stack.template_file)  # type: ignore[attr-defined]
    return Organization(
        hub=Synthesized(app=app, stack=hub, template=Template.from_stack(hub)),  # type: ignore[arg-type]
        member=Template.from_stack(member_stack),
        stack_set_template=Template.from_json(json.loads((outdir / template_file).read_text())),
        stack_set_stack=stack_set_stack,
        member_stack=member_stack,
        outdir=outdir,
        template_file=template_file,
    )


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Organization:
    """remediate off, copyTags on (DEFAULT_BLOCK), with the organization block."""
    return synthesize_organization({**DEFAULT_BLOCK, "organization": ORGANIZATION}, tmp_path_factory.mktemp("org"))


@pytest.fixture(scope="module")
def org_remediate(tmp_path_factory: pytest.TempPathFactory) -> Organization:
    block = {**DEFAULT_BLOCK, "remediate": True, "organization": ORGANIZATION}
    return synthesize_organization(block, tmp_path_factory.mktemp("org-remediate"))


@pytest.fixture(scope="module")
def org_sweep(tmp_path_factory: pytest.TempPathFactory) -> Organization:
    """DEFAULT_BLOCK with the posture sweep deployed."""
    block = {**SWEEP_BLOCK, "organization": ORGANIZATION}
    return synthesize_organization(block, tmp_path_factory.mktemp("org-sweep"))


def resources(template: Template, kind: str) -> dict[str, Any]:
    return dict(template.find_resources(kind))


def rule_by_name(template: Template, name: str) -> dict[str, Any]:
    (props,) = [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if rule["Properties"]["Name"] == name
    ]
    return dict(props)


def role_named(template: Template, prefix: str) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the one role whose name starts with `prefix` (the region follows)."""
    roles = resources(template, "AWS::IAM::Role")
    (role_id,) = [i for i, role in roles.items() if render(role["Properties"]["RoleName"]).startswith(prefix)]
    return role_id, roles[role_id]["Properties"]


def pattern(props: Mapping[str, Any], account: str, region: str) -> EventPattern:
    ids = {("AWS::Partition", "Ref"): "aws", ("AWS::Region", "Ref"): region, ("AWS::AccountId", "Ref"): account}
    return EventPattern.load(json.dumps(resolve(props["EventPattern"], ids)))


class Routes:
    """The member's rules on its default bus (in MEMBER_ACCOUNT, MEMBER_REGION) and the hub's rules on its bus."""

    def __init__(self, org: Organization) -> None:
        member = {name: rule_by_name(org.stack_set_template, name) for name in (FORWARD_RULE, WATCH_RULE)}
        self.member = {name: pattern(props, MEMBER_ACCOUNT, MEMBER_REGION) for name, props in member.items()}
        self.member_targets = {name: props["Targets"] for name, props in member.items()}
        hub_bus_id = org.hub.only("AWS::Events::EventBus")
        functions = {org.hub.function_id(handler): handler for handler in HANDLERS}
        self.hub: dict[str, tuple[EventPattern, str]] = {}
        for rule in resources(org.hub.template, "AWS::Events::Rule").values():
            props = rule["Properties"]
            if props.get("EventBusName") != {"Ref": hub_bus_id}:
                continue
            ((target,),) = [props["Targets"]]
            self.hub[props["Name"]] = (
                pattern(props, HUB_ACCOUNT, HUB_REGION),
                functions[target["Arn"]["Fn::GetAtt"][0]],
            )

    def forwarded_by(self, event: dict[str, Any]) -> list[str]:
        return sorted(name for name, rule in self.member.items() if rule.matches_event(event))

    def reaches(self, event: dict[str, Any]) -> set[str]:
        """The hub functions an event forwarded to the hub bus is sent to."""
        return {handler for rule, handler in self.hub.values() if rule.matches_event(event)}


@pytest.fixture(scope="module")
def routes(org: Organization) -> Routes:
    return Routes(org)


def in_member(rec: dict[str, Any]) -> dict[str, Any]:
    """A record made in MEMBER_ACCOUNT / MEMBER_REGION, in the envelope EventBridge gives it there."""
    rec["recipientAccountId"] = MEMBER_ACCOUNT
    rec["awsRegion"] = MEMBER_REGION
    env = r.envelope_for_source(rec) if rec["eventSource"] != "ec2.amazonaws.com" else r.envelope(rec)
    return env


def ec2_call(event_name: str, source: str = EC2) -> dict[str, Any]:
    rec = r.record(event_name, {"imageId": "ami-0abcdef1234567890"})
    rec["eventSource"] = source
    return in_member(rec)


# --- the hub bus ---------------------------------------------------------------------------------------------------


def test_hub_bus_accepts_put_events_from_the_organization_only(org: Organization) -> None:
    (bus,) = resources(org.hub.template, "AWS::Events::EventBus").values()
    policy = bus["Properties"]["Policy"]

    assert bus["Properties"]["Name"] == HUB_BUS
    (statement,) = policy["Statement"]
    assert {key: render(value) if key == "Resource" else value for key, value in statement.items()} == {
        "Sid": "OrganizationMayPutEvents",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "events:PutEvents",
        "Resource": HUB_BUS_ARN_RENDERED,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID}},
    }


def test_nothing_else_in_the_hub_allows_put_events(org: Organization) -> None:
    assert resources(org.hub.template, "AWS::Events::EventBusPolicy") == {}
    policies = resources(org.hub.template, "AWS::IAM::Policy")
    # the hub's own guards put their finding events on the hub bus (docs/integrations.md), and that is all
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    put = [s for s in statements if "events:PutEvents" in set(action_values(s))]
    hub_bus = {"Fn::GetAtt": [org.hub.only("AWS::Events::EventBus"), "Arn"]}
    assert put and all(s["Action"] == "events:PutEvents" and s["Resource"] == hub_bus for s in put)


# --- the StackSet --------------------------------------------------------------------------------------------------


def test_stack_set_is_service_managed_and_deploys_automatically_to_the_ous_and_regions(org: Organization) -> None:
    (stack_set,) = resources(org.hub.template, "AWS::CloudFormation::StackSet").values()
    props = stack_set["Properties"]

    assert props["StackSetName"] == STACK_SET
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["CallAs"] == "DELEGATED_ADMIN"
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["StackInstancesGroup"] == [
        {
            "DeploymentTargets": {"AccountFilterType": "NONE", "OrganizationalUnitIds": UNITS},
            "Regions": REGIONS,
        }
    ]
    assert "Parameters" not in props


def test_stack_set_template_is_the_member_template_published_as_an_asset_of_the_hub(org: Organization) -> None:
    (stack_set,) = resources(org.hub.template, "AWS::CloudFormation::StackSet").values()
    url = stack_set["Properties"]["TemplateURL"]["Fn::Sub"]
    assets = json.loads((org.outdir / "AmiGuard.assets.json").read_text())["files"]

    (asset_hash,) = [h for h, asset in assets.items() if asset["source"]["path"] == org.template_file]
    assert org.template_file.endswith(".stackset.template.json")
    assert url.endswith(f"/cdk-hnb659fds-assets-{HUB_ACCOUNT}-{HUB_REGION}/{asset_hash}.json")
    assert assets[asset_hash]["source"]["packaging"] == "file"


def test_member_template_is_self_contained_without_lambda_or_parameters(org: Organization) -> None:
    template = org.stack_set_template.to_json()
    kinds = {resource["Type"] for resource in template["Resources"].values()}

    assert kinds == {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::Events::Rule"}
    assert set(template) == {"Resources"}
    assert "cdk-hnb659fds" not in json.dumps(template)


def test_management_account_stack_holds_the_same_member_resources(org: Organization) -> None:
    member = org.member.to_json()

    assert member["Resources"] == org.stack_set_template.to_json()["Resources"]
    assert org.member_stack.stack_name == "AmiGuardMember"
    assert org.member_stack.environment == "aws://unknown-account/unknown-region"


# --- the member's rules, through the hub -----------------------------------------------------------------------------


@pytest.mark.parametrize("call", sorted(WATCHED), ids="/".join)
def test_member_forwards_each_watched_call_and_the_hub_bus_sends_it_to_its_guard(
    call: tuple[str, str], routes: Routes
) -> None:
    source, event_name = call
    event = ec2_call(event_name, source)

    assert routes.forwarded_by(event) == [FORWARD_RULE]
    assert routes.reaches(event) == {WATCHED[call]}


@pytest.mark.parametrize("event_name", UNWATCHED_EC2)
def test_member_does_not_forward_unwatched_ec2_calls(event_name: str, routes: Routes) -> None:
    assert routes.forwarded_by(ec2_call(event_name)) == []


def test_the_calls_written_out_here_are_the_registrys_watched_calls() -> None:
    assert set(catalog.routes().calls) == set(WATCHED)


@pytest.mark.parametrize("rule", [FORWARD_RULE, WATCH_RULE])
def test_member_rules_deliver_to_the_hub_bus_with_the_forwarder_role(rule: str, org: Organization) -> None:
    props = rule_by_name(org.stack_set_template, rule)
    (target,) = props["Targets"]
    forwarder_id, _ = role_named(org.stack_set_template, FORWARDER_PREFIX)

    assert render(target["Arn"]) == HUB_BUS_ARN_RENDERED
    assert target["RoleArn"] == {"Fn::GetAtt": [forwarder_id, "Arn"]}
    assert "EventBusName" not in props  # the member's default bus


def test_forwarder_role_may_only_put_events_on_the_hub_bus(org: Organization) -> None:
    forwarder_id, forwarder = role_named(org.stack_set_template, FORWARDER_PREFIX)
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(org.stack_set_template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": forwarder_id}]
    ]

    assert render(forwarder["RoleName"]) == f"{FORWARDER_PREFIX}${{AWS::Region}}"
    assert [(s["Effect"], s["Action"], render(s["Resource"]), s.get("Condition")) for s in policy["Statement"]] == [
        ("Allow", "events:PutEvents", HUB_BUS_ARN_RENDERED, None)
    ]
    assert forwarder["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}}
    ]


def events_call(event_name: str, rule_name: str) -> dict[str, Any]:
    return in_member(r.events_call(event_name, rule_name))


def iam_call(event_name: str, role_name: str) -> dict[str, Any]:
    return in_member(r.service_call("iam.amazonaws.com", event_name, {"roleName": role_name}))


RULE_CALLS = ["DeleteRule", "DisableRule", "PutRule", "RemoveTargets", "PutTargets"]
ROLE_CALLS = [
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "UpdateAssumeRolePolicy",
    "DeleteRole",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
]


@pytest.mark.parametrize("event_name", RULE_CALLS)
def test_each_member_rule_is_watched_by_the_other_and_the_hub_sends_it_to_the_tamper_guard(
    event_name: str, routes: Routes
) -> None:
    forward_changed = events_call(event_name, FORWARD_RULE)
    watch_changed = events_call(event_name, WATCH_RULE)

    assert WATCH_RULE in routes.forwarded_by(forward_changed)
    assert FORWARD_RULE in routes.forwarded_by(watch_changed)
    assert routes.reaches(forward_changed) == {TAMPER_HANDLER}
    assert routes.reaches(watch_changed) == {TAMPER_HANDLER}


@pytest.mark.parametrize("event_name", ROLE_CALLS)
@pytest.mark.parametrize("role", [f"{ACCESS_PREFIX}ap-southeast-2", f"{FORWARDER_PREFIX}eu-west-1"])
def test_changes_to_member_roles_are_forwarded_to_the_tamper_guard(event_name: str, role: str, routes: Routes) -> None:
    event = iam_call(event_name, role)

    assert routes.forwarded_by(event) == [WATCH_RULE]
    assert routes.reaches(event) == {TAMPER_HANDLER}


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(lambda: events_call("DeleteRule", "team-nightly-backup"), id="someone-elses-rule"),
        pytest.param(lambda: iam_call("DeleteRole", "AppServerRole"), id="someone-elses-role"),
        pytest.param(lambda: iam_call("DeleteRole", "AmiGuard-LaunchGuard-eu-west-1"), id="hub-role-name-in-member"),
    ],
)
def test_changes_to_other_rules_and_roles_are_not_forwarded(event: Any, routes: Routes) -> None:
    assert routes.forwarded_by(event()) == []


# --- the hub's guards ------------------------------------------------------------------------------------------------


def test_hub_is_deployed_in_the_hub_account_and_region(org: Organization) -> None:
    assert org.hub.stack.stack_name == "AmiGuard"
    assert org.hub.stack.environment == f"aws://{HUB_ACCOUNT}/{HUB_REGION}"


def test_ec2_rules_listen_on_the_hub_bus_and_the_watch_rules_on_the_default_bus(org: Organization) -> None:
    bus_id = org.hub.only("AWS::Events::EventBus")
    buses = {
        rule["Properties"]["Name"]: rule["Properties"].get("EventBusName")
        for rule in resources(org.hub.template, "AWS::Events::Rule").values()
    }

    assert buses == {
        "AmiGuard-PermissionRule": {"Ref": bus_id},
        "AmiGuard-LaunchRule": {"Ref": bus_id},
        "AmiGuard-ImageRule": {"Ref": bus_id},
        MEMBER_TAMPER_RULE: {"Ref": bus_id},
        "AmiGuard-TamperRule": None,
        "AmiGuard-TamperWatchRule": None,
        "AmiGuard-AlertPathWatchRule": None,
    }


@pytest.mark.parametrize("stack_name", ["org", "org_remediate", "org_sweep"])
def test_hub_functions_hold_no_ec2_permission(stack_name: str, request: pytest.FixtureRequest) -> None:
    hub: Synthesized = request.getfixturevalue(stack_name).hub

    actions = set(action_values(hub.resources("AWS::IAM::Policy")))

    assert actions  # the guards' own statements are there
    assert {a for a in actions if a.lower().startswith("ec2:")} == set()


ASSUME_MEMBER_ROLES: Grant = (
    frozenset({"sts:AssumeRole"}),
    frozenset({f"arn:${{AWS::Partition}}:iam::*:role/{ACCESS_PREFIX}*"}),
    f"StringEquals:aws:ResourceOrgID={ORGANIZATION_ID}",
)
LIST_ACCOUNTS: Grant = (frozenset({"organizations:ListAccounts"}), frozenset({"*"}), "")


@pytest.mark.parametrize(
    ("stack_name", "acting"),
    [
        ("org", {LAUNCH_HANDLER, IMAGE_HANDLER}),
        ("org_remediate", {PERMISSION_HANDLER, LAUNCH_HANDLER, IMAGE_HANDLER}),
        ("org_sweep", {LAUNCH_HANDLER, IMAGE_HANDLER}),
    ],
)
def test_guards_that_act_in_members_may_assume_the_member_roles_of_the_organization_only(
    stack_name: str, acting: set[str], request: pytest.FixtureRequest
) -> None:
    hub: Synthesized = request.getfixturevalue(stack_name).hub

    for handler in HANDLERS:
        assume = {grant for grant in grants(hub, handler) if "sts:AssumeRole" in grant[0]}
        assert assume == ({ASSUME_MEMBER_ROLES} if handler in acting else set()), handler


@pytest.mark.parametrize("stack_name", ["org", "org_remediate", "org_sweep"])
def test_guards_that_judge_shares_or_name_accounts_may_list_the_organizations_accounts(
    stack_name: str, request: pytest.FixtureRequest
) -> None:
    hub: Synthesized = request.getfixturevalue(stack_name).hub

    for handler in HANDLERS:
        listing = {grant for grant in grants(hub, handler) if any(a.startswith("organizations:") for a in grant[0])}
        assert listing == {LIST_ACCOUNTS}, handler


def test_hub_functions_know_the_member_role_prefix_and_the_organization(org: Organization) -> None:
    for handler in HANDLERS:
        variables = org.hub.function(handler)["Environment"]["Variables"]
        assert variables["AMI_GUARD_MEMBER_ROLE_PREFIX"] == ACCESS_PREFIX
        assert json.loads(variables["AMI_GUARD_ORGANIZATION"]) == ORGANIZATION
        assert variables["AMI_GUARD_TRUST_OWN_ORGANIZATION"] == "true"


def test_tamper_guard_watches_the_members_rules_and_roles_the_stack_set_and_the_hub_bus(org: Organization) -> None:
    variables = org.hub.function(TAMPER_HANDLER)["Environment"]["Variables"]

    assert variables["AMI_GUARD_WATCHED_RULES"] == (
        "AmiGuard-PermissionRule,AmiGuard-LaunchRule,AmiGuard-ImageRule,AmiGuard-TamperWatchRule,"
        f"AmiGuard-AlertPathWatchRule,{MEMBER_TAMPER_RULE},{FORWARD_RULE},{WATCH_RULE}"
    )
    assert variables["AMI_GUARD_WATCHED_ROLE_PREFIXES"] == (
        f"AmiGuard-PermissionGuard-,AmiGuard-LaunchGuard-,AmiGuard-ImageGuard-,{ACCESS_PREFIX},{FORWARDER_PREFIX}"
    )
    assert variables["AMI_GUARD_WATCHED_STACK_SETS"] == STACK_SET
    assert variables["AMI_GUARD_WATCHED_BUSES"] == HUB_BUS


HUB_CALLS = [
    ("cloudformation.amazonaws.com", "DeleteStackInstances", {"stackSetName": STACK_SET, "regions": [MEMBER_REGION]}),
    ("cloudformation.amazonaws.com", "UpdateStackInstances", {"stackSetName": STACK_SET, "regions": [MEMBER_REGION]}),
    ("cloudformation.amazonaws.com", "DeleteStackSet", {"stackSetName": STACK_SET}),
    ("cloudformation.amazonaws.com", "UpdateStackSet", {"stackSetName": STACK_SET}),
    ("events.amazonaws.com", "DeleteEventBus", {"name": HUB_BUS}),
    ("events.amazonaws.com", "PutPermission", {"eventBusName": HUB_BUS, "policy": "{}"}),
    ("events.amazonaws.com", "RemovePermission", {"eventBusName": HUB_BUS, "removeAllPermissions": True}),
]


@pytest.mark.parametrize(("source", "event_name", "request_parameters"), HUB_CALLS, ids=[c[1] for c in HUB_CALLS])
def test_the_hubs_default_bus_tamper_rule_sees_changes_to_the_stack_set_and_the_hub_bus(
    source: str, event_name: str, request_parameters: dict[str, Any], org: Organization
) -> None:
    tamper_rule = rule_by_name(org.hub.template, "AmiGuard-TamperRule")
    rec = r.service_call(source, event_name, request_parameters)
    rec["recipientAccountId"] = HUB_ACCOUNT
    event = r.envelope_for_source(rec)

    assert pattern(tamper_rule, HUB_ACCOUNT, HUB_REGION).matches_event(event)
    (target,) = tamper_rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [org.hub.function_id(TAMPER_HANDLER), "Arn"]}


# --- the member access role ----------------------------------------------------------------------------------------


def access_role(org: Organization) -> tuple[str, dict[str, Any]]:
    return role_named(org.stack_set_template, ACCESS_PREFIX)


@pytest.mark.parametrize(
    ("stack_name", "trusted"),
    [
        ("org", [hub_role("LaunchGuard"), hub_role("ImageGuard")]),
        ("org_remediate", [hub_role("PermissionGuard"), hub_role("LaunchGuard"), hub_role("ImageGuard")]),
        ("org_sweep", [hub_role("LaunchGuard"), hub_role("ImageGuard"), hub_role("SweepGuard")]),
    ],
)
def test_member_access_role_trusts_only_the_hub_guard_roles(
    stack_name: str, trusted: list[str], request: pytest.FixtureRequest
) -> None:
    org: Organization = request.getfixturevalue(stack_name)
    _, role = access_role(org)

    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert render(statement["Principal"]["AWS"]) == f"arn:${{AWS::Partition}}:iam::{HUB_ACCOUNT}:root"
    assert list(statement["Condition"]) == ["ArnEquals"]
    assert list(statement["Condition"]["ArnEquals"]) == ["aws:PrincipalArn"]
    assert [render(arn) for arn in statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]] == trusted
    assert render(role["RoleName"]) == f"{ACCESS_PREFIX}${{AWS::Region}}"


def member_access_grants(org: Organization) -> set[Grant]:
    role_id, _ = access_role(org)
    (document,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(org.stack_set_template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    out: set[Grant] = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions, resources_ = statement["Action"], statement["Resource"]
        out.add(
            (
                frozenset([actions] if isinstance(actions, str) else actions),
                frozenset(render(x) for x in (resources_ if isinstance(resources_, list) else [resources_])),
                render_conditions(statement.get("Condition", {})),
            )
        )
    return out


@pytest.mark.parametrize("remediate", [False, True])
@pytest.mark.parametrize("copy_tags", [False, True])
def test_member_access_role_holds_exactly_the_standalone_ec2_grants(
    remediate: bool, copy_tags: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    block = {**DEFAULT_BLOCK, "remediate": remediate, "copyTags": copy_tags}
    standalone = synthesize(block, tmp_path_factory.mktemp("standalone"))
    org = synthesize_organization({**block, "organization": ORGANIZATION}, tmp_path_factory.mktemp("org"))

    standalone_ec2 = {
        grant
        for handler in (PERMISSION_HANDLER, LAUNCH_HANDLER, IMAGE_HANDLER)
        for grant in grants(standalone, handler)
        if all(action.startswith("ec2:") for action in grant[0])
    }

    assert standalone_ec2  # the launch guard describes in every configuration
    assert member_access_grants(org) == standalone_ec2


SWEEP_HANDLER = "ami_guard.handlers.sweep_guard.lambda_handler"


def test_the_hub_sweep_plans_over_the_organization_and_sweeps_through_the_member_roles(org_sweep: Organization) -> None:
    hub = org_sweep.hub
    sweep = grants(hub, SWEEP_HANDLER)

    assert ASSUME_MEMBER_ROLES in sweep
    assert LIST_ACCOUNTS in sweep
    assert {a for grant in sweep for a in grant[0] if a.startswith("ec2:")} == set()
    variables = hub.function(SWEEP_HANDLER)["Environment"]["Variables"]
    assert variables["AMI_GUARD_MEMBER_ROLE_PREFIX"] == ACCESS_PREFIX
    assert json.loads(variables["AMI_GUARD_ORGANIZATION"]) == ORGANIZATION


def test_with_the_sweep_the_member_access_role_gains_exactly_the_sweeps_eight_reads(
    org: Organization, org_sweep: Organization
) -> None:
    added = member_access_grants(org_sweep) - member_access_grants(org)

    assert added == {
        (
            frozenset(
                {
                    "ec2:DescribeImages",
                    "ec2:DescribeImageAttribute",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeSnapshotAttribute",
                    "ec2:DescribeInstances",
                    "ec2:GetImageBlockPublicAccessState",
                    "ec2:GetSnapshotBlockPublicAccessState",
                    "ec2:GetAllowedImagesSettings",
                }
            ),
            frozenset({"*"}),
            "",
        ),
    }
    # copyTags on (DEFAULT_BLOCK): the sweep's tag restore is the image guard's statement, already there
    assert member_access_grants(org) <= member_access_grants(org_sweep)
    # the member holds no sweep of its own: no function, state machine or schedule
    for kind in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine", "AWS::Scheduler::Schedule"):
        assert resources(org_sweep.stack_set_template, kind) == {}, kind


# --- compliance ------------------------------------------------------------------------------------------------------

LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
MIN_REASON_WORDS = 12


def compliance_scopes(org: Organization) -> dict[str, Stack]:
    return {"hub": org.hub.stack, "member": org.member_stack, "stack set template": org.stack_set_stack}


@pytest.mark.parametrize("stack_name", ["org", "org_remediate", "org_sweep"])
@pytest.mark.parametrize("scope", ["hub", "member", "stack set template"])
def test_cdk_nag_finds_nothing_in_hub_member_and_stack_set_template(
    stack_name: str, scope: str, request: pytest.FixtureRequest
) -> None:
    org: Organization = request.getfixturevalue(stack_name)

    report = AwsSolutionsChecks().validate_scope(compliance_scopes(org)[scope])

    found = [(v.rule_name, [x.construct_path for x in v.violating_resources]) for v in report.violations]
    assert found == []


@pytest.mark.parametrize("stack_name", ["org", "org_remediate", "org_sweep"])
def test_every_acknowledgment_in_organization_mode_is_specific_and_explained(
    stack_name: str, request: pytest.FixtureRequest
) -> None:
    org: Organization = request.getfixturevalue(stack_name)
    acknowledged = {
        (construct.node.path, rule_id.removeprefix("Annotation::")): reason
        for scope in compliance_scopes(org).values()
        for construct in scope.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id, reason in entry.data.items()
    }

    assert any("/Member/Access/" in path for path, _ in acknowledged)
    for (path, rule_id), reason in acknowledged.items():
        assert rule_id.startswith("AwsSolutions-"), (path, rule_id)
        if rule_id.startswith("AwsSolutions-IAM5"):
            assert rule_id.startswith("AwsSolutions-IAM5[Resource::"), f"{path}: acknowledge one finding, not the rule"
        assert len(reason.split()) >= MIN_REASON_WORDS, f"{path} {rule_id}: reason too thin: {reason!r}"


@pytest.mark.parametrize("stack_name", ["org", "org_remediate", "org_sweep"])
@pytest.mark.parametrize("which", ["hub", "member", "stack set template"])
def test_cfn_lint_reports_nothing_in_hub_member_and_stack_set_template(
    stack_name: str, which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    org: Organization = request.getfixturevalue(stack_name)
    template = {"hub": org.hub.template, "member": org.member, "stack set template": org.stack_set_template}[which]
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(template.to_json(), indent=1))

    matches = lint_file(template_file, ManualArgs(regions=LINT_REGIONS))

    assert [f"{m.rule.id} {m.message}" for m in matches if not m.rule.id.startswith("I")] == []


# --- standalone, unchanged -------------------------------------------------------------------------------------------

# The standalone template's resources as main built them before organization mode: a changed logical id would make
# CloudFormation replace that resource on the next deploy (a new table, new topics whose subscriptions must be
# confirmed again).
STANDALONE_RESOURCES = {
    "AlertPathWatchRuleEE3BE750": "AWS::Events::Rule",
    "OutputAlarmsEventbridgeFailuresECAC1E72": "AWS::CloudWatch::Alarm",
    "AlertsKey9E1197AF": "AWS::KMS::Key",
    "AlertsTopicCF7C81C9": "AWS::SNS::Topic",
    "AlertsTopicPolicyFF1F97BA": "AWS::SNS::TopicPolicy",
    "HealthKey78CEF763": "AWS::KMS::Key",
    "HealthTopic252048D3": "AWS::SNS::Topic",
    "HealthTopicPolicyC4E344CB": "AWS::SNS::TopicPolicy",
    "IdempotencyTable48612DF4": "AWS::DynamoDB::Table",
    "ImageGuardAlarmsErrors4D2A7C2F": "AWS::CloudWatch::Alarm",
    "ImageGuardAlarmsFailedEventsBF15F3D9": "AWS::CloudWatch::Alarm",
    "ImageGuardAlarmsThrottles568BB970": "AWS::CloudWatch::Alarm",
    "ImageGuardFailedEventsA5BBAC74": "AWS::SQS::Queue",
    "ImageGuardFailedEventsPolicyD8892B27": "AWS::SQS::QueuePolicy",
    "ImageGuardFunction59CBBF57": "AWS::Lambda::Function",
    "ImageGuardFunctionEventInvokeConfig3A79894F": "AWS::Lambda::EventInvokeConfig",
    "ImageGuardLogGroup6067935E": "AWS::Logs::LogGroup",
    "ImageGuardRole58943345": "AWS::IAM::Role",
    "ImageGuardRoleDefaultPolicyB0FB765F": "AWS::IAM::Policy",
    "ImageRuleAllowEventRuleAmiGuardImageGuardFunction7C8BF394BC9E781C": "AWS::Lambda::Permission",
    "ImageRuleE41F7CC3": "AWS::Events::Rule",
    "LaunchGuardAlarmsErrors5FD96476": "AWS::CloudWatch::Alarm",
    "LaunchGuardAlarmsFailedEvents3B6F2716": "AWS::CloudWatch::Alarm",
    "LaunchGuardAlarmsThrottlesFF9C054E": "AWS::CloudWatch::Alarm",
    "LaunchGuardFailedEventsD2782EC6": "AWS::SQS::Queue",
    "LaunchGuardFailedEventsPolicy79D21547": "AWS::SQS::QueuePolicy",
    "LaunchGuardFunction73A736C5": "AWS::Lambda::Function",
    "LaunchGuardFunctionEventInvokeConfig0C3CE289": "AWS::Lambda::EventInvokeConfig",
    "LaunchGuardLogGroup5AFBF769": "AWS::Logs::LogGroup",
    "LaunchGuardRoleDefaultPolicyDEC58965": "AWS::IAM::Policy",
    "LaunchGuardRoleE85EB947": "AWS::IAM::Role",
    "LaunchRule233627AC": "AWS::Events::Rule",
    "LaunchRuleAllowEventRuleAmiGuardLaunchGuardFunctionF49DFFEE408F444E": "AWS::Lambda::Permission",
    "PermissionGuardAlarmsErrors4D31B1F0": "AWS::CloudWatch::Alarm",
    "PermissionGuardAlarmsFailedEvents35A42502": "AWS::CloudWatch::Alarm",
    "PermissionGuardAlarmsThrottlesEDE1A872": "AWS::CloudWatch::Alarm",
    "PermissionGuardFailedEvents86EE40D5": "AWS::SQS::Queue",
    "PermissionGuardFailedEventsPolicyDBD31F03": "AWS::SQS::QueuePolicy",
    "PermissionGuardFunction66E725AC": "AWS::Lambda::Function",
    "PermissionGuardFunctionEventInvokeConfig55CBCFF5": "AWS::Lambda::EventInvokeConfig",
    "PermissionGuardLogGroup423F833D": "AWS::Logs::LogGroup",
    "PermissionGuardRole22204C0A": "AWS::IAM::Role",
    "PermissionGuardRoleDefaultPolicy4E994586": "AWS::IAM::Policy",
    "PermissionRule0978F866": "AWS::Events::Rule",
    "PermissionRuleAllowEventRuleAmiGuardPermissionGuardFunctionF9B5F2B14D9E5E06": "AWS::Lambda::Permission",
    "TamperGuardAlarmsErrors5D5532C0": "AWS::CloudWatch::Alarm",
    "TamperGuardAlarmsFailedEvents64492383": "AWS::CloudWatch::Alarm",
    "TamperGuardAlarmsThrottlesA9F8516A": "AWS::CloudWatch::Alarm",
    "TamperGuardFailedEvents7ADA3CBE": "AWS::SQS::Queue",
    "TamperGuardFailedEventsPolicyD61C9A06": "AWS::SQS::QueuePolicy",
    "TamperGuardFunction9673B3E3": "AWS::Lambda::Function",
    "TamperGuardFunctionEventInvokeConfig2FA42168": "AWS::Lambda::EventInvokeConfig",
    "TamperGuardLogGroup8297E077": "AWS::Logs::LogGroup",
    "TamperGuardRole9CEDD21C": "AWS::IAM::Role",
    "TamperGuardRoleDefaultPolicyA91EB92D": "AWS::IAM::Policy",
    "TamperRule21CFE524": "AWS::Events::Rule",
    "TamperRuleAllowEventRuleAmiGuardTamperGuardFunction040F7325F45DEA08": "AWS::Lambda::Permission",
    "TamperWatchRuleACBADEE3": "AWS::Events::Rule",
    "TamperWatchRuleAllowEventRuleAmiGuardPermissionGuardFunctionF9B5F2B144A0AD20": "AWS::Lambda::Permission",
}


def test_standalone_template_keeps_every_logical_id_and_type(default_stack: Synthesized) -> None:
    found = {
        logical_id: resource["Type"] for logical_id, resource in default_stack.template.to_json()["Resources"].items()
    }

    assert found == STANDALONE_RESOURCES


def test_standalone_builds_one_stack_with_nothing_of_organization_mode(default_stack: Synthesized) -> None:
    stacks = [child for child in default_stack.app.node.children if isinstance(child, Stack)]
    template = json.dumps(default_stack.template.to_json())

    assert [stack.stack_name for stack in stacks] == ["AmiGuard"]
    assert default_stack.stack.environment == "aws://unknown-account/unknown-region"
    actions = set(action_values(default_stack.resources("AWS::IAM::Policy")))
    assert "sts:AssumeRole" not in actions
    assert not {action for action in actions if action.startswith("organizations:")}
    for absent in ("AMI_GUARD_MEMBER_ROLE_PREFIX", "AmiGuardMember", "AmiGuard-Hub", "AmiGuard-Members"):
        assert absent not in template, absent
    for handler in HANDLERS:
        variables = default_stack.function(handler)["Environment"]["Variables"]
        assert not {key for key in variables if key in ("AMI_GUARD_ORGANIZATION", "AMI_GUARD_TRUST_OWN_ORGANIZATION")}
