"""Every AWS call a guard function makes is granted by its role in the synthesized template, and every action its
role grants is used on some path: checked both ways, for each configuration that changes what a role holds.

For each configuration the stack is synthesized as `cdk synth` builds it; each function in the template is then run
through its own entry point (the template's Handler, with the template's environment, the emulated account standing
in for the topic and the table) over a catalogue of events that takes every path it has. botocore reports each call
(`tests/functions/conftest.py: CallRecorder`, with its parameters), and the calls are compared with the Allow
statements of the policy attached to the function's role (found through the function's Role reference): each call
allowed on the resource it names with its conditions met (`tests/grants.py`), each action granted called on some path.
Organization mode: tests/functions/test_org_calls_against_grants.py.

The emulated account enforces no IAM, which is why this test exists: without it, an ungranted call passes every
other test and fails only in AWS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest
from botocore.exceptions import ClientError

from tests import records as r
from tests.functions.conftest import TABLE, Account, Call, CallRecorder
from tests.functions.sweep_account import EmulatedEc2, emulate_ec2_gaps
from tests.functions.test_handlers import FakeContext
from tests.grants import (
    Context,
    DeployedFunction,
    Resolver,
    deployed_functions,
    differences,
    iam_action,
    judged,
    requests,
)
from tests.infra.conftest import synthesize

TRUSTED = "555566667777"
OUTSIDER = "444455556666"
MISSING_IMAGE = "ami-0123456789abcdef0"
SNAPSHOT = "snap-0123456789abcdef0"


def on(flag: bool) -> str:
    return "on" if flag else "off"


# The sweep off here: its function is run in the sweep configurations below.
BASE_BLOCK: Mapping[str, Any] = {
    "trustedAccounts": [TRUSTED],
    "alertEmails": [],
    "minSeverity": "LOW",
    "sweepSchedule": False,
}
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
# The outputs on (docs/integrations.md): each alert also imported into Security Hub and published to the chat topic.
CONFIGURATIONS["securityHub_on-chat_on"] = {"remediate": True, "copyTags": True, "securityHub": True, "chat": True}


class EmulatedAccount(Protocol):
    """The account a path is set up in: the emulated standalone account (`Account`), or a member account of the
    emulated organization (tests/functions/test_org_calls_against_grants.py)."""

    def ec2(self, region: str = r.REGION) -> Any: ...

    def make_image(
        self, region: str = r.REGION, *, tags: dict[str, str] | None = None, virtualization_type: str = "hvm"
    ) -> str: ...


@dataclass(frozen=True)
class Case:
    path: str
    events: Callable[[EmulatedAccount, Mapping[str, str], CallRecorder], list[dict[str, Any]]]
    """Sets up the emulated account for the path and returns the events to deliver, in order."""
    fails: bool = False
    """The invocation fails (so that Lambda retries it): the path of a refused alert."""


def watched(env: Mapping[str, str], key: str) -> str:
    names = [name for name in env.get(key, "").split(",") if name]
    assert names, f"the function watches nothing in {key}: its tamper cases would take no path"
    return names[0]


def public_image(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image()
    account.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    return [r.envelope(r.modify_image_attribute(image, [{"group": "all"}]))]


def untrusted_share(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image()
    account.ec2().modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": OUTSIDER}]})
    return [r.envelope(r.modify_image_attribute(image, [{"userId": OUTSIDER}]))]


def refused(case: Case) -> Case:
    """The same path, with SNS refusing the alert: the invocation fails and the idempotency record is deleted."""

    def events(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
        calls.refuse_next("sns", "Publish")
        return case.events(account, env, calls)

    return Case(f"{case.path}, the alert topic refusing the alert", events, fails=True)


def twice(case: Case) -> Case:
    """The same path, its event delivered twice: the second delivery finds the idempotency record."""

    def events(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
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


def paravirtual_launch(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image(virtualization_type="paravirtual")
    return [r.envelope(r.run_instances(image, "m1.small", virtualization_type=None))]


def refused_template_launch(
    account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder
) -> list[dict[str, Any]]:
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


def mismatched_launch(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
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
    account: EmulatedAccount, *, source_tags: dict[str, str], source_gone: bool = False
) -> tuple[str, str]:  # (copy, source)
    source = account.make_image(r.OTHER_REGION, tags=source_tags)
    copy = account.ec2().copy_image(SourceImageId=source, SourceRegion=r.OTHER_REGION, Name="golden-copy")["ImageId"]
    if source_gone:
        account.ec2(r.OTHER_REGION).deregister_image(ImageId=source)
    return copy, source


def copy_without_tags(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    copy, source = copy_of(account, source_tags={"Owner": "platform", "CostCenter": "42"})
    return [r.envelope(r.copy_image(copy, source))]


def copy_with_tags(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    copy, source = copy_of(account, source_tags={"Owner": "platform"})
    return [r.envelope(r.copy_image(copy, source, copy_image_tags=True))]


def copy_of_vanished(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    copy, source = copy_of(account, source_tags={"Owner": "platform"}, source_gone=True)
    return [r.envelope(r.copy_image(copy, source))]


def registered(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
    image = account.make_image(tags={"Owner": "platform"})
    return [r.envelope(r.register_image(image, virtualization_type="paravirtual"))]


def created(account: EmulatedAccount, env: Mapping[str, str], calls: CallRecorder) -> list[dict[str, Any]]:
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


PSEUDO_PARAMETERS = {"Partition": "aws", "Region": r.REGION, "AccountId": r.ACCOUNT}


def resolver(resources: Mapping[str, Any], account: Account) -> Resolver:
    """The template as CloudFormation would resolve it in the emulated account: the topic and the table it
    references are the emulated ones; any other resource (named in a watch list, say) gets a stand-in name, which is
    all a function that only compares names needs, and which no real call's resource matches."""
    table = boto3.client("dynamodb", region_name=r.REGION).describe_table(TableName=TABLE)["Table"]["TableArn"]
    return Resolver(
        resources,
        PSEUDO_PARAMETERS,
        refs={"AWS::SNS::Topic": account.topic_arn, "AWS::DynamoDB::Table": TABLE, "AWS::S3::Bucket": SWEEP_BUCKET},
        attributes={
            ("AWS::DynamoDB::Table", "Arn"): table,
            ("AWS::S3::Bucket", "Arn"): f"arn:aws:s3:::{SWEEP_BUCKET}",
        },
    )


