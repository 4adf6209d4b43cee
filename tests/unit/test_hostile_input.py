"""Hostile input: mutated real and own records never crash the engine, the handler layer or the CLI; any value a
record holds leaves an alert deliverable (one SNS message) and its email's layout ours; console links stay AWS's."""

from __future__ import annotations

import copy
import io
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aws_lambda_powertools import Logger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami_guard import alerts, cli
from ami_guard.config import parse_policy
from ami_guard.engine import evaluate
from ami_guard.events import Envelope, SkipEvent, iter_records, parse_call
from ami_guard.findings import Finding, Resource, Severity
from ami_guard.guard import Dependencies, process
from ami_guard.offline import OfflineLookups
from ami_guard.rules import Watched
from ami_guard.rules.catalog import routes
from tests import records as r
from tests.corpus import AVAILABLE, SKIP_REASON, sample_files
from tests.fakes import FakeAccount


def fresh_logger(stream: io.StringIO) -> Logger:
    return Logger(service=f"ami-guard-fuzz-{uuid.uuid4()}", stream=stream)


OWN = [
    r.lambda_call("UpdateFunctionConfiguration20150331v2", "AmiGuard-LaunchGuard"),
    r.events_call("DisableRule", "arn:aws:events:eu-west-1:111122223333:rule/AmiGuard-LaunchRule"),
    r.modify_image_attribute("ami-1", [{"group": "all"}, {"userId": "444455556666"}]),
    r.modify_snapshot_attribute("snap-1", [{"group": "all"}]),
    r.disable_block_public_access(),
    r.register_image("ami-2", image_location="b/x.manifest.xml"),
    r.create_image("ami-3", tags={"Owner": "x"}),
    r.copy_image("ami-4", "ami-5"),
    r.run_instances("ami-6", "m1.small", virtualization_type=None),
    r.run_instances("ami-6", "m5.large", error_code="Client.InvalidParameterCombination", error_message="x"),
]
# The seeds come in two parts, each its own test case: our records (always here) and the real CloudTrail records
# of ../shared/cloudtrail-samples. Without the corpus its cases are skipped with a reason that names it, so that a
# run on fewer seeds is visible in the summary instead of passing quietly.
SEEDS: dict[str, list[Any]] = {"own": OWN, "corpus": [json.loads(p.read_text()) for p in sample_files()]}
SEED_SETS = [
    pytest.param("own", id="own-records"),
    pytest.param(
        "corpus",
        id="real-corpus",
        marks=pytest.mark.skipif(
            not AVAILABLE,
            reason=f"fuzzing seeded with the real CloudTrail records skipped, only our own were mutated: {SKIP_REASON}",
        ),
    ),
]
# `make test` runs a fixed, derandomized set of examples (a red build means a real bug, never luck); the opt-in
# marker (`pytest -m deep`, or `make fuzz`) runs twenty times as many, freshly random, to hunt for new ones.
DEPTHS = [pytest.param(False, id="ci"), pytest.param(True, id="deep", marks=pytest.mark.deep)]


def fuzz(examples: int, deep: bool) -> settings:
    return settings(
        max_examples=examples * (20 if deep else 1),
        derandomize=not deep,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


POLICY = parse_policy({"trustedAccounts": ["555566667777"], "requiredTags": ["Owner"], "remediate": True})

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=50),
    st.just("x" * 100_000),
    st.just("\u202e\U0001f600\x00"),
    st.lists(st.integers(), max_size=3),
    st.just({"items": None}),
    st.just({"value": {"value": []}}),
    st.recursive(st.none(), lambda inner: st.dictionaries(st.text(max_size=5), inner, max_size=2), max_leaves=30),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, seeds: str) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(SEEDS[seeds])))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        if not path:
            document = copy.deepcopy(draw(ODD_VALUES))
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(ODD_VALUES))
    return document


@pytest.mark.parametrize("seeds", SEED_SETS)
@pytest.mark.parametrize("deep", DEPTHS)
def test_engine_never_raises_on_mutated_records(deep: bool, seeds: str) -> None:
    fuzz(250, deep)(given(mutated(seeds))(engine_never_raises))()


def engine_never_raises(document: Any) -> None:
    for envelope in iter_records(document):
        try:
            call = parse_call(envelope)
        except SkipEvent as exc:
            assert exc.reason
            continue
        evaluation = evaluate(call, POLICY, OfflineLookups())
        for finding in evaluation.findings:
            json.dumps(finding.evidence, default=str)


