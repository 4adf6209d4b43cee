"""Risky AMI changes across an organization, played end to end (`python -m demo --organization`): each step
changes the emulated EC2 state of a member account, sends the CloudTrail record of that change to EventBridge in
that member account and region (the events endpoint knows the account by the caller's key), and collects the
alerts that reach the inbox subscribed to the hub's alert topic. The member's rules forward the record to the hub
bus, the hub's rules hand it to the hub's functions, which act in the member account through its member role.

moto's shortfalls are worked around as in demo.scenario (RegisterImage attributes, CopyImage tags and source).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError

from ami_guard import contract
from demo.inbox import Alert, Inbox
from demo.org_runner import OrgRunner
from demo.organization import OUTSIDE_ACCOUNT, Layout, OrgEmulator
from demo.records import Trail, put_events_entry
from demo.runner import Delivery
from demo.scenario import HOME, OTHER, PROVENANCE_TAGS, Action, Check, StepResult, World, play

HUB_REGION = HOME
MEMBER_A, MEMBER_B = "Workload A", "Workload B"
APP_TAGS = {"Team": "payments", "CostCenter": "cc-4242", "Release": "2026.11"}


@dataclass
class OrgAction(Action):
    """What a step did, and in which member account (None: nothing to hand to EventBridge as CloudTrail)."""

    sender: World | None = None
    account: str = ""


@dataclass(frozen=True)
class OrgStep:
    key: str
    title: str
    expected: tuple[str, ...]
    act: Callable[[OrgWorld], OrgAction]
    check: Callable[[OrgWorld, OrgAction, list[Alert]], list[Check]] | None = None


@dataclass
class OrgWorld:
    """The emulated organization as the scenario sees it."""

    emulator: OrgEmulator
    layout: Layout
    runner: OrgRunner
    inbox: Inbox
    events_url: str
    remediate: bool
    members: dict[str, World] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, account in self.layout.members.items():
            world = World(
                self.emulator.view(account),
                cast(Any, self.runner),  # World reads the deliveries only through run_step, which is not used here
                self.inbox,
                events_url=self.events_url,
                remediate=self.remediate,
            )
            self.members[name] = world

    def member(self, name: str) -> World:
        return self.members[name]

    def send(self, action: OrgAction) -> None:
        """Through the member account's own EventBridge (None: the step delivered what it had to itself)."""
        if action.sender is not None:
            action.sender.put(action.region, action.records, times=action.deliveries)

    def explain(self, problem: str, deliveries: Sequence[Delivery]) -> str:
        return _with_reason(problem, deliveries)

    def where(self, action: Action) -> str:
        account = getattr(action, "account", "")  # a step that failed before acting left the plain empty Action
        return f"{action.region}, account {account} ({self.layout.name(account)})" if account else action.region

    def account(self, name: str) -> str:
        return self.layout.members[name]

    @property
    def hub_bus_arn(self) -> str:
        bus = contract.hub_bus_name("AmiGuard")
        return f"arn:aws:events:{HUB_REGION}:{self.layout.security}:event-bus/{bus}"


# --- the organization before the scenario ----------------------------------------------------------------------


def prepare(world: OrgWorld) -> None:
    a, b = world.member(MEMBER_A), world.member(MEMBER_B)
    world.images = {
        "a-app": a.register(HOME, "payments-app-2026.11", tags=APP_TAGS),
        "a-shared": a.register(HOME, "payments-batch-2026.11", tags={"Name": "batch"}),
        "b-web": b.register(OTHER, "web-2026.11", tags={"Name": "web"}),
        "b-backup": b.register(HOME, "db-backup-2026.11"),
    }


# --- the steps -------------------------------------------------------------------------------------------------


