"""What every deployment that runs the guard's functions holds: the functions, their rules, the alert and health
topics, the idempotency table, the failed-events queues, the alarms and the watch over the guard's own resources.

Built straight into the scope it is given (no construct level of its own): the AmiGuard construct, which the app
adds to its stack with the id "Default" so that the templates keep the logical ids they always had. A deployment
shape says only what differs: which bus the EC2 rules listen on, how the guards reach EC2, what the shape adds to
the environment and to the tamper watch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

from ami_guard import contract
from ami_guard.config import Policy, to_environment
from ami_guard.rules.catalog import routes
from ami_guard_cdk.components.alert_path_watch import AlertPathWatch
from ami_guard_cdk.components.alert_topic import AlertTopic
from ami_guard_cdk.components.finding_outputs import FindingOutputs
from ami_guard_cdk.components.guard_alarms import GuardAlarms, OutputAlarms, SweepRunAlarms
from ami_guard_cdk.components.guard_function import GuardFunction
from ami_guard_cdk.components.guard_rule import GuardRule, cloudtrail_pattern, tamper_pattern
from ami_guard_cdk.components.idempotency_table import IdempotencyTable
from ami_guard_cdk.components.posture_sweep import PostureSweep

RUNTIME_PINNED = (
    "Pinned to python3.13 on purpose: the Powertools public layer attached to the function is built for python3.13 "
    "(AWSLambdaPowertoolsPythonV3-python313-arm64), and a layer's compiled dependencies must match the runtime."
)

GUARDS = {
    "PermissionGuard": (contract.PERMISSION_HANDLER, "AMI Guard: checks image and snapshot sharing changes"),
    "LaunchGuard": (contract.LAUNCH_HANDLER, "AMI Guard: checks the images that new instances are launched from"),
    "ImageGuard": (contract.IMAGE_HANDLER, "AMI Guard: checks newly registered, copied and created images"),
    "TamperGuard": (contract.TAMPER_HANDLER, "AMI Guard: reports changes to the guard's own resources"),
}
SWEEP = "SweepGuard"
SWEEP_DESCRIPTION = "AMI Guard: sweeps an account-region for what is exposed now (posture sweep)"
SWEEP_TIMEOUT = Duration.minutes(15)
SWEEP_MEMORY_MB = 1024
"""The sweep holds one account-region's facts (up to 100,000 snapshots and their attributes) and parses 1,000-item
pages on up to AMI_GUARD_SWEEP_CONCURRENCY threads: four times the event guards' memory, and with it (Lambda
allocates CPU in proportion) the CPU to parse pages while the threads wait on EC2."""
SWEEP_CONCURRENCY = 8
SWEEP_ROLES = ("SweepMachine", "SweepSchedule")
"""The state machine's and the schedule's roles, named like the guards' (<stack>-<name>-<region>) and watched."""
ROLE_NAME_MAX = 64
REGION_NAME_MAX = 16
"""The longest region name the role names leave room for (ap-southeast-7 and us-gov-west-1 are 14 and 13)."""

NOTHING: Mapping[str, Sequence[str]] = MappingProxyType({})
SWEEP_TAMPER_CALLS: Mapping[str, Sequence[str]] = MappingProxyType(
    {
        contract.STATES_SOURCE: contract.STATE_MACHINE_TAMPER_EVENTS,
        contract.SCHEDULER_SOURCE: contract.SCHEDULE_TAMPER_EVENTS,
    }
)


class TamperWatch(NamedTuple):
    """What a deployment shape adds to the tamper guard's watch over what the guard depends on."""

    watched: Mapping[str, Sequence[str]] = NOTHING
    """Watch-list environment key (contract.ENV_WATCHED_*) -> names added after the core's own."""
    calls: Mapping[str, Sequence[str]] = NOTHING
    """CloudTrail eventSource -> event names the tamper rule on the default bus matches as well."""


STANDALONE_WATCH = TamperWatch()
"""The standalone shape adds nothing to the core's watch."""

GrantAccess = Callable[[Mapping[str, GuardFunction]], None]
"""Gives the guards (by name) what they need to read and change EC2 where the events come from."""