@pytest.mark.parametrize("seeds", SEED_SETS)
@pytest.mark.parametrize("deep", DEPTHS)
def test_cli_never_crashes_on_mutated_files(deep: bool, seeds: str, tmp_path: Path) -> None:
    def cli_never_crashes(document: Any) -> None:
        path = tmp_path / "record.json"
        path.write_text(json.dumps(document, default=str))
        code = cli.main(["evaluate", "--offline", "--config", str(tmp_path / "absent.json"), str(path)])
        assert code in (0, 2)

    fuzz(50, deep)(given(mutated(seeds))(cli_never_crashes))()


class _Publisher:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, alert: alerts.Alert) -> str:
        self.sent.append(alert.sns_message())
        assert_deliverable(alert)
        return "m"


@pytest.mark.parametrize("seeds", SEED_SETS)
@pytest.mark.parametrize("deep", DEPTHS)
def test_handler_layer_returns_and_logs_each_skip_once(deep: bool, seeds: str) -> None:
    fuzz(200, deep)(given(mutated(seeds))(handler_returns_and_logs_skips_once))()


def handler_returns_and_logs_skips_once(document: Any) -> None:
    event = document if isinstance(document, dict) and "detail-type" in document else r.envelope_of(document)
    stream = io.StringIO()
    deps = Dependencies(
        policy=POLICY,
        lookups=FakeAccount(),
        actions=FakeAccount(),
        publisher=_Publisher(),
        routes=routes(),
        watched=Watched(functions=frozenset({"AmiGuard-LaunchGuard"}), rules=frozenset({"AmiGuard-LaunchRule"})),
    )
    summary = process(event, deps, fresh_logger(stream))
    lines = [json.loads(line) for line in stream.getvalue().split("\n") if line]
    if summary["status"] == "skipped":
        assert [line["message"] for line in lines] == ["Skipped event"]
    else:
        assert lines[-1]["message"] == "Evaluated event"


# --- alerts: deliverable and never forged, whatever the record holds ----------------------------------

SNS_LIMIT = 262_144
HEADINGS = ["WHAT HAPPENED", "WHO", "WHEN", "RESOURCES", "EVIDENCE", "ACTION TAKEN", "WHAT TO DO"]


def publish_bytes(alert: alerts.Alert) -> int:
    """Measured here as SnsPublisher sends it: the MessageStructure=json body, the subject, the attributes."""
    body = json.dumps({"default": json.dumps(alert.document, sort_keys=True), "email": alert.email})
    size = len(body.encode()) + len(alert.subject.encode())
    return size + sum(len(k.encode()) + len(b"String") + len(v.encode()) for k, v in alert.attributes.items())


def assert_deliverable(alert: alerts.Alert) -> None:
    """Within SNS's limits, still naming rule, severity and event, and with the email's layout ours alone."""
    assert publish_bytes(alert) < SNS_LIMIT
    assert len(alert.subject) < 100 and alert.subject.isascii() and alert.subject.isprintable()
    assert all(value and value.isascii() and value.isprintable() for value in alert.attributes.values())
    document = json.loads(json.loads(alert.sns_message())["default"])
    assert document["rule_id"] and document["severity"] and document["event_id"]
    email = alert.email
    assert email.splitlines() == email.split("\n"), "a record value broke a line"
    top = [line for line in email.split("\n") if line and not line.startswith(" ")]
    shortened = ["SHORTENED"] if alert.truncated else []
    assert top[0].startswith(f"[{document['severity']}] ") and top[-1].startswith("-- AMI Guard | rule ")
    assert top[1:-1] == shortened + HEADINGS


HOSTILE_TEXT = st.lists(
    st.one_of(
        st.sampled_from([*HEADINGS, "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x1b[2J"]),
        st.sampled_from(["\u202e", "\u2066", "\u200b", "\ufeff", "\ud800", "\\", '"', "  ", "-- AMI Guard", "ami-"]),
        st.text(max_size=12),
    ),
    max_size=12,
).map("".join)
FIELDS = {
    "imageId": lambda rec, v: rec["requestParameters"].__setitem__("imageId", v),
    "errorMessage": lambda rec, v: rec.update(errorCode="Client.AuthFailure", errorMessage=v),
    "errorCode": lambda rec, v: rec.update(errorCode=v or "x", errorMessage="m"),
    "userAgent": lambda rec, v: rec.__setitem__("userAgent", v),
    "sourceIPAddress": lambda rec, v: rec.__setitem__("sourceIPAddress", v),
    "arn": lambda rec, v: rec["userIdentity"].__setitem__("arn", v),
    "type": lambda rec, v: rec["userIdentity"].__setitem__("type", v),
    "eventID": lambda rec, v: rec.__setitem__("eventID", v),
    "requestID": lambda rec, v: rec.__setitem__("requestID", v),
    "eventTime": lambda rec, v: rec.__setitem__("eventTime", v),
    "awsRegion": lambda rec, v: rec.__setitem__("awsRegion", v or "eu-west-1"),
    "recipientAccountId": lambda rec, v: rec.__setitem__("recipientAccountId", v),
    "userId": lambda rec, v: rec["requestParameters"]["launchPermission"]["add"]["items"].append({"userId": v}),
}