def not_allowed(function: DeployedFunction, calls: list[Call], context: Context) -> Iterator[str]:
    """Each call of the function that its role's statements do not allow on the resource it names, with the
    condition keys the emulated account gives it (ec2:Owner: the image's or snapshot's owner)."""
    for call in calls:
        if call.function != function.name:
            continue
        action = iam_action(call.service, call.operation)
        for request in requests(
            action,
            call.params,
            partition="aws",
            region=call.region,
            account=r.ACCOUNT,
            context_of=lambda arn: context.of(r.ACCOUNT, arn),
        ):
            if not judged(function.statements, request, context.absent)[0]:
                yield (
                    f"{function.name}: {action} on {request.resource} ({dict(request.context)}) in {call.region}, "
                    f"on {call.path}: not allowed by its role's statements"
                )


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


def run_catalogue(
    function: DeployedFunction,
    env: Mapping[str, str],
    account: EmulatedAccount,
    calls: CallRecorder,
    catalogue: Mapping[str, list[Case]] = CATALOGUE,
) -> None:
    """Every case of the function's catalogue through the function's own entry point, as Lambda calls it."""
    module_name, attribute = function.handler.rsplit(".", 1)
    module = importlib.import_module(module_name)
    entry_point = getattr(module, attribute)
    assert function.handler in catalogue, f"{function.name}: no catalogue of paths for {function.handler}"
    # the function's container starts cold: the clients it makes are made from now on
    if hasattr(module, "_guard"):
        module._guard.reset()
    else:
        module._state.clear()  # the sweep's entry point keeps its settings and clients there
    for case in catalogue[function.handler]:
        for event in case.events(account, env, calls):
            with calls.recording(function.name, case.path):
                if case.fails:
                    with pytest.raises(ClientError, match="Throttling"):
                        entry_point(event, FakeContext())
                else:
                    result = entry_point(event, FakeContext())
                    # the sweep's state machine invokes it again with its answer while it is not done
                    while isinstance(result, dict) and result.get("done") is False:
                        result = entry_point(result, FakeContext())


