"""Rules on launched instances: the AMI's virtualization type and the instance type's generation. Pure."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ami_guard.findings import Finding, Resource, Severity
from ami_guard.rules import common
from ami_guard.rules.common import HVM, PARAVIRTUAL
from ami_guard.rules.common import image as _image
from ami_guard.rules.common import who as _who
from ami_guard.rules.spec import Rule, ec2, severities

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall
    from ami_guard.events.run_instances import Launch
    from ami_guard.instance_types import InstanceTypeInfo
    from ami_guard.sweep.facts import RegionPosture


LAUNCH_VIRTUALIZATION_MISMATCH = "launch-virtualization-mismatch"
LAUNCH_PARAVIRTUAL = "launch-paravirtual"
LAUNCH_PREVIOUS_GENERATION = "launch-previous-generation"
LAUNCH_UNTRUSTED_IMAGE = "launch-untrusted-image"
INSTANCE_PARAVIRTUAL = "instance-paravirtual"


def _finding(rule_id: str, **fields: Any) -> Finding:
    return common.finding(SEVERITY, rule_id, **fields)


# Patterns, compiled on first use by re's cache: only a failed launch is read for them.
_REQUIRED_VIRTUALIZATION = (
    r"virtualization type (?:of )?'?(?P<virt>hvm|paravirtual)'? is required for instances of type '?(?P<type>[\w.-]+)"
)
_UNSUPPORTED_VIRTUALIZATION = (
    r"virtualization type of '?(?P<virt>hvm|paravirtual)'? (?:is|are) (?:currently )?not supported"
)


def virtualization_error(message: str | None) -> dict[str, str] | None:
    """What EC2's error message says about a virtualization mismatch, if it says anything."""
    if not message:
        return None
    if match := re.search(_REQUIRED_VIRTUALIZATION, message, re.IGNORECASE):
        return {"requiredVirtualizationType": match["virt"].lower(), "instanceType": match["type"]}
    if match := re.search(_UNSUPPORTED_VIRTUALIZATION, message, re.IGNORECASE):
        return {"unsupportedVirtualizationType": match["virt"].lower()}
    return None


def _instances(call: ApiCall, launch: Launch) -> tuple[Resource, ...]:
    return tuple(Resource("instance", i, call.region, call.account) for i in launch.instance_ids)


def launch_virtualization_mismatch(
    call: ApiCall, launch: Launch, image_virtualization: str | None, type_info: InstanceTypeInfo | None
) -> Finding | None:
    """Explain a failed launch whose AMI virtualization type the instance type does not support."""
    if not call.failed:
        return None
    diagnosis = virtualization_error(call.error_message)
    if diagnosis is None:
        if image_virtualization is None or type_info is None:
            return None
        if image_virtualization in type_info.virtualization_types:
            return None
        diagnosis = {"source": "lookup"}
    else:
        diagnosis = {"source": "error message", **diagnosis}
    virt = image_virtualization or (
        PARAVIRTUAL
        if diagnosis.get("requiredVirtualizationType") == HVM
        else diagnosis.get("unsupportedVirtualizationType")
    )
    supported = sorted(type_info.virtualization_types) if type_info else None
    itype = launch.instance_type or diagnosis.get("instanceType")
    return _finding(
        LAUNCH_VIRTUALIZATION_MISMATCH,
        title=f"Launch of AMI {launch.image_id or '(unknown)'} on {itype or '(unknown type)'} failed: "
        "virtualization mismatch",
        description=(
            f"{_who(call)} tried to launch AMI {launch.image_id or '(unknown)'}"
            f"{f' ({virt})' if virt else ''} on instance type {itype or '(unknown)'}"
            f"{f', which supports {supported}' if supported else ''}. EC2 refused it ({call.error_code})."
        ),
        resources=_image(call, launch.image_id),
        evidence={
            "instanceType": itype,
            "imageVirtualizationType": virt,
            "instanceTypeSupports": supported,
            "diagnosis": diagnosis,
            "errorCode": call.error_code,
            "errorMessage": call.error_message,
        },
        recommendation=(
            "Paravirtual AMIs run only on previous-generation types (C1, C3, M1, M2, M3, T1...). Use an HVM AMI "
            "for current instance types, or rebuild the image as HVM."
        ),
    )


def launch_paravirtual(call: ApiCall, launch: Launch, image_virtualization: str | None) -> Finding | None:
    """Paravirtual AMIs get no enhanced networking, no GPU and only previous-generation types."""
    if not call.succeeded or image_virtualization != PARAVIRTUAL:
        return None
    return _finding(
        LAUNCH_PARAVIRTUAL,
        title=f"Paravirtual AMI {launch.image_id} launched on {launch.instance_type} in {call.region}",
        description=(
            f"{_who(call)} launched {len(launch.instance_ids) or 'an'} instance(s) from paravirtual AMI "
            f"{launch.image_id}: no enhanced networking, no GPUs, previous-generation instance types only."
        ),
        resources=_image(call, launch.image_id) + _instances(call, launch),
        evidence={"instanceType": launch.instance_type, "imageVirtualizationType": image_virtualization},
        recommendation="Move the workload to an HVM AMI and a current-generation instance type.",
    )


