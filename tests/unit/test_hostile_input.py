"""Hostile input: mutated real and own records never crash the engine, the handler layer or the CLI."""

from __future__ import annotations

import copy
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami_guard import alerts, cli, contract
from ami_guard.config import parse_policy
from ami_guard.engine import evaluate
from ami_guard.events import SkipEvent, iter_records, parse_call
from ami_guard.guard import Dependencies, process
from ami_guard.offline import OfflineLookups
from ami_guard.rules import Watched
from tests import records as r
from tests.corpus import sample_files
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
SEEDS: list[Any] = OWN + [json.loads(p.read_text()) for p in sample_files()]
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
def mutated(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
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


@pytest.mark.parametrize("deep", DEPTHS)
def test_engine_never_raises_on_mutated_records(deep: bool) -> None:
    fuzz(500, deep)(given(mutated())(engine_never_raises))()


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


@pytest.mark.parametrize("deep", DEPTHS)
def test_cli_never_crashes_on_mutated_files(deep: bool, tmp_path: Path) -> None:
    def cli_never_crashes(document: Any) -> None:
        path = tmp_path / "record.json"
        path.write_text(json.dumps(document, default=str))
        code = cli.main(["evaluate", "--offline", "--config", str(tmp_path / "absent.json"), str(path)])
        assert code in (0, 2)

    fuzz(100, deep)(given(mutated())(cli_never_crashes))()


class _Publisher:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, alert: alerts.Alert) -> str:
        self.sent.append(alert.sns_message())
        assert len(alert.subject) < 100 and alert.subject.isascii()
        return "m"


@pytest.mark.parametrize("deep", DEPTHS)
def test_handler_layer_returns_and_logs_each_skip_once(deep: bool) -> None:
    fuzz(400, deep)(given(mutated())(handler_returns_and_logs_skips_once))()


def handler_returns_and_logs_skips_once(document: Any) -> None:
    event = document if isinstance(document, dict) and "detail-type" in document else r.envelope_of(document)
    stream = io.StringIO()
    deps = Dependencies(
        policy=POLICY,
        lookups=FakeAccount(),
        actions=FakeAccount(),
        publisher=_Publisher(),
        accepted_events=contract.PERMISSION_EVENTS + contract.LAUNCH_EVENTS + contract.IMAGE_EVENTS,
        watched=Watched(functions=frozenset({"AmiGuard-LaunchGuard"}), rules=frozenset({"AmiGuard-LaunchRule"})),
    )
    summary = process(event, deps, fresh_logger(stream))
    lines = [json.loads(line) for line in stream.getvalue().split("\n") if line]
    if summary["status"] == "skipped":
        assert [line["message"] for line in lines] == ["Skipped event"]
    else:
        assert lines[-1]["message"] == "Evaluated event"
