"""Our verdict on every real record in ../shared/cloudtrail-samples (the publishers' own expectations, in
SOURCES.md, are for their rules, not ours). Offline, default policy: no trusted accounts beyond the owner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ami_guard.config import Policy, parse_policy
from ami_guard.engine import evaluate
from ami_guard.events import SkipEvent, iter_records, parse_call
from ami_guard.offline import OfflineLookups
from tests.corpus import SAMPLES, needs_corpus, sample_files

pytestmark = [needs_corpus, pytest.mark.corpus]

PREV_GEN = ["launch-previous-generation"]
SKIPPED = None  # not an EC2 API call: skipped quietly

EXPECTED: dict[str, list[str] | None] = {
    "awsdocs__EC2-AMI-State-Change__available.json": SKIPPED,
    "awsdocs__EC2-AMI-State-Change__deregistered.json": SKIPPED,
    "awsdocs__EC2-AMI-State-Change__disabled.json": SKIPPED,
    "awsdocs__EC2-AMI-State-Change__failed.json": SKIPPED,
    "custodian__RunInstances__autoscaling-root-invokedBy.json": [],  # t2.micro, hvm
    "custodian__RunInstances__console-assumedrole.json": PREV_GEN,  # m3.medium
    "custodian__RunInstances__console-iamuser.json": PREV_GEN,  # m3.medium
    "panther__CreateImage__copyimage-useridentity-null.json": [],
    "panther__CreateImage__copyimage.json": [],
    "panther__ModifyImageAttribute__access-granted-to-unknown-user.json": ["ami-shared-untrusted"],
    "panther__ModifyImageAttribute__ami-added-to-user.json": ["ami-shared-untrusted"],  # userId 'bob'
    "panther__ModifyImageAttribute__ami-launch-permissions-not-modified.json": [],  # attributeType someThing
    "panther__ModifyImageAttribute__ami-made-public.json": ["ami-public"],
    "panther__ModifyImageAttribute__ami-not-made-public.json": [],  # group 'not-all'
    "panther__ModifyImageAttribute__error-making-ami-public.json": ["ami-share-denied"],
    "panther__ModifySnapshotAttribute__error-making-snapshot-publicly-accessible.json": [],  # failed
    "panther__ModifySnapshotAttribute__snapshot-made-publicly-accessible.json": ["snapshot-public"],
    "panther__ModifySnapshotAttribute__snapshot-mader-available-to-single-person.json": ["snapshot-shared-untrusted"],
    "panther__ModifySnapshotAttribute__snapshot-not-made-publicly-accessible.json": [],  # group 'none'
    "panther__RunInstances__failed-unusual-ec2.json": [],  # refused for permissions, not virtualization
    "panther__RunInstances__multiple-vulnerable-amis-launched.json": [],  # t3a.nano, hvm
    "panther__RunInstances__non-vulnerable-ami-launched.json": [],
    "panther__RunInstances__runinstance-dry-run.json": [],  # dry run: not a launch
    "panther__RunInstances__runinstance.json": PREV_GEN,  # t1.micro
    "panther__RunInstances__scenario-compromised-root-creds-11.json": PREV_GEN,  # p2.8xlarge
    "panther__RunInstances__single-vulnerable-ami-launched.json": [],
    "panther__RunInstances__successful-unusual-ec2-dictionary.json": PREV_GEN,  # instanceType {"value": ...}
    "panther__RunInstances__successful-unusual-ec2.json": PREV_GEN,  # p2.xlarge via Auto Scaling
    "panther__RunInstances__terminate-instance-from-webui-with-assumedrole.json": [],
    "panther__RunInstances__weird-aws-internal-message.json": [],  # dry run
    "plaso__RunInstances__console-t2micro-lookupevents-inner.json": [],
    "plaso__RunInstances__lookupevents-wrapper.json": [],
    "spotlight__CreateImage__console-noreboot.json": [],
    "spotlight__DeregisterImage__console.json": [],  # not a guarded change
    "spotlight__RunInstances__console-t3-2xlarge.json": [],
    "stratus__ModifyImageAttribute__share-userId.json": ["ami-shared-untrusted"],
    "stratus__ModifySnapshotAttribute__share-userId.json": ["snapshot-shared-untrusted"],
    "stratus__RunInstances__error-unauthorized-p2xlarge.json": [],
    "streamalert__CreateImage__eventbridge-unencrypted-ebs.json": [],
    "streamalert__ModifyImageAttribute__add-group-all.json": ["ami-public"],
    "streamalert__ModifyImageAttribute__eventbridge-public-add-group-all.json": ["ami-public"],
    "streamalert__ModifyImageAttribute__remove-group-all.json": [],  # removals never alert
    "streamalert__ModifySnapshotAttribute__add-group-all.json": ["snapshot-public"],
    "traildiscover__CreateImage__error-unauthorized.json": [],
    "traildiscover__ModifyImageAttribute__error-invalidparametercombination-noattrs.json": [],  # nothing tried
    "traildiscover__ModifySnapshotAttribute__error-unauthorized-remove-userId.json": [],
    "traildiscover__RunInstances__error-invalidparametervalue-arch-mismatch.json": [],  # architecture, not virt.
}


# Checks that no real record settles, offline, with the cause; every other sample decides every check it reaches.
UNDECIDED: dict[str, list[tuple[str, str]]] = {
    # attributeType 'someThing' is no attribute EC2 knows: whether it shares the AMI is not said
    "panther__ModifyImageAttribute__ami-launch-permissions-not-modified.json": [
        ("ami-public", "record"),
        ("ami-shared-untrusted", "record"),
    ],
    # refused, requestParameters null: what was attempted is not said
    "traildiscover__ModifyImageAttribute__error-invalidparametercombination-noattrs.json": [
        ("ami-share-denied", "record")
    ],
    # a refused launch with a parameter error and no virtualization message: the AMI's type needs a lookup
    "traildiscover__RunInstances__error-invalidparametervalue-arch-mismatch.json": [
        ("launch-virtualization-mismatch", "lookup")
    ],
}


def undecided(path: Path) -> list[tuple[str, str]]:
    notes: list[tuple[str, str]] = []
    for envelope in iter_records(json.loads(path.read_text())):
        try:
            call = parse_call(envelope)
        except SkipEvent:
            continue
        notes += [(n["rules"], n["cause"]) for n in evaluate(call, Policy(), OfflineLookups()).undetermined]
    return notes


def verdict(path: Path, policy: Policy) -> list[str] | None:
    rule_ids: list[str] = []
    evaluated = False
    for envelope in iter_records(json.loads(path.read_text())):
        try:
            call = parse_call(envelope)
        except SkipEvent as exc:
            assert exc.quiet, f"{path.name}: {exc.reason}"
            continue
        evaluated = True
        rule_ids += [f.rule_id for f in evaluate(call, policy, OfflineLookups()).findings]
    return sorted(rule_ids) if evaluated else None


def test_the_table_covers_every_sample() -> None:
    assert {p.name for p in sample_files()} == set(EXPECTED), f"update EXPECTED for the files in {SAMPLES}"


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_our_verdict_on_each_real_record(path: Path) -> None:
    assert verdict(path, Policy()) == EXPECTED[path.name]


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_no_real_record_leaves_a_check_undecided_silently(path: Path) -> None:
    assert undecided(path) == UNDECIDED.get(path.name, [])


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("stratus__ModifyImageAttribute__share-userId.json", "846424999548"),
        ("stratus__ModifySnapshotAttribute__share-userId.json", "098797384747"),
        ("panther__ModifyImageAttribute__access-granted-to-unknown-user.json", "012345678901"),
    ],
)
def test_trusting_the_recipient_silences_the_share(name: str, trusted: str) -> None:
    assert verdict(SAMPLES / name, parse_policy({"trustedAccounts": [trusted]})) == []


@pytest.mark.parametrize(
    "name",
    [
        "panther__CreateImage__copyimage.json",
        "spotlight__CreateImage__console-noreboot.json",
        "streamalert__CreateImage__eventbridge-unencrypted-ebs.json",
    ],
)
def test_required_tags_flag_real_untagged_create_image(name: str) -> None:
    assert verdict(SAMPLES / name, parse_policy({"requiredTags": ["Owner"]})) == ["image-missing-required-tags"]
