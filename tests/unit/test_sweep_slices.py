"""A checkpointed sweep evaluates one page at a time: the same rules over a slice of the region's facts, the
account-level rules only over the slice that read the settings; and a run resolves only what it did not see and was
opened before it started."""

from __future__ import annotations

from collections import Counter

import pytest

from ami_guard.config import parse_policy
from ami_guard.lifecycle import OpenFinding, opened_before, unseen
from ami_guard.sweep.collect import merged
from ami_guard.sweep.evaluate import evaluate_region
from ami_guard.sweep.facts import NOT_READ, AccountSettings, OwnedImage, RegionPosture

ACCOUNT, REGION = "111122223333", "eu-west-1"
POLICY = parse_policy({"minSeverity": "LOW"})
WEAK = AccountSettings("unblocked", "unblocked", "disabled")
UNREAD = AccountSettings(None, None, None, {"allowed_images": "UnauthorizedOperation: no"})


def image(image_id: str, *, public: bool = False) -> OwnedImage:
    return OwnedImage(image_id, REGION, image_id, public, "hvm", "ebs", None, None, {}, (), None, "available", None)


def posture(*, images: tuple[OwnedImage, ...] = (), settings: AccountSettings | None = None) -> RegionPosture:
    return RegionPosture(
        ACCOUNT,
        REGION,
        images,
        (),
        (),
        settings if settings is not None else NOT_READ,
        {},
        Counter(),
        Counter(),
        (),
        settings_read=settings is not None,
    )


def rules(found: object) -> list[tuple[str, str]]:
    return sorted((f.rule_id, f.resources[0].id) for f in found.findings)  # type: ignore[attr-defined]


def test_a_page_that_did_not_read_the_settings_neither_raises_nor_leaves_them_undecided() -> None:
    # Given the image page of a checkpointed sweep: one public image, the settings not read by it
    page = posture(images=(image("ami-0a0a0a0a0a0a0a0a0", public=True),))

    # When it is evaluated
    found = evaluate_region(page, POLICY)

    # Then only its image's finding: nothing about the account's settings, decided or not
    assert rules(found) == [("ami-public", "ami-0a0a0a0a0a0a0a0a0")]
    assert found.undecided == ()


def test_the_settings_slice_decides_the_account_level_rules_once() -> None:
    # Given the settings slice (guardrails off) and an image page
    settings = posture(settings=WEAK)
    page = posture(images=(image("ami-0a0a0a0a0a0a0a0a0", public=True),))

    # When each is evaluated, then the account-level findings come from the settings slice alone, once each
    assert rules(evaluate_region(settings, POLICY)) == [
        ("allowed-images-disabled", "allowed-images"),
        ("ami-block-public-access-disabled", "image-block-public-access"),
        ("snapshot-block-public-access-disabled", "snapshot-block-public-access"),
    ]
    # And the slices together find exactly what the merged region finds
    whole = evaluate_region(merged(ACCOUNT, REGION, [settings, page]), POLICY)
    assert rules(whole) == sorted(rules(evaluate_region(settings, POLICY)) + rules(evaluate_region(page, POLICY)))


def test_a_setting_the_settings_slice_could_not_read_is_undecided_there() -> None:
    found = evaluate_region(posture(settings=UNREAD._replace(image_block_public_access="block-new-sharing")), POLICY)

    assert sorted((u.rule_id, u.subject) for u in found.undecided) == [
        ("allowed-images-disabled", "account-setting:allowed-images"),
        ("snapshot-block-public-access-disabled", "account-setting:snapshot-block-public-access"),
    ]


def record(key: str, first_seen: str, seen_run: str | None) -> OpenFinding:
    return OpenFinding(key, "ami-public", "CRITICAL", "t", ACCOUNT, REGION, "image", key, "event", first_seen, seen_run)


def test_a_run_resolves_what_it_did_not_see_and_was_opened_before_it_started() -> None:
    # Given a run that started at 06:00 and open findings of the account-region
    started = "2026-11-30T06:00:00Z"
    gone = record("gone", "2026-11-29T10:00:00Z", "run-0")
    seen = record("seen", "2026-11-29T10:00:00Z", "run-1")
    # an event opened this one at 06:05, while the run read the pages (a page read before the change missed it)
    during = record("during", "2026-11-30T06:05:00Z", None)
    at_start = record("at-start", started, None)
    never_stamped = record("never-stamped", "", None)

    resolved = unseen({r.key: r for r in (gone, seen, during, at_start, never_stamped)}, "run-1", started)

    # Then only what the run did not see and that was open before it started
    assert [r.key for r in resolved] == ["gone", "never-stamped"]


@pytest.mark.parametrize(
    ("first_seen", "started", "before"),
    [
        # the previous run's own finding, stamped to the millisecond, earlier in the same second as this run's start
        ("2026-11-30T06:00:00.120Z", "2026-11-30T06:00:00.480Z", True),
        ("2026-11-30T06:00:00.480Z", "2026-11-30T06:00:00.480Z", False),
        # an event's eventTime, given to the second: it may be anywhere in that second, so it is not "before" a run
        # that started within it, only before one that started after it
        ("2026-11-30T06:00:00Z", "2026-11-30T06:00:00.999Z", False),
        ("2026-11-30T06:00:00Z", "2026-11-30T06:00:01.000Z", True),
        ("2026-11-30T05:59:59Z", "2026-11-30T06:00:00Z", True),
        ("2026-11-30T06:00:00Z", "2026-11-30T06:00:00Z", False),
        # never stamped (an event without a time): not held back
        ("", "2026-11-30T06:00:00.000Z", True),
        ("not a time", "2026-11-30T06:00:00.000Z", True),
    ],
)
def test_opened_before_a_run_reads_a_second_as_any_instant_within_it(
    first_seen: str, started: str, before: bool
) -> None:
    assert opened_before(first_seen, started) is before


def test_stamps_are_utc_to_the_millisecond() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from ami_guard.findings import utc_millis

    assert utc_millis(datetime(2026, 11, 30, 6, 0, 0, 123_456, tzinfo=UTC)) == "2026-11-30T06:00:00.123Z"
    assert utc_millis(datetime(2026, 11, 30, 6, 0, 0)) == "2026-11-30T06:00:00.000Z"
    assert utc_millis(datetime(2026, 11, 30, 7, 0, 0, 5_000, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-11-30T06:00:00.005Z"
    )
