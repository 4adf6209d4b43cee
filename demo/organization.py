"""An emulated AWS Organization for `python -m demo --organization`: one moto server holding every account, the
organization built in it, the hub deployed with the real CDK CLI into the security account, and the member stack
rolled out into each member account and region the way the StackSet would.

- Accounts: moto's server started without MOTO_ACCOUNT_ID puts each call into the account of its credentials
  (notes: /work/shared/NOTES.md). The harness gets an IAM user allowed everything in each account (made through
  AssumeRole credentials into it before IAM is enforced); an AccountEmulator is the emulator seen with that
  account's key, so that the CDK CLI, the runner and the scenario address one account each.
- Organization: a management account (moto's default account, where the first key lands), a Security OU with the
  security (hub) account, registered as delegated administrator for StackSets, and a Workloads OU with two member
  accounts; an outside account that belongs to no organization shares nothing with it.
- Hub: `cdk synth` with the demo's amiGuard block and its `organization` block, `cdk bootstrap` and
  `cdk deploy AmiGuard` in the security account and hub region.
- Members: the member template the StackSet carries, read from cdk.out (the StackSet's `*.stackset.template.json`
  asset, or else the AmiGuardMember stack's template), created through the emulated CloudFormation of each member
  account and configured region, as a stack named as service-managed StackSets name their instances
  (`StackSet-<StackSet name>-<id>`). Why not moto's own StackSets: moto's CloudFormation does not create
  `AWS::CloudFormation::StackSet` (so the deployed hub has none), its service-managed instances are built only
  from the calling account's organization (empty for a delegated administrator) as stacks hidden from the member
  account's CloudFormation, and automatic deployment is not modelled (moto/cloudformation/models.py, 5.2.5).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ami_guard import contract
from demo.deploy import Cdk, DeployError, _stack_names, synth
from demo.emulator import Emulator, EmulatorError

MANAGEMENT_ACCOUNT = "123456789012"
"""moto's default account: where a key that belongs to no IAM user lands, hence the organization's management."""
OUTSIDE_ACCOUNT = "999988887777"
"""An account outside the organization (the share and the PutEvents that must not be trusted come from here)."""
HUB_STACK = "AmiGuard"
HARNESS_USER = "ami-guard-demo-harness"
ORGANIZATIONS_REGION = "us-east-1"
STACK_SETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
STACK_TIMEOUT_SECONDS = 60


class OrgEmulator(Emulator):
    """The moto server holding every account; as an Emulator it is the management account."""

    multi_account = True

    def __init__(self, *, work_dir: Path) -> None:
        super().__init__(account=MANAGEMENT_ACCOUNT, work_dir=work_dir)
        self.views: dict[str, AccountEmulator] = {}

    def view(self, account: str) -> AccountEmulator:
        """The emulator as one account sees it (with that account's harness key), made on first use."""
        if account not in self.views:
            self.views[account] = AccountEmulator(self, account)
        return self.views[account]

    def account_of_key(self, access_key_id: str) -> str | None:
        if access_key_id == self.access_key_id:
            return self.account
        return next((a for a, view in self.views.items() if view.access_key_id == access_key_id), None)

    def enforce_iam(self) -> None:
        """moto's access control on for every account: each account's harness user first (the management's too)."""
        if not self.harness_arn:
            user, key = _harness_user(self.client("iam", ORGANIZATIONS_REGION))
            self.access_key_id, self.secret_access_key, self.harness_arn = key[0], key[1], user
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())
        self.iam_enforced = True
        for view in self.views.values():
            view.iam_enforced = True
        self._check_enforced()

    def register_stand_in(self, stand_in_arn: str, role_arn: str) -> None:
        """Tell the emulator which deployed role a function's stand-in stands in for (demo.org_patches)."""
        self.admin("iam/stand-in", {"stand_in": stand_in_arn, "role": role_arn})

    def judged(self) -> list[dict[str, str]]:
        """The cross-account AssumeRole calls the harness judged (demo.org_patches)."""
        result: list[dict[str, str]] = self.admin("iam/judged")
        return result