def called_actions(calls: list[Call], function: str) -> dict[str, list[str]]:
    """IAM action -> the paths on which `function` called it."""
    called: dict[str, list[str]] = {}
    for call in calls:
        if call.function == function:
            paths = called.setdefault(iam_action(call.service, call.operation), [])
            paths += [call.path] if call.path not in paths else []
    return called


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
    resolve = resolver(template["Resources"], account)
    functions = list(deployed_functions(template, resolve))
    assert sorted(f.name for f in functions) == [
        "AmiGuard-ImageGuard",
        "AmiGuard-LaunchGuard",
        "AmiGuard-PermissionGuard",
        "AmiGuard-TamperGuard",
    ]
    # When each function handles every event of its catalogue
    for function in functions:
        with monkeypatch.context() as env:
            variables = {key: resolve(value) for key, value in function.environment.items()}
            for key, value in {**variables, "AWS_LAMBDA_FUNCTION_NAME": function.name}.items():
                env.setenv(key, value)
            run_catalogue(function, variables, account, recorder)
    # Then each function called only what its role grants, and its role grants nothing no path uses
    # (each call allowed on the resource it names, its conditions met)
    found: list[str] = []
    context = Context()
    for function in functions:
        found += differences(function.name, function.granted, called_actions(recorder.calls, function.name))
        found += not_allowed(function, recorder.calls, context)
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


# --- the posture sweep (deployed with a sweepSchedule) -----------------------------------------------------------

SWEEP_HANDLER = "ami_guard.handlers.sweep_guard.lambda_handler"
# What changes the sweep's calls: copyTags (a copy found untagged gets its source's tags).
SWEEP_CONFIGURATIONS: dict[str, Mapping[str, Any]] = {
    f"sweep-copyTags_{on(copy_tags)}": {"sweepSchedule": "rate(1 day)", "copyTags": copy_tags}
    for copy_tags in (False, True)
}
SWEEP_CONFIGURATIONS["sweep-securityHub_on"] = {"sweepSchedule": "rate(1 day)", "copyTags": True, "securityHub": True}
SWEEP_RUN = "sweep-run-1"
SWEEP_BUCKET = "amiguard-sweep-runs"


@dataclass(frozen=True)
class SweepCase:
    path: str
    events: Callable[[EmulatedEc2], list[dict[str, Any]]]


def exposed_account(ec2: EmulatedEc2) -> list[dict[str, Any]]:
    """Every kind of standing exposure the sweep reads, and a copy whose source's tags it lacks."""
    ec2.image("web", launch_permissions=[{"Group": "all"}])
    ec2.image("batch", launch_permissions=[{"UserId": OUTSIDER}])
    ec2.image("golden")
    ec2.snapshot(groups=["all"])
    ec2.snapshot(user_ids=[OUTSIDER])
    ec2.instance(ec2.image("legacy", virtualization_type="paravirtual"), instance_type="m1.small")
    source = ec2.image("base", r.OTHER_REGION, tags={"Owner": "platform", "CostCenter": "42"})
    ec2.copy(source, r.OTHER_REGION, name="base-copy")
    return [{"account": r.ACCOUNT, "region": r.REGION, "run": SWEEP_RUN}]


