"""Every rule through the shared engine, table-driven over records shaped like the real ones."""

from __future__ import annotations

from typing import Any

import pytest

from ami_guard.config import Policy, parse_policy
from ami_guard.engine import Evaluation, ImageFacts, SnapshotFacts, evaluate
from ami_guard.events import Envelope, Principals, guard_change, parse_call
from ami_guard.offline import OfflineLookups
from ami_guard.rules import Watched, guard_tampered
from tests import records as r
from tests.fakes import FakeAccount

TRUSTED = "555566667777"
OUTSIDER = "444455556666"
ORG = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
POLICY = parse_policy({"trustedAccounts": [TRUSTED], "trustedOrganizations": [ORG]})


def rule_ids(rec: dict[str, Any], policy: Policy = POLICY, account: FakeAccount | None = None) -> list[str]:
    call = parse_call(Envelope(rec))
    lookups = account if account is not None else OfflineLookups()
    return sorted(f.rule_id for f in evaluate(call, policy, lookups, account).findings)


DENIED = {"error_code": "Client.UnauthorizedOperation", "error_message": "You are not authorized"}


@pytest.mark.parametrize(
    ("name", "rec", "expected"),
    [
        ("public", r.modify_image_attribute("ami-1", [{"group": "all"}]), ["ami-public"]),
        (
            "public + trusted",
            r.modify_image_attribute("ami-1", [{"group": "all"}, {"userId": TRUSTED}]),
            ["ami-public"],
        ),
        (
            "public + outsider",
            r.modify_image_attribute("ami-1", [{"group": "all"}, {"userId": OUTSIDER}]),
            ["ami-public", "ami-shared-untrusted"],
        ),
        ("outsider", r.modify_image_attribute("ami-1", [{"userId": OUTSIDER}]), ["ami-shared-untrusted"]),
        ("trusted account", r.modify_image_attribute("ami-1", [{"userId": TRUSTED}]), []),
        ("owner account", r.modify_image_attribute("ami-1", [{"userId": r.ACCOUNT}]), []),
        ("trusted org", r.modify_image_attribute("ami-1", [{"organizationArn": ORG}]), []),
        (
            "OU of trusted org",
            r.modify_image_attribute(
                "ami-1",
                [{"organizationalUnitArn": "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij"}],
            ),
            [],
        ),
        (
            "other org",
            r.modify_image_attribute("ami-1", [{"organizationArn": "arn:aws:organizations::9:organization/o-other"}]),
            ["ami-shared-untrusted"],
        ),
        ("group none", r.modify_image_attribute("ami-1", [{"group": "none"}]), []),
        ("denied public", r.modify_image_attribute("ami-1", [{"group": "all"}], **DENIED), ["ami-share-denied"]),
        ("denied outsider", r.modify_image_attribute("ami-1", [{"userId": OUTSIDER}], **DENIED), ["ami-share-denied"]),
        ("denied trusted", r.modify_image_attribute("ami-1", [{"userId": TRUSTED}], **DENIED), []),
        ("snapshot public", r.modify_snapshot_attribute("snap-1", [{"group": "all"}]), ["snapshot-public"]),
        (
            "snapshot outsider",
            r.modify_snapshot_attribute("snap-1", [{"userId": OUTSIDER}]),
            ["snapshot-shared-untrusted"],
        ),
        ("snapshot trusted", r.modify_snapshot_attribute("snap-1", [{"userId": TRUSTED}]), []),
        ("snapshot denied", r.modify_snapshot_attribute("snap-1", [{"group": "all"}], **DENIED), []),
        ("bpa disabled", r.disable_block_public_access(), ["ami-block-public-access-disabled"]),
        ("bpa denied", r.disable_block_public_access(**DENIED), []),
        ("register omitted virt", r.register_image("ami-2"), ["image-paravirtual"]),
        ("register pv", r.register_image("ami-2", virtualization_type="paravirtual"), ["image-paravirtual"]),
        ("register hvm", r.register_image("ami-2", virtualization_type="hvm"), []),
        (
            "register instance store",
            r.register_image("ami-2", virtualization_type="hvm", image_location="bucket/x.manifest.xml"),
            ["image-instance-store"],
        ),
        ("register failed", r.register_image("ami-2", **DENIED), []),
        (
            "launch pv on m1",
            r.run_instances("ami-3", "m1.small", virtualization_type="paravirtual"),
            ["launch-paravirtual", "launch-previous-generation"],
        ),
        ("launch hvm current", r.run_instances("ami-3", "m5.large"), []),
        ("launch hvm previous gen", r.run_instances("ami-3", "m3.medium"), ["launch-previous-generation"]),
        (
            "failed pv on m5 (message)",
            r.run_instances(
                "ami-3", "m5.large", error_code="Client.InvalidParameterCombination", error_message=r.PV_ON_M5_MESSAGE
            ),
            ["launch-virtualization-mismatch"],
        ),
        (
            "failed for another reason",
            r.run_instances("ami-3", "m5.large", **DENIED),
            [],
        ),
        (
            "dry run",
            r.run_instances("ami-3", "m1.small", error_code="Client.DryRunOperation", error_message="DryRun"),
            [],
        ),
        # Offline the source's tags are not looked up: whether any were lost is not decided, so nothing is raised
        # (test_offline_copy_names_what_it_did_not_decide checks that it says so).
        ("copy without copyImageTags", r.copy_image("ami-c", "ami-s"), []),
        ("copy with copyImageTags", r.copy_image("ami-c", "ami-s", copy_image_tags=True), []),
    ],
)
def test_offline_verdicts(name: str, rec: dict[str, Any], expected: list[str]) -> None:
    assert rule_ids(rec) == expected, name


