"""Risky AMI changes, played end to end: each step changes the emulated EC2 state, sends the CloudTrail record
that change produces to EventBridge (the runner's endpoint), and collects the alerts that reach the inbox.

Where moto falls short of EC2 the step works around it and says so: RegisterImage keeps only the name (the
attributes EC2 would record are set through the emulator's admin route), RunInstances does not refuse a
paravirtual AMI on an HVM-only type (the failed call is not made; the record EC2 would have logged is sent),
CopyImage ignores CopyImageTags (the harness copies the tags as EC2 would), and there is no image block public
access (the record is still sent). moto's DescribeImageAttribute fails on unknown AMIs, so no step names one.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from demo.emulator import Emulator
from demo.inbox import Alert, Inbox
from demo.records import PV_ON_M5_MESSAGE, Trail, put_events_entry
from demo.runner import Delivery, EventRunner

ACCOUNT = "111122223333"
HOME = "eu-west-1"
OTHER = "us-east-1"
TRUSTED_ACCOUNT = "444455556666"
UNTRUSTED_ACCOUNT = "999988887777"
PROVENANCE_TAGS = ("ami-guard:source-image-id", "ami-guard:source-region")
TRUSTED_IMAGE_OWNERS = ("aws-marketplace",)
"""The demo trusts its own accounts' AMIs and Marketplace AMIs: an Amazon-published public AMI is launched from
outside that set."""
EXPORT_BUCKET = "exports-elsewhere"


@dataclass
class Action:
    """What a step did: the records CloudTrail logged for it, how often each is delivered, ids for the checks."""

    region: str
    records: list[dict[str, Any]]
    deliveries: int = 1
    facts: dict[str, str] = field(default_factory=dict)
    undo: Callable[[], object] | None = None
    """Put the account back once the records are delivered (so that later steps find the guard whole)."""


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    expected: tuple[str, ...]
    act: Callable[[World], Action]
    check: Callable[[World, Action, list[Alert]], list[Check]] | None = None


@dataclass
class StepResult:
    number: int
    key: str
    title: str
    region: str
    expected: list[str]
    received: list[str]
    missing: list[str]
    unexpected: list[str]
    checks: list[Check]
    problems: list[str]
    notes: list[str]
    alerts: list[Alert]
    deliveries: list[Delivery]
    event_ids: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.problems) and all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(self.missing))
        if self.unexpected:
            parts.append("unexpected " + ", ".join(self.unexpected))
        if self.problems or not all(c.ok for c in self.checks):
            parts.append("failed")
        return "; ".join(parts) or "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "title": self.title,
            "region": self.region,
            "expected": self.expected,
            "received": self.received,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "verdict": self.verdict,
            "ok": self.ok,
            "checks": [{"ok": c.ok, "text": c.text} for c in self.checks],
            "problems": self.problems,
            "notes": self.notes,
            "event_ids": self.event_ids,
            "alerts": [a.as_dict() for a in self.alerts],
            "deliveries": [_delivery_dict(d) for d in self.deliveries],
            "seconds": round(self.seconds, 2),
        }


def _delivery_dict(delivery: Delivery) -> dict[str, Any]:
    return {
        "rule": delivery.rule,
        "function": delivery.function_name,
        "delivered": delivery.delivered,
        "reason": delivery.reason,
        "ok": delivery.ok,
        "result": delivery.result,
        "attempts": [
            {
                "ok": a.ok,
                "ms": a.duration_ms,
                "error_type": a.error_type,
                "error_message": a.error_message,
                "refused": a.refused,
            }
            for a in delivery.attempts
        ],
        "sent_to": delivery.sent_to,
    }


class World:
    """The emulated account as the scenario sees it."""

    def __init__(self, emulator: Emulator, runner: EventRunner, inbox: Inbox, *, events_url: str, remediate: bool):
        self.emulator = emulator
        self.runner = runner
        self.inbox = inbox
        self.events_url = events_url
        self.remediate = remediate
        self.trail = Trail(account=emulator.account)
        self.images: dict[str, str] = {}

    def ec2(self, region: str) -> Any:
        return self.emulator.client("ec2", region)

    def put(self, region: str, records: Sequence[Mapping[str, Any]], times: int = 1) -> None:
        """Hand the records to EventBridge (the runner's endpoint), `times` times each, as CloudTrail would."""
        client = self._events_client(region)
        for record in records:
            for _ in range(times):
                response = client.put_events(Entries=[put_events_entry(record)])
                if response.get("FailedEntryCount"):
                    raise RuntimeError(f"PutEvents refused the event: {response['Entries']}")

    def send(self, action: Action) -> None:
        self.put(action.region, action.records, times=action.deliveries)

    def explain(self, problem: str, deliveries: Sequence[Delivery]) -> str:
        return problem

    def where(self, action: Action) -> str:
        return action.region

    def _events_client(self, region: str) -> Any:
        # one attempt only: a retried PutEvents would deliver the event twice
        return boto3.session.Session(
            aws_access_key_id=self.emulator.access_key_id,
            aws_secret_access_key=self.emulator.secret_access_key,
            region_name=region,
        ).client(
            "events",
            endpoint_url=self.events_url,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=900, connect_timeout=10),
        )

    def register(
        self,
        region: str,
        name: str,
        *,
        virtualization_type: str = "hvm",
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """An EBS-backed image already in the account before the scenario starts."""
        image_id: str = self.ec2(region).register_image(Name=name, Architecture="x86_64")["ImageId"]
        # moto's RegisterImage keeps only the name: give the image what EC2 would have recorded
        self.emulator.set_image_attributes(
            region,
            image_id,
            virtualization_type=virtualization_type,
            root_device_type="ebs",
            root_device_name="/dev/xvda" if virtualization_type == "hvm" else "/dev/sda1",
            architecture="x86_64",
            hypervisor="xen",
        )
        if tags:
            self.ec2(region).create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return image_id

    def image(self, region: str, image_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.ec2(region).describe_images(ImageIds=[image_id])["Images"][0]
        return found

    def snapshot_of(self, region: str, image_id: str) -> str:
        return str(self.image(region, image_id)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])

    def launch_permissions(self, region: str, image_id: str) -> list[dict[str, str]]:
        found: list[dict[str, str]] = self.ec2(region).describe_image_attribute(
            ImageId=image_id, Attribute="launchPermission"
        )["LaunchPermissions"]
        return found

    def tags(self, region: str, resource_id: str) -> dict[str, str]:
        found = self.ec2(region).describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}


