"""The amiGuard configuration block: validated once into a frozen Policy.

The same validator serves `cdk synth` (the cdk.json context), the CLI (--config or cdk.json)
and the functions (environment variables written by the stack from the same Policy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ami_guard import contract
from ami_guard.findings import Severity

# Patterns, compiled on first use by re's cache: a function's cold start validates only the keys it was given.
_ACCOUNT = r"^\d{12}$"
_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b)?"
_ORGANIZATION = rf"^arn:{_PARTITION}:organizations::\d{{12}}:organization/(o-[a-z0-9]{{10,32}})$"
_OU = rf"^arn:{_PARTITION}:organizations::\d{{12}}:ou/(o-[a-z0-9]{{10,32}})/ou-[0-9a-z]{{4,32}}-[a-z0-9]{{8,32}}$"
_TOPIC_ARN = rf"^arn:{_PARTITION}:sns:[a-z]{{2}}(-[a-z]+)+-\d{{1,2}}:\d{{12}}:[A-Za-z0-9_-]{{1,256}}(\.fifo)?$"
_EMAIL = r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$"
_CONTROL = r"[\x00-\x1f\x7f]"
_ORGANIZATION_ID = r"^o-[a-z0-9]{10,32}$"
_OU_ID = r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$"
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"
# https, a host name of letters, digits, dots and hyphens, an optional port, a path of URL-safe characters; no query,
# fragment, credentials or spaces: the findings' SourceUrl is <documentationUrl>/docs/rules.md#<rule id>.
_DOCUMENTATION_URL = (
    r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?(?:/[A-Za-z0-9._~%!$&'()*+,;=:@-]*)*$"
)
DOCUMENTATION_URL_MAX = 400
# EventBridge Scheduler: rate(<value> <unit>), the unit singular for 1 and plural otherwise; cron(<six fields>), with
# each field's documented characters, and `?` in the day-of-month or the day-of-week field.
_RATE = r"rate\((?:1 (?:minute|hour|day)|(?:[2-9]|[1-9]\d{1,8}) (?:minutes|hours|days))\)"
_CRON = (
    r"cron\((?P<minutes>[0-9,*/-]+) (?P<hours>[0-9,*/-]+) (?P<day_of_month>[0-9,*?/LW-]+) "
    r"(?P<month>[0-9A-Za-z,*/-]+) (?P<day_of_week>[0-9A-Za-z,*?/L#-]+) (?P<year>[0-9,*/-]+)\)"
)
DEFAULT_SWEEP_SCHEDULE = "rate(1 day)"

KNOWN_KEYS = (
    "trustedAccounts",
    "trustedOrganizations",
    "alertEmails",
    "minSeverity",
    "remediate",
    "copyTags",
    "requiredTags",
    "operationsTopicArn",
    "organization",
    "trustOwnOrganization",
    "trustedImageOwners",
    "sweepSchedule",
    "securityHub",
    "chat",
    "documentationUrl",
)
ORGANIZATION_KEYS = ("organizationId", "hubAccount", "hubRegion", "regions", "organizationalUnits")


class Organization(NamedTuple):
    """Organization mode: a hub in one region of the security account, members in every account and region."""

    organization_id: str
    hub_account: str
    hub_region: str
    regions: tuple[str, ...]
    """The regions guarded in every member account (the hub region among them)."""
    organizational_units: tuple[str, ...] = ()
    """The OUs (or the root, r-...) whose accounts the member StackSet deploys to, automatically on joining."""


class ConfigError(ValueError):
    """A configuration value is malformed; the message names the key and the value."""


class Policy(NamedTuple):
    trusted_accounts: frozenset[str] = frozenset()
    trusted_organizations: frozenset[str] = frozenset()
    alert_emails: tuple[str, ...] = ()
    min_severity: Severity = Severity.INFO
    remediate: bool = False
    copy_tags: bool = True
    required_tags: tuple[str, ...] = ()
    operations_topic_arn: str | None = None
    organization: Organization | None = None
    trust_own_organization: bool = False
    """A share with any account of the own organization, the organization or one of its OUs is trusted."""
    trusted_image_owners: frozenset[str] = frozenset()
    """Whose AMIs may be launched and copied besides the account's and the trusted accounts': account ids and the
    aliases `amazon`, `aws-marketplace`. Empty: launch-untrusted-image and copy-untrusted-image are off."""
    sweep_schedule: str | None = DEFAULT_SWEEP_SCHEDULE
    """When the deployed posture sweep runs (an EventBridge Scheduler expression); None: no sweep is deployed.
    A deployment setting only: the functions are not given it (to_environment leaves it out)."""
    security_hub: bool = False
    """Import every finding into Security Hub (BatchImportFindings, the account's default product)."""
    chat: bool = False
    """A second topic receives each alert as an Amazon Q Developer in chat applications custom notification. A
    deployment setting: the functions are given the topic's ARN, not the flag."""
    documentation_url: str | None = None
    """https base URL of this project's documentation: a Security Hub finding's SourceUrl is
    <documentation_url>/docs/rules.md#<rule id>. None: no SourceUrl."""

    def is_trusted_image_owner(self, owner_id: str | None, alias: str | None, account: str | None) -> bool:
        """An AMI owned by the account, a trusted account, or an owner (or alias) in trustedImageOwners."""
        if owner_id is not None and (
            self.is_trusted_account(owner_id, account) or owner_id in self.trusted_image_owners
        ):
            return True
        return alias is not None and alias in self.trusted_image_owners

    def is_trusted_account(self, account_id: str, owner_account: str | None) -> bool:
        return account_id == owner_account or account_id in self.trusted_accounts

    def is_trusted_organization(self, arn: str) -> bool:
        """An organization ARN, or an OU ARN that is itself trusted or lies in a trusted organization."""
        if arn in self.trusted_organizations:
            return True
        own = self.organization.organization_id if self.organization and self.trust_own_organization else None
        whole = re.fullmatch(_ORGANIZATION, arn)
        if whole is not None:
            return whole.group(1) == own
        ou = re.fullmatch(_OU, arn)
        if ou is None:
            return False
        org_id = ou.group(1)
        return org_id == own or any(
            (m := re.fullmatch(_ORGANIZATION, trusted)) is not None and m.group(1) == org_id
            for trusted in self.trusted_organizations
        )


def parse_policy(block: Any) -> Policy:
    """Validate the amiGuard block (a mapping, or its JSON text as `cdk -c` passes it)."""
    if block is None:
        return Policy()
    if isinstance(block, str):
        try:
            block = json.loads(block)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{contract.CONTEXT_KEY}: not valid JSON ({exc})") from None
    if not isinstance(block, Mapping):
        raise ConfigError(f"{contract.CONTEXT_KEY}: expected an object, got {type(block).__name__}")
    _refuse_unknown_keys(block, KNOWN_KEYS, contract.CONTEXT_KEY)
    organization = _organization(block.get("organization"))
    trust_own = _boolean(block, "trustOwnOrganization", default=organization is not None)
    if trust_own and organization is None:
        raise ConfigError(
            "trustOwnOrganization: true needs the organization block (the accounts come from its Organizations)"
        )
    return Policy(
        trusted_accounts=frozenset(_strings(block, "trustedAccounts", _check_account)),
        trusted_organizations=frozenset(_strings(block, "trustedOrganizations", _check_organization)),
        alert_emails=tuple(_strings(block, "alertEmails", _check_email)),
        min_severity=_severity(block.get("minSeverity", "INFO")),
        remediate=_boolean(block, "remediate", default=False),
        copy_tags=_boolean(block, "copyTags", default=True),
        required_tags=tuple(_strings(block, "requiredTags", _check_tag_key)),
        operations_topic_arn=_topic_arn(block.get("operationsTopicArn")),
        organization=organization,
        trust_own_organization=trust_own,
        trusted_image_owners=frozenset(_strings(block, "trustedImageOwners", _check_image_owner)),
        sweep_schedule=_sweep_schedule(block.get("sweepSchedule", DEFAULT_SWEEP_SCHEDULE)),
        security_hub=_boolean(block, "securityHub", default=False),
        chat=_boolean(block, "chat", default=False),
        documentation_url=_documentation_url(block.get("documentationUrl")),
    )


def _refuse_unknown_keys(block: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    """A typo must not silently drop a value: an unknown key is refused, naming the known ones."""
    unknown = sorted(set(block) - set(known))
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ConfigError(f"{where}: unknown key(s) {names}; known keys: {', '.join(known)}")


def _organization(value: Any) -> Organization | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"organization: expected an object, got {value!r}")
    _refuse_unknown_keys(value, ORGANIZATION_KEYS, "organization")
    missing = [key for key in ORGANIZATION_KEYS if key not in value]
    if missing:
        raise ConfigError(f"organization: missing key(s) {', '.join(missing)}")

    def one(key: str, pattern: str, what: str) -> str:
        item = value[key]
        if not isinstance(item, str) or not re.fullmatch(pattern, item):
            raise ConfigError(f"organization.{key}: {item!r} is not {what}")
        return item

    organization_id = one("organizationId", _ORGANIZATION_ID, "an organization id (o-...)")
    hub_account = one("hubAccount", _ACCOUNT, "a 12-digit AWS account id")
    hub_region = one("hubRegion", _REGION, "an AWS region (eu-west-1)")
    regions = _strings(
        value,
        "regions",
        lambda r: None if re.fullmatch(_REGION, r) else "is not an AWS region",
        label="organization.regions",
    )
    units = _strings(
        value,
        "organizationalUnits",
        lambda u: None if re.fullmatch(_OU_ID, u) else "is not an OU id (ou-...) or root id (r-...)",
        label="organization.organizationalUnits",
    )
    if not regions:
        raise ConfigError("organization.regions: list at least one region to guard")
    if hub_region not in regions:
        raise ConfigError(f"organization.regions: must include the hubRegion {hub_region!r}")
    if not units:
        raise ConfigError("organization.organizationalUnits: list at least one OU (or the root) to deploy members to")
    return Organization(
        organization_id=organization_id,
        hub_account=hub_account,
        hub_region=hub_region,
        regions=tuple(regions),
        organizational_units=tuple(units),
    )


def to_environment(policy: Policy) -> dict[str, str]:
    """The environment variables that carry a Policy into the functions."""
    return {
        contract.ENV_TRUSTED_ACCOUNTS: ",".join(sorted(policy.trusted_accounts)),
        contract.ENV_TRUSTED_ORGANIZATIONS: ",".join(sorted(policy.trusted_organizations)),
        contract.ENV_MIN_SEVERITY: policy.min_severity.name,
        contract.ENV_REMEDIATE: "true" if policy.remediate else "false",
        contract.ENV_COPY_TAGS: "true" if policy.copy_tags else "false",
        contract.ENV_REQUIRED_TAGS: json.dumps(list(policy.required_tags)),
        **(
            {contract.ENV_TRUSTED_IMAGE_OWNERS: ",".join(sorted(policy.trusted_image_owners))}
            if policy.trusted_image_owners
            else {}
        ),
        **(
            {
                contract.ENV_ORGANIZATION: json.dumps(organization_block(policy.organization)),
                contract.ENV_TRUST_OWN_ORGANIZATION: "true" if policy.trust_own_organization else "false",
            }
            if policy.organization is not None
            else {}
        ),
        **({contract.ENV_SECURITY_HUB: "true"} if policy.security_hub else {}),
        **({contract.ENV_DOCUMENTATION_URL: policy.documentation_url} if policy.documentation_url else {}),
    }


def organization_block(organization: Organization) -> dict[str, Any]:
    """The organization block as cdk.json spells it (parse_policy's input)."""
    return {
        "organizationId": organization.organization_id,
        "hubAccount": organization.hub_account,
        "hubRegion": organization.hub_region,
        "regions": list(organization.regions),
        "organizationalUnits": list(organization.organizational_units),
    }


def from_environment(env: Mapping[str, str]) -> Policy:
    """The inverse of to_environment, validated with the same rules."""

    def split(key: str) -> list[str]:
        return [item for item in env.get(key, "").split(",") if item]

    try:
        required_tags = json.loads(env.get(contract.ENV_REQUIRED_TAGS) or "[]")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{contract.ENV_REQUIRED_TAGS}: not valid JSON ({exc})") from None
    organization: dict[str, Any] = {}
    if env.get(contract.ENV_ORGANIZATION):
        try:
            organization = {
                "organization": json.loads(env[contract.ENV_ORGANIZATION]),
                "trustOwnOrganization": env.get(contract.ENV_TRUST_OWN_ORGANIZATION, "true"),
            }
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{contract.ENV_ORGANIZATION}: not valid JSON ({exc})") from None
    return parse_policy(
        {
            "trustedAccounts": split(contract.ENV_TRUSTED_ACCOUNTS),
            "trustedOrganizations": split(contract.ENV_TRUSTED_ORGANIZATIONS),
            "minSeverity": env.get(contract.ENV_MIN_SEVERITY) or "INFO",
            "remediate": env.get(contract.ENV_REMEDIATE, "false"),
            "copyTags": env.get(contract.ENV_COPY_TAGS, "true"),
            "requiredTags": required_tags,
            "trustedImageOwners": split(contract.ENV_TRUSTED_IMAGE_OWNERS),
            "securityHub": env.get(contract.ENV_SECURITY_HUB, "false"),
            "documentationUrl": env.get(contract.ENV_DOCUMENTATION_URL) or None,
            **organization,
        }
    )


def _strings(block: Mapping[str, Any], key: str, check: Any, *, label: str | None = None) -> list[str]:
    values = block.get(key, [])
    key = label or key
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, list):
        raise ConfigError(f"{key}: expected a list of strings, got {values!r}")
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: {value!r} is not a string (quote it: JSON numbers lose leading zeros)")
        problem = check(value)
        if problem:
            raise ConfigError(f"{key}: {value!r} {problem}")
        if value not in out:
            out.append(value)
    return out


