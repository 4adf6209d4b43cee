"""The functions' environment, validated once per container into frozen Settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ami_guard import contract
from ami_guard.config import ConfigError, Policy, from_environment


@dataclass(frozen=True)
class Settings:
    topic_arn: str
    region: str
    policy: Policy


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    topic_arn = env.get(contract.ENV_TOPIC_ARN, "")
    if not topic_arn.startswith("arn:") or topic_arn.count(":") < 5:
        raise ConfigError(f"{contract.ENV_TOPIC_ARN}: expected the alert topic ARN, got {topic_arn!r}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or topic_arn.split(":")[3]
    return Settings(topic_arn=topic_arn, region=region, policy=from_environment(env))
