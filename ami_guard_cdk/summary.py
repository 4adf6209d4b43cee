"""What `cdk synth` produced, in a few lines: `python -m ami_guard_cdk.summary cdk.out`.

For each stack in the cloud assembly: where its template is, how many resources of each type it holds, which
CloudTrail events each rule forwards to which function, how each function runs, and who the alert topic notifies.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

Template = Mapping[str, Any]


class NoTemplateError(Exception):
    """The assembly directory holds no synthesized stack template."""


def stack_templates(assembly_dir: Path) -> list[tuple[str, Path]]:
    """(stack name, template path) for every CloudFormation stack in the cloud assembly's manifest."""
    manifest_path = assembly_dir / "manifest.json"
    if not manifest_path.is_file():
        raise NoTemplateError(f"{assembly_dir}: no manifest.json, so nothing was synthesized there (run `make synth`)")
    manifest = json.loads(manifest_path.read_text())
    found = [
        (name, assembly_dir / artifact["properties"]["templateFile"])
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]
    if not found:
        raise NoTemplateError(f"{manifest_path}: the cloud assembly contains no CloudFormation stack")
    missing = [str(path) for _, path in found if not path.is_file()]
    if missing:
        raise NoTemplateError(f"template file(s) named in {manifest_path} do not exist: {', '.join(missing)}")
    return found


def summarize(name: str, template_path: Path, template: Template) -> list[str]:
    resources: Mapping[str, Any] = template.get("Resources", {})
    lines = [f"Stack {name}: {template_path}", f"  {len(resources)} resources:"]
    counts = Counter(resource["Type"] for resource in resources.values())
    lines += [f"    {count:3d}  {kind}" for kind, count in sorted(counts.items())]

    lines.append("  Rules (EventBridge; on the default bus unless a bus is named):")
    for logical_id, rule in _of_type(resources, "AWS::Events::Rule"):
        props = rule["Properties"]
        detail = props.get("EventPattern", {}).get("detail", {})
        # eventName at the top of the detail, or in each branch of a $or (the member's forward rule)
        listed = [
            *detail.get("eventName", []),
            *(n for branch in detail.get("$or", []) for n in branch.get("eventName", [])),
        ]
        names = list(
            dict.fromkeys(
                f"{name['prefix']}*" if isinstance(name, Mapping) and "prefix" in name else str(name) for name in listed
            )
        )
        targets = ", ".join(_target_name(target.get("Arn")) for target in props.get("Targets", []))
        bus = f" [bus {_ref_name(props['EventBusName'])}]" if "EventBusName" in props else ""
        lines.append(
            f"    {logical_id}{bus}: {', '.join(names) or '(no eventName filter)'} -> {targets or '(no target)'}"
        )

    lines.append("  Functions:")
    for logical_id, function in _of_type(resources, "AWS::Lambda::Function"):
        props = function["Properties"]
        arch = ",".join(props.get("Architectures", ["x86_64"]))
        layers = ", ".join(_render(layer).rsplit(":layer:", 1)[-1] for layer in props.get("Layers", []))
        lines.append(
            f"    {logical_id}: {props.get('Handler')} ({props.get('Runtime')}, {arch}, "
            f"{props.get('MemorySize', 128)} MB, {props.get('Timeout', 3)} s; layers: {layers or 'none'})"
        )

    lines.append("  Alert topics:")
    subscriptions = list(_of_type(resources, "AWS::SNS::Subscription"))
    for logical_id, topic in _of_type(resources, "AWS::SNS::Topic"):
        key = _ref_name(topic["Properties"].get("KmsMasterKeyId")) or "not encrypted"
        mine = [
            f"{sub['Properties']['Protocol']}:{sub['Properties']['Endpoint']}"
            for _, sub in subscriptions
            if _ref_name(sub["Properties"].get("TopicArn")) == logical_id
        ]
        lines.append(f"    {logical_id} (KMS key: {key}); subscriptions: {', '.join(mine) or 'none'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ami_guard_cdk.summary <cdk.out directory>", file=sys.stderr)
        return 2
    try:
        stacks = stack_templates(Path(args[0]))
    except NoTemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in stacks:
        print("\n".join(summarize(name, path, json.loads(path.read_text()))))
    # Organization mode: the member template the hub's StackSet carries (an asset of the hub, not a stack of its own)
    for path in sorted(Path(args[0]).glob("*.stackset.template.json")):
        print("\n".join(summarize("(StackSet template)", path, json.loads(path.read_text()))))
    return 0


def _of_type(resources: Mapping[str, Any], kind: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    return ((logical_id, r) for logical_id, r in sorted(resources.items()) if r.get("Type") == kind)


def _ref_name(value: Any) -> str:
    """The logical id behind a Ref or Fn::GetAtt, or the literal value."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return "" if value is None else str(value)


def _target_name(value: Any) -> str:
    """A target's logical id, or its ARN when it is built from literals (a bus in another account)."""
    return _render(value) if isinstance(value, Mapping) and "Fn::Join" in value else _ref_name(value)


def _render(value: Any) -> str:
    """A readable string for a literal or an Fn::Join of literals and pseudo parameters."""
    if isinstance(value, Mapping) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if isinstance(value, Mapping) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