def _check_account(value: str) -> str | None:
    return None if re.fullmatch(_ACCOUNT, value) else "is not a 12-digit AWS account id"


IMAGE_OWNER_ALIASES = ("amazon", "aws-marketplace")


def _check_image_owner(value: str) -> str | None:
    if re.fullmatch(_ACCOUNT, value) or value in IMAGE_OWNER_ALIASES:
        return None
    return f"is not a 12-digit AWS account id or one of the aliases {', '.join(IMAGE_OWNER_ALIASES)}"


def _check_organization(value: str) -> str | None:
    if re.fullmatch(_ORGANIZATION, value) or re.fullmatch(_OU, value):
        return None
    return "is not an organization ARN (arn:aws:organizations::<management account>:organization/o-...) or OU ARN"


def _check_email(value: str) -> str | None:
    return None if re.fullmatch(_EMAIL, value) else "is not an email address"


def _check_tag_key(value: str) -> str | None:
    if not 1 <= len(value) <= 128:
        return "is not a tag key (1 to 128 characters)"
    if value.lower().startswith("aws:"):
        return "is not a tag key users can set (the aws: prefix is reserved)"
    if re.search(_CONTROL, value) or value != value.strip():
        return "is not a tag key (control characters or leading/trailing spaces)"
    return None


