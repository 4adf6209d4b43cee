"""Cloud Custodian's side: policies equivalent to the guard's rules, packaged by Custodian itself.

`python -m bench.custodian OUT_DIR` (in the Custodian environment) writes OUT_DIR/<event>.zip for each event:
the Lambda archive that `custodian run` would deploy for that policy in `cloudtrail` mode (c7n's own
`PolicyLambda.get_archive()`: the c7n package as source, `config.json` and the `custodian_policy.run` handler).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.answers import ACCOUNT, REGION, TOPIC_ARN, TRUSTED_ACCOUNT

HANDLER = "custodian_policy.run"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/custodian-ami-guard"
# The families the guard calls previous generation (ami_guard.instance_types, from the EC2 guide), as one regex.
PREVIOUS_GENERATION = r"^(a1|c1|c3|c4|g3|i2|m1|m2|m3|m4|p3|p3dn|r3|r4|t1|cc1|cc2|cg1|cr1|f1|g2|g3s|hi1|hs1|p2)\..*"


def _notify(subject: str) -> dict[str, Any]:
    """Custodian's alert: one SNS message per policy execution (as the guard publishes one per finding)."""
    return {
        "type": "notify",
        "subject": subject,
        "violation_desc": subject,
        "action_desc": "Review the change.",
        "to": ["secops@example.com"],
        "transport": {"type": "sns", "topic": TOPIC_ARN},
    }


POLICIES: dict[str, dict[str, Any]] = {
    # ami-public / ami-shared-untrusted: an AMI launchable by everyone or by an account that is not trusted.
    "ModifyImageAttribute": {
        "name": "ami-guard-equivalent-permission",
        "resource": "aws.ami",
        "mode": {
            "type": "cloudtrail",
            "role": ROLE,
            "events": [
                {"source": "ec2.amazonaws.com", "event": "ModifyImageAttribute", "ids": "requestParameters.imageId"}
            ],
        },
        "filters": [{"type": "cross-account", "whitelist": [TRUSTED_ACCOUNT]}],
        "actions": [_notify("AMI made public or shared with an untrusted account")],
    },
    # launch-paravirtual / launch-previous-generation.
    "RunInstances": {
        "name": "ami-guard-equivalent-launch",
        "resource": "aws.ec2",
        "mode": {"type": "cloudtrail", "role": ROLE, "events": ["RunInstances"]},
        "filters": [
            {
                "or": [
                    {"type": "value", "key": "VirtualizationType", "value": "paravirtual"},
                    {"type": "value", "key": "InstanceType", "op": "regex", "value": PREVIOUS_GENERATION},
                ]
            }
        ],
        "actions": [_notify("Paravirtual AMI or previous-generation instance type launched")],
    },
}


# The posture sweep's equivalent (bench/sweep.py): pull mode, `custodian run` over the account's AMIs and snapshots,
# each flagged by c7n's `cross-account` filter when a launch / create-volume permission names anyone outside the
# whitelist (the account itself is always allowed: c7n's CrossAccountAccessFilter.get_accounts). The AMI filter
# reads DescribeImageAttribute(launchPermission) per AMI (2 threads), the snapshot filter
# DescribeSnapshotAttribute(createVolumePermission) per snapshot (3 threads); the group `all` counts as outside.
SWEEP_POLICIES: list[dict[str, Any]] = [
    {
        "name": "ami-guard-equivalent-sweep-ami",
        "resource": "aws.ami",
        "filters": [{"type": "cross-account", "whitelist": [TRUSTED_ACCOUNT]}],
    },
    {
        "name": "ami-guard-equivalent-sweep-snapshot",
        "resource": "aws.ebs-snapshot",
        "filters": [{"type": "cross-account", "whitelist": [TRUSTED_ACCOUNT]}],
    },
]


def build(out_dir: Path) -> dict[str, str]:
    """OUT_DIR/<event>.zip per policy, as c7n packages it; returns event -> c7n version."""
    from c7n.config import Config  # type: ignore[import-not-found]  # Cloud Custodian's environment only
    from c7n.mu import PolicyLambda  # type: ignore[import-not-found]
    from c7n.policy import PolicyCollection  # type: ignore[import-not-found]
    from c7n.resources import load_resources  # type: ignore[import-not-found]
    from c7n.version import version  # type: ignore[import-not-found]

    load_resources(("aws.ami", "aws.ec2"))
    options = Config.empty(region=REGION, account_id=ACCOUNT)
    built = {}
    for event, data in POLICIES.items():
        (policy,) = PolicyCollection.from_data({"policies": [data]}, options)
        policy.validate()
        archive = PolicyLambda(policy).get_archive()
        shutil.copyfile(archive.path, out_dir / f"{event}.zip")
        built[event] = version
    return built


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]))))