# --- the account before the scenario ----------------------------------------------------------------------

SOURCE_TAGS = {"Team": "platform", "CostCenter": "cc-1234", "Release": "2026.11"}
EU_SOURCE_TAGS = {"Team": "data", "CostCenter": "cc-5678"}


def prepare(world: World) -> None:
    world.images = {
        "web": world.register(HOME, "web-2026.11", tags={"Name": "web"}),
        "shared": world.register(HOME, "batch-2026.11", tags={"Name": "batch"}),
        "golden": world.register(HOME, "golden-al2023-2026.11"),
        "legacy-pv": world.register(HOME, "legacy-pv-2014.09", virtualization_type="paravirtual"),
        "eu-source": world.register(HOME, "etl-2026.11", tags=EU_SOURCE_TAGS),
        "us-source": world.register(OTHER, "platform-base-2026.11", tags=SOURCE_TAGS),
        "us-backup": world.register(OTHER, "db-backup-2026.11"),
    }


# --- the steps -----------------------------------------------------------------------------------------------


def _make_public(world: World) -> Action:
    image = world.images["web"]
    world.ec2(HOME).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    return Action(HOME, [world.trail.modify_image_attribute(HOME, image, [{"group": "all"}])], facts={"image": image})


def _check_public(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    image = action.facts["image"]
    now = world.launch_permissions(HOME, image)
    public = {"Group": "all"} in now
    alert = next((a for a in alerts if a.rule_id == "ami-public"), None)
    status = alert.action.get("status") if alert else None
    state = f"afterwards {image} launch permissions: {_permissions(now)}"
    if world.remediate:
        said_private = status == "removed" and alert is not None and alert.action.get("publicNow") is False
        return [
            Check(not public, state),
            Check(said_private, f"the alert says the permission was removed and the AMI is private ({status})"),
        ]
    return [
        Check(public, state + " (remediation is off)"),
        Check(status == "off", f"the alert says remediation is off ({status})"),
    ]


def _share_with(world: World, account: str) -> Action:
    image = world.images["shared"]
    world.ec2(HOME).modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": account}]})
    record = world.trail.modify_image_attribute(HOME, image, [{"userId": account}])
    return Action(HOME, [record], facts={"image": image})


def _share_untrusted(world: World) -> Action:
    return _share_with(world, UNTRUSTED_ACCOUNT)


def _check_share_untrusted(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    now = world.launch_permissions(HOME, action.facts["image"])
    shared = {"UserId": UNTRUSTED_ACCOUNT} in now
    state = f"afterwards launch permissions: {_permissions(now)}"
    return [Check(not shared, state)] if world.remediate else [Check(shared, state + " (remediation is off)")]


def _share_trusted(world: World) -> Action:
    return _share_with(world, TRUSTED_ACCOUNT)


def _check_share_trusted(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    now = world.launch_permissions(HOME, action.facts["image"])
    return [Check({"UserId": TRUSTED_ACCOUNT} in now, f"the trusted share stays: {_permissions(now)}")]


def _register_default_virtualization(world: World) -> Action:
    snapshot = world.snapshot_of(HOME, world.images["golden"])
    mapping = [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot, "VolumeSize": 8}}]
    image = world.ec2(HOME).register_image(
        Name="legacy-app-2026.11", Architecture="x86_64", RootDeviceName="/dev/sda1", BlockDeviceMappings=mapping
    )["ImageId"]
    # moto keeps only the name; EC2 registers paravirtual when virtualizationType is omitted
    world.emulator.set_image_attributes(
        HOME, image, virtualization_type="paravirtual", root_device_type="ebs", root_device_name="/dev/sda1"
    )
    request = {
        "name": "legacy-app-2026.11",
        "architecture": "x86_64",
        "rootDeviceName": "/dev/sda1",
        "blockDeviceMapping": {
            "items": [{"deviceName": "/dev/sda1", "ebs": {"snapshotId": snapshot, "volumeSize": 8}}]
        },
    }
    return Action(HOME, [world.trail.register_image(HOME, image, request)], facts={"image": image})


def _register_instance_store(world: World) -> Action:
    location = "ami-guard-demo-bundles/web-2026.11/image.manifest.xml"
    image = world.ec2(HOME).register_image(
        Name="web-s3-2026.11", ImageLocation=location, Architecture="x86_64", VirtualizationType="hvm"
    )["ImageId"]
    # moto keeps only the name; an S3 manifest makes an instance-store-backed image
    world.emulator.set_image_attributes(
        HOME, image, virtualization_type="hvm", root_device_type="instance-store", image_location=location
    )
    request = {
        "imageLocation": location,
        "name": "web-s3-2026.11",
        "architecture": "x86_64",
        "virtualizationType": "hvm",
    }
    return Action(HOME, [world.trail.register_image(HOME, image, request)], facts={"image": image})


def _launch_paravirtual_on_m5(world: World) -> Action:
    # moto would start it; EC2 refuses, and CloudTrail logs the refusal: that record is what is sent
    record = world.trail.run_instances(
        HOME,
        image_id=world.images["legacy-pv"],
        instance_type="m5.large",
        error_code="Client.InvalidParameterCombination",
        error_message=PV_ON_M5_MESSAGE,
    )
    return Action(HOME, [record], facts={"image": world.images["legacy-pv"]})


# Not m5.large: moto's copy of DescribeInstanceTypes, which the deployed guard asks, calls M5 (and C5, M6i, R5...)
# previous generation, which AWS does not (docs/instance-types.md lists moto's errors). M7i it gets right.
CURRENT_GENERATION_TYPE = "m7i.large"


def _launch_hvm(world: World) -> Action:
    image = world.images["golden"]
    kind = CURRENT_GENERATION_TYPE
    reservation = world.ec2(HOME).run_instances(ImageId=image, InstanceType=kind, MinCount=1, MaxCount=1)
    record = world.trail.run_instances(HOME, image_id=image, instance_type=kind, reservation=reservation)
    return Action(HOME, [record], facts={"instance": reservation["Instances"][0]["InstanceId"]})


def _copy_tagged(world: World) -> Action:
    source = world.images["us-source"]
    copy = world.ec2(HOME).copy_image(SourceImageId=source, SourceRegion=OTHER, Name="platform-base-copy")["ImageId"]
    record = world.trail.copy_image(HOME, copy, source_image_id=source, source_region=OTHER, name="platform-base-copy")
    return Action(HOME, [record], facts={"copy": copy, "source": source})


def _check_copy_tagged(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    copy, source = action.facts["copy"], action.facts["source"]
    wanted = {**SOURCE_TAGS, PROVENANCE_TAGS[0]: source, PROVENANCE_TAGS[1]: OTHER}
    checks = []
    resources = [copy, *(m["Ebs"]["SnapshotId"] for m in world.image(HOME, copy)["BlockDeviceMappings"])]
    for resource in resources:
        tags = world.tags(HOME, resource)
        lacking = sorted(k for k, v in wanted.items() if tags.get(k) != v)
        text = f"afterwards {resource} carries {', '.join(sorted(wanted))}"
        checks.append(Check(not lacking, text if not lacking else f"{text}: lacks {', '.join(lacking)}"))
    alert = next((a for a in alerts if a.rule_id == "copy-tags-missing"), None)
    applied = sorted((alert.action.get("applied") or {}) if alert else {})
    checks.append(
        Check(
            set(applied) == set(wanted),
            f"the alert says which tags were applied: {', '.join(applied) or 'none'}",
        )
    )
    return checks


def _copy_with_tags(world: World) -> Action:
    source = world.images["eu-source"]
    ec2 = world.ec2(OTHER)
    copy = ec2.copy_image(SourceImageId=source, SourceRegion=HOME, Name="etl-copy", CopyImageTags=True)["ImageId"]
    # moto ignores CopyImageTags; EC2 copies the source's user tags onto the copy
    ec2.create_tags(Resources=[copy], Tags=[{"Key": k, "Value": v} for k, v in EU_SOURCE_TAGS.items()])
    record = world.trail.copy_image(
        OTHER, copy, source_image_id=source, source_region=HOME, name="etl-copy", copy_image_tags=True
    )
    return Action(OTHER, [record], facts={"copy": copy})


def _check_copy_with_tags(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    tags = world.tags(OTHER, action.facts["copy"])
    added = sorted(k for k in tags if k.startswith("ami-guard:"))
    return [Check(not added, f"the guard left {action.facts['copy']} alone: tags {', '.join(sorted(tags))}")]


def _disable_block_public_access(world: World) -> Action:
    # moto has no image block public access: nothing to change, the record is sent as EC2 would log it
    return Action(HOME, [world.trail.disable_image_block_public_access(HOME)])


# moto has none of the account guardrails' APIs (snapshot block public access, Allowed AMIs, snapshot locks, Recycle
# Bin, store-image tasks): nothing to change, the records are sent as EC2 and Recycle Bin would log them.


def _disable_snapshot_block_public_access(world: World) -> Action:
    record = world.trail.newer_ec2_call("DisableSnapshotBlockPublicAccess", HOME, "", {"state": "unblocked"})
    return Action(HOME, [record])


def _allowed_images_audit_mode(world: World) -> Action:
    params = {"AllowedImagesSettingsState": "audit-mode"}
    record = world.trail.newer_ec2_call(
        "EnableAllowedImagesSettings", HOME, params, {"allowedImagesSettingsState": "audit-mode"}
    )
    return Action(HOME, [record])


def _unlock_snapshot(world: World) -> Action:
    snapshot = world.snapshot_of(HOME, world.images["golden"])
    record = world.trail.newer_ec2_call("UnlockSnapshot", HOME, {"SnapshotId": snapshot}, {"snapshotId": snapshot})
    return Action(HOME, [record], facts={"snapshot": snapshot})


def _delete_recycle_bin_rule(world: World) -> Action:
    return Action(HOME, [world.trail.recycle_bin_call("DeleteRule", HOME, "a1b2c3d4e5f")])


def _export_image(world: World) -> Action:
    image = world.images["golden"]
    params = {"ImageId": image, "Bucket": EXPORT_BUCKET}
    record = world.trail.newer_ec2_call("CreateStoreImageTask", HOME, params, {"objectKey": f"{image}.bin"})
    return Action(HOME, [record], facts={"image": image})


def _check_export(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    alert = next((a for a in alerts if a.rule_id == "image-exported"), None)
    named = alert is not None and alert.document.get("evidence", {}).get("bucket") == EXPORT_BUCKET
    return [Check(named, f"the alert names the bucket {EXPORT_BUCKET}")]


def _launch_public_ami(world: World) -> Action:
    # one of the public AMIs moto loads in every region (moto says Amazon published them all)
    ec2 = world.ec2(HOME)
    image = next(
        i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"] if i.get("VirtualizationType") == "hvm"
    )
    reservation = ec2.run_instances(ImageId=image, InstanceType=CURRENT_GENERATION_TYPE, MinCount=1, MaxCount=1)
    record = world.trail.run_instances(
        HOME, image_id=image, instance_type=CURRENT_GENERATION_TYPE, reservation=reservation
    )
    return Action(HOME, [record], facts={"image": image})


def _snapshot_public(world: World) -> Action:
    snapshot = world.snapshot_of(OTHER, world.images["us-backup"])
    world.ec2(OTHER).modify_snapshot_attribute(
        SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    record = world.trail.modify_snapshot_attribute(OTHER, snapshot, [{"group": "all"}])
    return Action(OTHER, [record], facts={"snapshot": snapshot})


def _duplicate_delivery(world: World) -> Action:
    snapshot = world.snapshot_of(HOME, world.images["shared"])
    world.ec2(HOME).modify_snapshot_attribute(
        SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", UserIds=[UNTRUSTED_ACCOUNT]
    )
    record = world.trail.modify_snapshot_attribute(HOME, snapshot, [{"userId": UNTRUSTED_ACCOUNT}])
    return Action(HOME, [record], deliveries=2, facts={"snapshot": snapshot})


def _disable_guard_rule(world: World) -> Action:
    events = world.emulator.client("events", HOME)
    rules = events.list_rules()["Rules"]
    rule = next(r["Name"] for r in rules if "RunInstances" in (r.get("EventPattern") or ""))
    events.disable_rule(Name=rule)
    # enabled again at once, without a record: EnableRule is no tampering, and the steps after need the rule
    return Action(
        HOME, [world.trail.disable_rule(HOME, rule)], facts={"rule": rule}, undo=lambda: events.enable_rule(Name=rule)
    )


def _check_guard_rule(world: World, action: Action, alerts: list[Alert]) -> list[Check]:
    alert = next((a for a in alerts if a.rule_id == "guard-tampered"), None)
    named = alert is not None and action.facts["rule"] in json.dumps(alert.document)
    return [Check(named, f"the alert names the rule {action.facts['rule']}")]


STEPS: tuple[Step, ...] = (
    Step("make-public", "Make an AMI public", ("ami-public",), _make_public, _check_public),
    Step(
        "share-untrusted",
        "Share an AMI with an untrusted account",
        ("ami-shared-untrusted",),
        _share_untrusted,
        _check_share_untrusted,
    ),
    Step("share-trusted", "Share the AMI with a trusted account", (), _share_trusted, _check_share_trusted),
    Step(
        "register-default-virtualization",
        "Register an AMI without virtualizationType (paravirtual by default)",
        ("image-paravirtual",),
        _register_default_virtualization,
    ),
    Step(
        "register-instance-store",
        "Register an instance-store-backed AMI",
        ("image-instance-store",),
        _register_instance_store,
    ),
    Step(
        "launch-paravirtual-m5",
        "Launch a paravirtual AMI on m5.large (EC2 refuses)",
        ("launch-virtualization-mismatch",),
        _launch_paravirtual_on_m5,
    ),
    Step("launch-hvm", f"Launch an HVM AMI on {CURRENT_GENERATION_TYPE}", (), _launch_hvm),
    Step(
        "copy-tagged",
        f"Copy a tagged AMI from {OTHER} to {HOME}",
        ("copy-tags-missing",),
        _copy_tagged,
        _check_copy_tagged,
    ),
    Step(
        "copy-with-tags",
        f"Copy an AMI from {HOME} to {OTHER} with copyImageTags",
        (),
        _copy_with_tags,
        _check_copy_with_tags,
    ),
    Step(
        "disable-block-public-access",
        "Disable AMI block public access",
        ("ami-block-public-access-disabled",),
        _disable_block_public_access,
    ),
    Step("snapshot-public", f"Make an EBS snapshot public in {OTHER}", ("snapshot-public",), _snapshot_public),
    Step(
        "duplicate-delivery",
        "Deliver one event twice (share a snapshot with an untrusted account)",
        ("snapshot-shared-untrusted",),
        _duplicate_delivery,
    ),
    Step(
        "disable-snapshot-block-public-access",
        "Disable snapshot block public access",
        ("snapshot-block-public-access-disabled",),
        _disable_snapshot_block_public_access,
    ),
    Step(
        "allowed-images-audit-mode",
        "Set Allowed AMIs to audit mode",
        ("allowed-images-audit-only",),
        _allowed_images_audit_mode,
    ),
    Step("unlock-snapshot", "Unlock a locked snapshot", ("snapshot-unlocked",), _unlock_snapshot),
    Step(
        "delete-recycle-bin-rule",
        "Delete a Recycle Bin retention rule",
        ("recycle-bin-rule-weakened",),
        _delete_recycle_bin_rule,
    ),
    Step("export-image", "Store an AMI in an S3 bucket", ("image-exported",), _export_image, _check_export),
    Step(
        "launch-public-ami",
        f"Launch a public AMI of an owner outside trustedImageOwners ({', '.join(TRUSTED_IMAGE_OWNERS)})",
        ("launch-untrusted-image",),
        _launch_public_ami,
    ),
    Step(
        "disable-guard-rule",
        "Disable one of the guard's own rules (the launch rule)",
        ("guard-tampered",),
        _disable_guard_rule,
        _check_guard_rule,
    ),
)
STEP_KEYS = tuple(step.key for step in STEPS)


def run(
    world: World, *, keys: Sequence[str] | None = None, on_step: Callable[[StepResult], None] | None = None
) -> list[StepResult]:
    """Play the steps (all, or those named by `keys`, in scenario order)."""
    return play(world, STEPS, prepare, keys=keys, on_step=on_step)


def play(
    world: Any,
    steps: Sequence[Any],
    prepare_world: Callable[[Any], None],
    *,
    keys: Sequence[str] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Play `steps` in a world (the account's or the organization's; see `run_step` for what it provides)."""
    unknown = set(keys or ()) - {step.key for step in steps}
    if unknown:
        raise ValueError(f"no such step: {', '.join(sorted(unknown))}")
    prepare_world(world)
    world.inbox.drain()
    results = []
    for number, step in enumerate(steps, start=1):
        if keys is not None and step.key not in keys:
            continue
        result = run_step(world, number, step)
        results.append(result)
        if on_step is not None:
            on_step(result)
    return results


def run_step(world: Any, number: int, step: Any) -> StepResult:
    """Play one step: the world hands its records to EventBridge (`send`), explains a refused call (`explain`) and
    says where the step ran (`where`); World for one account, demo.org_scenario.OrgWorld for an organization."""
    started = time.monotonic()
    before = len(world.runner.deliveries)
    notes_before = len(world.runner.notes)
    problems: list[str] = []
    checks: list[Check] = []
    alerts: list[Alert] = []
    action = Action(HOME, [])
    try:
        action = step.act(world)
        world.send(action)
        if action.undo is not None:
            action.undo()
        alerts = world.inbox.drain()
        if step.check is not None:
            checks = step.check(world, action, alerts)
    except Exception as exc:  # a step that breaks is a failed step, and the others still run
        problems.append(f"the step itself failed: {type(exc).__name__}: {exc}")
    deliveries = world.runner.deliveries[before:]
    event_ids = [str(r["eventID"]) for r in action.records]
    problems += [
        world.explain(problem, deliveries) for problem in _delivery_problems(event_ids, deliveries, action.deliveries)
    ]
    received = [a.rule_id for a in alerts]
    expected = list(step.expected)
    return StepResult(
        number=number,
        key=step.key,
        title=step.title,
        region=world.where(action),
        expected=expected,
        received=received,
        missing=list((Counter(expected) - Counter(received)).elements()),
        unexpected=list((Counter(received) - Counter(expected)).elements()),
        checks=checks,
        problems=problems,
        notes=world.runner.notes[notes_before:],
        alerts=alerts,
        deliveries=deliveries,
        event_ids=event_ids,
        seconds=time.monotonic() - started,
    )


def _delivery_problems(event_ids: list[str], deliveries: list[Delivery], times: int) -> list[str]:
    """Every record must reach a guard function, which must evaluate it (not skip it, not fail), with no call of
    its refused by IAM (whatever the function made of the refusal: an error, a warning or nothing)."""
    problems = []
    for event_id in event_ids:
        mine = [d for d in deliveries if d.detail_event_id == event_id]
        functions = [d for d in mine if d.function_name]
        if len(functions) < times:
            problems.append(f"event {event_id} reached no guard function (no deployed rule matched it)")
        for delivery in mine:
            for refusal in delivery.refused:
                problems.append(
                    f"IAM refused {refusal.get('action')} to {delivery.function_name} ({refusal.get('error')}): no "
                    "statement of its role allows that action, so in AWS the call fails too"
                )
            if not delivery.ok:
                problems.append(delivery.describe())
            elif isinstance(delivery.result, Mapping) and delivery.result.get("status") == "skipped":
                problems.append(f"{delivery.function_name} skipped the event: {delivery.result.get('reason')}")
    return problems


def _permissions(items: list[dict[str, str]]) -> str:
    if not items:
        return "none (private)"
    return ", ".join(f"{k}={v}" for item in items for k, v in item.items())