def _names_member(world: OrgWorld, alert: Alert | None, name: str, region: str) -> list[Check]:
    """The alert names the member account (id and name from Organizations) and the region."""
    if alert is None:
        return [Check(False, "no alert to name the member account")]
    doc = alert.document
    account = world.account(name)
    return [
        Check(
            doc.get("account") == account and doc.get("region") == region,
            f"the alert names account {doc.get('account')} and region {doc.get('region')} "
            f"(expected {account}, {region})",
        ),
        Check(
            doc.get("account_name") == name and alert.attributes.get("account_name") == name,
            f"the alert names the account {doc.get('account_name')!r}, SNS attribute account_name "
            f"{alert.attributes.get('account_name')!r} (expected {name!r})",
        ),
    ]


def _public_other_region(world: OrgWorld) -> OrgAction:
    b = world.member(MEMBER_B)
    image = world.images["b-web"]
    b.ec2(OTHER).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    record = b.trail.modify_image_attribute(OTHER, image, [{"group": "all"}])
    return OrgAction(OTHER, [record], facts={"image": image}, sender=b, account=world.account(MEMBER_B))


def _check_public_other_region(world: OrgWorld, action: OrgAction, alerts: list[Alert]) -> list[Check]:
    image = action.facts["image"]
    now = world.member(MEMBER_B).launch_permissions(OTHER, image)
    public = {"Group": "all"} in now
    alert = next((a for a in alerts if a.rule_id == "ami-public"), None)
    status = alert.action.get("status") if alert else None
    state = f"afterwards {image} in {MEMBER_B} {OTHER}: launch permissions {_permissions(now)}"
    checks = _names_member(world, alert, MEMBER_B, OTHER)
    if world.remediate:
        return [
            *checks,
            Check(not public, state),
            Check(status == "removed", f"the alert says the permission was removed ({status})"),
        ]
    return [
        *checks,
        Check(public, state + " (remediation is off)"),
        Check(status == "off", f"the alert says remediation is off ({status})"),
    ]


def _share(world: OrgWorld, with_account: str) -> OrgAction:
    a = world.member(MEMBER_A)
    image = world.images["a-shared"]
    a.ec2(HOME).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": with_account}]})
    record = a.trail.modify_image_attribute(HOME, image, [{"userId": with_account}])
    return OrgAction(HOME, [record], facts={"image": image}, sender=a, account=world.account(MEMBER_A))


def _share_with_member(world: OrgWorld) -> OrgAction:
    return _share(world, world.account(MEMBER_B))


def _check_share_with_member(world: OrgWorld, action: OrgAction, alerts: list[Alert]) -> list[Check]:
    now = world.member(MEMBER_A).launch_permissions(HOME, action.facts["image"])
    member_b = world.account(MEMBER_B)
    return [Check({"UserId": member_b} in now, f"the share with {MEMBER_B} stays: {_permissions(now)}")]


def _share_outside(world: OrgWorld) -> OrgAction:
    return _share(world, OUTSIDE_ACCOUNT)


def _check_share_outside(world: OrgWorld, action: OrgAction, alerts: list[Alert]) -> list[Check]:
    now = world.member(MEMBER_A).launch_permissions(HOME, action.facts["image"])
    outside = {"UserId": OUTSIDE_ACCOUNT} in now
    member_b = {"UserId": world.account(MEMBER_B)} in now
    alert = next((a for a in alerts if a.rule_id == "ami-shared-untrusted"), None)
    checks = _names_member(world, alert, MEMBER_A, HOME)
    state = f"afterwards launch permissions: {_permissions(now)}"
    if world.remediate:
        return [*checks, Check(not outside and member_b, state + f" (the share with {MEMBER_B} stays)")]
    return [*checks, Check(outside and member_b, state + " (remediation is off)")]


def _copy_other_region(world: OrgWorld) -> OrgAction:
    a = world.member(MEMBER_A)
    source = world.images["a-app"]
    copy = a.ec2(OTHER).copy_image(SourceImageId=source, SourceRegion=HOME, Name="payments-app-copy")["ImageId"]
    record = a.trail.copy_image(OTHER, copy, source_image_id=source, source_region=HOME, name="payments-app-copy")
    return OrgAction(OTHER, [record], facts={"copy": copy, "source": source}, sender=a, account=world.account(MEMBER_A))