# --- lookups ------------------------------------------------------------------------------------------


def test_launch_without_virtualization_in_response_looks_the_image_up() -> None:
    account = FakeAccount(images={("ami-pv", r.REGION): ImageFacts("ami-pv", r.REGION, "paravirtual")})
    rec = r.run_instances("ami-pv", "c3.large", virtualization_type=None)
    assert rule_ids(rec, account=account) == ["launch-paravirtual", "launch-previous-generation"]


def test_offline_launch_without_virtualization_says_it_could_not_tell() -> None:
    call = parse_call(Envelope(r.run_instances("ami-pv", "m5.large", virtualization_type=None)))
    evaluation = evaluate(call, POLICY, OfflineLookups())
    assert evaluation.findings == []
    assert evaluation.undetermined[0]["rules"] == "launch-paravirtual"
    assert "offline" in evaluation.undetermined[0]["reason"]


def test_failed_launch_without_message_is_diagnosed_by_lookup() -> None:
    account = FakeAccount(images={("ami-pv", r.REGION): ImageFacts("ami-pv", r.REGION, "paravirtual")})
    rec = r.run_instances("ami-pv", "t3.micro", error_code="Client.InvalidParameterValue", error_message="Bad AMI")
    call = parse_call(Envelope(rec))
    (finding,) = evaluate(call, POLICY, account).findings
    assert finding.rule_id == "launch-virtualization-mismatch"
    assert finding.evidence["diagnosis"]["source"] == "lookup"
    assert finding.evidence["instanceTypeSupports"] == ["hvm"]


def test_launch_template_failed_launch_is_resolved_through_the_template() -> None:
    account = FakeAccount(
        images={("ami-pv", r.REGION): ImageFacts("ami-pv", r.REGION, "paravirtual")},
        templates={"lt-0123": ("ami-pv", "m5.large")},
    )
    rec = r.record(
        "RunInstances",
        {
            "instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
            "launchTemplate": {"launchTemplateId": "lt-0123"},
        },
        None,
        error_code="Client.InvalidParameterCombination",
        error_message="Launch failed",
    )
    assert rule_ids(rec, account=account) == ["launch-virtualization-mismatch"]


# --- remediation --------------------------------------------------------------------------------------


def _account_with_image(permissions: Principals) -> FakeAccount:
    return FakeAccount(
        images={("ami-1", r.REGION): ImageFacts("ami-1", r.REGION, "hvm")},
        permissions={("ami-1", r.REGION): permissions},
    )


def test_remediation_removes_exactly_the_offending_principals() -> None:
    # Given an AMI made public and shared with a trusted and an untrusted account in one call
    account = _account_with_image(Principals(groups=("all",), user_ids=(TRUSTED, OUTSIDER)))
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}, {"userId": TRUSTED}, {"userId": OUTSIDER}])
    policy = parse_policy({"trustedAccounts": [TRUSTED], "remediate": True})
    # When evaluated with actions
    evaluation = evaluate(parse_call(Envelope(rec)), policy, account, account)
    # Then only 'all' and the outsider are removed, the trusted share stays, and the alert says so
    assert account.removed == [("ami-1", Principals(groups=("all",), user_ids=(OUTSIDER,)))]
    assert account.permissions[("ami-1", r.REGION)] == Principals(user_ids=(TRUSTED,))
    assert sorted(f.rule_id for f in evaluation.findings) == ["ami-public", "ami-shared-untrusted"]
    for finding in evaluation.findings:
        assert finding.action is not None
        assert finding.action["status"] == "removed"
        assert finding.action["publicNow"] is False
        assert finding.action["launchPermissionsNow"] == {"userIds": [TRUSTED]}


def test_remediation_off_changes_nothing_and_says_so() -> None:
    account = _account_with_image(Principals(groups=("all",)))
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}])
    (finding,) = evaluate(parse_call(Envelope(rec)), POLICY, account, account).findings
    assert account.removed == []
    assert finding.action is not None and finding.action["status"] == "off"


