"""The logical ids of every template the app synthesizes, written out from the templates synthesized before the app
was built from the AmiGuard construct (commit 6ffa57a): a deployed stack must not see a resource replaced (the
topics' subscriptions and the table would be lost), so no path component may leak into an id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import DEFAULT_BLOCK, SWEEP_BLOCK, synthesize

ORGANIZATION_BLOCK: dict[str, Any] = {
    **SWEEP_BLOCK,
    "organization": {
        "organizationId": "o-a1b2c3d4e5",
        "hubAccount": "222233334444",
        "hubRegion": "eu-west-1",
        "regions": ["eu-west-1", "us-east-1", "ap-southeast-2"],
        "organizationalUnits": ["ou-ab12-cdefgh34", "ou-ab12-ijklmn56"],
    },
}
STACK_SET_TEMPLATE = "AmiGuardMemberTemplate69AC9833.stackset.template.json"
"""The member template's file in cdk.out, named after the StackSetStack's unique id (the demo reads it)."""

STANDALONE_RESOURCES = (
    # the alarm on failed finding events (EventBridge, always on; session 15: a new resource, no id changed)
    "OutputAlarmsEventbridgeFailuresECAC1E72",
    "AlertPathWatchRuleEE3BE750",
    "AlertsKey9E1197AF",
    "AlertsTopicCF7C81C9",
    "AlertsTopicPolicyFF1F97BA",
    "HealthKey78CEF763",
    "HealthTopic252048D3",
    "HealthTopicPolicyC4E344CB",
    "IdempotencyTable48612DF4",
    "ImageGuardAlarmsErrors4D2A7C2F",
    "ImageGuardAlarmsFailedEventsBF15F3D9",
    "ImageGuardAlarmsThrottles568BB970",
    "ImageGuardFailedEventsA5BBAC74",
    "ImageGuardFailedEventsPolicyD8892B27",
    "ImageGuardFunction59CBBF57",
    "ImageGuardFunctionEventInvokeConfig3A79894F",
    "ImageGuardLogGroup6067935E",
    "ImageGuardRole58943345",
    "ImageGuardRoleDefaultPolicyB0FB765F",
    "ImageRuleAllowEventRuleAmiGuardImageGuardFunction7C8BF394BC9E781C",
    "ImageRuleE41F7CC3",
    "LaunchGuardAlarmsErrors5FD96476",
    "LaunchGuardAlarmsFailedEvents3B6F2716",
    "LaunchGuardAlarmsThrottlesFF9C054E",
    "LaunchGuardFailedEventsD2782EC6",
    "LaunchGuardFailedEventsPolicy79D21547",
    "LaunchGuardFunction73A736C5",
    "LaunchGuardFunctionEventInvokeConfig0C3CE289",
    "LaunchGuardLogGroup5AFBF769",
    "LaunchGuardRoleDefaultPolicyDEC58965",
    "LaunchGuardRoleE85EB947",
    "LaunchRule233627AC",
    "LaunchRuleAllowEventRuleAmiGuardLaunchGuardFunctionF49DFFEE408F444E",
    "PermissionGuardAlarmsErrors4D31B1F0",
    "PermissionGuardAlarmsFailedEvents35A42502",
    "PermissionGuardAlarmsThrottlesEDE1A872",
    "PermissionGuardFailedEvents86EE40D5",
    "PermissionGuardFailedEventsPolicyDBD31F03",
    "PermissionGuardFunction66E725AC",
    "PermissionGuardFunctionEventInvokeConfig55CBCFF5",
    "PermissionGuardLogGroup423F833D",
    "PermissionGuardRole22204C0A",
    "PermissionGuardRoleDefaultPolicy4E994586",
    "PermissionRule0978F866",
    "PermissionRuleAllowEventRuleAmiGuardPermissionGuardFunctionF9B5F2B14D9E5E06",
    "TamperGuardAlarmsErrors5D5532C0",
    "TamperGuardAlarmsFailedEvents64492383",
    "TamperGuardAlarmsThrottlesA9F8516A",
    "TamperGuardFailedEvents7ADA3CBE",
    "TamperGuardFailedEventsPolicyD61C9A06",
    "TamperGuardFunction9673B3E3",
    "TamperGuardFunctionEventInvokeConfig2FA42168",
    "TamperGuardLogGroup8297E077",
    "TamperGuardRole9CEDD21C",
    "TamperGuardRoleDefaultPolicyA91EB92D",
    "TamperRule21CFE524",
    "TamperRuleAllowEventRuleAmiGuardTamperGuardFunction040F7325F45DEA08",
    "TamperWatchRuleACBADEE3",
    "TamperWatchRuleAllowEventRuleAmiGuardPermissionGuardFunctionF9B5F2B144A0AD20",
)
STANDALONE_OUTPUTS = (
    "AlertTopicArn",
    "HealthTopicArn",
    "IdempotencyTableName",
    "ImageGuardFunctionName",
    "LaunchGuardFunctionName",
    "PermissionGuardFunctionName",
    "TamperGuardFunctionName",
)
SWEEP_RESOURCES = (
    "SweepGuardAlarmsErrors23FB8DFE",
    "SweepGuardAlarmsThrottles98E70F31",
    "SweepGuardFunction748814D1",
    "SweepGuardLogGroup85BBE083",
    "SweepGuardRole61CDD867",
    "SweepGuardRoleDefaultPolicy25F9640C",
    "SweepLogsA7192123",
    "SweepRole8A7451E2",
    "SweepRoleDefaultPolicy646E75C8",
    # added by the Distributed Map (task S): the runs bucket, its TLS-only policy, the child-execution grants
    "SweepRunsF8CCA742",
    "SweepRunsPolicyC6B6076F",
    # the alarms on the state machine's failed, timed-out and aborted runs (session 15)
    "SweepRunAlarmsRunsAbortedE4C27F06",
    "SweepRunAlarmsRunsFailed394C13DB",
    "SweepRunAlarmsRunsTimedOut44EDEA28",
    "SweepScheduleE6028B01",
    "SweepScheduleRole360ECEA1",
    "SweepScheduleRoleDefaultPolicyE50AEE29",
    "SweepStateMachineDistributedMapPolicyE300B859",
    "SweepStateMachineE9432328",
)
SWEEP_OUTPUTS = (
    "SweepGuardFunctionName",
    "SweepStateMachineArn",
)
HUB_RESOURCES = (
    "HubBus4EE46813",
    "MemberTamperRule883C5F5D",
    "MemberTamperRuleAllowEventRuleAmiGuardTamperGuardFunction040F73255C44F65E",
    "MembersStackSet21AAEDC5",
)
HUB_OUTPUTS = ("HubBusArn",)
MEMBER_RESOURCES = (
    "MemberAccessRole409618AB",
    "MemberAccessRoleDefaultPolicy6B789ED8",
    "MemberForwardingForwardRuleFFA55251",
    "MemberForwardingRoleDefaultPolicy93B79686",
    "MemberForwardingRoleEED1E720",
    "MemberForwardingWatchRule3E9DE2EB",
)


def synthesized_ids(block: dict[str, Any], outdir: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Each template file of the app's cloud assembly -> (sorted resource ids, sorted output ids)."""
    synthesize(block, outdir).app.synth()
    found: dict[str, tuple[list[str], list[str]]] = {}
    for path in sorted(outdir.glob("*.template.json")):
        template = json.loads(path.read_text(encoding="utf-8"))
        found[path.name] = (sorted(template["Resources"]), sorted(template.get("Outputs", {})))
    return found


