"""The posture sweep's AWS edge: the facts of one account and region, read with as few calls as the answer needs.

What it calls, in the account's region unless said otherwise (P: the page size, 1,000 by default):
- ec2:DescribeImages(Owners=["self"], IncludeDeprecated, IncludeDisabled), paged: the owned AMIs with their
  `Public` flag, so that a public AMI needs no further read.
- ec2:DescribeSnapshots(OwnerIds=["self"]), paged, and ec2:DescribeSnapshots(OwnerIds=["self"],
  RestorableByUserIds=["all"]), paged: the owned snapshots and, in one listing, which of them are public.
- ec2:DescribeImageAttribute(launchPermission) for each owned AMI that is not public, and
  ec2:DescribeSnapshotAttribute(createVolumePermission) for each owned snapshot that is not public: the shares a
  listing cannot show. A public resource's other shares are not read: public is already the worst exposure.
- ec2:GetImageBlockPublicAccessState, ec2:GetSnapshotBlockPublicAccessState, ec2:GetAllowedImagesSettings: once each.
- ec2:DescribeInstances(instance-state-name=running, virtualization-type=paravirtual), paged.
- ec2:DescribeImages(ImageIds=[...]) in a source's own region, for the sources of owned copies that neither this
  region's listing nor `source_cache` already holds, up to SOURCE_BATCH ids a call: one call per source region for
  up to 1,000 sources (the EC2 API guide's ceiling for ids in one describe call).

So calls = ceil(images/P) + ceil(snapshots/P) + ceil(public snapshots/P) + (images - public images)
+ (snapshots - public snapshots) + 3 + ceil(paravirtual instances/P) + sum over source regions of
ceil(sources to read there/SOURCE_BATCH), each listing counting at least one page (EC2 may also end a listing with
an empty page), plus one call more for each batch of sources where EC2 refuses an id it no longer knows (the batch
is asked again without it). Nothing is read twice.

Attribute and source reads run on `concurrency` worker threads sharing one client per region (boto3 clients are
thread-safe; sessions are not, so every client is made on the calling thread). Retries are botocore's (give the
factory `aws.sweep_client_config`: adaptive mode, 10 retries).

Failures: a listing that fails (after botocore's retries) fails the region (RegionFailed, naming the call), since a
partial listing would make exposures look fixed. A failed read of one resource's attribute, of an account setting
or of a copy's source is recorded in the posture's `unread` and leaves that fact None; the rest is collected.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from ami_guard.aws import ClientFactory, _error_code, _reason, principals_from_api
from ami_guard.engine import LookupUnavailable
from ami_guard.events.principals import Principals
from ami_guard.findings import is_region
from ami_guard.sweep.facts import (
    AccountSettings,
    OwnedImage,
    OwnedSnapshot,
    ParavirtualInstance,
    RegionPosture,
    SourceImage,
    Unread,
    sources_to_read,
)

DEFAULT_CONCURRENCY = 8
PAGE_SIZE = 1000
"""The most DescribeImages, DescribeSnapshots and DescribeInstances return in one page."""
SOURCE_BATCH = 1000
"""Image ids in one DescribeImages call ("you should not specify more than 1,000 IDs in a single call": the EC2
developer guide on pagination)."""
SourceCache = MutableMapping[str, "SourceImage | None"]
"""Source image id -> what a sweep read of it, shared by the regions one process sweeps: no source read twice."""

_T = TypeVar("_T")
_IMAGE_ID = re.compile(r"ami-[0-9a-f]+")


class RegionFailed(Exception):
    """A listing of the region failed after botocore's retries: the region's posture is unknown."""

    def __init__(self, account: str, region: str, call: str, reason: str, calls: Counter[str]) -> None:
        super().__init__(f"{account} {region}: {call} failed: {reason}")
        self.account = account
        self.region = region
        self.call = call
        """"service:Operation"."""
        self.reason = reason
        self.calls = calls
        """The calls made before the failure, as RegionPosture.calls counts them."""


def _why(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return _reason(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


class _Ledger:
    """Makes each call and counts it, from any worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.unread: list[Unread] = []

    def call(self, client: Any, operation: str, **params: Any) -> dict[str, Any]:
        key = f"{client.meta.service_model.service_name}:{operation}"
        with self._lock:
            self.calls[key] += 1
        try:
            response: dict[str, Any] = getattr(client, xform_name(operation))(**params)
        except ClientError as exc:
            self._retried(key, exc.response)
            raise
        self._retried(key, response)
        return response

    def _retried(self, key: str, response: Mapping[str, Any]) -> None:
        attempts = int(response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
        if attempts:
            with self._lock:
                self.retries[key] += attempts

    def not_read(self, what: str, reason: str) -> None:
        with self._lock:
            self.unread.append(Unread(what, reason))


class _Region:
    """One collection: the region's client, its ledger, and the listings as paged generators."""

    def __init__(self, account: str, region: str, client: Any, ledger: _Ledger, page_size: int) -> None:
        self.account = account
        self.region = region
        self.client = client
        self.ledger = ledger
        self.page_size = page_size

    def pages(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            request = {**params, "MaxResults": self.page_size, **({"NextToken": token} if token else {})}
            try:
                page = self.ledger.call(self.client, operation, **request)
            except (ClientError, BotoCoreError) as exc:
                raise self.failed(f"ec2:{operation}", _why(exc)) from exc
            yield page
            following = page.get("NextToken")
            if not following:
                return
            if following == token:
                raise self.failed(f"ec2:{operation}", "the listing returned the same NextToken twice")
            token = following

    def failed(self, call: str, reason: str) -> RegionFailed:
        return RegionFailed(self.account, self.region, call, reason, Counter(self.ledger.calls))

    def images(self) -> list[OwnedImage]:
        return [
            _image(described, self.region)
            for page in self.pages("DescribeImages", Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True)
            for described in page.get("Images", [])
            if described.get("ImageId")
        ]

    def snapshots(self) -> list[OwnedSnapshot]:
        return [
            _snapshot(described, self.region)
            for page in self.pages("DescribeSnapshots", OwnerIds=["self"])
            for described in page.get("Snapshots", [])
            if described.get("SnapshotId")
        ]

    def public_snapshot_ids(self) -> set[str]:
        return {
            described["SnapshotId"]
            for page in self.pages("DescribeSnapshots", OwnerIds=["self"], RestorableByUserIds=["all"])
            for described in page.get("Snapshots", [])
            if described.get("SnapshotId")
        }

    def paravirtual_instances(self) -> list[ParavirtualInstance]:
        filters = [
            {"Name": "instance-state-name", "Values": ["running"]},
            {"Name": "virtualization-type", "Values": ["paravirtual"]},
        ]
        return [
            _instance(described, self.region)
            for page in self.pages("DescribeInstances", Filters=filters)
            for reservation in page.get("Reservations", [])
            for described in reservation.get("Instances", [])
            if described.get("InstanceId")
        ]

    def permissions(self, operation: str, id_name: str, resource_id: str, attribute: str) -> Principals | None:
        """One attribute read; a failure is recorded, never raised."""
        try:
            response = self.ledger.call(self.client, operation, **{id_name: resource_id, "Attribute": attribute})
        except (ClientError, BotoCoreError) as exc:
            self.ledger.not_read(f"ec2:{operation} {resource_id} {attribute}", _why(exc))
            return None
        key = "LaunchPermissions" if attribute == "launchPermission" else "CreateVolumePermissions"
        return principals_from_api(response.get(key, []))

    def setting(self, operation: str, field: str) -> tuple[str | None, str | None]:
        """(the state, None) or (None, why it could not be read)."""
        try:
            response = self.ledger.call(self.client, operation)
        except (ClientError, BotoCoreError) as exc:
            reason = _why(exc)
            self.ledger.not_read(f"ec2:{operation}", reason)
            return None, reason
        state = response.get(field)
        if not isinstance(state, str) or not state:
            reason = f"the response names no {field}"
            self.ledger.not_read(f"ec2:{operation}", reason)
            return None, reason
        return state, None


def _tags(described: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in described.get("Tags") or [] if "Key" in t}


def _image(described: Mapping[str, Any], region: str) -> OwnedImage:
    return OwnedImage(
        image_id=described["ImageId"],
        region=region,
        name=described.get("Name"),
        public=described.get("Public") is True,
        virtualization_type=described.get("VirtualizationType"),
        root_device_type=described.get("RootDeviceType"),
        source_image_id=described.get("SourceImageId") or None,
        source_region=described.get("SourceImageRegion") or None,
        tags=_tags(described),
        snapshot_ids=tuple(
            m["Ebs"]["SnapshotId"]
            for m in described.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("SnapshotId")
        ),
        creation_date=described.get("CreationDate"),
        state=described.get("State"),
    )


def _snapshot(described: Mapping[str, Any], region: str) -> OwnedSnapshot:
    return OwnedSnapshot(
        snapshot_id=described["SnapshotId"],
        region=region,
        public=False,
        volume_size=described.get("VolumeSize"),
        tags=_tags(described),
    )


def _instance(described: Mapping[str, Any], region: str) -> ParavirtualInstance:
    launched = described.get("LaunchTime")
    return ParavirtualInstance(
        instance_id=described["InstanceId"],
        instance_type=described.get("InstanceType"),
        image_id=described.get("ImageId"),
        region=region,
        launch_time=launched.isoformat() if isinstance(launched, datetime) else launched,
    )


def _read_sources(ledger: _Ledger, client: Any, region: str, image_ids: Sequence[str]) -> dict[str, SourceImage | None]:
    """DescribeImages by id in the sources' own region, SOURCE_BATCH ids a call. EC2 refuses a whole call for one
    id it no longer knows (InvalidAMIID.NotFound, naming it): that id is recorded as unread and the rest asked again.
    """
    found: dict[str, SourceImage | None] = {}
    for start in range(0, len(image_ids), SOURCE_BATCH):
        batch = list(image_ids[start : start + SOURCE_BATCH])
        while batch:
            try:
                response = ledger.call(
                    client, "DescribeImages", ImageIds=batch, IncludeDeprecated=True, IncludeDisabled=True
                )
            except (ClientError, BotoCoreError) as exc:
                named = _refused_ids(exc, batch)
                for image_id in named or batch:
                    found[image_id] = None
                    ledger.not_read(f"ec2:DescribeImages {image_id} in {region} (source of a copy)", _why(exc))
                batch = [i for i in batch if i not in named] if named else []
                continue
            for described in response.get("Images", []):
                if described.get("ImageId") in batch:
                    found[described["ImageId"]] = SourceImage(
                        image_id=described["ImageId"],
                        region=region,
                        owner_id=described.get("OwnerId"),
                        tags=_tags(described),
                    )
            for image_id in batch:
                if image_id not in found:
                    found[image_id] = None
                    ledger.not_read(
                        f"ec2:DescribeImages {image_id} in {region} (source of a copy)",
                        "not returned: deregistered, or not visible to the account",
                    )
            batch = []
    return found


def _refused_ids(exc: Exception, batch: Sequence[str]) -> set[str]:
    """The ids of `batch` that an InvalidAMIID error names (EC2 names them in its message)."""
    if not isinstance(exc, ClientError) or not _error_code(exc).startswith("InvalidAMIID."):
        return set()
    named = set(_IMAGE_ID.findall(str(exc.response.get("Error", {}).get("Message") or "")))
    return named & set(batch)


def collect_region(
    clients: ClientFactory,
    account: str,
    region: str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    page_size: int = PAGE_SIZE,
    source_cache: SourceCache | None = None,
) -> RegionPosture:
    """The facts of `account` in `region`, read through `clients` (the account's credentials; made with
    `aws.sweep_client_config(concurrency)`, so that each worker has a connection).

    `clients` is called on this thread only (a factory over boto3's default session is not thread-safe): regions
    collected at the same time need a factory each. `source_cache`: the sources already read by this process
    (another region's sweep), filled with those read here; one thread at a time. Raises RegionFailed when a listing
    fails."""
    if not is_region(region):
        raise RegionFailed(account, region, "ec2", f"{region!r} is not an AWS region", Counter())
    ledger = _Ledger()
    try:
        client = clients("ec2", region)
    except LookupUnavailable as exc:  # organization mode: the member role could not be assumed
        raise RegionFailed(account, region, "sts:AssumeRole", str(exc), Counter()) from exc
    here = _Region(account, region, client, ledger, page_size)
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=f"sweep-{region}")
    try:
        return _collect(here, pool, clients, source_cache if source_cache is not None else {})
    finally:
        # after a failure, the reads not yet started are dropped and those under way finish: no thread outlives
        # the collection
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(here: _Region, pool: ThreadPoolExecutor, clients: ClientFactory, cache: SourceCache) -> RegionPosture:
    submit: Callable[..., Future[Any]] = pool.submit
    listed_images = submit(here.images)
    listed_snapshots = submit(here.snapshots)
    listed_public = submit(here.public_snapshot_ids)
    listed_instances = submit(here.paravirtual_instances)
    settings = {
        field: submit(here.setting, operation, response_field)
        for field, operation, response_field in (
            ("image_block_public_access", "GetImageBlockPublicAccessState", "ImageBlockPublicAccessState"),
            ("snapshot_block_public_access", "GetSnapshotBlockPublicAccessState", "State"),
            ("allowed_images", "GetAllowedImagesSettings", "State"),
        )
    }

    images = listed_images.result()
    image_reads = {
        image.image_id: submit(
            here.permissions, "DescribeImageAttribute", "ImageId", image.image_id, "launchPermission"
        )
        for image in images
        if not image.public
    }
    for image in images:  # a source this region lists is read already
        if image.image_id not in cache:
            cache[image.image_id] = SourceImage(image.image_id, here.region, here.account, image.tags)
    failed_before = {
        i.source_image_id for i in images if i.source_image_id in cache and cache[i.source_image_id] is None
    }
    for image_id in sorted(str(i) for i in failed_before):
        here.ledger.not_read(f"ec2:DescribeImages {image_id} (source of a copy)", "not readable in an earlier sweep")
    source_reads: list[Future[dict[str, SourceImage | None]]] = []
    for source_region, image_ids in sources_to_read(images, cache).items():
        if not is_region(source_region):
            for image_id in image_ids:
                cache[image_id] = None
                here.ledger.not_read(f"ec2:DescribeImages {image_id}", f"{source_region!r} is not an AWS region")
            continue
        try:
            source_client = clients("ec2", source_region)
        except LookupUnavailable as exc:
            for image_id in image_ids:
                cache[image_id] = None
                here.ledger.not_read(f"ec2:DescribeImages {image_id} in {source_region} (source of a copy)", str(exc))
            continue
        source_reads.append(submit(_read_sources, here.ledger, source_client, source_region, image_ids))

    snapshots = listed_snapshots.result()
    public = listed_public.result()
    snapshot_reads = {
        snapshot.snapshot_id: submit(
            here.permissions, "DescribeSnapshotAttribute", "SnapshotId", snapshot.snapshot_id, "createVolumePermission"
        )
        for snapshot in snapshots
        if snapshot.snapshot_id not in public
    }
    instances = listed_instances.result()
    states = {field: future.result() for field, future in settings.items()}
    for read in source_reads:
        cache.update(read.result())

    return RegionPosture(
        account=here.account,
        region=here.region,
        images=tuple(image._replace(launch_permissions=_done(image_reads.get(image.image_id))) for image in images),
        snapshots=tuple(
            snapshot._replace(
                public=snapshot.snapshot_id in public,
                create_volume_permissions=_done(snapshot_reads.get(snapshot.snapshot_id)),
            )
            for snapshot in snapshots
        ),
        instances=tuple(instances),
        settings=AccountSettings(
            image_block_public_access=states["image_block_public_access"][0],
            snapshot_block_public_access=states["snapshot_block_public_access"][0],
            allowed_images=states["allowed_images"][0],
            unread={field: reason for field, (_, reason) in states.items() if reason is not None},
        ),
        sources={
            image.source_image_id: cache.get(image.source_image_id)
            for image in images
            if image.source_image_id is not None
        },
        calls=Counter(here.ledger.calls),
        retries=Counter(here.ledger.retries),
        unread=tuple(sorted(here.ledger.unread)),
    )


def _done(future: Future[_T] | None) -> _T | None:
    return None if future is None else future.result()