def test_refused_remediation_still_alerts_with_the_reason() -> None:
    account = _account_with_image(Principals(groups=("all",)))
    account.refuse_actions = "UnauthorizedOperation: not allowed"
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}])
    policy = parse_policy({"remediate": True})
    (finding,) = evaluate(parse_call(Envelope(rec)), policy, account, account).findings
    assert finding.action is not None and finding.action["status"] == "failed"
    assert "UnauthorizedOperation" in finding.action["detail"]


def test_failed_share_is_never_remediated() -> None:
    account = _account_with_image(Principals())
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}], **DENIED)
    policy = parse_policy({"remediate": True})
    evaluate(parse_call(Envelope(rec)), policy, account, account)
    assert account.removed == []


# --- copy ---------------------------------------------------------------------------------------------


def _copy_account(
    source_tags: dict[str, str],
    copy_tags: dict[str, str] | None = None,
    *,
    snapshot_tags: dict[str, str] | None = None,
    copy_of: tuple[str | None, str | None] = ("ami-src", r.OTHER_REGION),
    owner: str = r.ACCOUNT,
) -> FakeAccount:
    """A source AMI in another region and its copy here, which EC2 describes as a copy of `copy_of`."""
    return FakeAccount(
        images={
            ("ami-src", r.OTHER_REGION): ImageFacts("ami-src", r.OTHER_REGION, "hvm", source_tags, ("snap-src",)),
            ("ami-copy", r.REGION): ImageFacts(
                "ami-copy",
                r.REGION,
                "hvm",
                copy_tags or {},
                ("snap-copy",),
                owner_id=owner,
                source_image_id=copy_of[0],
                source_region=copy_of[1],
            ),
        },
        snapshot_facts={("snap-copy", r.REGION): SnapshotFacts("snap-copy", owner, snapshot_tags or {})},
        permissions={("ami-src", r.OTHER_REGION): Principals(user_ids=(TRUSTED,))},
    )


