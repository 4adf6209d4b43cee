"""The functions' environment, validated once per container into frozen Settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from ami_guard import contract
from ami_guard.config import ConfigError, Policy, from_environment
from ami_guard.watched import Watched


class Settings(NamedTuple):
    topic_arn: str
    region: str
    policy: Policy
    idempotency_table: str
    watched: Watched = Watched()
    member_role_prefix: str | None = None
    """Organization mode: the member role to assume is <prefix><region> in the event's account."""
    findings_bus: str | None = None
    """The ARN of the bus finding events are put on (None: not deployed with one, as in older stacks)."""
    chat_topic_arn: str | None = None
    """The chat topic (amiGuard.chat), None without it."""


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    topic_arn = env.get(contract.ENV_TOPIC_ARN, "")
    if not topic_arn.startswith("arn:") or topic_arn.count(":") < 5:
        raise ConfigError(f"{contract.ENV_TOPIC_ARN}: expected the alert topic ARN, got {topic_arn!r}")
    table = env.get(contract.ENV_IDEMPOTENCY_TABLE, "")
    if not table:
        raise ConfigError(f"{contract.ENV_IDEMPOTENCY_TABLE}: the idempotency table name is missing")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or topic_arn.split(":")[3]
    policy = from_environment(env)
    return Settings(
        topic_arn=topic_arn,
        region=region,
        policy=policy,
        idempotency_table=table,
        member_role_prefix=env.get(contract.ENV_MEMBER_ROLE_PREFIX, "").strip() or None,
        findings_bus=env.get(contract.ENV_FINDINGS_BUS, "").strip() or None,
        chat_topic_arn=env.get(contract.ENV_CHAT_TOPIC_ARN, "").strip() or None,
        watched=Watched(
            functions=_names(env.get(contract.ENV_WATCHED_FUNCTIONS, "")),
            rules=_names(env.get(contract.ENV_WATCHED_RULES, "")),
            topics=_names(env.get(contract.ENV_WATCHED_TOPICS, "")),
            keys=_names(env.get(contract.ENV_WATCHED_KEYS, "")),
            role_prefixes=_names(env.get(contract.ENV_WATCHED_ROLE_PREFIXES, "")),
            queues=_names(env.get(contract.ENV_WATCHED_QUEUES, "")),
            tables=_names(env.get(contract.ENV_WATCHED_TABLES, "")),
            trails=_flag(contract.ENV_WATCH_TRAILS, env.get(contract.ENV_WATCH_TRAILS, "")),
            stack_sets=_names(env.get(contract.ENV_WATCHED_STACK_SETS, "")),
            buses=_names(env.get(contract.ENV_WATCHED_BUSES, "")),
            state_machines=_names(env.get(contract.ENV_WATCHED_STATE_MACHINES, "")),
            schedules=_names(env.get(contract.ENV_WATCHED_SCHEDULES, "")),
            home_account=policy.organization.hub_account if policy.organization is not None else None,
        ),
    )


def _names(value: str) -> frozenset[str]:
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def _flag(key: str, value: str) -> bool:
    if value.strip().lower() in ("", "false"):
        return False
    if value.strip().lower() == "true":
        return True
    raise ConfigError(f"{key}: expected true or false, got {value!r}")