def _check_copy_other_region(world: OrgWorld, action: OrgAction, alerts: list[Alert]) -> list[Check]:
    a = world.member(MEMBER_A)
    copy, source = action.facts["copy"], action.facts["source"]
    wanted = {**APP_TAGS, PROVENANCE_TAGS[0]: source, PROVENANCE_TAGS[1]: HOME}
    checks = []
    resources = [copy, *(m["Ebs"]["SnapshotId"] for m in a.image(OTHER, copy)["BlockDeviceMappings"])]
    for resource in resources:
        tags = a.tags(OTHER, resource)
        lacking = sorted(k for k, v in wanted.items() if tags.get(k) != v)
        text = f"afterwards {resource} in {MEMBER_A} {OTHER} carries {', '.join(sorted(wanted))}"
        checks.append(Check(not lacking, text if not lacking else f"{text}: lacks {', '.join(lacking)}"))
    alert = next((al for al in alerts if al.rule_id == "copy-tags-missing"), None)
    return [*checks, *_names_member(world, alert, MEMBER_A, OTHER)]


def _duplicate_delivery(world: OrgWorld) -> OrgAction:
    b = world.member(MEMBER_B)
    snapshot = b.snapshot_of(HOME, world.images["b-backup"])
    b.ec2(HOME).modify_snapshot_attribute(
        SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", UserIds=[OUTSIDE_ACCOUNT]
    )
    record = b.trail.modify_snapshot_attribute(HOME, snapshot, [{"userId": OUTSIDE_ACCOUNT}])
    return OrgAction(
        HOME, [record], deliveries=2, facts={"snapshot": snapshot}, sender=b, account=world.account(MEMBER_B)
    )


def _delete_forward_rule(world: OrgWorld) -> OrgAction:
    a = world.member(MEMBER_A)
    events = a.emulator.client("events", OTHER)
    rule_name = contract.member_rule_names()[0]
    rule = events.describe_rule(Name=rule_name)
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    ids = [t["Id"] for t in targets]
    # a rule with targets cannot be deleted: its targets are removed first, and CloudTrail logs both calls
    events.remove_targets(Rule=rule_name, Ids=ids)
    events.delete_rule(Name=rule_name)
    records = [
        a.trail.record("RemoveTargets", OTHER, {"rule": rule_name, "ids": ids}, None, service="events"),
        a.trail.record("DeleteRule", OTHER, {"name": rule_name}, None, service="events"),
    ]

    def restore() -> None:
        # put back at once, without a record, so that the steps after find the member whole
        events.put_rule(
            Name=rule_name,
            EventPattern=rule["EventPattern"],
            State=rule.get("State", "ENABLED"),
            **({"Description": rule["Description"]} if rule.get("Description") else {}),
        )
        events.put_targets(Rule=rule_name, Targets=targets)

    return OrgAction(
        OTHER,
        records,
        facts={"rule": rule_name},
        undo=restore,
        sender=a,
        account=world.account(MEMBER_A),
    )


def _check_delete_forward_rule(world: OrgWorld, action: OrgAction, alerts: list[Alert]) -> list[Check]:
    tampered = [a for a in alerts if a.rule_id == "guard-tampered"]
    named = [a for a in tampered if action.facts["rule"] in json.dumps(a.document)]
    checks = [Check(len(named) == len(tampered) > 0, f"every alert names the rule {action.facts['rule']}")]
    return checks + _names_member(world, tampered[0] if tampered else None, MEMBER_A, OTHER)