class AccountEmulator(Emulator):
    """One account of an OrgEmulator: the same server, this account's harness key. Starts and stops nothing."""

    multi_account = True

    def __init__(self, parent: OrgEmulator, account: str) -> None:
        super().__init__(account=account, work_dir=parent.work_dir)
        self.parent = parent
        self.port = parent.port
        self.log_path = parent.log_path
        self.iam_enforced = parent.iam_enforced
        if parent.iam_enforced:
            raise EmulatorError(f"account {account}: its harness user must be made before IAM is enforced")
        # Before enforcement any role ARN can be assumed (moto needs no role): into the account, make its user
        credentials = parent.client("sts", ORGANIZATIONS_REGION).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="ami-guard-demo"
        )["Credentials"]
        iam = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=ORGANIZATIONS_REGION,
        ).client("iam", endpoint_url=parent.endpoint_url, config=Config(retries={"mode": "standard"}))
        self.harness_arn, (self.access_key_id, self.secret_access_key) = _harness_user(iam)

    def start(self) -> None:
        raise EmulatorError("an account view starts nothing: start the OrgEmulator")

    def stop(self) -> None:
        pass

    @property
    def running(self) -> bool:
        return self.parent.running

    def unmodelled_resource_types(self) -> list[str]:
        return self.parent.unmodelled_resource_types()


def _harness_user(iam: Any) -> tuple[str, tuple[str, str]]:
    from demo.iam_enforcement import HARNESS_POLICY

    user = iam.create_user(UserName=HARNESS_USER)["User"]
    iam.put_user_policy(UserName=HARNESS_USER, PolicyName="everything", PolicyDocument=json.dumps(HARNESS_POLICY))
    key = iam.create_access_key(UserName=HARNESS_USER)["AccessKey"]
    return str(user["Arn"]), (str(key["AccessKeyId"]), str(key["SecretAccessKey"]))


# --- the organization -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """The organization as built: ids moto chose, names the demo gave."""

    organization_id: str
    root_id: str
    management: str
    security: str
    members: dict[str, str]
    """Member account name -> id, in the Workloads OU."""
    workloads_ou: str
    security_ou: str
    names: dict[str, str] = field(default_factory=dict)
    """Every account id of the organization -> its name."""

    def name(self, account: str) -> str:
        return self.names.get(account, account)


MEMBER_NAMES = ("Workload A", "Workload B")


def build_organization(emulator: OrgEmulator, log: Callable[[str], None]) -> Layout:
    organizations = emulator.client("organizations", ORGANIZATIONS_REGION)
    organization = organizations.create_organization(FeatureSet="ALL")["Organization"]
    root = organizations.list_roots()["Roots"][0]["Id"]
    security_ou = organizations.create_organizational_unit(ParentId=root, Name="Security")["OrganizationalUnit"]["Id"]
    workloads_ou = organizations.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]["Id"]

    def account(name: str, ou: str) -> str:
        slug = name.lower().replace(" ", "-")
        status = organizations.create_account(AccountName=name, Email=f"aws+{slug}@example.com")["CreateAccountStatus"]
        account_id = str(status["AccountId"])
        organizations.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=ou)
        return account_id

    security = account("Security", security_ou)
    members = {name: account(name, workloads_ou) for name in MEMBER_NAMES}
    # StackSets' prerequisites: trusted access, and the security account as its delegated administrator
    organizations.enable_aws_service_access(ServicePrincipal=STACK_SETS_PRINCIPAL)
    organizations.register_delegated_administrator(AccountId=security, ServicePrincipal=STACK_SETS_PRINCIPAL)
    names = {str(a["Id"]): str(a["Name"]) for a in organizations.list_accounts()["Accounts"]}
    layout = Layout(
        organization_id=str(organization["Id"]),
        root_id=str(root),
        management=emulator.account,
        security=security,
        members=members,
        workloads_ou=str(workloads_ou),
        security_ou=str(security_ou),
        names=names,
    )
    log(f"  organization {layout.organization_id}: management {layout.management} ({names.get(emulator.account)})")
    log(f"  OU Security {security_ou}: {security} (Security, delegated administrator for StackSets)")
    log(f"  OU Workloads {workloads_ou}: " + ", ".join(f"{i} ({n})" for n, i in members.items()))
    log(f"  outside the organization: {OUTSIDE_ACCOUNT}")
    return layout


def organization_block(layout: Layout, *, hub_region: str, regions: Sequence[str]) -> dict[str, Any]:
    """The amiGuard `organization` block for this organization (the README's keys)."""
    return {
        "organizationId": layout.organization_id,
        "hubAccount": layout.security,
        "hubRegion": hub_region,
        "regions": list(regions),
        "organizationalUnits": [layout.workloads_ou],
    }


# --- the hub and the members ----------------------------------------------------------------------------------


@dataclass
class OrgDeployment:
    config: dict[str, Any]
    assembly: Path
    hub_stack: str
    member_template: dict[str, Any]
    member_template_source: str
    member_stacks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(account, region) -> the member stack's name there."""
    seconds: dict[str, float] = field(default_factory=dict)


