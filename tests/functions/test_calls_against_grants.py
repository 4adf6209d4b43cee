"""Every AWS call a guard function makes is granted by its role in the synthesized template, and every action its
role grants is used on some path: checked both ways, for each configuration that changes what a role holds.

For each configuration the stack is synthesized as `cdk synth` builds it; each function in the template is then run
through its own entry point (the template's Handler, with the template's environment, the emulated account standing
in for the topic and the table) over a catalogue of events that takes every path it has. botocore reports each call
(`tests/functions/conftest.py: CallRecorder`), and the calls are compared with the Allow statements of the policy
attached to the function's role (found through the function's Role reference).

The emulated account enforces no IAM, which is why this test exists: without it, an ungranted call passes every
other test and fails only in AWS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests import records as r
from tests.functions.conftest import TABLE, Account, CallRecorder
from tests.functions.test_handlers import FakeContext
from tests.infra.conftest import synthesize

TRUSTED = "555566667777"
OUTSIDER = "444455556666"
MISSING_IMAGE = "ami-0123456789abcdef0"
SNAPSHOT = "snap-0123456789abcdef0"


def on(flag: bool) -> str:
    return "on" if flag else "off"


BASE_BLOCK: Mapping[str, Any] = {"trustedAccounts": [TRUSTED], "alertEmails": [], "minSeverity": "LOW"}
# Every combination of the settings that decide which calls a function makes.
CONFIGURATIONS: dict[str, Mapping[str, Any]] = {
    f"remediate_{on(remediate)}-copyTags_{on(copy_tags)}-requiredTags_{'set' if tags else 'empty'}": {
        "remediate": remediate,
        "copyTags": copy_tags,
        "requiredTags": tags,
    }
    for remediate in (False, True)
    for copy_tags in (False, True)
    for tags in ([], ["Owner", "CostCenter"])
}

# botocore service name -> IAM service prefix. For the operations of these services the IAM action is named after
# the API operation (Service Authorization Reference); a service where it is not would need a table of its own.
IAM_PREFIX = {"ec2": "ec2", "sns": "sns", "dynamodb": "dynamodb"}

LAMBDA_USES = "Lambda itself, not our code"
ON_OUR_BEHALF: dict[str, tuple[str | None, str]] = {
    # action granted: (the call of ours that needs it, or None when every function needs it; why no call of ours
    # appears for it)
    "logs:CreateLogStream": (None, f"{LAMBDA_USES}: the runtime creates the log stream in the function's log group"),
    "logs:PutLogEvents": (None, f"{LAMBDA_USES}: the runtime writes what the function prints to its log group"),
    "sqs:SendMessage": (
        None,
        f"{LAMBDA_USES}: an event that failed its asynchronous retries is sent to the function's on-failure "
        "queue with the execution role",
    ),
    "kms:GenerateDataKey": (
        "sns:Publish",
        "SNS encrypts each message published to the topic with its customer managed key, calling KMS with the "
        "publisher's permissions",
    ),
    "kms:Decrypt": ("sns:Publish", "as kms:GenerateDataKey: SNS needs it from the publisher to use the data key"),
}


@dataclass(frozen=True)
class Case:
    path: str
    events: Callable[[Account, Mapping[str, str], CallRecorder], list[dict[str, Any]]]
    """Sets up the emulated account for the path and returns the events to deliver, in order."""
    fails: bool = False
    """The invocation fails (so that Lambda retries it): the path of a refused alert."""


def watched(env: Mapping[str, str], key: str) -> str:
    names = [name for name in env.get(key, "").split(",") if name]
    assert names, f"the function watches nothing in {key}: its tamper cases would take no path"
    return names[0]


def public_image(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image()
    account.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    return [r.envelope(r.modify_image_attribute(image, [{"group": "all"}]))]


def untrusted_share(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image()
    account.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": OUTSIDER}]})
    return [r.envelope(r.modify_image_attribute(image, [{"userId": OUTSIDER}]))]


def refused(case: Case) -> Case:
    """The same path, with SNS refusing the alert: the invocation fails and the idempotency record is deleted."""

    def events(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
        calls.refuse_next("sns", "Publish")
        return case.events(account, env, calls)

    return Case(f"{case.path}, the alert topic refusing the alert", events, fails=True)


def twice(case: Case) -> Case:
    """The same path, its event delivered twice: the second delivery finds the idempotency record."""

    def events(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
        return [event for event in case.events(account, env, calls) for _ in range(2)]

    return Case(f"{case.path}, delivered twice", events)


PUBLIC_SNAPSHOT = Case(
    "a snapshot made public",
    lambda account, env, calls: [r.envelope(r.modify_snapshot_attribute(SNAPSHOT, [{"group": "all"}]))],
)
PERMISSION_CASES = [
    Case("an own image made public", public_image),
    Case("an own image shared with an untrusted account", untrusted_share),
    Case(
        "an image shared with a trusted account",
        lambda account, env, calls: [r.envelope(r.modify_image_attribute(MISSING_IMAGE, [{"userId": TRUSTED}]))],
    ),
    Case(
        "an image made public that is gone before it can be reverted",
        lambda account, env, calls: [r.envelope(r.modify_image_attribute(MISSING_IMAGE, [{"group": "all"}]))],
    ),
    PUBLIC_SNAPSHOT,
    Case(
        "image block public access disabled", lambda account, env, calls: [r.envelope(r.disable_block_public_access())]
    ),
    Case(
        "the tamper guard's function changed",
        lambda account, env, calls: [
            r.envelope_for_source(r.lambda_call("DeleteFunction20150331", watched(env, "AMI_GUARD_WATCHED_FUNCTIONS")))
        ],
    ),
    Case(
        "the tamper guard's rule disabled",
        lambda account, env, calls: [
            r.envelope_for_source(r.events_call("DisableRule", watched(env, "AMI_GUARD_WATCHED_RULES")))
        ],
    ),
    twice(Case("an own image made public", public_image)),
    refused(PUBLIC_SNAPSHOT),
]


def paravirtual_launch(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image(virtualization_type="paravirtual")
    return [r.envelope(r.run_instances(image, "m1.small", virtualization_type=None))]


def refused_template_launch(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    """A refused launch has no response to read the image from: only the launch template names it."""
    image = account.make_image(virtualization_type="paravirtual")
    template = account.ec2().create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    request = {
        "instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
        "launchTemplate": {"launchTemplateId": template, "version": "1"},
    }
    record = r.record("RunInstances", request, None, error_code="InvalidParameterCombination")
    return [r.envelope(record)]


def mismatched_launch(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image(virtualization_type="paravirtual")
    record = r.run_instances(image, "m5.large", virtualization_type=None, error_code="InvalidParameterCombination")
    return [r.envelope(record)]


PREVIOUS_GENERATION = Case(
    "a launch of a previous-generation type, the record naming its virtualization",
    lambda account, env, calls: [r.envelope(r.run_instances(MISSING_IMAGE, "m3.medium"))],
)
LAUNCH_CASES = [
    PREVIOUS_GENERATION,
    Case("a launch whose record names no virtualization type", paravirtual_launch),
    Case("a refused launch from a launch template", refused_template_launch),
    Case("a launch refused for its virtualization type", mismatched_launch),
    twice(PREVIOUS_GENERATION),
    refused(PREVIOUS_GENERATION),
]


def copy_of(
    account: Account, *, source_tags: dict[str, str], source_gone: bool = False
) -> tuple[str, str]:  # (copy, source)
    source = account.make_image(r.OTHER_REGION, tags=source_tags)
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    if source_gone:
        account.ec2(r.OTHER_REGION).deregister_image(ImageId=source)
    return copy, source


def copy_without_tags(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    copy, source = copy_of(account, source_tags={"Owner": "platform", "CostCenter": "42"})
    return [r.envelope(r.copy_image(copy, source))]


def copy_with_tags(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    copy, source = copy_of(account, source_tags={"Owner": "platform"})
    return [r.envelope(r.copy_image(copy, source, copy_image_tags=True))]


def copy_of_vanished(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    copy, source = copy_of(account, source_tags={"Owner": "platform"}, source_gone=True)
    return [r.envelope(r.copy_image(copy, source))]


def registered(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image(tags={"Owner": "platform"})
    return [r.envelope(r.register_image(image, virtualization_type="paravirtual"))]


def created(account: Account, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    return [r.envelope(r.create_image(account.make_image()))]


REGISTERED = Case("a paravirtual image registered", registered)
IMAGE_CASES = [
    REGISTERED,
    Case("an image created without tags", created),
    Case("a copy made without its source's tags", copy_without_tags),
    Case("a copy made with CopyImageTags", copy_with_tags),
    Case("a copy whose source is gone", copy_of_vanished),
    twice(REGISTERED),
    refused(REGISTERED),
]

WATCHED_FUNCTION_CHANGED = Case(
    "a watched function changed",
    lambda account, env, calls: [
        r.envelope_for_source(
            r.lambda_call("UpdateFunctionConfiguration20150331v2", watched(env, "AMI_GUARD_WATCHED_FUNCTIONS"))
        )
    ],
)
TAMPER_CASES = [
    WATCHED_FUNCTION_CHANGED,
    Case(
        "a watched rule disabled",
        lambda account, env, calls: [
            r.envelope_for_source(r.events_call("DisableRule", watched(env, "AMI_GUARD_WATCHED_RULES")))
        ],
    ),
    Case(
        "a function it does not watch changed",
        lambda account, env, calls: [
            r.envelope_for_source(r.lambda_call("UpdateFunctionCode20150331v2", "someone-elses-function"))
        ],
    ),
    twice(WATCHED_FUNCTION_CHANGED),
    refused(WATCHED_FUNCTION_CHANGED),
]

CATALOGUE: dict[str, list[Case]] = {
    "ami_guard.handlers.permission_guard.lambda_handler": PERMISSION_CASES,
    "ami_guard.handlers.launch_guard.lambda_handler": LAUNCH_CASES,
    "ami_guard.handlers.image_guard.lambda_handler": IMAGE_CASES,
    "ami_guard.handlers.tamper_guard.lambda_handler": TAMPER_CASES,
}


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    handler: str
    environment: Mapping[str, Any]
    granted: frozenset[str]


def deployed_functions(template: Mapping[str, Any]) -> Iterator[DeployedFunction]:
    resources: Mapping[str, Any] = template["Resources"]
    for resource in resources.values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        yield DeployedFunction(
            name=props["FunctionName"],
            handler=props["Handler"],
            environment=props["Environment"]["Variables"],
            granted=granted_actions(resources, props["Role"]["Fn::GetAtt"][0]),
        )


def granted_actions(resources: Mapping[str, Any], role_id: str) -> frozenset[str]:
    """The actions the role's policies allow. Only Allow statements with listed actions are expected here: a Deny,
    a NotAction, a managed or an inline role policy would need more than an action set to be compared."""
    role = resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role, f"{role_id}: policies beside its own"
    actions: set[str] = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy" or {"Ref": role_id} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow" and "NotAction" not in statement, statement
            action = statement["Action"]
            actions.update([action] if isinstance(action, str) else action)
    return frozenset(actions)


PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": r.REGION, "AWS::AccountId": r.ACCOUNT}


def resolved(environment: Mapping[str, Any], resources: Mapping[str, Any], account: Account) -> dict[str, str]:
    """The function's environment as CloudFormation would resolve it in the emulated account: the topic and the
    table it references are the emulated ones; any other resource (named in a watch list, say) gets a stand-in name,
    which is all a function that only compares names needs."""
    stand_ins = {"AWS::SNS::Topic": account.topic_arn, "AWS::DynamoDB::Table": TABLE}

    def value_of(node: Any) -> str:
        if isinstance(node, str):
            return node
        if set(node) == {"Ref"}:
            name = node["Ref"]
            if name in PSEUDO_PARAMETERS:
                return PSEUDO_PARAMETERS[name]
            return stand_ins.get(resources[name]["Type"], f"stand-in-{name}")
        if set(node) == {"Fn::GetAtt"}:
            return "stand-in-" + "-".join(node["Fn::GetAtt"])
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return str(separator).join(value_of(part) for part in parts)
        raise AssertionError(f"{node}: an intrinsic this test does not resolve")

    return {key: value_of(value) for key, value in environment.items()}


def iam_action(service: str, operation: str) -> str:
    assert service in IAM_PREFIX, f"a call to {service}.{operation}: add the service's IAM prefix to IAM_PREFIX"
    return f"{IAM_PREFIX[service]}:{operation}"


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Mapping[str, Any]]:
    """The template of a configuration, synthesized once per module (a few seconds each)."""
    cache: dict[str, Mapping[str, Any]] = {}

    def template(configuration: str) -> Mapping[str, Any]:
        if configuration not in cache:
            block = {**BASE_BLOCK, **CONFIGURATIONS[configuration]}
            outdir: Path = tmp_path_factory.mktemp("cdk.out")
            cache[configuration] = synthesize(block, outdir).template.to_json()
        return cache[configuration]

    return template


def run_catalogue(function: DeployedFunction, env: Mapping[str, str], account: Account, calls: CallRecorder) -> None:
    """Every case of the function's catalogue through the function's own entry point, as Lambda calls it."""
    module_name, attribute = function.handler.rsplit(".", 1)
    module = importlib.import_module(module_name)
    entry_point = getattr(module, attribute)
    assert function.handler in CATALOGUE, f"{function.name}: no catalogue of paths for {function.handler}"
    module._guard.reset()  # the function's container starts cold: the clients it makes are made from now on
    for case in CATALOGUE[function.handler]:
        for event in case.events(account, env, calls):
            with calls.recording(function.name, case.path):
                if case.fails:
                    with pytest.raises(ClientError, match="Throttling"):
                        entry_point(event, FakeContext())
                else:
                    entry_point(event, FakeContext())


def differences(function: DeployedFunction, called: Mapping[str, list[str]]) -> list[str]:
    """What is called without a grant, and what is granted without a call (nor a reason written out above)."""
    needed = set(called) | {
        action for action, (needed_by, _) in ON_OUR_BEHALF.items() if needed_by is None or needed_by in called
    }
    name = function.name
    return [
        *(
            f"{name}: {a} called without a grant, on: {'; '.join(called[a])}"
            for a in sorted(set(called) - function.granted)
        ),
        *(f"{name}: {a} granted but called on no path" for a in sorted(function.granted - needed)),
        *(f"{name}: {a} needed on our behalf but not granted" for a in sorted(needed - set(called) - function.granted)),
    ]


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_each_function_calls_exactly_what_its_role_grants(
    configuration: str,
    templates: Callable[[str], Mapping[str, Any]],
    account: Account,
    recorder: CallRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the stack synthesized for this configuration, and its four functions deployed into the emulated account
    template = templates(configuration)
    functions = list(deployed_functions(template))
    assert sorted(f.name for f in functions) == [
        "AmiGuard-ImageGuard",
        "AmiGuard-LaunchGuard",
        "AmiGuard-PermissionGuard",
        "AmiGuard-TamperGuard",
    ]
    # When each function handles every event of its catalogue
    for function in functions:
        with monkeypatch.context() as env:
            variables = resolved(function.environment, template["Resources"], account)
            for key, value in {**variables, "AWS_LAMBDA_FUNCTION_NAME": function.name}.items():
                env.setenv(key, value)
            run_catalogue(function, variables, account, recorder)
    # Then each function called only what its role grants, and its role grants nothing no path uses
    found: list[str] = []
    for function in functions:
        called: dict[str, list[str]] = {}
        for call in recorder.calls:
            if call.function == function.name:
                paths = called.setdefault(iam_action(call.service, call.operation), [])
                paths += [call.path] if call.path not in paths else []
        found += differences(function, called)
    assert not found, "\n".join(["calls and grants differ:", *found])


def test_the_recorder_sees_calls_from_any_client_but_only_while_recording(recorder: CallRecorder) -> None:
    # Given a client made after the recorder was registered, outside the functions' client factory
    ec2 = boto3.client("ec2", region_name=r.REGION)
    # When it calls once while recording and once outside
    with recorder.recording("AmiGuard-ImageGuard", "a stray call"):
        ec2.describe_volumes()
    ec2.describe_key_pairs()
    # Then only the call made while recording is seen, named by its IAM action
    assert [(c.function, c.path, iam_action(c.service, c.operation)) for c in recorder.calls] == [
        ("AmiGuard-ImageGuard", "a stray call", "ec2:DescribeVolumes")
    ]