def launch_previous_generation(call: ApiCall, launch: Launch, type_info: InstanceTypeInfo | None) -> Finding | None:
    """Previous-generation instance types cost more per unit of work and lack current features."""
    if not call.succeeded or type_info is None or type_info.current_generation:
        return None
    return _finding(
        LAUNCH_PREVIOUS_GENERATION,
        title=f"Previous-generation instance type {launch.instance_type} launched in {call.region}",
        description=(
            f"{_who(call)} launched {len(launch.instance_ids) or 'an'} {launch.instance_type} instance(s), a "
            "previous-generation type."
        ),
        resources=_instances(call, launch) + _image(call, launch.image_id),
        evidence={"instanceType": launch.instance_type, "currentGeneration": False, "typeSource": type_info.source},
        recommendation="Use a current-generation instance type (with an HVM AMI).",
    )


def launch_untrusted_image(
    call: ApiCall, launch: Launch, owner_id: str | None, alias: str | None, policy: Policy
) -> Finding | None:
    """Instances are launched only from AMIs of the account, a trusted account or a trusted image owner (off while
    trustedImageOwners is empty). The owner is EC2's (DescribeImages), never the record's."""
    owner = common.untrusted_owner(call, owner_id, alias, policy) if launch.image_id else None
    if owner is None:
        return None
    return _finding(
        LAUNCH_UNTRUSTED_IMAGE,
        title=f"Instance launched from AMI {launch.image_id} of untrusted owner {owner} in {call.region}",
        description=(
            f"{_who(call)} launched {len(launch.instance_ids) or 'an'} instance(s) from AMI {launch.image_id}, "
            f"owned by {owner}: neither this account, a trusted account nor an owner in trustedImageOwners."
        ),
        resources=_instances(call, launch) + _image(call, launch.image_id),
        evidence={"imageId": launch.image_id, **common.owner_evidence(owner_id, alias, policy)},
        recommendation=common.TRUST_THE_PUBLISHER
        + "stop the instances and turn on Allowed AMIs (aws ec2 enable-allowed-images-settings) to refuse such "
        "launches.",
    )


def instances_paravirtual_now(posture: RegionPosture, policy: Policy) -> Iterator[Finding]:
    """Running instances on paravirtual virtualization (found by the sweep only: no single call makes one)."""
    for instance in posture.instances:
        yield _finding(
            INSTANCE_PARAVIRTUAL,
            title=f"Instance {instance.instance_id} runs paravirtual in {posture.region}",
            description=(
                f"The posture sweep found instance {instance.instance_id} ({instance.instance_type or 'type unknown'}, "
                f"AMI {instance.image_id or 'unknown'}) running on paravirtual virtualization: a previous-generation "
                "type, without enhanced networking, on hardware AWS retires first."
            ),
            resources=(Resource("instance", instance.instance_id, posture.region, posture.account),),
            evidence={
                "instanceType": instance.instance_type,
                "imageId": instance.image_id,
                "launchTime": instance.launch_time,
            },
            recommendation="Move the workload to an HVM AMI on a current-generation instance type.",
        )


RULES = (
    Rule(
        LAUNCH_VIRTUALIZATION_MISMATCH,
        Severity.MEDIUM,
        ec2("RunInstances"),
        "a RunInstances failed because the instance type does not support the AMI's virtualization type (read from "
        "EC2's error message, else by lookup)",
        "explains the failure",
    ),
    Rule(
        LAUNCH_PARAVIRTUAL, Severity.MEDIUM, ec2("RunInstances"), "a successful RunInstances launches a paravirtual AMI"
    ),
    Rule(
        LAUNCH_PREVIOUS_GENERATION,
        Severity.LOW,
        ec2("RunInstances"),
        "a successful RunInstances uses a previous-generation instance type",
    ),
    Rule(
        LAUNCH_UNTRUSTED_IMAGE,
        Severity.MEDIUM,
        ec2("RunInstances"),
        "a successful RunInstances of an AMI whose owner (from DescribeImages, cached per image) is not the account, "
        "a trusted account or in `trustedImageOwners` (account ids, `amazon`, `aws-marketplace`); off while that "
        "list is empty",
    ),
    Rule(
        INSTANCE_PARAVIRTUAL,
        Severity.LOW,
        (),
        "the posture sweep finds a running instance on paravirtual virtualization (no event raises it)",
        sweep=instances_paravirtual_now,
    ),
)
SEVERITY = severities(RULES)