class GuardCore:
    def __init__(
        self,
        scope: Construct,
        *,
        policy: Policy,
        grant_access: GrantAccess,
        guard_bus: events.IEventBus | None = None,
        environment: Mapping[str, str] = MappingProxyType({}),
        tamper_watch: TamperWatch = STANDALONE_WATCH,
    ) -> None:
        """`guard_bus`: where the permission, launch and image rules listen (None: the account's default bus)."""
        self.scope = scope
        stack = Stack.of(scope)
        alerts = AlertTopic(scope, "Alerts", alert_emails=policy.alert_emails)
        # Alarms, and changes that break the alert path, go through a second topic with its own key, so that they
        # still reach someone when the alert topic or its key is what was broken.
        health = AlertTopic(
            scope,
            "Health",
            alert_emails=policy.alert_emails,
            display_name="AMI Guard health",
            key_description="AMI Guard health topic encryption",
        )
        idempotency = IdempotencyTable(scope, "Idempotency")
        # Finding events on the bus (always), Security Hub and the chat topic (with their keys).
        finding_outputs = FindingOutputs(scope, policy=policy, bus=guard_bus)
        common_environment = {
            **to_environment(policy),
            **environment,
            contract.ENV_TOPIC_ARN: alerts.topic.topic_arn,
            contract.ENV_IDEMPOTENCY_TABLE: idempotency.table.table_name,
        }
        # Physical names, so that each guard can name the others it watches without a reference cycle.
        names = {guard: f"{stack.stack_name}-{guard}" for guard in GUARDS}
        rule_names = {guard: f"{stack.stack_name}-{guard.removesuffix('Guard')}Rule" for guard in GUARDS}
        rule_names["TamperWatch"] = f"{stack.stack_name}-TamperWatchRule"
        rule_names["AlertPathWatch"] = f"{stack.stack_name}-AlertPathWatchRule"
        # IAM records role changes in us-east-1 only, and role names are global: each role is named
        # <stack>-<Guard>-<region>, so that the deployment in us-east-1 recognises the roles of the guard in any region.
        role_prefixes = {guard: contract.guard_role_prefix(stack.stack_name, guard) for guard in GUARDS}
        sweep_on = policy.sweep_schedule is not None
        sweep_prefixes = {
            name: contract.guard_role_prefix(stack.stack_name, name)
            for name in ((SWEEP, *SWEEP_ROLES) if sweep_on else ())
        }
        for prefix in (*role_prefixes.values(), *sweep_prefixes.values()):
            if len(prefix) + REGION_NAME_MAX > ROLE_NAME_MAX:
                raise ValueError(
                    f"stack name {stack.stack_name!r} is too long for the guard's role names "
                    f"({prefix}<region> must fit IAM's {ROLE_NAME_MAX} characters)"
                )

        # The watch lists are added once every guard exists: they name each other's queues.
        guards: dict[str, GuardFunction] = {}
        for guard_name, (handler, description) in GUARDS.items():
            guards[guard_name] = GuardFunction(
                scope,
                guard_name,
                function_name=names[guard_name],
                role_name=f"{role_prefixes[guard_name]}{stack.region}",
                handler=handler,
                description=description
                + (" and reverts them" if guard_name == "PermissionGuard" and policy.remediate else ""),
                environment=common_environment,
            )
        permission, launch, image, tamper = (guards[g] for g in GUARDS)

        # The posture sweep (with a sweepSchedule only): a fifth function, invoked synchronously by its state
        # machine, which its schedule starts. Apart from `guards`: no rule feeds it, and it takes no part in the
        # guards' idempotency.
        self.sweep: GuardFunction | None = None
        self.posture_sweep: PostureSweep | None = None
        sweep_watch: dict[str, tuple[str, ...]] = {}
        if policy.sweep_schedule is not None:
            sweep_name = f"{stack.stack_name}-Sweep"
            self.sweep = GuardFunction(
                scope,
                SWEEP,
                function_name=f"{stack.stack_name}-{SWEEP}",
                role_name=f"{sweep_prefixes[SWEEP]}{stack.region}",
                handler=contract.SWEEP_HANDLER,
                description=SWEEP_DESCRIPTION,
                environment={**common_environment, contract.ENV_SWEEP_CONCURRENCY: str(SWEEP_CONCURRENCY)},
                memory_size_mb=SWEEP_MEMORY_MB,
                timeout=SWEEP_TIMEOUT,
                synchronous=True,
            )
            self.posture_sweep = PostureSweep(
                scope,
                "Sweep",
                function=self.sweep.function,
                schedule_expression=policy.sweep_schedule,
                state_machine_name=sweep_name,
                state_machine_role_name=f"{sweep_prefixes['SweepMachine']}{stack.region}",
                schedule_name=sweep_name,
                schedule_role_name=f"{sweep_prefixes['SweepSchedule']}{stack.region}",
            )
            sweep_watch = {
                contract.ENV_WATCHED_FUNCTIONS: (f"{stack.stack_name}-{SWEEP}",),
                contract.ENV_WATCHED_ROLE_PREFIXES: tuple(sweep_prefixes.values()),
                contract.ENV_WATCHED_STATE_MACHINES: (sweep_name,),
                contract.ENV_WATCHED_SCHEDULES: (sweep_name,),
            }

        # The tamper guard watches everything else; the permission guard watches the tamper guard's own function,
        # rule, role and queue, so that no function is the only witness of a change to itself. Each role is watched
        # by one function only (the one in us-east-1 of whichever deployment sees it).
        others = [g for g in GUARDS if g != "TamperGuard"]
        watch: dict[str, dict[str, str]] = {
            "PermissionGuard": {
                contract.ENV_WATCHED_FUNCTIONS: names["TamperGuard"],
                contract.ENV_WATCHED_RULES: rule_names["TamperGuard"],
                contract.ENV_WATCHED_ROLE_PREFIXES: role_prefixes["TamperGuard"],
                contract.ENV_WATCHED_QUEUES: tamper.failed_events.queue_name,
            },
            "TamperGuard": {
                contract.ENV_WATCHED_FUNCTIONS: ",".join(names[g] for g in others),
                contract.ENV_WATCHED_RULES: ",".join(rule_names[g] for g in (*others, "TamperWatch", "AlertPathWatch")),
                contract.ENV_WATCHED_TOPICS: ",".join((alerts.topic.topic_arn, health.topic.topic_arn)),
                contract.ENV_WATCHED_KEYS: ",".join((alerts.key.key_arn, health.key.key_arn)),
                contract.ENV_WATCHED_ROLE_PREFIXES: ",".join(role_prefixes[g] for g in others),
                contract.ENV_WATCHED_QUEUES: ",".join(guards[g].failed_events.queue_name for g in others),
                contract.ENV_WATCHED_TABLES: idempotency.table.table_name,
                contract.ENV_WATCH_TRAILS: "true",
            },
        }
        for additions in (sweep_watch, tamper_watch.watched, finding_outputs.watched):
            for key, added in additions.items():
                watch["TamperGuard"][key] = ",".join(filter(None, (watch["TamperGuard"].get(key), *added)))
        for guard_name, variables in watch.items():
            for key, value in variables.items():
                guards[guard_name].function.add_environment(key, value)

        for key, construct_id, description, pattern, target, bus in (
            (
                "PermissionGuard",
                "PermissionRule",
                "AMI Guard: image and snapshot permission changes",
                cloudtrail_pattern(routes("permission").calls),
                permission,
                guard_bus,
            ),
            (
                "LaunchGuard",
                "LaunchRule",
                "AMI Guard: instance launches",
                cloudtrail_pattern(routes("launch").calls),
                launch,
                guard_bus,
            ),
            (
                "ImageGuard",
                "ImageRule",
                "AMI Guard: new images",
                cloudtrail_pattern(routes("image").calls),
                image,
                guard_bus,
            ),
            (
                "TamperGuard",
                "TamperRule",
                "AMI Guard: changes to the guard's own resources and to trails",
                tamper_pattern(extra={**tamper_watch.calls, **(SWEEP_TAMPER_CALLS if sweep_on else {})}),
                tamper,
                None,
            ),
            (
                "TamperWatch",
                "TamperWatchRule",
                "AMI Guard: changes to the tamper guard itself, seen by another function",
                # what the permission guard watches: the tamper guard's function, rule, roles and queue
                tamper_pattern((contract.IAM_SOURCE, contract.SQS_SOURCE)),
                permission,
                None,
            ),
        ):
            GuardRule(
                scope,
                construct_id,
                rule_name=rule_names[key],
                description=description,
                pattern=pattern,
                target=target.function,
                dead_letter_queue=target.failed_events,
                event_bus=bus,
            )

        grant_access({**guards, **({SWEEP: self.sweep} if self.sweep is not None else {})})
        finding_outputs.connect([*guards.values(), *([self.sweep] if self.sweep is not None else [])])

        AlertPathWatch(
            scope,
            "AlertPathWatch",
            rule_name=rule_names["AlertPathWatch"],
            alerts=alerts,
            table=idempotency.table,
            health=health,
        )
        alarm_prefix = f"{stack.stack_name}-"
        if policy.operations_topic_arn:
            alarm_topic: sns.ITopic = sns.Topic.from_topic_arn(scope, "OperationsTopic", policy.operations_topic_arn)
        else:
            alarm_topic = health.topic
            health.allow_alarms(alarm_prefix)
        for name, guard in guards.items():
            alerts.grant_publish(guard.role)
            idempotency.grant(guard.role)
            GuardAlarms(scope, f"{name}Alarms", guard=guard, topic=alarm_topic, name_prefix=f"{alarm_prefix}{name}-")
            Validations.of(guard.function).acknowledge(Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_PINNED))
        from ami_guard.aws_outputs import ChatPublisher, FindingEvents, SecurityHubImporter

        OutputAlarms(
            scope,
            "OutputAlarms",
            outputs=[
                FindingEvents.name,
                *([SecurityHubImporter.name] if policy.security_hub else []),
                *([ChatPublisher.name] if policy.chat else []),
            ],
            namespace=contract.METRICS_NAMESPACE,
            service=contract.POWERTOOLS_SERVICE_NAME,
            topic=alarm_topic,
            name_prefix=alarm_prefix,
        )
        if self.sweep is not None:
            # Publishes its findings; reads and records open findings (no idempotency records: no delete).
            alerts.grant_publish(self.sweep.role)
            idempotency.grant_findings(self.sweep.role)
            GuardAlarms(
                scope, f"{SWEEP}Alarms", guard=self.sweep, topic=alarm_topic, name_prefix=f"{alarm_prefix}{SWEEP}-"
            )
            if self.posture_sweep is not None:
                SweepRunAlarms(
                    scope,
                    "SweepRunAlarms",
                    state_machine=self.posture_sweep.state_machine,
                    topic=alarm_topic,
                    name_prefix=f"{alarm_prefix}{SWEEP}-",
                )
            Validations.of(self.sweep.function).acknowledge(Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_PINNED))

        self.guards = guards
        self.alerts = alerts
        self.health = health
        self.idempotency = idempotency
        self.finding_outputs = finding_outputs

    def add_outputs(self) -> None:
        """The topics, the table and each function's name, for operators and the demo."""
        CfnOutput(self.scope, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        CfnOutput(self.scope, "HealthTopicArn", value=self.health.topic.topic_arn)
        CfnOutput(self.scope, "IdempotencyTableName", value=self.idempotency.table.table_name)
        for name, guard in self.guards.items():
            CfnOutput(self.scope, f"{name}FunctionName", value=guard.function.function_name)
        self.finding_outputs.add_outputs(self.scope)
        if self.sweep is not None and self.posture_sweep is not None:
            CfnOutput(self.scope, f"{SWEEP}FunctionName", value=self.sweep.function.function_name)
            CfnOutput(self.scope, "SweepStateMachineArn", value=self.posture_sweep.state_machine.state_machine_arn)
