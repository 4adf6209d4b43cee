"""Evaluation of launches: RunInstances, with the image and instance-type facts its rules need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ami_guard.engine import Actions, Evaluation, Evaluator, Lookups, LookupUnavailable
from ami_guard.events.run_instances import Launch, launches
from ami_guard.rules import launches as rules

if TYPE_CHECKING:
    from ami_guard.config import Policy
    from ami_guard.events.calls import ApiCall


def _run_instances(result: Evaluation, policy: Policy, lookups: Lookups, actions: Actions | None) -> None:
    call = result.call
    found = launches(call)
    if not found and (call.succeeded or _may_be_virtualization_failure(call)):
        result.record_lacks(("launch-*",), "the record names no AMI, instance type or launch template")
    for launch in found:
        launch, template_read = _resolve_template(result, launch, lookups)
        quiet = not template_read  # "launch-*" not decided already says it for every launch rule
        type_info = lookups.instance_type(launch.instance_type) if launch.instance_type else None
        if call.failed:
            if not _may_be_virtualization_failure(call):
                continue
            diagnosed = rules.virtualization_error(call.error_message) is not None
            virt = launch.virtualization_type or _image_virtualization(
                result, launch, lookups, rules.LAUNCH_VIRTUALIZATION_MISMATCH, quiet=diagnosed or quiet
            )
            if not (diagnosed or quiet) and virt is not None and type_info is None:
                result.cannot_tell(
                    rules.LAUNCH_VIRTUALIZATION_MISMATCH, _type_unknown(launch), cause=_type_cause(launch)
                )
            result.add(rules.launch_virtualization_mismatch(call, launch, virt, type_info))
            continue
        virt = launch.virtualization_type or _image_virtualization(
            result, launch, lookups, rules.LAUNCH_PARAVIRTUAL, quiet=quiet
        )
        result.add(rules.launch_paravirtual(call, launch, virt))
        if type_info is None and not quiet:
            result.cannot_tell(rules.LAUNCH_PREVIOUS_GENERATION, _type_unknown(launch), cause=_type_cause(launch))
        result.add(rules.launch_previous_generation(call, launch, type_info))
        _untrusted_image(result, launch, policy, lookups, quiet=quiet)


def _untrusted_image(result: Evaluation, launch: Launch, policy: Policy, lookups: Lookups, *, quiet: bool) -> None:
    """launch-untrusted-image, when trustedImageOwners is set: the AMI's owner from EC2, once per image."""
    if not policy.trusted_image_owners:
        return
    if not launch.image_id:
        if not quiet:
            result.cannot_tell(rules.LAUNCH_UNTRUSTED_IMAGE, "the record names no AMI", cause="record")
        return
    try:
        owner_id, alias = lookups.image_owner(launch.image_id, result.call.region)
    except LookupUnavailable as exc:
        result.cannot_tell(rules.LAUNCH_UNTRUSTED_IMAGE, f"owner of {launch.image_id} not looked up: {exc}")
        return
    result.add(rules.launch_untrusted_image(result.call, launch, owner_id, alias, policy))


def _type_unknown(launch: Launch) -> str:
    if launch.instance_type is None:
        return "the record names no instance type"
    return f"instance type {launch.instance_type!r} is unknown"


def _type_cause(launch: Launch) -> str:
    return "record" if launch.instance_type is None else "lookup"


_PARAMETER_ERRORS = ("InvalidParameterCombination", "InvalidParameterValue", "Unsupported", "UnsupportedOperation")


def _may_be_virtualization_failure(call: ApiCall) -> bool:
    """EC2 reports a virtualization mismatch as a parameter error; a refusal for permissions or capacity
    happened before (or regardless of) that check, so it tells nothing and is not worth a lookup."""
    code = (call.error_code or "").removeprefix("Client.").removeprefix("Server.")
    return code in _PARAMETER_ERRORS or rules.virtualization_error(call.error_message) is not None


def _resolve_template(result: Evaluation, launch: Launch, lookups: Lookups) -> tuple[Launch, bool]:
    """The launch with what its template supplies; False when the template was needed and not read."""
    if launch.launch_template is None or (launch.image_id and launch.instance_type):
        return launch, True
    try:
        image_id, instance_type = lookups.launch_template(launch, result.call.region)
    except LookupUnavailable as exc:
        result.cannot_tell("launch-*", f"launch template not read: {exc}")
        return launch, False
    resolved = Launch(
        image_id=launch.image_id or image_id,
        instance_type=launch.instance_type or instance_type,
        virtualization_type=launch.virtualization_type,
        instance_ids=launch.instance_ids,
        launch_template=launch.launch_template,
    )
    return resolved, True


def _image_virtualization(
    result: Evaluation, launch: Launch, lookups: Lookups, rule_id: str, *, quiet: bool = False
) -> str | None:
    if not launch.image_id:
        if not quiet:
            result.cannot_tell(rule_id, "the record names no AMI", cause="record")
        return None
    try:
        return lookups.image(launch.image_id, result.call.region).virtualization_type
    except LookupUnavailable as exc:
        if not quiet:
            result.cannot_tell(rule_id, f"virtualization type of {launch.image_id} not looked up: {exc}")
        return None


BY_EVENT: dict[str, Evaluator] = {"RunInstances": _run_instances}
