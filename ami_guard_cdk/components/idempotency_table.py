"""The DynamoDB table that remembers which CloudTrail events were handled (Powertools idempotency), and the open
findings of each account-region (ami_guard.aws_findings: items `finding#<key>`, indexed by `scope`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from ami_guard import contract

# What Powertools' DynamoDBPersistenceLayer calls, and nothing else: PutItem (the in-progress record, conditional),
# UpdateItem (the result), DeleteItem (a failed run). No GetItem: the conditional put asks for the existing record
# back (ReturnValuesOnConditionCheckFailure=ALL_OLD, with any boto3 from 1.26.164; Lambda's python3.13 runtime ships
# a later one), and Powertools reads the record with GetItem only when that answer carries no item.
IDEMPOTENCY_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# What the posture sweep's finding store calls: the open findings of one account-region from the index, a new
# finding put, a resolved one updated. Never a delete: a resolved finding stays, marked, until its TTL.
FINDING_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem")
FINDING_INDEX_ACTIONS = ("dynamodb:Query",)


class IdempotencyTable(Construct):
    """On-demand, encrypted, point-in-time recoverable; records expire by TTL after a day."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiration",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Records live a day at most; nothing in them outlives the stack.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Always, sweep or not: the event guards record the findings they raise here too, so that the sweep can
        # close them. Adding an index is an in-place update of the table (no replacement).
        self.table.add_global_secondary_index(
            index_name=contract.FINDINGS_INDEX,
            partition_key=dynamodb.Attribute(name="scope", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    def grant(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(IDEMPOTENCY_ACTIONS), resource_arns=[self.table.table_arn]
        )

    def grant_findings(self, grantee: iam.IGrantable) -> None:
        """What the finding store calls: Query on the findings index, PutItem and UpdateItem on the table."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(FINDING_TABLE_ACTIONS), resource_arns=[self.table.table_arn]
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(FINDING_INDEX_ACTIONS),
            resource_arns=[f"{self.table.table_arn}/index/{contract.FINDINGS_INDEX}"],
        )
