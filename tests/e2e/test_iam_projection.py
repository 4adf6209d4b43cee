"""The action-level projection of a role's policies (demo.iam_enforcement), the workaround that lets moto's access
control judge the functions' calls. No deployment needed."""

from __future__ import annotations

from demo.iam_enforcement import action_level_projection, stand_in_role_name

ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "WriteOwnLogGroup", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:eu-west-1:111122223333:log-group:guard:*"},
        {"Sid": "DescribeLaunchInputs", "Effect": "Allow",
         "Action": ["ec2:DescribeImages", "ec2:DescribeInstanceTypes"], "Resource": "*"},
        {"Sid": "RevertImageSharing", "Effect": "Allow", "Action": "ec2:ModifyImageAttribute",
         "Resource": "arn:aws:ec2:eu-west-1::image/*",
         "Condition": {"StringEquals": {"aws:ResourceAccount": "111122223333"}}},
    ],
}  # fmt: skip


def test_allows_become_the_same_actions_on_any_resource_without_conditions() -> None:
    # Given a role policy with a scoped, an unscoped and a conditioned Allow
    # When it is projected
    projection = action_level_projection([ROLE_POLICY])

    # Then one Allow names exactly their actions, on "*", with no condition
    assert projection.document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ActionLevelAllow",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:ModifyImageAttribute",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ],
                "Resource": "*",
            }
        ],
    }
    # and what is not judged is said
    assert projection.not_judged == (
        "Allow WriteOwnLogGroup: its resource not judged",
        "Allow RevertImageSharing: its resource and condition not judged",
    )


def test_an_action_removed_from_the_role_is_absent_from_the_projection() -> None:
    # Given the role without its DescribeInstanceTypes grant
    reduced = {
        "Statement": [
            {"Effect": "Allow", "Action": ["ec2:DescribeImages"], "Resource": "*"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:eu-west-1:111122223333:alerts"},
        ]
    }

    # When it is projected
    document = action_level_projection([reduced]).document

    # Then only the remaining actions are allowed
    assert document is not None
    assert document["Statement"] == [
        {"Sid": "ActionLevelAllow", "Effect": "Allow", "Action": ["ec2:DescribeImages", "sns:Publish"], "Resource": "*"}
    ]


def test_only_an_unconditioned_deny_on_every_resource_is_kept() -> None:
    # Given two Denies: one on everything, one on a single topic
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ec2:DeleteSnapshot", "Resource": "*"},
            {"Sid": "NoTopicDelete", "Effect": "Deny", "Action": "sns:DeleteTopic", "Resource": "arn:aws:sns:::t"},
        ]
    }

    # When projected
    projection = action_level_projection([policy])

    # Then the Deny on everything stays, the scoped one is left out and said to be
    assert projection.document is not None
    assert projection.document["Statement"] == [
        {"Sid": "ActionLevelAllow", "Effect": "Allow", "Action": ["ec2:*"], "Resource": "*"},
        {"Sid": "ActionLevelDeny", "Effect": "Deny", "Action": ["ec2:DeleteSnapshot"], "Resource": "*"},
    ]
    assert projection.not_judged == ("Deny NoTopicDelete: left out (only an unconditioned Deny on '*' is kept)",)


def test_a_role_that_allows_nothing_projects_to_no_policy() -> None:
    # Given a role with no policy at all
    # Then its stand-in gets none (every call refused)
    assert action_level_projection([]).document is None


def test_stand_in_names_fit_iam_and_differ_per_role() -> None:
    # Given two long role ARNs
    first = "arn:aws:iam::111122223333:role/AmiGuard-LaunchGuardRole" + "A" * 40
    second = "arn:aws:iam::111122223333:role/AmiGuard-ImageGuardRole" + "A" * 40

    # Then each gets its own name within IAM's 64 characters
    assert len(stand_in_role_name(first)) <= 64
    assert stand_in_role_name(first) != stand_in_role_name(second)
