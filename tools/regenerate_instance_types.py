"""Regenerate functions/ami_guard/data/instance_types.json and check it against AWS's published lists.

    python tools/regenerate_instance_types.py --region us-east-1 --out functions/ami_guard/data/instance_types.json
    python tools/regenerate_instance_types.py --region us-east-1 --region eu-west-1 --out ...   # union of regions
    python tools/regenerate_instance_types.py --from-moto --out ...   # offline: moto's DescribeInstanceTypes copy

The source (DescribeInstanceTypes in each region, or moto's copy of it) gives SupportedVirtualizationTypes and
CurrentGeneration per type. Those values are then checked against the lists AWS publishes in its documentation
(hard-coded below and in ami_guard.instance_types, with the page each comes from): a type whose family AWS lists
as previous generation must be previous generation, every other type current; only the PV families may support
paravirtual. Disagreements are printed and corrected (unless --no-correct), types that AWS documents but the
source lacks are added, and every correction is written into the file beside the data.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import importlib.metadata
import importlib.util
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from ami_guard.instance_types import (
    HVM,
    PARAVIRTUAL,
    PARAVIRTUAL_FAMILIES,
    PREVIOUS_GENERATION_FAMILIES,
    RETIRED_FAMILIES,
    RETIRED_PARAVIRTUAL_FAMILIES,
    InstanceTypeTable,
    family_of,
)

SCHEMA = 1


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


GUIDE = "https://docs.aws.amazon.com/ec2/latest/instancetypes"
TYPES_PAGE = f"{GUIDE}/instance-types.html"
PREVIOUS_PAGE = f"{GUIDE}/pg.html"
PV_PAGE = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ComponentsAMIs.html#virtualization_types"
OLD_GUIDE = "https://github.com/awsdocs/amazon-ec2-user-guide/blob/master/doc_source"
REFERENCES = {
    "previous_generation_families": f"{TYPES_PAGE}#previous-gen-instances",
    "previous_generation_types": PREVIOUS_PAGE,
    "current_generation_families": f"{TYPES_PAGE}#current-gen-instances",
    "current_generation_types": ", ".join(f"{GUIDE}/{page}.html" for page in ("gp", "co", "mo", "so", "ac", "hpc")),
    "paravirtual_families": PV_PAGE,
    "retired_families": f"{OLD_GUIDE}/instance-types.md, {OLD_GUIDE}/virtualization_types.md",
}

# instance-types.html, "Current generation instances" (families only; sizes are on the per-category pages).
PUBLISHED_CURRENT_FAMILIES = words(
    """
    m5 m5a m5ad m5d m5dn m5n m5zn m6a m6g m6gd m6i m6id m6idn m6in m7a m7g m7gd m7i m7i-flex m8a m8azn m8g m8gb
    m8gd m8gn m8i m8id m8i-flex m8in m8idn m8ine m8ib m8idb m9g m9gd mac1 mac2 mac2-m1ultra mac2-m2 mac2-m2pro
    mac-m4 mac-m4pro mac-m4max t2 t3 t3a t4g
    c5 c5a c5ad c5d c5n c6a c6g c6gd c6gn c6i c6id c6in c7a c7g c7gd c7gn c7i c7i-flex c8a c8g c8gb c8gd c8gn c8i
    c8id c8i-flex c8in c8ine c8ib
    r5 r5a r5ad r5b r5d r5dn r5n r6a r6g r6gd r6i r6id r6idn r6in r7a r7g r7gd r7i r7iz r8a r8g r8gb r8gd r8gn r8i
    r8id r8i-flex r8in r8idn r8ib r8idb u-3tb1 u-6tb1 u-9tb1 u-12tb1 u-18tb1 u-24tb1 u7i-6tb u7i-8tb u7i-12tb
    u7in-16tb u7in-24tb u7in-32tb u7inh-32tb x1 x1e x2gd x2idn x2iedn x2iezn x8g x8aedz x8i z1d
    d2 d3 d3en h1 i3 i3en i4g i4i i7i i7ie i8g i8ge im4gn is4gen
    dl1 dl2q f2 g4ad g4dn g5 g5g g6 g6e g6f gr6 gr6f g7e inf1 inf2 p4d p4de p5 p5e p5en p6-b200 p6-b300 p6e-gb200
    trn1 trn1n trn2 trn2u vt1
    hpc6a hpc6id hpc7a hpc7g hpc8a
    """
)

# pg.html, "Instance families and instance types": every previous generation type AWS still supports.
PUBLISHED_PREVIOUS_GENERATION_TYPES = words(
    """
    a1.medium a1.large a1.xlarge a1.2xlarge a1.4xlarge a1.metal c1.medium c1.xlarge
    c3.large c3.xlarge c3.2xlarge c3.4xlarge c3.8xlarge c4.large c4.xlarge c4.2xlarge c4.4xlarge c4.8xlarge
    g3.4xlarge g3.8xlarge g3.16xlarge i2.xlarge i2.2xlarge i2.4xlarge i2.8xlarge
    m1.small m1.medium m1.large m1.xlarge m2.xlarge m2.2xlarge m2.4xlarge m3.medium m3.large m3.xlarge m3.2xlarge
    m4.large m4.xlarge m4.2xlarge m4.4xlarge m4.10xlarge m4.16xlarge p3.2xlarge p3.8xlarge p3.16xlarge p3dn.24xlarge
    r3.large r3.xlarge r3.2xlarge r3.4xlarge r3.8xlarge r4.large r4.xlarge r4.2xlarge r4.4xlarge r4.8xlarge
    r4.16xlarge t1.micro
    """
)

# Current generation types listed on the per-category pages that moto's copy lacks; added whenever a source
# does not return them (a region that does not offer them, or an end-of-sale type), keyed by page.
DOCUMENTED_CURRENT_TYPES = {
    f"{GUIDE}/ac.html": words(
        "dl1.24xlarge g4ad.xlarge g4ad.2xlarge g4ad.4xlarge g4ad.8xlarge g4ad.16xlarge p6e-gb200.36xlarge"
    ),
    f"{GUIDE}/mo.html": words(
        """
        u-6tb1.metal u-9tb1.112xlarge u-9tb1.metal u-12tb1.112xlarge u-12tb1.metal u-18tb1.112xlarge u-18tb1.metal
        u-24tb1.112xlarge u-24tb1.metal u7inh-32tb.480xlarge
        """
    ),
    f"{GUIDE}/so.html": frozenset({"i3.metal"}),
}
DOCUMENTED_TYPES = {name: PREVIOUS_PAGE for name in PUBLISHED_PREVIOUS_GENERATION_TYPES} | {
    name: page for page, names in DOCUMENTED_CURRENT_TYPES.items() for name in names
}

WHY_PREVIOUS = "AWS lists the family as previous generation (references: previous_generation_families)"
WHY_CURRENT = "AWS lists the family as current generation, not previous (references: current_generation_families)"
WHY_RETIRED = "family no longer offered; previous generation in earlier EC2 User Guide revisions (retired_families)"
WHY_PV = "AWS documents PV only for C1, C3, M1, M3, M2 and T1 (references: paravirtual_families)"
WHY_HVM = "AWS documents HVM for all current generation types (references: paravirtual_families)"

Record = dict[str, Any]


def expected_current(family: str) -> bool:
    return family not in PREVIOUS_GENERATION_FAMILIES and family not in RETIRED_FAMILIES


def expected_paravirtual(family: str) -> bool:
    return family in PARAVIRTUAL_FAMILIES or family in RETIRED_PARAVIRTUAL_FAMILIES


def records_from_pages(pages: Iterable[Mapping[str, Any]]) -> dict[str, Record]:
    pages = list(pages)
    table = InstanceTypeTable.from_describe_pages(pages)
    raw = {str(item.get("InstanceType")) for page in pages for item in page.get("InstanceTypes", [])}
    for name in sorted(raw - {info.instance_type for info in table}):
        print(f"  skipped {name!r}: name or fields not understood by ami_guard.instance_types")
    return {
        info.instance_type: {"v": sorted(info.virtualization_types), "current": info.current_generation}
        for info in table
    }


def load_moto(path: Path | None) -> tuple[dict[str, Record], str]:
    if path is None:
        spec = importlib.util.find_spec("moto")
        if spec is None or spec.origin is None:
            raise SystemExit("moto is not installed: run `make setup`, or give --moto-file")
        path = Path(spec.origin).parent / "ec2" / "resources" / "instance_types.json.gz"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    version = importlib.metadata.version("moto") if importlib.util.find_spec("moto") else "unknown"
    pages = [{"InstanceTypes": list(raw.values()) if isinstance(raw, dict) else raw}]
    described = f"moto {version}: moto/ec2/resources/{path.name} (moto's copy of EC2 DescribeInstanceTypes)"
    return records_from_pages(pages), described


def load_regions(regions: list[str], profile: str | None) -> tuple[dict[str, Record], str]:
    import boto3  # type: ignore[import-untyped, unused-ignore]  # only this path needs AWS

    session = boto3.Session(profile_name=profile)
    merged: dict[str, Record] = {}
    for region in regions:
        client = session.client("ec2", region_name=region)
        pages = client.get_paginator("describe_instance_types").paginate()
        found = records_from_pages(pages)
        print(f"{region}: {len(found)} instance types")
        for name, record in found.items():
            known = merged.get(name)
            if known is None:
                merged[name] = record
                continue
            if known != record:
                print(f"  regions disagree on {name}: {known} vs {record} ({region}); keeping the union")
            known["v"] = sorted(set(known["v"]) | set(record["v"]))
            known["current"] = known["current"] and record["current"]
    return merged, f"EC2 DescribeInstanceTypes in {', '.join(regions)}"


def check(records: dict[str, Record], *, apply: bool) -> tuple[dict[str, Record], list[dict[str, Any]], list[str]]:
    """Compare with the published lists; returns the records (corrected if apply), the corrections, warnings."""
    corrections: list[dict[str, Any]] = []
    warnings: list[str] = []
    out: dict[str, Record] = {}
    for name in sorted(records):
        record = dict(records[name])
        family = family_of(name)
        if family is None:
            warnings.append(f"{name}: name not understood by ami_guard.instance_types.normalize; dropped")
            continue
        fixed: list[str] = []
        want_current = expected_current(family)
        if record["current"] != want_current:
            why = WHY_CURRENT if want_current else (WHY_RETIRED if family in RETIRED_FAMILIES else WHY_PREVIOUS)
            corrections.append(
                {"type": name, "field": "current", "was": record["current"], "now": want_current, "why": why}
            )
            fixed.append("current")
        kinds = set(record["v"])
        want = (kinds | {PARAVIRTUAL}) if expected_paravirtual(family) else (kinds - {PARAVIRTUAL})
        if want_current:
            want.add(HVM)
        if want != kinds:
            why = WHY_PV if PARAVIRTUAL in kinds ^ want else WHY_HVM
            corrections.append({"type": name, "field": "v", "was": sorted(kinds), "now": sorted(want), "why": why})
            fixed.append("v")
        if apply and fixed:
            record = {"v": sorted(want), "current": want_current, "fixed": fixed}
        out[name] = record
    for name, page in sorted(DOCUMENTED_TYPES.items()):
        if name in out:
            continue
        family = family_of(name) or ""
        added = {
            "v": [HVM, PARAVIRTUAL] if expected_paravirtual(family) else [HVM],
            "current": expected_current(family),
        }
        corrections.append({"type": name, "field": "added", "was": None, "now": added, "why": f"listed on {page}"})
        if apply:
            out[name] = added | {"src": "aws-docs"}
    families = {family_of(name) for name in records}
    unlisted = sorted(f for f in families if f and f not in PUBLISHED_CURRENT_FAMILIES and expected_current(f))
    if unlisted:
        warnings.append(f"families on no published list yet (source value kept): {', '.join(unlisted)}")
    missing = sorted(PUBLISHED_CURRENT_FAMILIES - families - {family_of(n) for n in DOCUMENTED_TYPES})
    if missing:
        warnings.append(f"published current families the source does not return: {', '.join(missing)}")
    return out, corrections, warnings


def summarize(corrections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (family, field, was, now): what the file records about its corrections."""
    grouped: dict[tuple[str, str, str, str, str], list[str]] = defaultdict(list)
    for item in corrections:
        key = (
            family_of(item["type"]) or "",
            item["field"],
            json.dumps(item["was"]),
            json.dumps(item["now"]),
            item["why"],
        )
        grouped[key].append(item["type"])
    return [
        {"family": family, "field": field, "was": json.loads(was), "now": json.loads(now), "types": names, "why": why}
        for (family, field, was, now, why), names in sorted(grouped.items())
    ]