def exposure_fixed(ec2: EmulatedEc2) -> list[dict[str, Any]]:
    """The second run, after the public image was made private: one finding resolved, the others standing."""
    (web,) = [i["ImageId"] for i in ec2.ec2().describe_images(Owners=["self"])["Images"] if i["Name"] == "web"]
    ec2.ec2().modify_image_attribute(ImageId=web, LaunchPermission={"Remove": [{"Group": "all"}]})
    return [{"account": r.ACCOUNT, "region": r.REGION, "run": "sweep-run-2"}]


SWEEP_CASES = [
    SweepCase("the plan", lambda ec2: [{"plan": True, "run": SWEEP_RUN}]),
    SweepCase("a first sweep of an exposed account-region", exposed_account),
    SweepCase("a second sweep, one exposure fixed", exposure_fixed),
    SweepCase(
        "an account-region that is not a target",
        lambda ec2: [{"account": OUTSIDER, "region": r.REGION, "run": SWEEP_RUN}],
    ),
]


@pytest.mark.parametrize("configuration", list(SWEEP_CONFIGURATIONS))
def test_the_sweep_function_calls_exactly_what_its_role_grants(
    configuration: str,
    tmp_path_factory: pytest.TempPathFactory,
    account: Account,
    recorder: CallRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the stack with the sweep, its sweep function deployed into the emulated account (the three account
    # settings answered by the emulator, each guardrail off so that each is a finding)
    block = {**BASE_BLOCK, **SWEEP_CONFIGURATIONS[configuration]}
    template = synthesize(block, tmp_path_factory.mktemp("cdk.out")).template.to_json()
    resolve = resolver(template["Resources"], account)
    (function,) = [f for f in deployed_functions(template, resolve) if f.handler == SWEEP_HANDLER]
    assert function.name == "AmiGuard-SweepGuard"
    ec2 = EmulatedEc2(account=r.ACCOUNT)
    emulate_ec2_gaps(monkeypatch, ec2)
    module = importlib.import_module("ami_guard.handlers.sweep_guard")
    # When the state machine's invocations reach it: the plan, then each target, twice
    with monkeypatch.context() as env:
        variables = {key: resolve(value) for key, value in function.environment.items()}
        for key, value in {**variables, "AWS_LAMBDA_FUNCTION_NAME": function.name}.items():
            env.setenv(key, value)
        module._state.clear()  # a cold container: its clients are made from now on
        boto3.client("s3", region_name=r.REGION).create_bucket(
            Bucket=SWEEP_BUCKET, CreateBucketConfiguration={"LocationConstraint": r.REGION}
        )
        results = []
        for case in SWEEP_CASES:
            for event in case.events(ec2):
                with recorder.recording(function.name, case.path):
                    # as the state machine does: again with the function's answer while it is not done (the fake
                    # context's 30 s left are under the function's margin: one step an invocation)
                    result = module.lambda_handler(event, FakeContext())
                    while result.get("done") is False:
                        result = module.lambda_handler(result, FakeContext())
                    results.append(result)
    # Then it called only what its role grants, and its role grants nothing no path uses
    assert results[0] == {
        "bucket": SWEEP_BUCKET,
        "key": f"runs/{SWEEP_RUN}/plan.json",
        "results": f"runs/{SWEEP_RUN}/results",
        "targets": 1,
    }
    first, second = results[1:3]
    assert [(s["status"], s["done"]) for s in (first, second)] == [("swept", True)] * 2
    # every exposure the first run alerted and the second no longer finds is resolved by the second, however soon
    # after the first it starts; one step a page, and (under the fake context's margin) one resolved notice a step
    assert (first["alerted"], first["resolved"]) == (first["findings"], 0)
    assert second["resolved"] == first["findings"] - second["findings"] > 0
    assert second["invocations"] == second["pages"] + second["resolved"]
    assert results[-1]["status"] == "refused"
    # (invoked synchronously by its state machine only: no on-failure queue, tests/infra/test_posture_sweep.py)
    found = differences(
        function.name, function.granted, called_actions(recorder.calls, function.name), asynchronous=False
    )
    found += not_allowed(function, recorder.calls, Context())
    assert not found, "\n".join(["calls and grants differ:", *found])
