"""An alert as one AWS Security Hub finding in the AWS Security Finding Format (ASFF, schema 2018-10-08). Pure: the
importer (`aws_outputs.SecurityHubImporter`) only sends what `finding` returns, and imports this module only when
`securityHub` is on.

AWS's rules followed here (Security Hub user guide: "Required top-level ASFF attributes", "BatchImportFindings for
finding providers", the partner guide's "Guidelines for mapping findings into the ASFF" and "Guidelines for using the
BatchImportFindings API"; docs/integrations.md cites them):
- Required: AwsAccountId, CreatedAt, Description, GeneratorId, Id, ProductArn, Resources, SchemaVersion, Severity,
  Title, Types, UpdatedAt. With the default product ARN the finding is imported by the account it belongs to
  (AwsAccountId is the caller's own account).
- Sizes: Title at most 256 characters, Description 1,024, Remediation.Recommendation.Text 512, at most 32
  Resources, ProductFields at most 50 pairs (key 128 characters, value 2,048), a finding at most 240 KB, a batch at
  most 100 findings. A longer value is cut and ends with a marker (`alerts.cut`); nothing makes a finding fail.
- Severity and Types are the provider's through FindingProviderFields once a finding exists: both are set there as
  well as at the top level. Workflow is the customer's after creation (BatchImportFindings cannot update it): it is
  set on import, which counts for a new finding only. An existing finding is resolved by the provider's fields:
  Compliance.Status PASSED and, once the sweep no longer finds it, RecordState ARCHIVED; Security Hub sets a
  RESOLVED finding back to NEW itself when it turns FAILED or ACTIVE again.
- Id is stable per rule and resource (`lifecycle.finding_key`): a repeat updates the finding instead of adding one.

A value from a CloudTrail record is data: it fills string fields only, never a URL (SourceUrl is built from the
configured documentation URL and the rule id, which is ours; Remediation's URL is the same) and never a key of
ProductFields without being reduced to a safe alphabet.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ami_guard.finding_events import finding_key, fit, section
from ami_guard.findings import is_region, partition_of

SCHEMA_VERSION = "2018-10-08"
TITLE_MAX = 256
DESCRIPTION_MAX = 1024
RECOMMENDATION_MAX = 512
RESOURCES_MAX = 32
PRODUCT_FIELDS_MAX = 50
PRODUCT_FIELD_KEY_MAX = 128
PRODUCT_FIELD_VALUE_MAX = 2048
ID_MAX = 512
FINDING_MAX_BYTES = 240 * 1024
BATCH_MAX = 100
RESOURCE_ID_MAX = 512
PREFIX = "ami-guard/"
"""ProductFields keys are ours under this prefix (`aws/` keys are Security Hub's own)."""
ANY_KEY = "ami-guard/evidence/…"
"""Says how many evidence keys did not fit the 50 pairs."""

SEVERITY_LABELS = {"INFO": "INFORMATIONAL", "LOW": "LOW", "MEDIUM": "MEDIUM", "HIGH": "HIGH", "CRITICAL": "CRITICAL"}

_EXPOSURE = ("Effects/Data Exposure", "Software and Configuration Checks/AWS Security Best Practices")
_BEST_PRACTICE = ("Software and Configuration Checks/AWS Security Best Practices",)
_TYPES: dict[str, tuple[str, ...]] = {
    "ami-public": _EXPOSURE,
    "ami-shared-untrusted": _EXPOSURE,
    "snapshot-public": _EXPOSURE,
    "snapshot-shared-untrusted": _EXPOSURE,
    "image-exported": ("Effects/Data Exposure",),
    "ami-share-denied": ("Unusual Behaviors/User",),
    "guard-tampered": ("TTPs/Defense Evasion",),
    "launch-untrusted-image": (
        "Software and Configuration Checks/AWS Security Best Practices",
        "Software and Configuration Checks/Industry and Regulatory Standards",
    ),
}
"""ASFF's Types taxonomy (namespace/category): exposure of data, best practices, unusual behaviour, evasion."""

# ASFF resource types (those with a Details object in the ASFF reference) for our resource kinds; a kind without one
# is `Other` with its ARN as Id: AMIs, snapshots and EventBridge rules have none.
_RESOURCE_TYPES = {
    "instance": "AwsEc2Instance",
    "lambda-function": "AwsLambdaFunction",
    "sns-topic": "AwsSnsTopic",
    "kms-key": "AwsKmsKey",
    "iam-role": "AwsIamRole",
    "sqs-queue": "AwsSqsQueue",
    "dynamodb-table": "AwsDynamoDbTable",
    "cloudtrail-trail": "AwsCloudTrailTrail",
    "account-setting": "AwsAccount",
}
_ACCOUNT = r"[0-9]{12}"
_SAFE_ID = rf"[A-Za-z0-9._:/@+=-]{{1,{ID_MAX - len(PREFIX)}}}"
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_./-]")


