"""The open findings of every account-region, kept in the guard's DynamoDB table (the idempotency table): the AWS
edge of `lifecycle`.

Item: `id = "finding#<key>"`, `scope = "<account>/<region>"`, `status` (open / resolved), and what `OpenFinding`
holds. The table's global secondary index `scope-index` (partition `scope`, sort `id`) lists an account-region's
open findings with one paged Query; a resolved finding leaves the index (its `scope` is removed) and expires after
RESOLVED_DAYS with the table's TTL (`expiration`, the attribute Powertools' records use). Calls: dynamodb:Query on the
index, dynamodb:PutItem, dynamodb:UpdateItem.

A sweep reconciles page by page (lifecycle.reconcile_page): a finding it opens is written with `seen_run` (its run),
and each open finding a page finds again, or cannot decide, is stamped `seen_run = <run>` with one UpdateItem
(`seen`); the last step resolves the open findings whose `seen_run` is not the run's (lifecycle.unseen).

A sweep's progress through one account-region (`sweep#<account>/<region>`: its run and the digest of the last cursor
it handed out, expiring after PROGRESS_DAYS) is the check of the cursor that comes back: a step goes on only from the
cursor the previous step returned (`resume`), so that a cursor written by anyone else cannot skip pages and have
what they hold resolved. One UpdateItem to begin, one to check, one to advance.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from ami_guard import contract
from ami_guard.aws import ClientFactory
from ami_guard.findings import Finding
from ami_guard.lifecycle import OPEN, RESOLVED, OpenFinding, open_record

RESOLVED_DAYS = 30
PROGRESS_DAYS = 7
_FIELDS = (
    "rule_id",
    "severity",
    "title",
    "account",
    "region",
    "resource_kind",
    "resource_id",
    "origin",
    "first_seen",
    "seen_run",
)


class ProgressRefused(Exception):
    """The cursor is not the one the previous step of this run handed out."""


def _item_id(key: str) -> str:
    return f"finding#{key}"


def _scope(account: str, region: str) -> str:
    return f"{account}/{region}"


class DynamoFindingStore:
    def __init__(self, clients: ClientFactory, table_name: str, table_region: str) -> None:
        self._clients = clients
        self._table = table_name
        self._region = table_region

    def _dynamodb(self) -> Any:
        return self._clients("dynamodb", self._region)

    def open_findings(self, account: str, region: str) -> dict[str, OpenFinding]:
        """Every open finding of the account-region, by key (a paged Query on the scope index)."""
        found: dict[str, OpenFinding] = {}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": contract.FINDINGS_INDEX,
            "KeyConditionExpression": "#scope = :scope",
            "ExpressionAttributeNames": {"#scope": "scope"},
            "ExpressionAttributeValues": {":scope": {"S": _scope(account, region)}},
        }
        while True:
            page = self._dynamodb().query(**request)
            for item in page.get("Items", []):
                if item.get("status", {}).get("S") != OPEN:
                    continue
                key = item["id"]["S"].removeprefix("finding#")
                values = {name: item.get(name, {}).get("S") for name in _FIELDS}
                found[key] = OpenFinding(key=key, **values)
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def opened(
        self,
        key: str,
        finding: Finding,
        account: str,
        region: str,
        origin: str,
        when: str,
        *,
        seen_run: str | None = None,
    ) -> bool:
        """Record the finding as open (`seen_run`: the sweep run that found it); False when it already was (it is
        not alerted as new twice)."""
        record = open_record(key, finding, account, region, origin, when)._replace(seen_run=seen_run)
        item = {name: {"S": value} for name, value in record._asdict().items() if value is not None and name != "key"}
        item.update({"id": {"S": _item_id(key)}, "scope": {"S": _scope(account, region)}, "status": {"S": OPEN}})
        try:
            self._dynamodb().put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(id) OR #status = :resolved",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":resolved": {"S": RESOLVED}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def resolved(self, record: OpenFinding, when: str) -> None:
        """Close the finding: out of the scope index, kept RESOLVED_DAYS for the record, then expired."""
        self._dynamodb().update_item(
            TableName=self._table,
            Key={"id": {"S": _item_id(record.key)}},
            UpdateExpression="SET #status = :resolved, resolved_at = :when, expiration = :expires REMOVE #scope",
            ExpressionAttributeNames={"#status": "status", "#scope": "scope"},
            ExpressionAttributeValues={
                ":resolved": {"S": RESOLVED},
                ":when": {"S": when},
                ":expires": {"N": str(int(time.time()) + RESOLVED_DAYS * 86400)},
            },
        )

    def seen(self, keys: Iterable[str], run_id: str) -> None:
        """Stamp open findings "seen in run `run_id`" (one UpdateItem each); one resolved or gone meanwhile is left
        as it is (the condition keeps UpdateItem from making an item)."""
        for key in keys:
            try:
                self._dynamodb().update_item(
                    TableName=self._table,
                    Key={"id": {"S": _item_id(key)}},
                    UpdateExpression="SET seen_run = :run",
                    ConditionExpression="#status = :open",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":run": {"S": run_id}, ":open": {"S": OPEN}},
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def begin(self, account: str, region: str, run_id: str, digest: str) -> None:
        """A run's first step in the account-region: its progress starts at `digest` (the cursor handed out)."""
        self._progress(account, region, run_id, digest, condition=None)

    def resume(self, account: str, region: str, run_id: str, digest: str) -> None:
        """Raises ProgressRefused unless `digest` is the last cursor this run handed out in the account-region."""
        self._progress(account, region, run_id, digest, condition=digest)

    def advance(self, account: str, region: str, run_id: str, previous: str, digest: str) -> None:
        """The step that resumed from `previous` hands out `digest` (or "done")."""
        self._progress(account, region, run_id, digest, condition=previous)

    def _progress(self, account: str, region: str, run_id: str, digest: str, *, condition: str | None) -> None:
        values: dict[str, Any] = {
            ":run": {"S": run_id},
            ":step": {"S": digest},
            ":expires": {"N": str(int(time.time()) + PROGRESS_DAYS * 86400)},
        }
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"id": {"S": f"sweep#{_scope(account, region)}"}},
            "UpdateExpression": "SET run_id = :run, step = :step, expiration = :expires",
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            request["ConditionExpression"] = "run_id = :run AND step = :expected"
            values[":expected"] = {"S": condition}
        try:
            self._dynamodb().update_item(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ProgressRefused(
                    f"the cursor is not the one the last step of run {run_id} in {_scope(account, region)} returned"
                ) from exc
            raise
