"""Remediation can only ever remove permissions: never anything trusted, never anything not just added,
and the adapter can express nothing but a Remove."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import ANY, Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from ami_guard.aws import Ec2Actions, Ec2Lookups, InstanceTypeCatalog
from ami_guard.config import parse_policy
from ami_guard.engine import ImageFacts, evaluate
from ami_guard.events import Envelope, Principals, parse_call
from tests import records as r
from tests.fakes import FakeAccount

ACCOUNTS = st.sampled_from(["555566667777", "444455556666", "999988887777", r.ACCOUNT, "123"])
ORGS = st.sampled_from(
    [
        "arn:aws:organizations::111111111111:organization/o-abcdefghij",
        "arn:aws:organizations::222222222222:organization/o-zzzzzzzzzz",
        "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij",
    ]
)
ITEMS = st.lists(
    st.one_of(
        st.builds(lambda g: {"group": g}, st.sampled_from(["all", "none", "ALL"])),
        st.builds(lambda a: {"userId": a}, ACCOUNTS),
        st.builds(lambda o: {"organizationArn": o}, ORGS),
        st.builds(lambda o: {"organizationalUnitArn": o}, ORGS),
    ),
    max_size=6,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    added=ITEMS,
    existing=st.lists(ACCOUNTS, max_size=3),
    trusted=st.lists(ACCOUNTS.filter(lambda a: a != "123"), max_size=2),
)
def test_remediation_removes_only_untrusted_principals_just_added(
    added: list[dict[str, str]], existing: list[str], trusted: list[str]
) -> None:
    policy = parse_policy(
        {
            "trustedAccounts": sorted(set(trusted)),
            "trustedOrganizations": ["arn:aws:organizations::111111111111:organization/o-abcdefghij"],
            "remediate": True,
        }
    )
    before = Principals(user_ids=tuple(dict.fromkeys(existing)))
    account = FakeAccount(
        images={("ami-1", r.REGION): ImageFacts("ami-1", r.REGION, "hvm")}, permissions={("ami-1", r.REGION): before}
    )
    call = parse_call(Envelope(r.modify_image_attribute("ami-1", added)))
    evaluate(call, policy, account, account)

    added_values = {v for item in added for v in item.values()}
    for _, removed in account.removed:
        for value in (*removed.groups, *removed.user_ids, *removed.organization_arns, *removed.ou_arns):
            assert value in added_values, "only what this call added"
        assert all(g.lower() == "all" for g in removed.groups)
        assert not set(removed.user_ids) & (set(trusted) | {r.ACCOUNT}), "never a trusted account or the owner"
        assert "arn:aws:organizations::111111111111:organization/o-abcdefghij" not in removed.organization_arns
        assert "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij" not in removed.ou_arns
    after = account.permissions[("ami-1", r.REGION)]
    assert set(after.user_ids) <= set(before.user_ids), "nothing was ever granted"


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    groups=st.lists(st.sampled_from(["all"]), max_size=1),
    users=st.lists(ACCOUNTS, max_size=3, unique=True),
    orgs=st.lists(ORGS, max_size=2, unique=True),
)
def test_the_adapter_sends_nothing_but_remove(groups: list[str], users: list[str], orgs: list[str]) -> None:
    client = boto3.client("ec2", region_name=r.REGION, aws_access_key_id="x", aws_secret_access_key="x")
    principals = Principals(groups=tuple(groups), user_ids=tuple(users), organization_arns=tuple(orgs))
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.ec2.ModifyImageAttribute", lambda params, **_: sent.append(params)
    )

    def clients(service: str, region: str) -> Any:
        return client

    lookups = Ec2Lookups(clients, InstanceTypeCatalog(clients, r.REGION))
    with Stubber(client) as stubber:
        if principals:
            stubber.add_response("modify_image_attribute", {}, {"ImageId": "ami-1", "LaunchPermission": ANY})
        stubber.add_response("describe_image_attribute", {"ImageId": "ami-1", "LaunchPermissions": []})
        Ec2Actions(clients, lookups).remove_launch_permissions("ami-1", r.REGION, principals)
    for params in sent:
        assert set(params) == {"ImageId", "LaunchPermission"}
        assert set(params["LaunchPermission"]) == {"Remove"}
