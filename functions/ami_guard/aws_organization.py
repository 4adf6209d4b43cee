"""Organization mode's AWS adapters (hub functions only): member-role sessions and the organization's account list.

The sibling of `aws.py`, imported only when the settings carry an organization (`guard.build_dependencies`): a
standalone cold start never loads it.

- `MemberSessions`: the EC2 clients of one member account, made from a boto3 session whose credentials come from
  sts:AssumeRole on arn:<partition>:iam::<account>:role/<prefix><region>, one role per region (the member stack
  deploys one in each guarded region). Sessions are cached per container per (account, region) and renewed
  REFRESH_BEFORE_EXPIRY_SECONDS before their credentials expire: a warm container makes no STS call per event.
  An account or region not in AWS's format, or a role that cannot be assumed (missing, refusing the hub), is a
  refusal (LookupUnavailable, turned into ActionFailed on the action path): the alert still goes out and says why.
  Throttling and 5xx from STS propagate after botocore's retries, so that the invocation is retried.
- `OrganizationDirectory`: organizations:ListAccounts (every page), ACTIVE accounts only, id -> name. Cached per
  container for at most DIRECTORY_MAX_AGE_SECONDS; an account it does not know makes it list again, at most once
  every DIRECTORY_MIN_INTERVAL_SECONDS (a new account is trusted within a minute, and a flood of shares with unknown
  accounts costs one call a minute). A list that cannot be read is no list: nobody is trusted for being in the
  organization, and the alert says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ami_guard.aws import ClientFactory, _not_retryable, _reason, client_config
from ami_guard.engine import LookupUnavailable
from ami_guard.findings import is_region, partition_of

Clock = Callable[[], float]
SessionMaker = Callable[[Mapping[str, Any], str], Any]
"""(the Credentials of an AssumeRole response, region) -> a boto3 Session."""

REFRESH_BEFORE_EXPIRY_SECONDS = 5 * 60
ROLE_SESSION_NAME = "AmiGuardHub"
ROLE_SESSION_SECONDS = 3600
DIRECTORY_MAX_AGE_SECONDS = 15 * 60
DIRECTORY_MIN_INTERVAL_SECONDS = 60
_ACCOUNT = r"[0-9]{12}"


def is_account(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(_ACCOUNT, value) is not None


def _boto3_session(credentials: Mapping[str, Any], region: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _epoch(expiration: Any) -> float:
    """AssumeRole's Expiration (a datetime from botocore) as seconds since the epoch."""
    if hasattr(expiration, "timestamp"):
        return float(expiration.timestamp())
    return float(expiration)


class MemberSessions:
    """Member-role sessions, per (account, region), and the clients made from them."""

    def __init__(
        self,
        hub_clients: ClientFactory,
        hub_region: str,
        role_prefix: str | None,
        *,
        clock: Clock | None = None,
        make_session: SessionMaker | None = None,
    ) -> None:
        self._hub_clients = hub_clients
        self._hub_region = hub_region
        self._prefix = role_prefix
        self._clock = clock or time.time
        self._make_session = make_session or _boto3_session
        self._sessions: dict[tuple[str, str], tuple[Any, float]] = {}
        self._clients: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def role_arn(self, account: str, region: str) -> str:
        return f"arn:{partition_of(region)}:iam::{account}:role/{self._prefix}{region}"

    def session(self, account: object, region: str) -> Any:
        """A session of the member role of `account` in `region`, made or renewed when needed."""
        if self._prefix is None:
            raise LookupUnavailable("the member role prefix (AMI_GUARD_MEMBER_ROLE_PREFIX) is not set: no member role")
        if not is_account(account):
            raise LookupUnavailable(f"{account!r} is not an AWS account id: its member role cannot be named")
        if not is_region(region):
            raise LookupUnavailable(f"{region!r} is not an AWS region")
        assert isinstance(account, str)
        key = (account, region)
        cached = self._sessions.get(key)
        if cached is not None and self._clock() < cached[1] - REFRESH_BEFORE_EXPIRY_SECONDS:
            return cached[0]
        arn = self.role_arn(account, region)
        try:
            response = self._hub_clients("sts", self._hub_region).assume_role(
                RoleArn=arn, RoleSessionName=ROLE_SESSION_NAME, DurationSeconds=ROLE_SESSION_SECONDS
            )
        except ClientError as exc:
            if (reason := _not_retryable(exc)) is None:
                raise
            raise LookupUnavailable(f"the member role {arn} could not be assumed ({reason})") from None
        credentials = response["Credentials"]
        session = self._make_session(credentials, region)
        self._sessions[key] = (session, _epoch(credentials["Expiration"]))
        return session

    def clients(self, account: object, config: Any = None) -> ClientFactory:
        """(service, region) -> a client of `account`'s member role in that region (the role of that region).
        `config`: the clients' botocore Config (None: the event functions' `client_config()`)."""

        def get(service: str, region: str) -> Any:
            session = self.session(account, region)
            assert isinstance(account, str)
            key = (account, region, service)
            made = self._clients.get(key)
            if made is None or made[0] is not session:
                made = (session, session.client(service, region_name=region, config=config or client_config()))
                self._clients[key] = made
            return made[1]

        return get


class OrganizationDirectory:
    """The organization's ACTIVE accounts (id -> name), listed on first use and kept for a bounded time."""

    def __init__(self, hub_clients: ClientFactory, hub_region: str, *, clock: Clock | None = None) -> None:
        self._hub_clients = hub_clients
        self._hub_region = hub_region
        self._clock = clock or time.time
        self._accounts: dict[str, str] | None = None
        self._ids: frozenset[str] = frozenset()
        self._listed_at = float("-inf")
        self._tried_at = float("-inf")
        self.error: str | None = None
        """Why the last listing failed (None after a success)."""

    def accounts(self, wanted: Collection[str] = ()) -> Mapping[str, str] | None:
        """The accounts, listed again when older than the maximum age or when one of `wanted` is not among them
        (not more than once a minute); None when there is no list younger than the maximum age."""
        now = self._clock()
        stale = now - self._listed_at >= DIRECTORY_MAX_AGE_SECONDS
        missing = self._accounts is not None and any(a not in self._accounts for a in wanted if is_account(a))
        if (stale or missing) and now - self._tried_at >= DIRECTORY_MIN_INTERVAL_SECONDS:
            self._list(now)
        if self._accounts is None or self._clock() - self._listed_at >= DIRECTORY_MAX_AGE_SECONDS:
            return None
        return self._accounts

    def ids(self, wanted: Collection[str] = ()) -> frozenset[str] | None:
        """The ids of `accounts(wanted)` (the same frozenset object until the next listing)."""
        return None if self.accounts(wanted) is None else self._ids

    def _list(self, now: float) -> None:
        self._tried_at = now
        found: dict[str, str] = {}
        try:
            pages = self._hub_clients("organizations", self._hub_region).get_paginator("list_accounts").paginate()
            for page in pages:
                for account in page.get("Accounts", []):
                    if account.get("Status") == "ACTIVE" and is_account(account.get("Id")):
                        found[account["Id"]] = str(account.get("Name") or "")
        except ClientError as exc:
            self.error = f"organizations:ListAccounts failed ({_reason(exc)})"
            return
        except BotoCoreError as exc:
            self.error = f"organizations:ListAccounts failed ({exc})"
            return
        self._accounts = found
        self._ids = frozenset(found)
        self._listed_at = now
        self.error = None
