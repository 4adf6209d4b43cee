"""Instance type look-ups: bundled snapshot, DescribeInstanceTypes pages, and the family rule for unknown types."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ami_guard.instance_types import (
    PARAVIRTUAL_FAMILIES,
    PREVIOUS_GENERATION_FAMILIES,
    RETIRED_FAMILIES,
    InstanceTypeInfo,
    InstanceTypeTable,
    bundled_table,
    family_of,
    infer,
)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "functions" / "ami_guard" / "data" / "instance_types.json"
HVM_ONLY = frozenset({"hvm"})
HVM_AND_PV = frozenset({"hvm", "paravirtual"})


@pytest.fixture(scope="module")
def table() -> InstanceTypeTable:
    return bundled_table()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize(
    ("instance_type", "virtualization_types", "current_generation"),
    [
        ("m1.small", HVM_AND_PV, False),
        ("t1.micro", HVM_AND_PV, False),
        ("c3.large", HVM_AND_PV, False),
        ("m3.medium", HVM_AND_PV, False),
        ("c1.medium", HVM_AND_PV, False),
        ("m2.4xlarge", HVM_AND_PV, False),
        ("m5.large", HVM_ONLY, True),
        ("t3.micro", HVM_ONLY, True),
        ("c5.large", HVM_ONLY, True),
        ("t2.micro", HVM_ONLY, True),
        ("d2.xlarge", HVM_ONLY, True),
        ("r7g.large", HVM_ONLY, True),
        ("m4.large", HVM_ONLY, False),
        ("c4.large", HVM_ONLY, False),
        ("a1.medium", HVM_ONLY, False),
        ("p3dn.24xlarge", HVM_ONLY, False),
        ("g3.4xlarge", HVM_ONLY, False),
    ],
)
def test_bundled_table_knows_virtualization_and_generation(
    table: InstanceTypeTable, instance_type: str, virtualization_types: frozenset[str], current_generation: bool
) -> None:
    # Given the bundled snapshot / When a known type is looked up
    info = table.get(instance_type)

    # Then it carries the published virtualization types and generation
    assert info is not None
    assert info.source == "bundled"
    assert info.virtualization_types == virtualization_types
    assert info.current_generation is current_generation


@pytest.mark.parametrize("instance_type", ["m5.large", "t3.micro", "p2.xlarge", "c5.large"])
def test_modern_types_are_hvm_only(table: InstanceTypeTable, instance_type: str) -> None:
    # Given a type launched after PV was dropped / When looked up
    info = table.get(instance_type)

    # Then a paravirtual AMI cannot run on it
    assert info is not None
    assert info.virtualization_types == HVM_ONLY
    assert not info.supports("paravirtual")
    assert info.supports("HVM")


@pytest.mark.parametrize(
    ("family", "sample_size"),
    [(family, size) for family in sorted(PREVIOUS_GENERATION_FAMILIES) for size in ("large", "24xlarge")],
)
def test_published_previous_generation_families_are_not_current(family: str, sample_size: str) -> None:
    # Given any type in a family AWS lists as previous generation / When classified
    info = bundled_table().get(f"{family}.{sample_size}")

    # Then it is previous generation, whether bundled or inferred
    assert info is not None
    assert info.current_generation is False


@pytest.mark.parametrize(
    "instance_type",
    ["m5.large", "m6i.large", "m7i.large", "c6gn.medium", "c7g.large", "r5.large", "r6i.large", "r7gd.large",
     "g5.xlarge", "t4g.nano", "x2idn.metal", "u7i-12tb.224xlarge", "mac2-m2pro.metal", "p6-b200.48xlarge",
     "c7i-flex.large", "m7i.metal-48xl"],
)  # fmt: skip
def test_current_generation_families_are_current(table: InstanceTypeTable, instance_type: str) -> None:
    # Given a type in a family AWS lists as current generation / When looked up
    info = table.get(instance_type)

    # Then it is current generation
    assert info is not None
    assert info.current_generation is True


def test_every_bundled_type_agrees_with_the_published_generation_lists(table: InstanceTypeTable) -> None:
    # Given every type in the snapshot, and the families AWS lists as previous generation (or retired)
    previous = PREVIOUS_GENERATION_FAMILIES | RETIRED_FAMILIES

    # When each type's generation is compared with its family's
    in_previous_family_but_current = [
        i.instance_type for i in table if family_of(i.instance_type) in previous and i.current_generation
    ]
    elsewhere_but_previous = [
        i.instance_type for i in table if family_of(i.instance_type) not in previous and not i.current_generation
    ]

    # Then previous generation exactly when the family is on that list
    assert len(table) > 1000
    assert in_previous_family_but_current == []
    assert elsewhere_but_previous == []


def test_every_paravirtual_type_is_previous_generation_in_a_published_pv_family(table: InstanceTypeTable) -> None:
    # Given every type in the snapshot that supports PV
    paravirtual = [info for info in table if info.supports_paravirtual]

    # Then each is previous generation and in a family AWS documents for PV, and each such family has PV
    assert {family_of(info.instance_type) for info in paravirtual} == PARAVIRTUAL_FAMILIES
    assert all(not info.current_generation for info in paravirtual)
    assert all(info.supports_paravirtual for info in table if family_of(info.instance_type) in PARAVIRTUAL_FAMILIES)


def test_every_bundled_type_supports_hvm(table: InstanceTypeTable) -> None:
    # Then: "All current generation instance types support HVM AMIs", and the snapshot has HVM everywhere
    assert all(info.supports("hvm") for info in table)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("P2.XLARGE", "p2.xlarge"),
        ("  m5.large\n", "m5.large"),
        ("M1.Small", "m1.small"),
        ("u7i-12tb.224xlarge", "u7i-12tb.224xlarge"),
        ("C7I-FLEX.LARGE", "c7i-flex.large"),
    ],
)
def test_instance_type_strings_are_normalised(table: InstanceTypeTable, raw: str, expected: str) -> None:
    # Given a type written with odd case or whitespace / When looked up
    info = table.get(raw)

    # Then it is found under its canonical lower-case name
    assert info is not None
    assert info.instance_type == expected


@pytest.mark.parametrize(
    "raw",
    [None, 42, 1.5, b"m5.large", ["m5.large"], {"m5.large": 1}, "", "   ", "m5", "m5.", ".large", "m5 .large",
     "m5.large.search", "db.m5.large", "m5.banana", "large.m5", "foo.large", "m5_large", "m5.large;drop",
     "m5.large" + "x" * 100, "\uff4d5.large", "m5.large\x00", "-m5.large", "m5-.large"],
)  # fmt: skip
def test_malformed_input_returns_none_and_never_raises(table: InstanceTypeTable, raw: object) -> None:
    # Given something that is not an instance type name / When looked up or inferred
    # Then the answer is None, not an exception
    assert table.get(raw) is None
    assert infer(raw) is None


@pytest.mark.parametrize(
    ("instance_type", "virtualization_types", "current_generation"),
    [
        ("m9g.large", HVM_ONLY, True),
        ("c99z.metal-96xl", HVM_ONLY, True),
        ("m4.48xlarge", HVM_ONLY, False),
        ("c3.16xlarge", HVM_AND_PV, False),
        ("p2.xlarge", HVM_ONLY, False),
        ("f1.2xlarge", HVM_ONLY, False),
        ("cc2.8xlarge", HVM_ONLY, False),
        ("hs1.8xlarge", HVM_AND_PV, False),
        ("HI1.4XLARGE", HVM_AND_PV, False),
    ],
)
def test_infer_classifies_by_family(
    instance_type: str, virtualization_types: frozenset[str], current_generation: bool
) -> None:
    # Given a well-formed type / When inferred from its family
    info = infer(instance_type)

    # Then the published family lists decide, and the answer says it was inferred
    assert info == InstanceTypeInfo(
        instance_type.lower(), virtualization_types, current_generation=current_generation, source="inferred"
    )


@pytest.mark.parametrize("instance_type", ["m99g.large", "p2.xlarge", "cg1.4xlarge", "t9.nano"])
def test_unknown_well_formed_types_fall_back_to_inference(table: InstanceTypeTable, instance_type: str) -> None:
    # Given a type absent from the snapshot / When looked up
    info = table.get(instance_type)

    # Then the table answers by inference rather than None
    assert instance_type not in table
    assert info is not None
    assert info.source == "inferred"


DESCRIBE_PAGES: list[dict[str, Any]] = [
    {
        "InstanceTypes": [
            {
                "InstanceType": "m1.small",
                "CurrentGeneration": False,
                "FreeTierEligible": False,
                "SupportedUsageClasses": ["on-demand", "spot"],
                "SupportedRootDeviceTypes": ["ebs", "instance-store"],
                "SupportedVirtualizationTypes": ["hvm", "paravirtual"],
                "BareMetal": False,
                "Hypervisor": "xen",
                "ProcessorInfo": {"SupportedArchitectures": ["i386", "x86_64"]},
                "VCpuInfo": {"DefaultVCpus": 1},
                "MemoryInfo": {"SizeInMiB": 1740},
            },
            {
                "InstanceType": "m5.large",
                "CurrentGeneration": True,
                "SupportedVirtualizationTypes": ["hvm"],
                "Hypervisor": "nitro",
                "ProcessorInfo": {"SupportedArchitectures": ["x86_64"], "SustainedClockSpeedInGhz": 3.1},
            },
            {"InstanceType": "broken.thing", "CurrentGeneration": True, "SupportedVirtualizationTypes": ["hvm"]},
            {"InstanceType": "t3.micro", "SupportedVirtualizationTypes": ["hvm"]},
            {"InstanceType": "c5.large", "CurrentGeneration": True, "SupportedVirtualizationTypes": "hvm"},
            "not-a-mapping",
        ],
        "NextToken": "token-1",
        "ResponseMetadata": {"HTTPStatusCode": 200},
    },
    {
        "InstanceTypes": [
            {"InstanceType": "R7G.LARGE", "CurrentGeneration": True, "SupportedVirtualizationTypes": ["HVM"]},
        ],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    },
    {"ResponseMetadata": {"HTTPStatusCode": 200}},
]


@pytest.mark.parametrize(
    ("instance_type", "virtualization_types", "current_generation"),
    [("m1.small", HVM_AND_PV, False), ("m5.large", HVM_ONLY, True), ("r7g.large", HVM_ONLY, True)],
)
def test_from_describe_pages_reads_the_api_shape(
    instance_type: str, virtualization_types: frozenset[str], current_generation: bool
) -> None:
    # Given DescribeInstanceTypes pages as the paginator yields them
    table = InstanceTypeTable.from_describe_pages(DESCRIBE_PAGES)

    # When a returned type is looked up
    info = table.get(instance_type)

    # Then it comes from the API with the API's values
    assert info == InstanceTypeInfo(
        instance_type, virtualization_types, current_generation=current_generation, source="api"
    )


def test_from_describe_pages_skips_malformed_items() -> None:
    # Given pages with entries missing fields or of the wrong shape
    table = InstanceTypeTable.from_describe_pages(DESCRIBE_PAGES)

    # Then only the three well-formed entries are kept, and the rest are answered by inference
    assert len(table) == 3
    assert "t3.micro" not in table
    t3 = table.get("t3.micro")
    assert t3 is not None and t3.source == "inferred"


def test_from_describe_pages_uses_the_fallback_for_types_the_region_lacks() -> None:
    # Given an API table backed by the bundled snapshot
    table = InstanceTypeTable.from_describe_pages(DESCRIBE_PAGES, fallback=bundled_table())

    # When a type the API did not return is looked up / Then the snapshot answers
    c3 = table.get("c3.large")
    m1 = table.get("m1.small")
    assert c3 is not None and c3.source == "bundled"
    assert m1 is not None and m1.source == "api"


def test_from_describe_pages_reads_moto_describe_instance_types() -> None:
    # Given moto's EC2 with the real client and paginator
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        pages = list(client.get_paginator("describe_instance_types").paginate(InstanceTypes=["t1.micro", "m5.large"]))

    # When parsed
    table = InstanceTypeTable.from_describe_pages(pages)

    # Then the response shape is understood
    t1 = table.get("t1.micro")
    assert len(table) == 2
    assert t1 is not None and t1.supports("paravirtual") and t1.source == "api"


def test_the_json_is_not_read_at_import_time() -> None:
    # Given a fresh interpreter that records every file it opens
    script = """
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
import ami_guard.instance_types as module
at_import = [path for path in opened if path.endswith("instance_types.json")]
assert module.infer("m9g.large") is not None
assert not [path for path in opened if path.endswith("instance_types.json")], "infer() read the JSON"
module.bundled_table().get("m5.large")
after_use = [path for path in opened if path.endswith("instance_types.json")]
print(len(at_import), len(after_use))
"""
    environment = dict(os.environ, PYTHONPATH=str(REPO / "functions"))

    # When the module is imported, then used
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True, timeout=60
    )

    # Then the JSON is opened on first use only
    assert result.stdout.split() == ["0", "1"]


def test_bundled_table_is_loaded_once() -> None:
    # Then repeated calls share one table
    assert bundled_table() is bundled_table()


def test_the_snapshot_file_is_small_dated_and_sourced(document: Mapping[str, Any]) -> None:
    # Then the file stays small, says where its values come from and when, and lists its corrections
    assert DATA.stat().st_size < 300_000
    assert len(str(document["generated"])) == 10
    assert document["source"]
    assert document["references"]["previous_generation_families"].startswith("https://docs.aws.amazon.com/")
    assert document["corrections"]
    assert sorted(document["published"]["previous_generation_families"]) == sorted(PREVIOUS_GENERATION_FAMILIES)
    assert all(name == name.strip().lower() for name in document["types"])


def test_every_bundled_name_is_understood(document: Mapping[str, Any], table: InstanceTypeTable) -> None:
    # Then no entry in the file is silently dropped by the loader
    assert len(table) == len(document["types"])


def test_the_snapshot_is_what_the_tool_regenerates_from_moto(document: Mapping[str, Any]) -> None:
    # Given the moto version the snapshot was made from
    if not str(document["source"]).startswith(f"moto {importlib.metadata.version('moto')}:"):
        pytest.skip("snapshot was not generated from the installed moto; regenerate and review the diff")
    spec = importlib.util.spec_from_file_location(
        "regenerate_instance_types", REPO / "tools" / "regenerate_instance_types.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    # When the tool's offline path runs again
    records, _ = tool.load_moto(None)
    types, _, _ = tool.check(records, apply=True)

    # Then it reproduces the committed entries exactly
    assert types == document["types"]
