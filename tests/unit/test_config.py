import json

import pytest

from ami_guard import contract
from ami_guard.config import ConfigError, Policy, from_environment, parse_policy, to_environment
from ami_guard.findings import Severity

ORG = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
OU_IN_ORG = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij"
OU_ELSEWHERE = "arn:aws:organizations::222222222222:ou/o-zzzzzzzzzz/ou-ab12-cdefghij"


def test_defaults_when_block_absent() -> None:
    # Given no amiGuard block / When parsed / Then the documented defaults apply
    policy = parse_policy(None)
    assert policy == Policy()
    assert policy.copy_tags is True and policy.remediate is False and policy.min_severity is Severity.INFO


def test_full_block_is_parsed() -> None:
    policy = parse_policy(
        {
            "trustedAccounts": ["123456789012", "123456789012"],
            "trustedOrganizations": [ORG],
            "alertEmails": ["sec@example.com"],
            "minSeverity": "high",
            "remediate": True,
            "copyTags": False,
            "requiredTags": ["CostCenter", "Owner"],
        }
    )
    assert policy.trusted_accounts == frozenset({"123456789012"})
    assert policy.min_severity is Severity.HIGH
    assert policy.remediate and not policy.copy_tags
    assert policy.required_tags == ("CostCenter", "Owner")


def test_json_text_from_cdk_context_flag_is_accepted() -> None:
    assert parse_policy(json.dumps({"remediate": "true"})).remediate is True


