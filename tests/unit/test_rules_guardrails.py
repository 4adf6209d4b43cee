"""The rules on the account's guardrails (account_settings) and on untrusted image owners, table-driven through the
shared engine over records shaped like CloudTrail's: newer EC2 calls with their parameters wrapped in
`<EventName>Request` and flat, Recycle Bin's lowerCamelCase parameters."""

from __future__ import annotations

from typing import Any

import pytest

from ami_guard.config import Policy, parse_policy
from ami_guard.engine import Evaluation, ImageFacts, evaluate
from ami_guard.events import Envelope, parse_call
from ami_guard.offline import OfflineLookups
from ami_guard.rules.catalog import routes
from tests import records as r
from tests.fakes import FakeAccount

DENIED = {"error_code": "Client.UnauthorizedOperation", "error_message": "You are not authorized"}
TRUSTED = "555566667777"
VENDOR = "999988887777"
OWNERS = parse_policy({"trustedAccounts": [TRUSTED], "trustedImageOwners": ["amazon", "123412341234"]})


def evaluated(rec: dict[str, Any], policy: Policy = OWNERS, account: FakeAccount | None = None) -> Evaluation:
    call = parse_call(Envelope(rec), routes().sources)
    lookups = account if account is not None else OfflineLookups()
    return evaluate(call, policy, lookups, account)


def rule_ids(rec: dict[str, Any], policy: Policy = OWNERS, account: FakeAccount | None = None) -> list[str]:
    return sorted(f.rule_id for f in evaluated(rec, policy, account).findings)