@pytest.mark.parametrize(
    ("block", "resources", "outputs"),
    [
        (DEFAULT_BLOCK, STANDALONE_RESOURCES, STANDALONE_OUTPUTS),
        (SWEEP_BLOCK, STANDALONE_RESOURCES + SWEEP_RESOURCES, STANDALONE_OUTPUTS + SWEEP_OUTPUTS),
    ],
    ids=["standalone", "standalone-with-sweep"],
)
def test_the_standalone_template_keeps_every_logical_id(
    block: dict[str, Any], resources: tuple[str, ...], outputs: tuple[str, ...], tmp_path: Path
) -> None:
    assert synthesized_ids(dict(block), tmp_path) == {"AmiGuard.template.json": (sorted(resources), sorted(outputs))}


def test_the_hub_member_and_stack_set_templates_keep_every_logical_id(tmp_path: Path) -> None:
    found = synthesized_ids(ORGANIZATION_BLOCK, tmp_path)

    assert found == {
        "AmiGuard.template.json": (
            sorted(STANDALONE_RESOURCES + SWEEP_RESOURCES + HUB_RESOURCES),
            sorted(STANDALONE_OUTPUTS + SWEEP_OUTPUTS + HUB_OUTPUTS),
        ),
        "AmiGuardMember.template.json": (sorted(MEMBER_RESOURCES), []),
        STACK_SET_TEMPLATE: (sorted(MEMBER_RESOURCES), []),
    }