def _outsider_puts_on_hub_bus(world: OrgWorld) -> OrgAction:
    outsider = World(
        world.emulator.view(OUTSIDE_ACCOUNT),
        cast(Any, world.runner),
        world.inbox,
        events_url=world.events_url,
        remediate=world.remediate,
    )
    # a forged record: "a member made an AMI public", put straight on the hub bus by an account outside
    forged = Trail(account=world.account(MEMBER_A)).modify_image_attribute(
        HUB_REGION, world.images["a-shared"], [{"group": "all"}]
    )
    entry = {**put_events_entry(forged), "EventBusName": world.hub_bus_arn}
    client = outsider._events_client(HUB_REGION)
    deliveries_before = len(world.runner.deliveries)
    try:
        response = client.put_events(Entries=[entry])
        answer = f"accepted: {response.get('Entries')}"
        code = ""
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        answer = f"{code}: {exc.response.get('Error', {}).get('Message')}"
    return OrgAction(
        HUB_REGION,
        [],
        facts={
            "answer": answer,
            "code": code,
            "event_id": str(forged["eventID"]),
            "delivered": str(len(world.runner.deliveries) - deliveries_before),
        },
        account=OUTSIDE_ACCOUNT,
    )


def _check_outsider(world: OrgWorld, action: OrgAction, alerts: list[Alert]) -> list[Check]:
    return [
        Check(
            action.facts["code"] == "AccessDeniedException",
            f"PutEvents on {world.hub_bus_arn} from {OUTSIDE_ACCOUNT}: {action.facts['answer']}"[:400],
        ),
        Check(action.facts["delivered"] == "0", f"no rule or function saw it ({action.facts['delivered']} deliveries)"),
    ]


STEPS: tuple[OrgStep, ...] = (
    OrgStep(
        "member-public-other-region",
        f"{MEMBER_B} makes an AMI public in {OTHER} (not the hub's region)",
        ("ami-public",),
        _public_other_region,
        _check_public_other_region,
    ),
    OrgStep(
        "share-with-member",
        f"{MEMBER_A} shares an AMI with {MEMBER_B} (the same organization)",
        (),
        _share_with_member,
        _check_share_with_member,
    ),
    OrgStep(
        "share-outside",
        f"{MEMBER_A} shares the AMI with an account outside the organization",
        ("ami-shared-untrusted",),
        _share_outside,
        _check_share_outside,
    ),
    OrgStep(
        "copy-tagged-other-region",
        f"{MEMBER_A} copies a tagged AMI from {HOME} to {OTHER}",
        ("copy-tags-missing",),
        _copy_other_region,
        _check_copy_other_region,
    ),
    OrgStep(
        "duplicate-delivery",
        f"One event delivered twice ({MEMBER_B} shares a snapshot outside the organization)",
        ("snapshot-shared-untrusted",),
        _duplicate_delivery,
    ),
    OrgStep(
        "member-deletes-forward-rule",
        f"{MEMBER_A} deletes its forwarding rule in {OTHER}",
        ("guard-tampered", "guard-tampered"),
        _delete_forward_rule,
        _check_delete_forward_rule,
    ),
    OrgStep(
        "outsider-puts-on-hub-bus",
        f"An account outside the organization ({OUTSIDE_ACCOUNT}) puts an event on the hub bus",
        (),
        _outsider_puts_on_hub_bus,
        _check_outsider,
    ),
)
STEP_KEYS = tuple(step.key for step in STEPS)


def run(
    world: OrgWorld, *, keys: Sequence[str] | None = None, on_step: Callable[[StepResult], None] | None = None
) -> list[StepResult]:
    """Play the steps (all, or those named by `keys`, in scenario order)."""
    return play(world, STEPS, prepare, keys=keys, on_step=on_step)


def _with_reason(problem: str, deliveries: Sequence[Delivery]) -> str:
    """A refusal the harness judged (a cross-account AssumeRole, demo.org_patches) says why: the generic text says
    the role lacks the action, which is not the reason then."""
    for delivery in deliveries:
        for refusal in delivery.refused:
            judged = str(refusal.get("message", ""))
            if judged.startswith("(judged by the harness") and f"IAM refused {refusal.get('action')} to" in problem:
                what = f"{refusal.get('action')} on {refusal.get('resource')}"
                return f"IAM refused {what} to {delivery.function_name}: {judged}"
    return problem


def _permissions(items: list[dict[str, str]]) -> str:
    if not items:
        return "none (private)"
    return ", ".join(f"{k}={v}" for item in items for k, v in item.items())