class NotImportable(ValueError):
    """The alert names no account in AWS's format: no account may import it (AwsAccountId must be the caller's)."""


def product_arn(account: str, region: str) -> str:
    """The account's default product: findings the account imports about itself."""
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def finding_id(document: Mapping[str, Any]) -> str:
    """Stable per rule and resource: `ami-guard/<finding key>`, or a digest of the key when it holds characters or a
    length an Id should not (a crafted resource id)."""
    key = finding_key(document)
    if re.fullmatch(_SAFE_ID, key):
        return PREFIX + key
    return f"{PREFIX}sha256:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def resolved(document: Mapping[str, Any]) -> bool:
    """The sweep no longer finds it (`status: resolved`), or the guard removed what made it (`action.status:
    removed`, as `lifecycle.standing_after` reads a finding)."""
    action = document.get("action")
    removed = isinstance(action, Mapping) and action.get("status") == "removed"
    return document.get("status") == "resolved" or removed


def source_url(documentation_url: str | None, rule_id: str) -> str | None:
    """`<base>/docs/rules.md#<rule id>`; None without a configured base (config validates it: https only)."""
    if not documentation_url or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", rule_id):
        return None
    return f"{documentation_url.rstrip('/')}/docs/rules.md#{rule_id}"


def finding(
    document: Mapping[str, Any], *, now: str, import_region: str, documentation_url: str | None = None
) -> dict[str, Any]:
    """The ASFF finding for one alert document (`ami-guard/alert/v2`), imported in `import_region` of the alert's
    account at `now` (ISO 8601, UTC)."""
    account = document.get("account")
    if not isinstance(account, str) or not re.fullmatch(_ACCOUNT, account):
        raise NotImportable(f"the alert names no account id ({str(account)[:40]!r}): no account may import it")
    rule_id = str(document.get("rule_id"))
    severity = SEVERITY_LABELS.get(str(document.get("severity")), "INFORMATIONAL")
    types = list(_TYPES.get(rule_id, _BEST_PRACTICE))
    event = section(document, "event")
    observed = _timestamp(event.get("time")) or now
    evidence = section(document, "evidence")
    first_seen = _timestamp(evidence.get("firstSeen")) if document.get("status") == "resolved" else None
    is_resolved = resolved(document)
    out: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(document),
        "ProductArn": product_arn(account, import_region),
        "GeneratorId": rule_id,
        "AwsAccountId": account,
        "Region": import_region,
        "Types": types,
        "CreatedAt": first_seen or observed,
        "UpdatedAt": now,
        "FirstObservedAt": first_seen or observed,
        "LastObservedAt": observed,
        "Severity": {"Label": severity},
        "FindingProviderFields": {"Severity": {"Label": severity}, "Types": types},
        "Title": fit(str(document.get("title") or rule_id), TITLE_MAX),
        "Description": fit(str(document.get("description") or rule_id), DESCRIPTION_MAX),
        "Resources": _resources(document, account),
        "Compliance": {"Status": "PASSED" if is_resolved else "FAILED"},
        "Workflow": {"Status": "RESOLVED" if is_resolved else "NEW"},
        "RecordState": "ARCHIVED" if document.get("status") == "resolved" else "ACTIVE",
        "ProductFields": product_fields(document),
    }
    recommendation: dict[str, Any] = {"Text": fit(str(document.get("recommendation") or "-"), RECOMMENDATION_MAX)}
    url = source_url(documentation_url, rule_id)
    if url is not None:
        out["SourceUrl"] = url
        recommendation["Url"] = url
    out["Remediation"] = {"Recommendation": recommendation}
    return out