@pytest.mark.parametrize(
    ("name", "source_tags", "source_shared", "copy_image_tags", "expected"),
    [
        ("tags and permissions lost", {"Team": "a"}, True, None, ["copy-permissions-not-copied", "copy-tags-missing"]),
        ("tags lost", {"Team": "a"}, False, None, ["copy-tags-missing"]),
        ("only aws: tags on the source", {"aws:backup:source": "x"}, False, None, []),
        ("permissions lost, tags copied by EC2", {"Team": "a"}, True, True, ["copy-permissions-not-copied"]),
        ("nothing to lose", {}, False, None, []),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_copy_rules(
    name: str, source_tags: dict[str, str], source_shared: bool, copy_image_tags: bool | None, expected: list[str]
) -> None:
    account = _copy_account(source_tags)
    if not source_shared:
        account.permissions.clear()
    rec = r.copy_image("ami-copy", "ami-src", copy_image_tags=copy_image_tags)
    assert rule_ids(rec, Policy(copy_tags=False), account) == expected


def _copy_action(evaluation: Evaluation) -> dict[str, Any]:
    assert sorted(f.rule_id for f in evaluation.findings) == ["copy-permissions-not-copied", "copy-tags-missing"]
    finding = next(f for f in evaluation.findings if f.rule_id == "copy-tags-missing")
    assert finding.action is not None
    return finding.action


PROVENANCE = {"ami-guard:source-image-id": "ami-src", "ami-guard:source-region": r.OTHER_REGION}


def test_copy_restores_user_tags_and_provenance_without_overwriting() -> None:
    account = _copy_account(
        {"Name": "golden", "Owner": "platform", "aws:cloudformation:stack-name": "x"}, copy_tags={"Name": "mine"}
    )
    rec = r.copy_image("ami-copy", "ami-src", tags={"Name": "mine"})
    evaluation = evaluate(parse_call(Envelope(rec)), Policy(), account, account)
    # The image lacks Owner and provenance; its snapshot lacks Name too: two sets, two CreateTags calls
    assert account.tagged == [
        (("ami-copy",), {"Owner": "platform", **PROVENANCE}),
        (("snap-copy",), {"Name": "golden", "Owner": "platform", **PROVENANCE}),
    ]
    action = _copy_action(evaluation)
    assert action["status"] == "applied"
    assert action["applied"] == {"Owner": "platform", **PROVENANCE}
    assert action["snapshots"] == ["snap-copy"]
    assert action["notOverwritten"] == {"ami-copy": ["Name"]}
    assert account.tags_of("ami-copy", r.REGION)["Name"] == "mine"
    copy_finding = next(f for f in evaluation.findings if f.rule_id == "copy-tags-missing")
    assert copy_finding.evidence["lostTags"] == {"Name": "golden", "Owner": "platform"}


def test_copy_tag_restore_is_idempotent() -> None:
    account = _copy_account({"Owner": "platform"})
    rec = r.copy_image("ami-copy", "ami-src")
    call = parse_call(Envelope(rec))
    evaluate(call, Policy(), account, account)
    second = evaluate(call, Policy(), account, account)
    assert account.tagged == [(("ami-copy", "snap-copy"), {"Owner": "platform", **PROVENANCE})]
    assert _copy_action(second)["status"] == "nothing to apply"


def test_a_snapshots_own_tag_survives_the_restore() -> None:
    # Given a copy without tags whose snapshot already carries its own Owner and CostCenter
    account = _copy_account(
        {"Owner": "platform", "CostCenter": "42"}, snapshot_tags={"Owner": "storage-team", "CostCenter": "7"}
    )
    # When the guard restores the source's tags
    action = _copy_action(
        evaluate(parse_call(Envelope(r.copy_image("ami-copy", "ami-src"))), Policy(), account, account)
    )
    # Then the snapshot keeps its own values, and gets only what it lacked
    assert account.tags_of("snap-copy", r.REGION) == {"Owner": "storage-team", "CostCenter": "7", **PROVENANCE}
    assert account.tags_of("ami-copy", r.REGION) == {"Owner": "platform", "CostCenter": "42", **PROVENANCE}
    assert account.snapshot_reads == 1
    assert action["notOverwritten"] == {"snap-copy": ["CostCenter", "Owner"]}


def _tags(count: int) -> dict[str, str]:
    return {f"Tag{n:02d}": f"value-{n}" for n in range(count)}


@pytest.mark.parametrize(
    ("source_count", "fits_on_the_image", "did_not_fit"),
    [
        (50, _tags(50), ["ami-guard:source-image-id", "ami-guard:source-region"]),
        (49, {**_tags(49), "ami-guard:source-image-id": "ami-src"}, ["ami-guard:source-region"]),
        (48, {**_tags(48), **PROVENANCE}, []),
    ],
)
def test_a_full_source_is_restored_up_to_ec2s_limit_and_the_alert_names_what_did_not_fit(
    source_count: int, fits_on_the_image: dict[str, str], did_not_fit: list[str]
) -> None:
    # Given a source with 48 to 50 user tags (and an aws: tag, which does not count)
    account = _copy_account({**_tags(source_count), "aws:backup:source-resource": "x"})
    # When the guard restores them on a copy that has none
    evaluation = evaluate(parse_call(Envelope(r.copy_image("ami-copy", "ami-src"))), Policy(), account, account)
    # Then the alert is there, the user's tags come first, and what did not fit is named for each resource
    action = _copy_action(evaluation)
    assert action["status"] == "applied"
    assert account.tags_of("ami-copy", r.REGION) == fits_on_the_image
    assert account.tags_of("snap-copy", r.REGION) == fits_on_the_image
    assert action.get("didNotFit", {}) == ({"ami-copy": did_not_fit, "snap-copy": did_not_fit} if did_not_fit else {})
    if did_not_fit:
        assert (
            f"did not fit on ami-copy (EC2 allows 50 user tags per resource): {', '.join(did_not_fit)}"
            in (action["detail"])
        )


def test_room_is_counted_per_resource() -> None:
    # The image carries 45 tags of its own, its snapshot none: each gets what fits on it
    account = _copy_account({"Owner": "platform"}, copy_tags={f"Own{n}": "x" for n in range(45)})
    action = _copy_action(
        evaluate(parse_call(Envelope(r.copy_image("ami-copy", "ami-src"))), Policy(), account, account)
    )
    assert account.tagged == [
        (("ami-copy", "snap-copy"), {"Owner": "platform", **PROVENANCE}),
    ]
    assert "didNotFit" not in action
    crowded = _copy_account(_tags(10), copy_tags={f"Own{n}": "x" for n in range(45)})
    action = _copy_action(
        evaluate(parse_call(Envelope(r.copy_image("ami-copy", "ami-src"))), Policy(), crowded, crowded)
    )
    assert len(crowded.tags_of("ami-copy", r.REGION)) == 50
    assert action["didNotFit"]["ami-copy"] == [*list(_tags(10))[5:], *PROVENANCE]
    assert len(crowded.tags_of("snap-copy", r.REGION)) == 12 and "snap-copy" not in action["didNotFit"]


@pytest.mark.parametrize(
    ("copy_of", "owner", "why"),
    [
        ((None, None), r.ACCOUNT, "the image is not a copy of ami-src (us-east-1) according to EC2"),
        (("ami-other", r.OTHER_REGION), r.ACCOUNT, "the image is not a copy of ami-src (us-east-1) according to EC2"),
        (("ami-src", "ap-south-1"), r.ACCOUNT, "the image is not a copy of ami-src (us-east-1) according to EC2"),
        (("ami-src", r.OTHER_REGION), "999988887777", "ami-copy is owned by 999988887777, not by account"),
    ],
    ids=["not a copy", "copy of another source", "copy from another region", "owned by another account"],
)
def test_a_forged_copy_event_tags_nothing(copy_of: tuple[str | None, str | None], owner: str, why: str) -> None:
    # Given an image that EC2 does not describe as the account's copy of the source the event names
    account = _copy_account({"Owner": "platform"}, copy_of=copy_of, owner=owner)
    # When someone hands the guard a CopyImage event claiming it is
    evaluation = evaluate(parse_call(Envelope(r.copy_image("ami-copy", "ami-src"))), Policy(), account, account)
    # Then nothing is tagged, and the alert says why
    assert account.tagged == []
    assert account.snapshot_reads == 0
    finding = next(f for f in evaluation.findings if f.rule_id == "copy-tags-missing")
    assert finding.action is not None and finding.action["status"] == "not applied"
    assert finding.action["detail"].startswith(f"not applied: {why}")


def test_a_refused_create_tags_is_a_failed_action_in_the_alert() -> None:
    account = _copy_account({"Owner": "platform"})
    account.refuse_actions = "TagLimitExceeded: The maximum number of Tags for a resource has been reached."
    action = _copy_action(
        evaluate(parse_call(Envelope(r.copy_image("ami-copy", "ami-src"))), Policy(), account, account)
    )
    assert action["status"] == "failed"
    assert action["failed"] == {
        "ami-copy": "TagLimitExceeded: The maximum number of Tags for a resource has been reached.",
        "snap-copy": "TagLimitExceeded: The maximum number of Tags for a resource has been reached.",
    }
    assert action["applied"] == {} and action["wanted"] == {"Owner": "platform", **PROVENANCE}


def test_copy_with_copy_tags_off_reports_but_does_not_tag() -> None:
    account = _copy_account({"Owner": "platform"})
    rec = r.copy_image("ami-copy", "ami-src")
    evaluation = evaluate(parse_call(Envelope(rec)), parse_policy({"copyTags": False}), account, account)
    assert account.tagged == []
    finding = next(f for f in evaluation.findings if f.rule_id == "copy-tags-missing")
    assert finding.action is not None and finding.action["status"] == "off"


def test_copy_of_untagged_source_loses_nothing() -> None:
    account = _copy_account({"aws:only": "reserved"})
    rec = r.copy_image("ami-copy", "ami-src")
    evaluation = evaluate(parse_call(Envelope(rec)), Policy(), account, account)
    assert "copy-tags-missing" not in [f.rule_id for f in evaluation.findings]
    assert account.tagged == []


def test_required_tags_are_checked_after_the_guards_own_tag_copy() -> None:
    account = _copy_account({"Owner": "platform"})
    rec = r.copy_image("ami-copy", "ami-src")
    policy = parse_policy({"requiredTags": ["Owner", "CostCenter"]})
    evaluation = evaluate(parse_call(Envelope(rec)), policy, account, account)
    missing = next(f for f in evaluation.findings if f.rule_id == "image-missing-required-tags")
    assert missing.evidence["missingTags"] == ["CostCenter"]


def test_offline_copy_names_what_it_did_not_decide_and_raises_nothing() -> None:
    policy = parse_policy({"requiredTags": ["Owner"]})
    evaluation = evaluate(parse_call(Envelope(r.copy_image("ami-c", "ami-s"))), policy, OfflineLookups())
    assert evaluation.findings == []
    assert [(n["rules"], n["cause"]) for n in evaluation.undetermined] == [
        ("copy-tags-missing", "lookup"),
        ("copy-permissions-not-copied", "lookup"),
        # the guard would have restored the source's tags, which nobody read
        ("image-missing-required-tags", "lookup"),
    ]
    assert all("--offline makes no AWS call" in n["reason"] for n in evaluation.undetermined)


@pytest.mark.parametrize(
    ("rec", "expected"),
    [
        (r.create_image("ami-n", tags={"Owner": "a", "CostCenter": "1"}), []),
        (r.create_image("ami-n", tags={"Owner": "a"}), ["image-missing-required-tags"]),
        (r.register_image("ami-n", virtualization_type="hvm"), ["image-missing-required-tags"]),
    ],
)
def test_required_tags_offline_use_the_events_tags(rec: dict[str, Any], expected: list[str]) -> None:
    assert rule_ids(rec, parse_policy({"requiredTags": ["Owner", "CostCenter"]})) == expected


# --- never silent -------------------------------------------------------------------------------------


def undecided(rec: dict[str, Any], policy: Policy = POLICY) -> list[tuple[str, str]]:
    evaluation = evaluate(parse_call(Envelope(rec)), policy, FakeAccount())
    assert evaluation.findings == []
    return [(n["rules"], n["cause"]) for n in evaluation.undetermined]


IMAGE_SHARE_UNREAD = [("ami-public", "record"), ("ami-shared-untrusted", "record")]
SNAPSHOT_SHARE_UNREAD = [("snapshot-public", "record"), ("snapshot-shared-untrusted", "record")]


@pytest.mark.parametrize(
    ("name", "rec", "expected"),
    [
        (
            "image: requestParameters null",
            r.record("ModifyImageAttribute", None, {"_return": True}),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: no launchPermission block",
            r.record("ModifyImageAttribute", {"imageId": "ami-1"}, {"_return": True}),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: launchPermission named, no change",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "attributeType": "launchPermission"}),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: launchPermission not an object",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "launchPermission": "garbage"}),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: items of an unknown shape",
            r.record(
                "ModifyImageAttribute",
                {"imageId": "ami-1", "launchPermission": {"add": {"items": [{"principal": "all"}]}}},
            ),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: attribute the guard does not know",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "attributeType": "someThing"}),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: description named, launchPermission carried",
            r.record(
                "ModifyImageAttribute",
                {
                    "imageId": "ami-1",
                    "attributeType": "description",
                    "launchPermission": {"add": {"items": [{"group": "all"}]}},
                },
            ),
            IMAGE_SHARE_UNREAD,
        ),
        (
            "image: description",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "attributeType": "description"}),
            [],
        ),
        (
            "image: description block, no attribute named",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "description": {"value": "golden"}}),
            [],
        ),
        (
            "image: imdsSupport",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "imdsSupport": {"value": "v2.0"}}),
            [],
        ),
        (
            "image: kernel",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "attribute": "kernel", "value": "aki-1"}),
            [],
        ),
        (
            "image: productCodes",
            r.record("ModifyImageAttribute", {"imageId": "ami-1", "productCodes": {"items": []}}),
            [],
        ),
        (
            "image: refused, requestParameters null",
            r.record("ModifyImageAttribute", None, error_code="Client.InvalidParameterCombination"),
            [("ami-share-denied", "record")],
        ),
        (
            "snapshot: requestParameters null",
            r.record("ModifySnapshotAttribute", None, {"_return": True}),
            SNAPSHOT_SHARE_UNREAD,
        ),
        (
            "snapshot: no createVolumePermission block",
            r.record("ModifySnapshotAttribute", {"snapshotId": "snap-1", "attributeType": "CREATE_VOLUME_PERMISSION"}),
            SNAPSHOT_SHARE_UNREAD,
        ),
        (
            "snapshot: productCodes",
            r.record("ModifySnapshotAttribute", {"snapshotId": "snap-1", "attributeType": "productCodes"}),
            [],
        ),
        (
            "snapshot: refused and unreadable (no rule reads refused snapshot shares)",
            r.record("ModifySnapshotAttribute", None, error_code="Client.UnauthorizedOperation"),
            [],
        ),
        (
            "launch without an instance type",
            r.record(
                "RunInstances",
                {"instancesSet": {"items": [{"imageId": "ami-1"}]}},
                {"instancesSet": {"items": [{"instanceId": "i-1", "imageId": "ami-1", "virtualizationType": "hvm"}]}},
            ),
            [("launch-previous-generation", "record")],
        ),
        (
            "launch naming nothing",
            r.record("RunInstances", {"minCount": 1}, {"reservationId": "r-1"}),
            [("launch-*", "record")],
        ),
        (
            "register without its request",
            r.record("RegisterImage", None, {"imageId": "ami-2"}),
            [
                ("image-paravirtual", "record"),
                ("image-instance-store", "record"),
            ],
        ),
        (
            "copy without the new image's id",
            r.record("CopyImage", {"sourceImageId": "ami-s", "sourceRegion": r.OTHER_REGION}, {"requestId": "x"}),
            [("copy-tags-missing", "record"), ("copy-permissions-not-copied", "record")],
        ),
        (
            "copy without its source",
            r.record("CopyImage", {"name": "golden-copy"}, {"imageId": "ami-c"}),
            [("copy-tags-missing", "record"), ("copy-permissions-not-copied", "record")],
        ),
    ],
)
def test_a_record_that_does_not_say_leaves_named_checks_undecided(
    name: str, rec: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert undecided(rec) == expected, name


def test_a_known_share_is_still_judged_beside_an_unreadable_item() -> None:
    rec = r.modify_image_attribute("ami-1", [{"group": "all"}, {"principal": "x"}])
    evaluation = evaluate(parse_call(Envelope(rec)), POLICY, FakeAccount())
    assert [f.rule_id for f in evaluation.findings] == ["ami-public"]
    assert [n["rules"] for n in evaluation.undetermined] == ["ami-public", "ami-shared-untrusted"]


# --- guard-tampered on what silences the guard -----------------------------------------------------------

_TOPIC = "arn:aws:sns:eu-west-1:111122223333:AmiGuard-AlertsTopic-X1"
_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
_WATCHED = Watched(
    topics=frozenset({_TOPIC}),
    keys=frozenset({f"arn:aws:kms:eu-west-1:111122223333:key/{_KEY}"}),
    role_prefixes=frozenset({"AmiGuard-ImageGuard-"}),
    queues=frozenset({"AmiGuard-Q1"}),
    tables=frozenset({"AmiGuard-T1"}),
    trails=True,
    state_machines=frozenset({"AmiGuard-Sweep"}),
    schedules=frozenset({"AmiGuard-Sweep"}),
)
_STATE_MACHINE = "arn:aws:states:eu-west-1:111122223333:stateMachine:AmiGuard-Sweep"
_SOURCES = (
    "sns.amazonaws.com",
    "kms.amazonaws.com",
    "iam.amazonaws.com",
    "sqs.amazonaws.com",
    "dynamodb.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "states.amazonaws.com",
    "scheduler.amazonaws.com",
)


@pytest.mark.parametrize(
    ("name", "rec", "expected"),
    [
        (
            "alert topic deleted",
            r.service_call("sns.amazonaws.com", "DeleteTopic", {"topicArn": _TOPIC}),
            ["guard-tampered"],
        ),
        (
            "another topic deleted",
            r.service_call("sns.amazonaws.com", "DeleteTopic", {"topicArn": _TOPIC.replace("X1", "Other")}),
            [],
        ),
        (
            "a trail stopped",
            r.service_call("cloudtrail.amazonaws.com", "StopLogging", {"name": "main"}),
            ["guard-tampered"],
        ),
        (
            "sweep state machine deleted",
            r.service_call("states.amazonaws.com", "DeleteStateMachine", {"stateMachineArn": _STATE_MACHINE}),
            ["guard-tampered"],
        ),
        (
            "sweep state machine redefined",
            r.service_call(
                "states.amazonaws.com",
                "UpdateStateMachine",
                {
                    "stateMachineArn": _STATE_MACHINE,
                    "definition": '{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}',
                },
            ),
            ["guard-tampered"],
        ),
        (
            "another state machine deleted",
            r.service_call("states.amazonaws.com", "DeleteStateMachine", {"stateMachineArn": _STATE_MACHINE + "-Copy"}),
            [],
        ),
        (
            "sweep state machine read",
            r.service_call("states.amazonaws.com", "DescribeStateMachine", {"stateMachineArn": _STATE_MACHINE}),
            [],
        ),
        (
            "failed delete of the sweep state machine",
            r.service_call(
                "states.amazonaws.com",
                "DeleteStateMachine",
                {"stateMachineArn": _STATE_MACHINE},
                error_code="AccessDeniedException",
            ),
            [],
        ),
        (
            "sweep schedule deleted",
            r.service_call("scheduler.amazonaws.com", "DeleteSchedule", {"name": "AmiGuard-Sweep"}),
            ["guard-tampered"],
        ),
        (
            "sweep schedule disabled (default group named)",
            r.service_call(
                "scheduler.amazonaws.com",
                "UpdateSchedule",
                {"Name": "AmiGuard-Sweep", "GroupName": "default", "State": "DISABLED"},
            ),
            ["guard-tampered"],
        ),
        (
            "a schedule of the same name in another group",
            r.service_call(
                "scheduler.amazonaws.com", "DeleteSchedule", {"name": "AmiGuard-Sweep", "groupName": "reports"}
            ),
            [],
        ),
        (
            "another schedule deleted",
            r.service_call("scheduler.amazonaws.com", "DeleteSchedule", {"name": "nightly-report"}),
            [],
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_guard_rule(name: str, rec: dict[str, Any], expected: list[str]) -> None:
    call = parse_call(Envelope(rec), _SOURCES)
    change = guard_change(call)
    found = guard_tampered(call, change, _WATCHED) if change is not None else None
    assert ([found.rule_id] if found is not None else []) == expected


def tampered(rec: dict[str, Any], watched: Watched = _WATCHED) -> Any:
    call = parse_call(Envelope(rec), _SOURCES)
    change = guard_change(call)
    assert change is not None
    return guard_tampered(call, change, watched)


@pytest.mark.parametrize(
    ("rec", "title", "resource"),
    [
        (
            r.service_call("sns.amazonaws.com", "Unsubscribe", {"subscriptionArn": f"{_TOPIC}:abc-123"}),
            f"AMI Guard alert topic {_TOPIC} changed: Unsubscribe in eu-west-1",
            ("sns-topic", _TOPIC, _TOPIC),
        ),
        (
            r.service_call("kms.amazonaws.com", "DisableKey", {"keyId": _KEY}),
            f"AMI Guard alert topic key {_KEY} changed: DisableKey in eu-west-1",
            ("kms-key", _KEY, f"arn:aws:kms:eu-west-1:111122223333:key/{_KEY}"),
        ),
        (
            r.service_call(
                "iam.amazonaws.com",
                "PutRolePolicy",
                {"roleName": "AmiGuard-ImageGuard-us-gov-west-1"},
                region="us-east-1",
            ),
            "AMI Guard IAM role AmiGuard-ImageGuard-us-gov-west-1 changed: PutRolePolicy in us-east-1",
            (
                "iam-role",
                "AmiGuard-ImageGuard-us-gov-west-1",
                "arn:aws:iam::111122223333:role/AmiGuard-ImageGuard-us-gov-west-1",
            ),
        ),
        (
            r.service_call(
                "sqs.amazonaws.com",
                "PurgeQueue",
                {"queueUrl": "https://eu-west-1.queue.amazonaws.com/111122223333/AmiGuard-Q1"},
            ),
            "AMI Guard failed-events queue AmiGuard-Q1 changed: PurgeQueue in eu-west-1",
            ("sqs-queue", "AmiGuard-Q1", "arn:aws:sqs:eu-west-1:111122223333:AmiGuard-Q1"),
        ),
        (
            r.service_call("dynamodb.amazonaws.com", "DeleteTable", {"tableName": "AmiGuard-T1"}),
            "AMI Guard idempotency table AmiGuard-T1 changed: DeleteTable in eu-west-1",
            ("dynamodb-table", "AmiGuard-T1", "arn:aws:dynamodb:eu-west-1:111122223333:table/AmiGuard-T1"),
        ),
        (
            r.service_call("cloudtrail.amazonaws.com", "StopLogging", {"name": "someone-elses-trail"}),
            "AMI Guard CloudTrail trail someone-elses-trail changed: StopLogging in eu-west-1",
            (
                "cloudtrail-trail",
                "someone-elses-trail",
                "arn:aws:cloudtrail:eu-west-1:111122223333:trail/someone-elses-trail",
            ),
        ),
    ],
)
def test_guard_tampered_names_the_silenced_resource(
    rec: dict[str, Any], title: str, resource: tuple[str, str, str]
) -> None:
    finding = tampered(rec)

    assert finding is not None
    assert (finding.rule_id, finding.severity.name, finding.title) == ("guard-tampered", "CRITICAL", title)
    assert [(res.kind, res.id, res.arn) for res in finding.resources] == [resource]
    assert finding.evidence["eventName"] == rec["eventName"]


@pytest.mark.parametrize(
    "rec",
    [
        r.service_call("sns.amazonaws.com", "DeleteTopic", {"topicArn": _TOPIC + "-copy"}),
        r.service_call("sns.amazonaws.com", "Unsubscribe", {"subscriptionArn": f"{_TOPIC}-copy:abc-123"}),
        r.service_call("kms.amazonaws.com", "DisableKey", {"keyId": "aaaabbbb-cccc-dddd-eeee-ffff00001111"}),
        r.service_call("iam.amazonaws.com", "DeleteRole", {"roleName": "AmiGuard-ImageGuard-"}, region="us-east-1"),
        r.service_call(
            "iam.amazonaws.com", "DeleteRole", {"roleName": "AmiGuard-ImageGuard-eu-west-1x"}, region="us-east-1"
        ),
        r.service_call(
            "iam.amazonaws.com", "DeleteRole", {"roleName": "AmiGuard-LaunchGuard-eu-west-1"}, region="us-east-1"
        ),
        r.service_call(
            "sqs.amazonaws.com", "DeleteQueue", {"queueUrl": "https://sqs.eu-west-1.amazonaws.com/1/AmiGuard-Q2"}
        ),
        r.service_call("dynamodb.amazonaws.com", "DeleteTable", {"tableName": "AmiGuard-T2"}),
        r.service_call("cloudtrail.amazonaws.com", "StopLogging", {"name": "t"}, error_code="AccessDenied"),
    ],
)
def test_guard_tampered_is_silent_for_what_is_not_the_guards_or_did_not_happen(rec: dict[str, Any]) -> None:
    assert tampered(rec) is None


def test_trails_count_only_when_the_function_watches_them() -> None:
    rec = r.service_call("cloudtrail.amazonaws.com", "DeleteTrail", {"name": "management"})

    assert tampered(rec, Watched(trails=False)) is None
    assert tampered(rec, Watched(trails=True)) is not None


def test_a_function_accepts_the_sources_of_what_it_watches_only() -> None:
    assert Watched(functions=frozenset({"f"}), queues=frozenset({"q"}), trails=True).sources == (
        "lambda.amazonaws.com",
        "sqs.amazonaws.com",
        "cloudtrail.amazonaws.com",
    )
    assert Watched().sources == ()
    assert Watched(state_machines=frozenset({"m"}), schedules=frozenset({"s"})).sources == (
        "states.amazonaws.com",
        "scheduler.amazonaws.com",
    )
