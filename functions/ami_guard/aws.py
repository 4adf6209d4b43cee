"""Adapters around boto3 clients: with its organization-mode sibling `aws_organization` (member-role sessions, the
organization's account list), the only module that talks to AWS.

Clients are made on first use, one per service and region, and reused for the life of the container.
A permanent refusal (not found, access denied) becomes LookupUnavailable / ActionFailed so that the
alert still goes out and says what could not be read; anything else (throttling, 5xx after botocore's
own retries) propagates, so the invocation fails and is retried. The tag restore is stricter the other
way round: there every error but throttling and 5xx is final (a tag is never worth the alert).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ami_guard.alerts import Alert
from ami_guard.engine import ActionFailed, ImageFacts, LookupUnavailable, SnapshotFacts
from ami_guard.findings import is_region

if TYPE_CHECKING:  # imported where used: only the launch guard reads instance types, launches and templates
    from ami_guard.events.principals import Principals
    from ami_guard.events.run_instances import Launch
    from ami_guard.instance_types import InstanceTypeInfo

PERMANENT_ERRORS = frozenset(
    {
        "AccessDenied",
        "AuthFailure",
        "UnauthorizedOperation",
        "OptInRequired",
        "InvalidAMIID.NotFound",
        "InvalidAMIID.Malformed",
        "InvalidAMIID.Unavailable",
        "InvalidSnapshot.NotFound",
        "InvalidInstanceType",
        "InvalidParameterValue",
        "InvalidLaunchTemplateId.NotFound",
        "InvalidLaunchTemplateId.Malformed",
        "InvalidLaunchTemplateName.NotFoundException",
        "InvalidLaunchTemplateId.VersionNotFound",
    }
)
PERMANENT_PREFIXES = ("InvalidAMIID.", "InvalidSnapshot.")
RETRYABLE_ERRORS = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "EC2ThrottledException",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    }
)
"""Throttling and server-side errors: a retry may cure them. On the tagging path every other error is final."""

ClientFactory = Callable[[str, str], Any]


CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
MAX_ATTEMPTS = 5
SWEEP_MAX_ATTEMPTS = 10
"""The posture sweep reads many resources in a burst: more retries, paced by botocore's adaptive mode. (botocore's
`max_attempts` counts the retries after the first attempt: 10 makes 11 attempts in all.)"""


def client_config() -> Any:
    """botocore's standard retry mode (throttling and 5xx backed off) with explicit timeouts."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


def sweep_client_config(concurrency: int) -> Any:
    """The posture sweep's clients: botocore's adaptive retry mode (the standard mode's backoff, plus a client-side
    rate that slows down when EC2 throttles), SWEEP_MAX_ATTEMPTS retries, the same timeouts, and a connection per
    worker thread (botocore keeps 10 by default)."""
    from botocore.config import Config

    return client_config().merge(
        Config(
            retries={"mode": "adaptive", "max_attempts": SWEEP_MAX_ATTEMPTS},
            max_pool_connections=max(10, concurrency),
        )
    )


def client_factory(config: Any | None = None) -> ClientFactory:
    """(service, region) -> a cached boto3 client made with `config` (default: client_config())."""
    cache: dict[tuple[str, str], Any] = {}

    def get(service: str, region: str) -> Any:
        key = (service, region)
        if key not in cache:
            import boto3  # deferred: a cold start that finds nothing never pays for it

            cache[key] = boto3.client(service, region_name=region, config=config or client_config())
        return cache[key]

    return get


def caller_account(clients: ClientFactory, region: str) -> str:
    """sts:GetCallerIdentity: the account whose credentials `clients` holds (`amiguard sweep`: whose account it reads).
    Raises botocore's errors: no credentials, expired or refused ones."""
    return str(clients("sts", region).get_caller_identity()["Account"])


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: ClientError) -> str:
    """The error's code and AWS's message as AWS gave it (even one ending in ':'); the code alone without a message."""
    code = _error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message") or "").strip()
    return f"{code}: {message}" if message else code


def _permanent(exc: ClientError) -> str | None:
    code = _error_code(exc)
    if code in PERMANENT_ERRORS or code.startswith(PERMANENT_PREFIXES):
        return _reason(exc)
    return None


