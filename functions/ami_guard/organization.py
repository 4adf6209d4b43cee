"""Organization mode's composition, per event (hub functions only; imported by `guard.build_dependencies` when the
settings carry an organization, so a standalone cold start never compiles it): the member role's lookups and
actions in the envelope's account, the policy with the organization's ACTIVE accounts trusted
(trustOwnOrganization), and the account's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ami_guard import contract
from ami_guard.guard import Scope

if TYPE_CHECKING:
    from ami_guard.aws import ClientFactory
    from ami_guard.config import Policy
    from ami_guard.engine import Actions, Lookups
    from ami_guard.events.calls import ApiCall
    from ami_guard.settings import Settings


class OrganizationScopes:
    """Organization mode, per event: the member role's lookups and actions in the envelope's account, the policy
    with the organization's ACTIVE accounts trusted (trustOwnOrganization), and the account's name."""

    def __init__(self, settings: Settings, clients: ClientFactory, *, clock: Callable[[], float] | None = None) -> None:
        from ami_guard.aws_organization import MemberSessions, OrganizationDirectory

        self._sessions = MemberSessions(clients, settings.region, settings.member_role_prefix, clock=clock)
        self._directory = OrganizationDirectory(clients, settings.region, clock=clock)
        self._policy = settings.policy
        self._instance_types: dict[str, Any] = {}
        self._members: dict[tuple[str, str], tuple[Lookups, Actions]] = {}
        self._trusting: tuple[frozenset[str], Policy] | None = None

    def member(self, account: Any, region: str) -> tuple[Lookups, Actions]:
        """Lookups and actions through `account`'s member role (they refuse when the account is not an account id)."""
        from ami_guard.aws import Ec2Actions, Ec2Lookups, InstanceTypeCatalog
        from ami_guard.aws_organization import is_account
        from ami_guard.findings import is_region

        # kept only for an account and region in AWS's formats: a crafted one cannot grow the cache
        key = (account, region) if is_account(account) and is_region(region) else None
        if key is not None and key in self._members:
            return self._members[key]
        clients = self._sessions.clients(account)
        lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, region, self._instance_types))
        made: tuple[Lookups, Actions] = (lookups, Ec2Actions(clients, lookups))
        if key is not None:
            self._members[key] = made
        return made

    def member_clients(self, account: str, config: Any) -> ClientFactory:
        """Clients of `account`'s member role with `config` (the posture sweep's: adaptive retries)."""
        return self._sessions.clients(account, config)

    def accounts(self) -> Mapping[str, str] | None:
        """The organization's ACTIVE accounts (id -> name), or None when they could not be listed (`error` says
        why)."""
        return self._directory.accounts()

    @property
    def error(self) -> str | None:
        return self._directory.error

    @staticmethod
    def trust_decides(call: ApiCall) -> bool:
        """Whether the organization's accounts decide this event: a permission change that shares with accounts."""
        return bool(_shared_accounts(call))

    def __call__(self, call: ApiCall, account: Any, *, listing: bool = True) -> Scope:
        """The event's scope; without `listing`, the organization's accounts are not read (the evaluation does
        not depend on them, and the name is read only if an alert needs it)."""
        lookups, actions = self.member(account, call.region)
        policy = self._policy
        if not listing:
            return Scope(policy, lookups, actions)
        wanted = {a for a in (account, *_shared_accounts(call)) if isinstance(a, str)}
        accounts = self._directory.accounts(wanted)
        if accounts is None:
            reason = self._directory.error or "the organization's accounts are not listed"
            trust = (
                "no account was trusted for being in the organization, and " if policy.trust_own_organization else ""
            )
            return Scope(policy, lookups, actions, None, f"{reason}: {trust}the account's name is unknown")
        # the name of the account the alert names (the record's), when the envelope's agrees: never another's name
        name = accounts.get(account) if isinstance(account, str) and account == call.account else None
        if policy.trust_own_organization:
            ids = self._directory.ids()
            assert ids is not None
            # one policy per listing, not one set union per event
            if self._trusting is None or self._trusting[0] is not ids:
                self._trusting = (ids, policy._replace(trusted_accounts=policy.trusted_accounts | ids))
            policy = self._trusting[1]
        return Scope(policy, lookups, actions, name)


_SHARES = ("ModifyImageAttribute", "ModifySnapshotAttribute")


def _shared_accounts(call: ApiCall) -> tuple[str, ...]:
    """The accounts a permission change shares with (an account the organization's list lacks makes it list again)."""
    if call.event_source != contract.EVENT_SOURCE or call.event_name not in _SHARES:
        return ()
    from ami_guard.events import permissions  # the permission guard's own domain: loaded already

    if call.event_name == "ModifyImageAttribute":
        change = permissions.read_launch_permission_change(call)
    else:
        change = permissions.read_create_volume_permission_change(call)
    return change.added.user_ids if isinstance(change, permissions.PermissionChange) else ()