def _topic_arn(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(_TOPIC_ARN, value):
        raise ConfigError(
            f"operationsTopicArn: {value!r} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
        )
    return value


def _sweep_schedule(value: Any) -> str | None:
    """An EventBridge Scheduler rate(...) or cron(...) expression; JSON null or false: no sweep.

    false as well as null: the CDK hands the app its context objects without their null-valued keys (jsii drops
    them), so in cdk.json only false reaches `cdk synth`; the CLI and `cdk -c amiGuard='{...}'` read null too."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        if re.fullmatch(_RATE, value):
            return value
        cron = re.fullmatch(_CRON, value)
        if cron is not None and "?" in (cron["day_of_month"], cron["day_of_week"]):
            return value
    raise ConfigError(
        f"sweepSchedule: {value!r} is not an EventBridge Scheduler expression: rate(<n> <unit>) with minute, hour or "
        "day for 1 and minutes, hours or days above (rate(1 day), rate(12 hours)), or cron(<minutes> <hours> "
        "<day-of-month> <month> <day-of-week> <year>) with ? in day-of-month or day-of-week (cron(0 6 * * ? *)); "
        "false (or null) turns the sweep off"
    )


def _documentation_url(value: Any) -> str | None:
    """An https URL without query, fragment or credentials, at most DOCUMENTATION_URL_MAX characters; None or ""
    for none. A trailing slash is dropped."""
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or len(value) > DOCUMENTATION_URL_MAX
        or not re.fullmatch(_DOCUMENTATION_URL, value)
        or "//" in value.removeprefix("https://")
    ):
        raise ConfigError(
            f"documentationUrl: {str(value)[:100]!r} is not an https URL of the documentation "
            f"(https://<host>[/<path>], no query, fragment or credentials, at most {DOCUMENTATION_URL_MAX} "
            "characters)"
        )
    return value.rstrip("/")


def _severity(value: Any) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise ConfigError(f"minSeverity: {exc}") from None


def _boolean(block: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = block.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{key}: expected true or false, got {value!r}")