def _not_retryable(exc: ClientError) -> str | None:
    """The reason of any error a retry will not cure (the tagging path: an alert is never lost to a tag)."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if _error_code(exc) in RETRYABLE_ERRORS or status >= 500:
        return None
    return _reason(exc)


def _check_region(region: str, refusal: type[Exception] = LookupUnavailable) -> None:
    """A region from a record reaches boto3 only in AWS's format (a crafted one fails the read or the action,
    never the invocation): the same test as the links and ARNs of an alert, `findings.is_region`."""
    if not is_region(region):
        raise refusal(f"{region!r} is not an AWS region")


class InstanceTypeCatalog:
    """DescribeInstanceTypes, one type at a time, cached for the container; the bundled table as fallback."""

    def __init__(
        self, clients: ClientFactory, region: str, cache: dict[str, InstanceTypeInfo | None] | None = None
    ) -> None:
        self._clients = clients
        self._region = region
        self._cache: dict[str, InstanceTypeInfo | None] = {} if cache is None else cache
        """Shared by the catalogs of every member account in organization mode (a type's facts are the same)."""

    def get(self, instance_type: str) -> InstanceTypeInfo | None:
        key = instance_type.strip().lower()
        if key not in self._cache:
            self._cache[key] = self._describe(key)
        return self._cache[key]

    def _describe(self, instance_type: str) -> InstanceTypeInfo | None:
        from ami_guard.instance_types import InstanceTypeTable, bundled_table, infer

        try:
            response = self._clients("ec2", self._region).describe_instance_types(InstanceTypes=[instance_type])
        except ClientError as exc:
            if _permanent(exc) is None:
                raise
            response = None
        except LookupUnavailable:  # organization mode: the member role could not be assumed
            response = None
        if response is not None:
            found = InstanceTypeTable.from_describe_pages([response]).get(instance_type)
            if found is not None:
                return found
        return bundled_table().get(instance_type) or infer(instance_type)


class Ec2Lookups:
    """The engine's Lookups over EC2, in whichever region a fact lives."""

    def __init__(self, clients: ClientFactory, instance_types: InstanceTypeCatalog) -> None:
        self._clients = clients
        self._instance_types = instance_types
        self._owners: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        """(image, region) -> (owner, alias), for the container's life: an AMI's owner never changes."""

    def image(self, image_id: str, region: str) -> ImageFacts:
        _check_region(region)
        try:
            images = self._clients("ec2", region).describe_images(ImageIds=[image_id]).get("Images", [])
        except ClientError as exc:
            if (reason := _permanent(exc)) is None:
                raise
            raise LookupUnavailable(reason) from None
        if not images:
            raise LookupUnavailable(f"AMI {image_id} not found in {region} (deregistered, or not visible to us)")
        image = images[0]
        self._owners[(image_id, region)] = (image.get("OwnerId"), image.get("ImageOwnerAlias"))
        return ImageFacts(
            image_id=image_id,
            region=region,
            virtualization_type=image.get("VirtualizationType"),
            tags=_tags(image),
            snapshot_ids=tuple(
                m["Ebs"]["SnapshotId"]
                for m in image.get("BlockDeviceMappings", [])
                if m.get("Ebs", {}).get("SnapshotId")
            ),
            owner_id=image.get("OwnerId"),
            owner_alias=image.get("ImageOwnerAlias"),
            source_image_id=image.get("SourceImageId"),
            source_region=image.get("SourceImageRegion"),
        )

    def image_owner(self, image_id: str, region: str) -> tuple[str | None, str | None]:
        """The AMI's owner and alias, read once per image per container (any earlier `image` read counts)."""
        if (image_id, region) not in self._owners:
            self.image(image_id, region)
        return self._owners[(image_id, region)]

    def snapshots(self, snapshot_ids: tuple[str, ...], region: str) -> tuple[SnapshotFacts, ...]:
        """DescribeSnapshots by id, one call for all (only on the tag-restore path, before CreateTags)."""
        _check_region(region)
        try:
            found = self._clients("ec2", region).describe_snapshots(SnapshotIds=list(snapshot_ids))
        except ClientError as exc:
            if (reason := _not_retryable(exc)) is None:
                raise
            raise LookupUnavailable(reason) from None
        return tuple(
            SnapshotFacts(snapshot_id=s["SnapshotId"], owner_id=s.get("OwnerId"), tags=_tags(s))
            for s in found.get("Snapshots", [])
            if "SnapshotId" in s
        )

    def launch_permissions(self, image_id: str, region: str) -> Principals:
        _check_region(region)
        try:
            response = self._clients("ec2", region).describe_image_attribute(
                ImageId=image_id, Attribute="launchPermission"
            )
        except ClientError as exc:
            if (reason := _permanent(exc)) is None:
                raise
            raise LookupUnavailable(reason) from None
        return principals_from_api(response.get("LaunchPermissions", []))

    def instance_type(self, instance_type: str) -> InstanceTypeInfo | None:
        return self._instance_types.get(instance_type)

    def launch_template(self, launch: Launch, region: str) -> tuple[str | None, str | None]:
        ref = launch.launch_template
        if ref is None:
            return None, None
        _check_region(region)
        request: dict[str, Any] = {"Versions": [ref.version or "$Default"]}
        if ref.template_id:
            request["LaunchTemplateId"] = ref.template_id
        elif ref.template_name:
            request["LaunchTemplateName"] = ref.template_name
        else:
            raise LookupUnavailable("the launch template is named by neither id nor name")
        try:
            versions = self._clients("ec2", region).describe_launch_template_versions(**request)
        except ClientError as exc:
            if (reason := _permanent(exc)) is None:
                raise
            raise LookupUnavailable(reason) from None
        data = (versions.get("LaunchTemplateVersions") or [{}])[0].get("LaunchTemplateData", {})
        image_id = data.get("ImageId")
        if isinstance(image_id, str) and image_id.startswith("resolve:"):
            image_id = None  # an SSM parameter reference: the AMI it resolved to is not recorded here
        return image_id, data.get("InstanceType")


def _tags(described: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in described.get("Tags", []) if "Key" in t}


def principals_from_api(items: list[Mapping[str, Any]]) -> Principals:
    from ami_guard.events.principals import Principals  # the permission and image guards only

    return Principals(
        groups=tuple(i["Group"] for i in items if "Group" in i),
        user_ids=tuple(i["UserId"] for i in items if "UserId" in i),
        organization_arns=tuple(i["OrganizationArn"] for i in items if "OrganizationArn" in i),
        ou_arns=tuple(i["OrganizationalUnitArn"] for i in items if "OrganizationalUnitArn" in i),
    )


class Ec2Actions:
    """The engine's Actions: it can only remove launch permissions and add tags, nothing else."""

    def __init__(self, clients: ClientFactory, lookups: Ec2Lookups) -> None:
        self._clients = clients
        self._lookups = lookups

    def _client(self, region: str) -> Any:
        """The EC2 client; a client that cannot be made (organization mode: the member role refused) is a failed
        action, never a failed invocation."""
        try:
            return self._clients("ec2", region)
        except LookupUnavailable as exc:
            raise ActionFailed(str(exc)) from None

    def remove_launch_permissions(self, image_id: str, region: str, principals: Principals) -> Principals:
        remove = (
            [{"Group": g} for g in principals.groups]
            + [{"UserId": u} for u in principals.user_ids]
            + [{"OrganizationArn": a} for a in principals.organization_arns]
            + [{"OrganizationalUnitArn": a} for a in principals.ou_arns]
        )
        _check_region(region, ActionFailed)
        if not remove:
            return self._lookups.launch_permissions(image_id, region)
        try:
            self._client(region).modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": remove})
        except ClientError as exc:
            if (reason := _permanent(exc)) is None:
                raise
            raise ActionFailed(reason) from None
        try:
            return self._lookups.launch_permissions(image_id, region)
        except LookupUnavailable as exc:
            raise ActionFailed(f"removed, but the launch permissions could not be read back: {exc}") from None

    def add_tags(self, resource_ids: tuple[str, ...], region: str, tags: Mapping[str, str]) -> None:
        """CreateTags; any refusal a retry will not cure (TagLimitExceeded, InvalidParameterValue, access
        denied, a vanished image or snapshot...) becomes ActionFailed, reported in the alert."""
        _check_region(region, ActionFailed)
        try:
            self._client(region).create_tags(
                Resources=list(resource_ids), Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        except ClientError as exc:
            if (reason := _not_retryable(exc)) is None:
                raise
            raise ActionFailed(reason) from None


class SnsPublisher:
    def __init__(self, clients: ClientFactory, topic_arn: str) -> None:
        self._clients = clients
        self._topic_arn = topic_arn
        self._region = topic_arn.split(":")[3]

    def publish(self, alert: Alert) -> str:
        response = self._clients("sns", self._region).publish(
            TopicArn=self._topic_arn,
            Subject=alert.subject,
            Message=alert.sns_message(),
            MessageStructure="json",
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in alert.attributes.items()},
        )
        return str(response["MessageId"])