def render(document: dict[str, Any]) -> str:
    """Compact JSON with one item per line (each instance type, each correction), so a regeneration diffs well."""

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    def block(value: Any) -> str:
        if isinstance(value, dict) and value:
            return "{\n" + ",\n".join(f"{compact(k)}:{compact(v)}" for k, v in value.items()) + "\n}"
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return "[\n" + ",\n".join(compact(item) for item in value) + "\n]"
        return compact(value)

    return "{\n" + ",\n".join(f"{compact(key)}:{block(value)}" for key, value in document.items()) + "\n}\n"


def print_file_diff(out: Path, types: Mapping[str, Record]) -> None:
    if not out.exists():
        print(f"{out}: new file")
        return
    try:
        old = json.loads(out.read_text(encoding="utf-8")).get("types", {})
    except (json.JSONDecodeError, AttributeError):
        print(f"{out}: unreadable, replaced")
        return
    added = sorted(set(types) - set(old))
    removed = sorted(set(old) - set(types))
    changed = sorted(n for n in set(types) & set(old) if types[n] != old[n])
    print(f"{out}: {len(added)} added, {len(removed)} removed, {len(changed)} changed")
    for name in added:
        print(f"  + {name} {types[name]}")
    for name in removed:
        print(f"  - {name} {old[name]}")
    for name in changed:
        print(f"  ~ {name} {old[name]} -> {types[name]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--region", action="append", help="describe_instance_types in this region (repeatable)")
    source.add_argument("--from-moto", action="store_true", help="offline: use moto's bundled copy")
    parser.add_argument("--moto-file", type=Path, help="with --from-moto: a specific instance_types.json[.gz]")
    parser.add_argument("--profile", help="AWS profile for --region")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help="'generated' date (YYYY-MM-DD)")
    parser.add_argument("--no-correct", action="store_true", help="report disagreements but keep source values")
    parser.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    args = parser.parse_args(argv)
    datetime.date.fromisoformat(args.date)

    if args.from_moto:
        records, described = load_moto(args.moto_file)
    else:
        regions = [r.strip() for value in args.region for r in value.split(",") if r.strip()]
        records, described = load_regions(regions, args.profile)
    if not records:
        raise SystemExit("the source returned no instance types; nothing written")

    types, corrections, warnings = check(records, apply=not args.no_correct)
    print(f"source: {described}: {len(records)} types")
    verb = "corrected" if not args.no_correct else "NOT corrected (--no-correct)"
    print(f"{len(corrections)} disagreements with AWS's published lists, {verb}:")
    for group in summarize(corrections):
        print(f"  {group['family']}: {group['field']} {group['was']} -> {group['now']} ({len(group['types'])} types)")
        print(f"      {' '.join(group['types'])}")
        print(f"      because: {group['why']}")
    for warning in warnings:
        print(f"note: {warning}")

    document = {
        "schema": SCHEMA,
        "generated": args.date,
        "source": described,
        "references": REFERENCES,
        "notes": [
            "v: SupportedVirtualizationTypes; current: CurrentGeneration; values come from 'source' unless the entry "
            "says otherwise.",
            "fixed: the named fields were overridden to agree with AWS's published lists (see corrections).",
            "src=aws-docs: the type is absent from 'source' and taken from the AWS documentation page in corrections.",
            f"Regenerate: python tools/regenerate_instance_types.py --region us-east-1 --out {args.out.as_posix()}",
        ],
        "published": {
            "previous_generation_families": sorted(PREVIOUS_GENERATION_FAMILIES),
            "paravirtual_families": sorted(PARAVIRTUAL_FAMILIES),
            "retired_families": sorted(RETIRED_FAMILIES),
        },
        "corrections": summarize(corrections) if not args.no_correct else [],
        "types": types,
    }
    print_file_diff(args.out, types)
    if args.dry_run:
        return 0
    text = render(document)
    json.loads(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {len(types)} types, {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