def deploy_hub(
    emulator: OrgEmulator,
    layout: Layout,
    *,
    config: Mapping[str, Any],
    hub_region: str,
    log: Callable[[str], None],
) -> OrgDeployment:
    hub = emulator.view(layout.security)
    cdk = Cdk(hub, log=log)
    assembly = emulator.work_dir / "cdk.out"
    seconds = {"synth": synth(cdk, assembly, config, region=hub_region, what="cdk synth (organization mode)")}
    stacks = _stack_names(assembly)
    if HUB_STACK not in stacks:
        raise DeployError(f"the app synthesized no {HUB_STACK} stack (stacks: {', '.join(stacks) or 'none'})")
    seconds["bootstrap"] = cdk.run(
        ["bootstrap", "--app", str(assembly), f"aws://{layout.security}/{hub_region}"],
        region=hub_region,
        what=f"cdk bootstrap {layout.security}/{hub_region}",
    )
    seconds["deploy hub"] = cdk.run(
        ["deploy", "--app", str(assembly), "--require-approval", "never", HUB_STACK],
        region=hub_region,
        what=f"cdk deploy {HUB_STACK} into {layout.security} ({layout.name(layout.security)}) {hub_region}",
    )
    template, source = member_template(assembly)
    log(f"  member template: {source}")
    return OrgDeployment(
        config=dict(config),
        assembly=assembly,
        hub_stack=HUB_STACK,
        member_template=template,
        member_template_source=source,
        seconds=seconds,
    )


def member_template(assembly: Path) -> tuple[dict[str, Any], str]:
    """The template the StackSet carries: cdk-stacksets writes it as `<id>.stackset.template.json` (a file asset of
    the hub stack); without one, the AmiGuardMember stack's template (the one `cdk deploy` gives the management
    account)."""
    found = sorted(assembly.glob("*.stackset.template.json"))
    if len(found) > 1:
        raise DeployError(f"more than one StackSet template in {assembly}: {', '.join(p.name for p in found)}")
    if found:
        return json.loads(found[0].read_text()), f"cdk.out/{found[0].name} (the StackSet's template)"
    manifest = json.loads((assembly / "manifest.json").read_text())
    artifact = manifest.get("artifacts", {}).get(contract.MEMBER_STACK_NAME)
    if artifact is None:
        raise DeployError(
            f"no member template in {assembly}: neither a *.stackset.template.json nor a "
            f"{contract.MEMBER_STACK_NAME} stack (is the organization mode of the app built?)"
        )
    name = artifact.get("properties", {}).get("templateFile", f"{contract.MEMBER_STACK_NAME}.template.json")
    return json.loads((assembly / name).read_text()), f"cdk.out/{name} (the {contract.MEMBER_STACK_NAME} stack)"


def roll_out_members(
    emulator: OrgEmulator,
    layout: Layout,
    deployment: OrgDeployment,
    *,
    regions: Iterable[str],
    log: Callable[[str], None],
) -> None:
    """Create the member stack in every account of the targeted OU and every region, as the StackSet would."""
    body = json.dumps(deployment.member_template)
    stack_set = contract.stack_set_name(HUB_STACK)
    parameters = [
        {"ParameterKey": key, "ParameterValue": str(spec["Default"])}
        for key, spec in deployment.member_template.get("Parameters", {}).items()
        if "Default" in spec
    ]
    for name, account in layout.members.items():
        for region in regions:
            started = time.monotonic()
            cloudformation = emulator.view(account).client("cloudformation", region)
            stack_name = f"StackSet-{stack_set}-{uuid.uuid4()}"
            cloudformation.create_stack(
                StackName=stack_name,
                TemplateBody=body,
                Parameters=parameters,
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                Tags=[{"Key": "ami-guard-demo:rolled-out-as", "Value": f"StackSet {stack_set}"}],
            )
            status = _wait(cloudformation, stack_name)
            if status != "CREATE_COMPLETE":
                raise DeployError(f"member stack {stack_name} in {account}/{region}: {status}")
            deployment.member_stacks[account, region] = stack_name
            seconds = time.monotonic() - started
            deployment.seconds[f"member {name} {region}"] = seconds
            log(f"  member stack into {account} ({name}) {region}: done in {seconds:.1f} s")


def _wait(cloudformation: Any, stack_name: str) -> str:
    deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = str(stack["StackStatus"])
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            if status != "CREATE_COMPLETE":
                reason = stack.get("StackStatusReason", "")
                return f"{status} {reason}".strip()
            return status
        time.sleep(0.2)
