"""Where findings go in the template: the bus every guard may put finding events on (one ARN), the Security Hub
import (the account's own default product only; in organization mode on the member role), the chat topic (encrypted,
TLS-only, watched, a stack output), and no rule of the guard's own that a finding event matches (no loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from ami_guard import alerts
from ami_guard.events import Envelope, parse_call
from ami_guard.findings import Finding, Resource, Severity
from tests import records as r
from tests.infra.conftest import DEFAULT_BLOCK, HANDLERS, SWEEP_BLOCK, Synthesized, render, resolve, synthesize
from tests.infra.test_guard_roles import grants
from tests.infra.test_organization import (
    HUB_ACCOUNT,
    HUB_REGION,
    MEMBER_ACCOUNT,
    MEMBER_REGION,
    ORGANIZATION,
    Organization,
    resources,
    role_named,
    synthesize_organization,
)

CHAT_TOPIC = "AMI Guard chat"
DEFAULT_BUS = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
OWN_PRODUCT = "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"
PUT_EVENTS = (frozenset({"events:PutEvents"}), frozenset({DEFAULT_BUS}), "")
IMPORT = (frozenset({"securityhub:BatchImportFindings"}), frozenset({OWN_PRODUCT}), "")
OUTPUTS_BLOCK = {
    **SWEEP_BLOCK,
    "securityHub": True,
    "chat": True,
    "documentationUrl": "https://docs.example.com/ami-guard",
}
SWEEP_HANDLER = "ami_guard.handlers.sweep_guard.lambda_handler"


@pytest.fixture(scope="module")
def outputs_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(OUTPUTS_BLOCK, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def org_outputs(tmp_path_factory: pytest.TempPathFactory) -> Organization:
    block = {**OUTPUTS_BLOCK, "organization": ORGANIZATION}
    return synthesize_organization(block, tmp_path_factory.mktemp("org-outputs"))


def finding_event(severity: Severity = Severity.CRITICAL, account: str = r.ACCOUNT) -> dict[str, Any]:
    """A finding event as EventBridge delivers it to a rule."""
    call = parse_call(Envelope(r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}])))
    finding = Finding(
        rule_id="ami-public",
        severity=severity,
        title="t",
        description="d",
        resources=(Resource("image", "ami-0123456789abcdef0", r.REGION, r.ACCOUNT),),
    )
    document = alerts.render(finding, call).document
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AMI Guard Finding",
        "source": "ami-guard",
        "account": account,
        "time": "2026-11-30T18:00:00Z",
        "region": r.REGION,
        "resources": ["arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"],
        "detail": json.loads(json.dumps(document)),
    }


class StandIns(dict[tuple[str, str], str]):
    """Physical values of a deployment: the pseudo parameters, and a stand-in name for any resource."""

    def __init__(self, account: str, region: str) -> None:
        super().__init__({("AWS::Partition", "Ref"): "aws", ("AWS::Region", "Ref"): region})
        self[("AWS::AccountId", "Ref")] = account

    def __missing__(self, key: tuple[str, str]) -> str:
        return f"stand-in-{key[0]}-{key[1]}"


def pattern(props: dict[str, Any], account: str, region: str) -> EventPattern:
    """The rule's pattern as moto's EventBridge pattern engine reads it."""
    return EventPattern.load(json.dumps(resolve(props["EventPattern"], StandIns(account, region))))


def env(stack: Synthesized, handler: str) -> dict[str, Any]:
    return dict(stack.function(handler)["Environment"]["Variables"])


@pytest.mark.parametrize("handler", [*HANDLERS, SWEEP_HANDLER])
def test_every_function_may_put_finding_events_on_the_default_bus_and_import_into_its_own_product(
    outputs_stack: Synthesized, handler: str
) -> None:
    held = grants(outputs_stack, handler)

    assert PUT_EVENTS in held
    assert IMPORT in held
    assert render(env(outputs_stack, handler)["AMI_GUARD_FINDINGS_BUS"]) == DEFAULT_BUS
    assert env(outputs_stack, handler)["AMI_GUARD_SECURITY_HUB"] == "true"
    assert env(outputs_stack, handler)["AMI_GUARD_DOCUMENTATION_URL"] == "https://docs.example.com/ami-guard"
    assert (
        render(env(outputs_stack, handler)["AMI_GUARD_CHAT_TOPIC_ARN"]) == f"${{{outputs_stack.topic_id(CHAT_TOPIC)}}}"
    )


@pytest.mark.parametrize("handler", HANDLERS)
def test_without_the_keys_the_environment_and_grants_hold_only_the_bus(
    default_stack: Synthesized, handler: str
) -> None:
    variables = env(default_stack, handler)

    assert not {"AMI_GUARD_SECURITY_HUB", "AMI_GUARD_CHAT_TOPIC_ARN", "AMI_GUARD_DOCUMENTATION_URL"} & set(variables)
    assert render(variables["AMI_GUARD_FINDINGS_BUS"]) == DEFAULT_BUS
    assert IMPORT not in grants(default_stack, handler)
    default_stack.template.resource_count_is("AWS::SNS::Topic", 2)
    assert "ChatTopicArn" not in default_stack.template.find_outputs("*")


def test_the_chat_topic_is_encrypted_with_its_own_key_tls_only_and_an_output(outputs_stack: Synthesized) -> None:
    topic_id = outputs_stack.topic_id(CHAT_TOPIC)
    key_id = outputs_stack.key_id(CHAT_TOPIC)

    assert key_id not in (outputs_stack.key_id(), outputs_stack.key_id("AMI Guard health"))
    assert outputs_stack.resources("AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in outputs_stack.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    assert [s["Condition"] for s in policy if s["Effect"] == "Deny"] == [{"Bool": {"aws:SecureTransport": "false"}}]
    assert outputs_stack.template.find_outputs("ChatTopicArn")["ChatTopicArn"]["Value"] == {"Ref": topic_id}
    assert outputs_stack.resources("AWS::SNS::Subscription") == {}


def test_the_tamper_guard_watches_the_chat_topic_and_its_key(outputs_stack: Synthesized) -> None:
    tamper = env(outputs_stack, "ami_guard.handlers.tamper_guard.lambda_handler")

    assert f"${{{outputs_stack.topic_id(CHAT_TOPIC)}}}" in render(tamper["AMI_GUARD_WATCHED_TOPICS"])
    assert f"${{{outputs_stack.key_id(CHAT_TOPIC)}.Arn}}" in render(tamper["AMI_GUARD_WATCHED_KEYS"])


def test_no_rule_of_the_guard_matches_a_finding_event(outputs_stack: Synthesized) -> None:
    rules = resources(outputs_stack.template, "AWS::Events::Rule")

    assert rules
    for name, rule in rules.items():
        for severity in Severity:
            assert not pattern(rule["Properties"], r.ACCOUNT, r.REGION).matches_event(finding_event(severity)), name


def test_no_rule_of_the_hub_or_the_members_matches_a_finding_event(org_outputs: Organization) -> None:
    templates = {
        "hub": (org_outputs.hub.template, HUB_ACCOUNT, HUB_REGION),
        "member": (org_outputs.stack_set_template, MEMBER_ACCOUNT, MEMBER_REGION),
    }
    for where, (template, account, region) in templates.items():
        for name, rule in resources(template, "AWS::Events::Rule").items():
            event = finding_event(account=account)
            assert not pattern(rule["Properties"], account, region).matches_event(event), (where, name)


def test_in_organization_mode_hub_guards_put_events_on_the_hub_bus_and_import_nothing_themselves(
    org_outputs: Organization,
) -> None:
    for handler in HANDLERS:
        held = grants(org_outputs.hub, handler)
        bus = f"${{{org_outputs.hub.only('AWS::Events::EventBus')}.Arn}}"
        assert (frozenset({"events:PutEvents"}), frozenset({bus}), "") in held, handler
        assert not [g for g in held if "securityhub:BatchImportFindings" in g[0]], handler


def test_the_member_role_imports_into_its_own_product_and_trusts_every_alerting_hub_guard(
    org_outputs: Organization,
) -> None:
    _, role = role_named(org_outputs.stack_set_template, "AmiGuardMember-Access-")
    policies = resources(org_outputs.stack_set_template, "AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    imports = [s for s in statements if s["Action"] == "securityhub:BatchImportFindings"]

    assert {render(s["Resource"]) for s in imports} == {OWN_PRODUCT}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    trusted = {render(arn).rsplit("/", 1)[1] for arn in trust["Condition"]["ArnEquals"]["aws:PrincipalArn"]}
    assert trusted == {
        f"AmiGuard-{guard}-{HUB_REGION}"
        for guard in ("PermissionGuard", "LaunchGuard", "ImageGuard", "TamperGuard", "SweepGuard")
    }


def test_a_deployment_without_the_keys_keeps_its_template_apart_from_the_bus(tmp_path: Path) -> None:
    # Given the default configuration, and the same with the keys at their defaults written out
    plain = synthesize(DEFAULT_BLOCK, tmp_path / "plain").template.to_json()
    explicit = synthesize(
        {**DEFAULT_BLOCK, "securityHub": False, "chat": False, "documentationUrl": ""}, tmp_path / "explicit"
    ).template.to_json()

    # Then the two templates are the same
    assert json.dumps(plain, sort_keys=True) == json.dumps(explicit, sort_keys=True)


def output_alarms(stack: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in stack.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "OutputFailures"
    }


def test_each_output_has_an_alarm_on_the_failures_the_functions_count(
    outputs_stack: Synthesized,
    default_stack: Synthesized,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the metric a function emits when an output fails (Powertools' EMF on stdout, as Lambda ships it), with
    # the Powertools service name the stack gives every function
    from ami_guard.aws_outputs import _count_failure

    (service,) = {env(outputs_stack, handler)["POWERTOOLS_SERVICE_NAME"] for handler in HANDLERS}
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)

    emitted = {}
    for output in ("eventbridge", "securityhub", "chat"):
        capsys.readouterr()
        _count_failure(output)
        document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        (declared,) = document["_aws"]["CloudWatchMetrics"]
        emitted[output] = (declared["Namespace"], {name: document[name] for name in declared["Dimensions"][0]})

    # Then each output that is on has an alarm on exactly that metric, to the health topic; the bus always
    assert sorted(output_alarms(default_stack)) == ["AmiGuard-EventbridgeFailures"]
    alarms = output_alarms(outputs_stack)
    assert sorted(alarms) == ["AmiGuard-ChatFailures", "AmiGuard-EventbridgeFailures", "AmiGuard-SecurityhubFailures"]
    for name, output in (
        ("AmiGuard-EventbridgeFailures", "eventbridge"),
        ("AmiGuard-SecurityhubFailures", "securityhub"),
        ("AmiGuard-ChatFailures", "chat"),
    ):
        alarm = alarms[name]
        namespace, dimensions = emitted[output]
        assert alarm["Namespace"] == namespace == "AmiGuard"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dimensions
        assert dimensions["output"] == output
        assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Statistic"]) == (1, 1, "Sum")
        assert alarm["AlarmActions"] == [{"Ref": "HealthTopic252048D3"}]