def _timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC time as CloudTrail writes it; anything else (a crafted value) is not a time."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z", value):
        return value
    return None


def _resources(document: Mapping[str, Any], account: str) -> list[dict[str, Any]]:
    """Each resource by its ARN and ASFF type; one the alert has no ARN for (an id not in AWS's format) is `Other`
    with its id as data. An alert without resources names the account."""
    out: list[dict[str, Any]] = []
    items = [r for r in document.get("resources") or [] if isinstance(r, Mapping)]
    region = str(document.get("region") or "")
    for item in items[:RESOURCES_MAX]:
        kind = str(item.get("type"))
        arn = item.get("arn")
        resource_region = str(item.get("region") or region)
        entry: dict[str, Any] = {"Type": "Other", "Id": fit(str(item.get("id")), RESOURCE_ID_MAX)}
        if kind == "account-setting" and is_region(resource_region):
            entry = {"Type": "AwsAccount", "Id": f"AWS::::Account:{account}"}
            entry["Details"] = {"Other": {"ami-guard/setting": fit(str(item.get("id")), 200)}}
        elif isinstance(arn, str):
            entry = {"Type": _RESOURCE_TYPES.get(kind, "Other"), "Id": arn}
        if is_region(resource_region):
            entry["Region"] = resource_region
            entry["Partition"] = partition_of(resource_region)
        out.append(entry)
    if not out:
        out.append({"Type": "AwsAccount", "Id": f"AWS::::Account:{account}"})
    return out


def product_fields(document: Mapping[str, Any]) -> dict[str, str]:
    """Our evidence, flat: a few fields of the alert, then each top-level evidence key as JSON, within Security Hub's
    50 pairs, 128-character keys and 2,048-character values (cut with a marker; the keys left out are counted)."""
    event = section(document, "event")
    actor = section(document, "actor")
    action = section(document, "action")
    fields: dict[str, Any] = {
        "schema": document.get("schema"),
        "rule_id": document.get("rule_id"),
        "status": document.get("status"),
        "origin": document.get("origin"),
        "event_id": event.get("id"),
        "event_name": event.get("name"),
        "event_source": event.get("source"),
        "actor_arn": actor.get("arn"),
        "source_ip": actor.get("source_ip"),
        "action_status": action.get("status"),
        "action_detail": action.get("detail"),
        "account_name": document.get("account_name"),
        "console_url": document.get("console_url"),
        "truncated": json.dumps(document["truncated"], sort_keys=True) if document.get("truncated") else None,
    }
    out = {PREFIX + key: _value(value) for key, value in fields.items() if value is not None}
    evidence = section(document, "evidence")
    room = PRODUCT_FIELDS_MAX - len(out) - 1
    keys = list(evidence)
    for key in keys[:room]:
        name = f"{PREFIX}evidence/{_KEY_CHARS.sub('_', str(key))}"[:PRODUCT_FIELD_KEY_MAX]
        value = evidence[key]
        out[name] = _value(value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))
    if len(keys) > room:
        out[ANY_KEY] = f"{len(keys)} evidence keys, first {room} shown (the alert on SNS and EventBridge has all)"
    return out


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return fit(text, PRODUCT_FIELD_VALUE_MAX) if text else "-"


def size_bytes(asff_finding: Mapping[str, Any]) -> int:
    return len(json.dumps(asff_finding, separators=(",", ":")).encode("utf-8"))