@pytest.mark.parametrize(
    ("block", "key", "bad"),
    [
        ({"trustedAccounts": ["12345"]}, "trustedAccounts", "12345"),
        ({"trustedAccounts": [123456789012]}, "trustedAccounts", "123456789012"),
        ({"trustedAccounts": "123456789012"}, "trustedAccounts", "123456789012"),
        ({"trustedOrganizations": ["o-abcdefghij"]}, "trustedOrganizations", "o-abcdefghij"),
        ({"alertEmails": ["not-an-email"]}, "alertEmails", "not-an-email"),
        ({"minSeverity": "SEVERE"}, "minSeverity", "SEVERE"),
        ({"remediate": "yes"}, "remediate", "yes"),
        ({"requiredTags": ["aws:createdBy"]}, "requiredTags", "aws:createdBy"),
        ({"requiredTags": ["x" * 129]}, "requiredTags", "xxxx"),
        ({"trustedAcounts": []}, "trustedAcounts", "trustedAcounts"),
        # `$` alone would let a trailing newline through: every pattern is matched in full
        ({"trustedAccounts": ["123456789012\n"]}, "trustedAccounts", "123456789012"),
        ({"alertEmails": ["sec@example.com\n"]}, "alertEmails", "sec@example.com"),
        ({"trustedImageOwners": ["self"]}, "trustedImageOwners", "self"),
        ({"trustedImageOwners": ["Amazon"]}, "trustedImageOwners", "Amazon"),
        ({"trustedImageOwners": ["amazon\n"]}, "trustedImageOwners", "amazon"),
        ({"trustedImageOwners": ["1234"]}, "trustedImageOwners", "1234"),
    ],
)
def test_bad_values_name_the_key_and_the_value(block: dict[str, object], key: str, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(block)
    assert key in str(caught.value)
    assert bad in str(caught.value)


def test_environment_round_trip_keeps_every_value() -> None:
    policy = parse_policy(
        {
            "trustedAccounts": ["123456789012", "210987654321"],
            "trustedOrganizations": [ORG, OU_ELSEWHERE],
            "minSeverity": "MEDIUM",
            "remediate": True,
            "copyTags": False,
            "requiredTags": ["Cost Center", "team:owner"],
            "trustedImageOwners": ["amazon", "aws-marketplace", "123412341234"],
        }
    )
    env = to_environment(policy)
    assert env[contract.ENV_MIN_SEVERITY] == "MEDIUM"
    restored = from_environment(env)
    assert restored.trusted_accounts == policy.trusted_accounts
    assert restored.trusted_organizations == policy.trusted_organizations
    assert (restored.min_severity, restored.remediate, restored.copy_tags) == (Severity.MEDIUM, True, False)
    assert restored.required_tags == policy.required_tags
    assert restored.trusted_image_owners == {"amazon", "aws-marketplace", "123412341234"}


def test_no_trusted_image_owners_adds_no_environment_variable() -> None:
    # a deployment that does not use the owner rules keeps exactly the environment it had
    assert contract.ENV_TRUSTED_IMAGE_OWNERS not in to_environment(parse_policy({}))
    assert from_environment(to_environment(parse_policy({}))).trusted_image_owners == frozenset()


@pytest.mark.parametrize(
    ("arn", "trusted"),
    [(ORG, True), (OU_IN_ORG, True), (OU_ELSEWHERE, False), ("arn:aws:organizations::1:organization/o-x", False)],
)
def test_ou_of_a_trusted_organization_is_trusted(arn: str, trusted: bool) -> None:
    assert parse_policy({"trustedOrganizations": [ORG]}).is_trusted_organization(arn) is trusted


def test_owner_account_is_always_trusted() -> None:
    policy = Policy()
    assert policy.is_trusted_account("111122223333", "111122223333")
    assert not policy.is_trusted_account("444455556666", "111122223333")


ORGANIZATION = {
    "organizationId": "o-abcdefghij",
    "hubAccount": "111111111111",
    "hubRegion": "eu-west-1",
    "regions": ["eu-west-1", "us-east-1"],
    "organizationalUnits": ["ou-ab12-cdefghij"],
}


def test_organization_block_turns_on_trust_of_the_own_organization() -> None:
    # Given an organization block and no trustOwnOrganization / When parsed / Then own OUs and the org are trusted
    policy = parse_policy({"organization": ORGANIZATION})
    assert policy.organization is not None and policy.organization.hub_region == "eu-west-1"
    assert policy.trust_own_organization is True
    assert policy.is_trusted_organization(ORG)
    assert policy.is_trusted_organization(OU_IN_ORG)
    assert not policy.is_trusted_organization(OU_ELSEWHERE)
    assert not policy.is_trusted_organization("arn:aws:organizations::222222222222:organization/o-zzzzzzzzzz")


def test_trust_own_organization_off_trusts_only_what_is_listed() -> None:
    policy = parse_policy({"organization": ORGANIZATION, "trustOwnOrganization": False})
    assert not policy.is_trusted_organization(ORG)
    assert not policy.is_trusted_organization(OU_IN_ORG)


def test_standalone_trusts_no_organization_by_default() -> None:
    assert parse_policy({}).trust_own_organization is False
    assert not parse_policy({}).is_trusted_organization(ORG)


@pytest.mark.parametrize(
    ("change", "key", "bad"),
    [
        ({"organizationId": "abcdefghij"}, "organization.organizationId", "abcdefghij"),
        ({"hubAccount": "1111"}, "organization.hubAccount", "1111"),
        ({"hubRegion": "eu-west-1\n"}, "organization.hubRegion", "eu-west-1"),
        ({"regions": ["eu-west-1", "mars-1"]}, "organization.regions", "mars-1"),
        ({"regions": ["us-east-1"]}, "organization.regions", "eu-west-1"),
        ({"regions": []}, "organization.regions", "at least one"),
        ({"organizationalUnits": ["sales"]}, "organization.organizationalUnits", "sales"),
        ({"organizationalUnits": []}, "organization.organizationalUnits", "at least one"),
        ({"hubAcount": "111111111111"}, "organization", "hubAcount"),
    ],
)
def test_bad_organization_values_name_the_key_and_the_value(change: dict[str, object], key: str, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy({"organization": {**ORGANIZATION, **change}})
    assert key in str(caught.value)
    assert bad in str(caught.value)


def test_organization_block_needs_every_key() -> None:
    with pytest.raises(ConfigError, match=r"missing key.*hubRegion"):
        parse_policy({"organization": {k: v for k, v in ORGANIZATION.items() if k != "hubRegion"}})


def test_trust_own_organization_without_organization_is_refused() -> None:
    with pytest.raises(ConfigError, match="trustOwnOrganization"):
        parse_policy({"trustOwnOrganization": True})


def test_organization_survives_the_environment_round_trip() -> None:
    policy = parse_policy({"organization": ORGANIZATION, "trustOwnOrganization": False})
    env = to_environment(policy)
    assert from_environment(env) == policy
    assert contract.ENV_ORGANIZATION not in to_environment(parse_policy({}))


# --- sweepSchedule: when the deployed posture sweep runs ---------------------------------------------------------


def test_the_sweep_runs_daily_unless_configured() -> None:
    assert parse_policy({}).sweep_schedule == "rate(1 day)"
    assert Policy().sweep_schedule == "rate(1 day)"


def test_null_or_false_turns_the_sweep_off() -> None:
    assert parse_policy({"sweepSchedule": None}).sweep_schedule is None
    assert parse_policy(json.dumps({"sweepSchedule": None})).sweep_schedule is None
    # what cdk.json must say: the CDK drops null-valued keys from the context it gives the app
    assert parse_policy({"sweepSchedule": False}).sweep_schedule is None


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 day)",
        "rate(1 hour)",
        "rate(1 minute)",
        "rate(12 hours)",
        "rate(7 days)",
        "rate(30 minutes)",
        "cron(0 6 * * ? *)",
        "cron(15 2 ? * MON-FRI *)",
        "cron(0/30 8-17 ? * 2#1 2027)",
        "cron(0 0 L * ? *)",
        "cron(0 12 ? JAN,JUL 6L *)",
    ],
)
def test_scheduler_expressions_are_kept_as_written(expression: str) -> None:
    assert parse_policy({"sweepSchedule": expression}).sweep_schedule == expression


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "daily",
        "rate(1 days)",  # one takes the singular
        "rate(2 day)",  # more the plural
        "rate(0 days)",
        "rate(-1 days)",
        "rate(1.5 hours)",
        "rate(1 week)",
        "rate(1  day)",
        " rate(1 day)",
        "rate(1 day)\n",  # matched in full: `$` alone would let a trailing newline through
        "RATE(1 day)",
        "at(2027-01-01T00:00:00)",  # one-time: not a sweep schedule
        "cron(0 6 * * *)",  # five fields: a Unix crontab, not EventBridge's six
        "cron(0 6 * * * *)",  # neither day field is ?
        "cron(0 6 * * ? * *)",
        "cron(0 6 * * ? *) ",
        "cron(0 6 * * ? $(id))",
        "cron(0\t6 * * ? *)",
    ],
)
def test_a_malformed_sweep_schedule_is_refused_naming_the_key_and_the_value(expression: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy({"sweepSchedule": expression})
    assert str(caught.value).startswith(f"sweepSchedule: {expression!r} is not an EventBridge Scheduler expression")


@pytest.mark.parametrize("value", [1, 0, True, "false", ["rate(1 day)"], {"rate": "1 day"}])
def test_a_sweep_schedule_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^sweepSchedule: "):
        parse_policy({"sweepSchedule": value})


def test_the_sweep_schedule_is_a_deployment_setting_the_functions_are_not_given() -> None:
    env = to_environment(parse_policy({"sweepSchedule": "rate(6 hours)"}))
    assert env == to_environment(parse_policy({"sweepSchedule": None}))
    assert not [value for value in env.values() if "rate(" in value]


def test_security_hub_chat_and_documentation_url_are_off_by_default() -> None:
    policy = parse_policy({})

    assert (policy.security_hub, policy.chat, policy.documentation_url) == (False, False, None)


def test_security_hub_and_the_documentation_url_reach_the_functions_only_when_set() -> None:
    # Given the keys set, and the same block without them
    on = parse_policy({"securityHub": True, "chat": True, "documentationUrl": "https://docs.example.com/ami-guard/"})
    off = parse_policy({"securityHub": False, "chat": False})

    # Then only the set ones are in the environment (chat is the stack's: the functions get its topic's ARN)
    assert to_environment(on)["AMI_GUARD_SECURITY_HUB"] == "true"
    assert to_environment(on)["AMI_GUARD_DOCUMENTATION_URL"] == "https://docs.example.com/ami-guard"
    assert not {k for k in to_environment(off) if k in ("AMI_GUARD_SECURITY_HUB", "AMI_GUARD_DOCUMENTATION_URL")}
    assert to_environment(off) == to_environment(parse_policy({}))
    back = from_environment(to_environment(on))
    assert (back.security_hub, back.documentation_url) == (True, "https://docs.example.com/ami-guard")


@pytest.mark.parametrize(
    "url",
    [
        "http://docs.example.com",
        "https://docs.example.com/?x=1",
        "https://docs.example.com/#rules",
        "https://user:pass@docs.example.com",
        "https://docs.example.com/a b",
        "https://docs.example.com//evil.example",
        "javascript:alert(1)",
        "https://",
        "https://" + "a" * 400 + ".example.com",
    ],
)
def test_a_documentation_url_that_is_not_plain_https_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^documentationUrl: .* is not an https URL of the documentation"):
        parse_policy({"documentationUrl": url})


@pytest.mark.parametrize("key", ["securityHub", "chat"])
def test_the_new_switches_are_booleans(key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: expected true or false, got 'yes'$"):
        parse_policy({key: "yes"})