@pytest.mark.parametrize(
    ("name", "rec", "expected"),
    [
        ("snapshot bpa disabled", r.disable_snapshot_block_public_access(), ["snapshot-block-public-access-disabled"]),
        (
            "snapshot bpa unblocked",
            r.enable_snapshot_block_public_access("unblocked"),
            ["snapshot-block-public-access-disabled"],
        ),
        (
            "snapshot bpa unblocked, flat",
            r.enable_snapshot_block_public_access("unblocked", flat=True),
            ["snapshot-block-public-access-disabled"],
        ),
        (
            "snapshot bpa new sharing",
            r.enable_snapshot_block_public_access("block-new-sharing"),
            ["snapshot-block-public-access-weakened"],
        ),
        (
            "snapshot bpa new sharing, flat",
            r.enable_snapshot_block_public_access("block-new-sharing", flat=True),
            ["snapshot-block-public-access-weakened"],
        ),
        ("snapshot bpa all sharing", r.enable_snapshot_block_public_access("block-all-sharing"), []),
        (
            "snapshot bpa no state: the weakest",
            r.enable_snapshot_block_public_access(None),
            ["snapshot-block-public-access-disabled"],
        ),
        (
            "snapshot bpa unknown state: the weakest",
            r.enable_snapshot_block_public_access("block-everything-please"),
            ["snapshot-block-public-access-disabled"],
        ),
        ("snapshot bpa disable denied", r.disable_snapshot_block_public_access(**DENIED), []),
        ("snapshot bpa enable denied", r.enable_snapshot_block_public_access("unblocked", **DENIED), []),
        ("allowed images disabled", r.disable_allowed_images(), ["allowed-images-disabled"]),
        ("allowed images disable denied", r.disable_allowed_images(**DENIED), []),
        ("allowed images audit", r.enable_allowed_images("audit-mode"), ["allowed-images-audit-only"]),
        ("allowed images audit, flat", r.enable_allowed_images("audit-mode", flat=True), ["allowed-images-audit-only"]),
        ("allowed images enabled", r.enable_allowed_images("enabled"), []),
        ("allowed images no state: the weakest", r.enable_allowed_images(None), ["allowed-images-audit-only"]),
        ("allowed images criteria", r.replace_image_criteria(["amazon"]), ["allowed-images-criteria-changed"]),
        (
            "allowed images criteria, flat",
            r.replace_image_criteria(["amazon"], flat=True),
            ["allowed-images-criteria-changed"],
        ),
        ("allowed images criteria denied", r.replace_image_criteria(["amazon"], **DENIED), []),
        (
            "deregistration protection off",
            r.disable_deregistration_protection("ami-0abc1234def567890"),
            ["deregistration-protection-disabled"],
        ),
        (
            "deregistration protection off, flat",
            r.disable_deregistration_protection("ami-0abc1234def567890", flat=True),
            ["deregistration-protection-disabled"],
        ),
        ("deregistration protection denied", r.disable_deregistration_protection("ami-1", **DENIED), []),
        ("snapshot unlocked", r.unlock_snapshot("snap-0abc1234def567890"), ["snapshot-unlocked"]),
        ("snapshot unlocked, flat", r.unlock_snapshot("snap-0abc1234def567890", flat=True), ["snapshot-unlocked"]),
        ("snapshot unlock denied", r.unlock_snapshot("snap-1", **DENIED), []),
        ("rbin rule deleted", r.recycle_bin_call("DeleteRule", "jkrnexample"), ["recycle-bin-rule-weakened"]),
        (
            "rbin rule updated",
            r.recycle_bin_call("UpdateRule", "jkrnexample", "EBS_SNAPSHOT"),
            ["recycle-bin-rule-weakened"],
        ),
        ("rbin rule unlocked", r.recycle_bin_call("UnlockRule", "jkrnexample"), ["recycle-bin-rule-weakened"]),
        ("rbin rule delete denied", r.recycle_bin_call("DeleteRule", "jkrnexample", **DENIED), []),
        ("rbin rule created", r.recycle_bin_call("CreateRule", "jkrnexample", "EC2_IMAGE"), []),
        ("store image task", r.create_store_image_task("ami-0abc1234def567890", "exfil"), ["image-exported"]),
        (
            "store image task, flat",
            r.create_store_image_task("ami-0abc1234def567890", "exfil", flat=True),
            ["image-exported"],
        ),
        ("export image", r.export_image("ami-0abc1234def567890", "exfil"), ["image-exported"]),
        ("export image, flat", r.export_image("ami-0abc1234def567890", "exfil", flat=True), ["image-exported"]),
        ("export image denied", r.export_image("ami-1", "exfil", **DENIED), []),
        ("dry run", r.disable_allowed_images(error_code="Client.DryRunOperation"), []),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_guardrail_rules(name: str, rec: dict[str, Any], expected: list[str]) -> None:
    assert rule_ids(rec) == expected


def test_a_state_the_record_does_not_give_is_read_as_the_weakest_and_the_alert_says_so() -> None:
    (finding,) = evaluated(r.enable_snapshot_block_public_access(None)).findings
    assert finding.evidence == {
        "setting": "SnapshotBlockPublicAccess",
        "region": r.REGION,
        "state": None,
        "readAs": "unblocked",
        "why": "the record does not say which state was set: read as the weakest, unblocked",
    }
    assert "read as the weakest, unblocked" in finding.description


def test_a_state_recorded_flat_or_wrapped_reads_the_same() -> None:
    wrapped = evaluated(r.enable_snapshot_block_public_access("block-new-sharing")).findings
    flat = evaluated(r.enable_snapshot_block_public_access("block-new-sharing", flat=True)).findings
    assert [f.evidence for f in wrapped] == [f.evidence for f in flat]
    assert wrapped[0].evidence["state"] == "block-new-sharing"


def test_an_export_names_the_bucket() -> None:
    (task,) = evaluated(r.create_store_image_task("ami-0abc1234def567890", "exfil-bucket")).findings
    (export,) = evaluated(r.export_image("ami-0abc1234def567890", "other-bucket")).findings
    assert (task.evidence["bucket"], export.evidence["bucket"]) == ("exfil-bucket", "other-bucket")
    assert [res.id for res in task.resources] == ["ami-0abc1234def567890"]


def test_a_recycle_bin_rule_says_what_it_retains_when_the_record_does() -> None:
    (named,) = evaluated(r.recycle_bin_call("UpdateRule", "jkrnexample", "EC2_IMAGE")).findings
    (unnamed,) = evaluated(r.recycle_bin_call("DeleteRule", "jkrnexample")).findings
    assert (named.evidence["retains"], unnamed.evidence["retains"]) == ("AMIs", None)
    assert "AMIs or snapshots (the record does not say which)" in unnamed.description
    assert named.resources[0].arn == f"arn:aws:rbin:{r.REGION}:{r.ACCOUNT}:rule/jkrnexample"


def test_the_new_criteria_are_in_the_evidence() -> None:
    (finding,) = evaluated(r.replace_image_criteria(["amazon", "123456789012"])).findings
    assert finding.evidence["newCriteria"] == [{"ImageProvider": ["amazon", "123456789012"]}]


# --- launches and copies of AMIs from untrusted owners -----------------------------------------------------


def _account(owner: str | None, alias: str | None = None) -> FakeAccount:
    account = FakeAccount()
    for image, region in (("ami-1", r.REGION), ("ami-src", r.OTHER_REGION)):
        account.images[(image, region)] = ImageFacts(
            image_id=image, region=region, virtualization_type="hvm", owner_id=owner, owner_alias=alias
        )
    account.images[("ami-copy", r.REGION)] = ImageFacts(image_id="ami-copy", region=r.REGION, owner_id=r.ACCOUNT)
    return account


LAUNCH = r.run_instances("ami-1", "m7g.large", virtualization_type="hvm")
COPY = r.copy_image("ami-copy", "ami-src", copy_image_tags=True)


@pytest.mark.parametrize(
    ("name", "rec", "owner", "alias", "expected"),
    [
        ("launch, vendor", LAUNCH, VENDOR, None, ["launch-untrusted-image"]),
        ("launch, own account", LAUNCH, r.ACCOUNT, None, []),
        ("launch, trusted account", LAUNCH, TRUSTED, None, []),
        ("launch, trusted image owner", LAUNCH, "123412341234", None, []),
        ("launch, amazon alias", LAUNCH, "137112412989", "amazon", []),
        (
            "launch, marketplace alias not trusted",
            LAUNCH,
            "679593333241",
            "aws-marketplace",
            ["launch-untrusted-image"],
        ),
        ("copy, vendor", COPY, VENDOR, None, ["copy-untrusted-image"]),
        ("copy, own account", COPY, r.ACCOUNT, None, []),
        ("copy, amazon alias", COPY, "137112412989", "amazon", []),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_untrusted_image_owners(
    name: str, rec: dict[str, Any], owner: str, alias: str | None, expected: list[str]
) -> None:
    found = [i for i in rule_ids(rec, account=_account(owner, alias)) if i.endswith("untrusted-image")]
    assert found == expected


def test_untrusted_owner_rules_are_off_while_the_list_is_empty() -> None:
    account = _account(VENDOR)
    plain = parse_policy({"trustedAccounts": [TRUSTED]})
    assert rule_ids(LAUNCH, plain, account) == []
    assert "copy-untrusted-image" not in rule_ids(COPY, plain, account)
    assert account.owner_reads == 0


def test_the_owner_comes_from_ec2_not_from_the_record() -> None:
    # the record claims the launch's AMI is Amazon's (a forged alias beside the instance); EC2 says otherwise
    rec = r.run_instances("ami-1", "m7g.large", virtualization_type="hvm")
    rec["responseElements"]["instancesSet"]["items"][0]["imageOwnerAlias"] = "amazon"
    assert rule_ids(rec, account=_account(VENDOR)) == ["launch-untrusted-image"]


def test_offline_the_owner_is_not_decided_and_not_raised() -> None:
    result = evaluated(LAUNCH)
    assert [f.rule_id for f in result.findings] == []
    assert result.undetermined == [
        {
            "rules": "launch-untrusted-image",
            "reason": "owner of ami-1 not looked up: --offline makes no AWS call",
            "cause": "lookup",
        }
    ]