@settings(max_examples=300, derandomize=True, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(FIELDS)), HOSTILE_TEXT, min_size=1, max_size=4))
def test_any_record_string_leaves_the_email_sections_intact(values: dict[str, str]) -> None:
    record = r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}])
    for field, value in values.items():
        FIELDS[field](record, value)
    call = parse_call(Envelope(record))
    evaluation = evaluate(call, POLICY, OfflineLookups())
    assert evaluation.findings, "a public or refused share is always reported"
    for finding in evaluation.findings:
        assert_deliverable(alerts.render(finding, call))


BIG = st.sampled_from(["x" * 300_000, "\U0001f600" * 70_000, '"\\' * 50_000, "\u2028\n" * 40_000])
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), BIG),
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=8), inner, max_size=40),
    max_leaves=60,
)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidence=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6), extra=JSON_VALUES, title=HOSTILE_TEXT)
def test_any_evidence_fits_one_publish(evidence: dict[str, Any], extra: Any, title: str) -> None:
    call = parse_call(Envelope(r.modify_image_attribute("ami-1", [])))
    finding = Finding(
        rule_id="guard-tampered",
        severity=Severity.CRITICAL,
        title=title * 1000,
        description=f"{title} {evidence!r}"[:300_000],
        resources=tuple(Resource("image", title, "eu-west-1") for _ in range(40)),
        evidence=evidence,
        action={"status": "none", "detail": title, "extra": extra},
    )
    alert = alerts.render(finding, call)
    assert_deliverable(alert)
    json.dumps(alert.document, allow_nan=False)


KINDS = [
    *("image", "snapshot", "instance", "lambda-function", "events-rule", "account-setting"),
    *("sns-topic", "kms-key", "iam-role", "sqs-queue", "dynamodb-table", "cloudtrail-trail"),
]
CONSOLE_HOSTS = ("console.aws.amazon.com", "console.amazonaws.cn", "console.amazonaws-us-gov.com")
VALID_REGIONS = st.sampled_from(["eu-west-1", "us-gov-west-1", "cn-north-1", "us-iso-east-1", "ap-southeast-2"])
VALID_IDS = st.sampled_from(
    [
        "ami-0123456789abcdef0",
        "snap-0123456789abcdef0",
        "i-0123456789abcdef0",
        "AmiGuard-Rule",
        "ami-0abcdef1",
        "arn:aws:sns:eu-west-1:111122223333:ami-guard-alerts",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "AmiGuard-Role+x=y,z.@a",
    ]
)
REGIONS = st.one_of(
    VALID_REGIONS,
    st.tuples(VALID_REGIONS, HOSTILE_TEXT).map("".join),
    st.tuples(HOSTILE_TEXT, VALID_REGIONS).map("".join),
    st.from_regex(r"[a-z]{2}-[a-z]{1,12}-\d{1,3}", fullmatch=True),
    st.text(max_size=30),
    HOSTILE_TEXT,
)
IDS = st.one_of(
    st.from_regex(r"(ami|snap|i)-[0-9a-fA-F]{8,17}", fullmatch=True),
    VALID_IDS,
    st.tuples(VALID_IDS, HOSTILE_TEXT).map("".join),
    st.tuples(HOSTILE_TEXT, VALID_IDS).map("".join),
    st.text(max_size=30),
    HOSTILE_TEXT,
)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    region=REGIONS,
    rid=IDS,
)
def test_a_console_link_is_on_aws_console_for_its_region_or_absent(kind: str, region: str, rid: str) -> None:
    resource = Resource(kind, rid, region, "111122223333")
    url = resource.console_url
    if url is None:
        return
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.username is None and parts.port is None
    assert parts.hostname in {f"{region}.{host}" for host in CONSOLE_HOSTS}
    assert parts.netloc == parts.hostname and url.isascii() and url.isprintable()
    assert parts.query == f"region={region}" or not parts.path.startswith("/ec2/")
    assert resource.arn is not None and resource.arn.endswith(rid)
