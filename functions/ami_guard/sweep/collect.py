"""The posture sweep's AWS edge: the facts of one account and region, read with as few calls as the answer needs.

What it calls, in the account's region unless said otherwise (P: the page size, 1,000 by default):
- ec2:DescribeImages(Owners=["self"], IncludeDeprecated, IncludeDisabled), paged: the owned AMIs with their
  `Public` flag, so that a public AMI needs no further read.
- ec2:DescribeSnapshots(OwnerIds=["self"]), paged, and for each page that holds snapshots one
  ec2:DescribeSnapshots(OwnerIds=["self"], SnapshotIds=<the page's ids>, RestorableByUserIds=["all"]): which of the
  page's snapshots are public (EC2 refuses MaxResults beside SnapshotIds; an id deleted since the page was listed
  makes EC2 refuse the call naming it: it is dropped and the rest asked again, one call more).
- ec2:DescribeImageAttribute(launchPermission) for each owned AMI that is not public, and
  ec2:DescribeSnapshotAttribute(createVolumePermission) for each owned snapshot that is not public: the shares a
  listing cannot show. A public resource's other shares are not read: public is already the worst exposure.
- ec2:GetImageBlockPublicAccessState, ec2:GetSnapshotBlockPublicAccessState, ec2:GetAllowedImagesSettings: once each.
- ec2:DescribeInstances(instance-state-name=running, virtualization-type=paravirtual), paged.
- ec2:DescribeImages(ImageIds=[...]) in a source's own region, for the sources of an image page's copies that
  neither an earlier page nor `source_cache` already holds, up to SOURCE_BATCH ids a call.

So calls = ceil(images/P) + 2 x ceil(snapshots/P) + (images - public images) + (snapshots - public snapshots) + 3
+ ceil(paravirtual instances/P) + for each image page, the sum over source regions of ceil(sources to read
there/SOURCE_BATCH). Each listing counts at least one page (EC2 may also end a listing with an empty page); a page
without snapshots asks for no public ones; each id EC2 refuses as deleted meanwhile costs one call more (the batch is
asked again without it). Nothing is read twice in one collection (a source that a later page lists is read by id
when an earlier page's copy needs it first).

The work is cut in pages, and the whole-region collection and the deployed sweep's checkpointed steps run the same
page functions (one rule, one place): `settings_slice` (the account settings and the paravirtual instances),
`image_slice` and `snapshot_slice` (one listing page each, with that page's reads), each a RegionPosture holding that
page's facts alone. `collect_region` runs them all and merges them; the deployed sweep runs them one page a step and
carries EC2's NextToken in its cursor (sweep.run).

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
    NOT_READ,
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
_SNAPSHOT_ID = re.compile(r"snap-[0-9a-f]+")


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
    """Makes each call and counts it, from any worker thread; a page's ledger counts in its region's as well."""

    def __init__(self, parent: _Ledger | None = None) -> None:
        self.parent = parent
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.unread: list[Unread] = []

    def call(self, client: Any, operation: str, **params: Any) -> dict[str, Any]:
        key = f"{client.meta.service_model.service_name}:{operation}"
        self.count(key)
        try:
            response: dict[str, Any] = getattr(client, xform_name(operation))(**params)
        except ClientError as exc:
            self._retried(key, exc.response)
            raise
        self._retried(key, response)
        return response

    def count(self, key: str) -> None:
        with self._lock:
            self.calls[key] += 1
        if self.parent is not None:
            self.parent.count(key)

    def _retried(self, key: str, response: Mapping[str, Any]) -> None:
        attempts = int(response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
        if attempts:
            with self._lock:
                self.retries[key] += attempts

    def not_read(self, what: str, reason: str) -> None:
        with self._lock:
            self.unread.append(Unread(what, reason))

    @property
    def root(self) -> _Ledger:
        return self if self.parent is None else self.parent.root


class _Region:
    """One collection: the region's client, its ledger, and the listings as paged generators."""

    def __init__(self, account: str, region: str, client: Any, ledger: _Ledger, page_size: int) -> None:
        self.account = account
        self.region = region
        self.client = client
        self.ledger = ledger
        self.page_size = page_size

    def page(self, operation: str, token: str | None, **params: Any) -> tuple[dict[str, Any], str | None]:
        """One page of a listing from `token` (None: the first), and the token of the next (None: the last)."""
        request = {**params, "MaxResults": self.page_size, **_next(token)}
        try:
            page = self.ledger.call(self.client, operation, **request)
        except (ClientError, BotoCoreError) as exc:
            raise self.failed(f"ec2:{operation}", _why(exc)) from exc
        following = page.get("NextToken") or None
        if following is not None and following == token:
            raise self.failed(f"ec2:{operation}", "the listing returned the same NextToken twice")
        return page, following

    def pages(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page, token = self.page(operation, token, **params)
            yield page
            if token is None:
                return

    def failed(self, call: str, reason: str) -> RegionFailed:
        return RegionFailed(self.account, self.region, call, reason, Counter(self.ledger.root.calls))

    def public_among(self, snapshot_ids: Sequence[str]) -> set[str]:
        """Which of one page's snapshots are public: DescribeSnapshots by id, restorable by all. No MaxResults (EC2
        refuses it beside SnapshotIds); a deleted id makes EC2 refuse the whole call naming it
        (InvalidSnapshot.NotFound): it is dropped (a deleted snapshot exposes nothing) and the rest asked again."""
        asking = list(snapshot_ids)
        public: set[str] = set()
        token: str | None = None
        while asking:
            request = {"OwnerIds": ["self"], "SnapshotIds": asking, "RestorableByUserIds": ["all"], **_next(token)}
            try:
                response = self.ledger.call(self.client, "DescribeSnapshots", **request)
            except (ClientError, BotoCoreError) as exc:
                named = _refused_ids(exc, asking, "InvalidSnapshot.", _SNAPSHOT_ID)
                if not named:
                    raise self.failed("ec2:DescribeSnapshots", _why(exc)) from exc
                asking = [i for i in asking if i not in named]
                public, token = set(), None
                continue
            public |= {d["SnapshotId"] for d in response.get("Snapshots", []) if d.get("SnapshotId") in asking}
            following = response.get("NextToken") or None
            if following is None:
                break
            if following == token:
                raise self.failed("ec2:DescribeSnapshots", "the listing returned the same NextToken twice")
            token = following
        return public

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


def _refused_ids(
    exc: Exception, batch: Sequence[str], code: str = "InvalidAMIID.", pattern: re.Pattern[str] | None = None
) -> set[str]:
    """The ids of `batch` that an error of `code` (InvalidAMIID., InvalidSnapshot.) names in its message."""
    if not isinstance(exc, ClientError) or not _error_code(exc).startswith(code):
        return set()
    named = set((pattern or _IMAGE_ID).findall(str(exc.response.get("Error", {}).get("Message") or "")))
    return named & set(batch)


def _next(token: str | None) -> dict[str, str]:
    return {"NextToken": token} if token else {}


_SETTINGS = (
    ("image_block_public_access", "GetImageBlockPublicAccessState", "ImageBlockPublicAccessState"),
    ("snapshot_block_public_access", "GetSnapshotBlockPublicAccessState", "State"),
    ("allowed_images", "GetAllowedImagesSettings", "State"),
)


class RegionPages:
    """One account-region's collection, a page at a time: the page functions that `collect_region` and the deployed
    sweep's steps share. Each returns a RegionPosture slice holding that page's facts alone (its calls, its unread);
    `calls` counts them all. Use it as a context manager: its reads run on a pool it shuts down on exit.

    `clients` is called on the thread that calls `images` only (sources in other regions); `settings` and
    `snapshots` use the region's client, made here, and may run on other threads."""

    def __init__(
        self,
        clients: ClientFactory,
        account: str,
        region: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        page_size: int = PAGE_SIZE,
        source_cache: SourceCache | None = None,
    ) -> None:
        if not is_region(region):
            raise RegionFailed(account, region, "ec2", f"{region!r} is not an AWS region", Counter())
        self.account = account
        self.region = region
        self.page_size = page_size
        self.ledger = _Ledger()
        self._clients = clients
        self._cache: SourceCache = source_cache if source_cache is not None else {}
        try:
            self._client = clients("ec2", region)
        except LookupUnavailable as exc:  # organization mode: the member role could not be assumed
            raise RegionFailed(account, region, "sts:AssumeRole", str(exc), Counter()) from exc
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=f"sweep-{region}")

    def __enter__(self) -> RegionPages:
        return self

    def __exit__(self, *_: object) -> None:
        # after a failure, the reads not yet started are dropped and those under way finish: no thread outlives
        # the collection
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def calls(self) -> Counter[str]:
        return Counter(self.ledger.calls)

    def _here(self) -> _Region:
        return _Region(self.account, self.region, self._client, _Ledger(self.ledger), self.page_size)

    def settings(self) -> RegionPosture:
        """The account's guardrails in the region and its running paravirtual instances: the only slice whose
        `settings_read` is True."""
        here = self._here()
        submit: Callable[..., Future[Any]] = self._pool.submit
        listed = submit(here.paravirtual_instances)
        states = {field: submit(here.setting, operation, key) for field, operation, key in _SETTINGS}
        instances = listed.result()
        read = {field: future.result() for field, future in states.items()}
        settings = AccountSettings(
            image_block_public_access=read["image_block_public_access"][0],
            snapshot_block_public_access=read["snapshot_block_public_access"][0],
            allowed_images=read["allowed_images"][0],
            unread={field: reason for field, (_, reason) in read.items() if reason is not None},
        )
        return _slice(here, instances=tuple(instances), settings=settings)

    def images(self, token: str | None) -> tuple[RegionPosture, str | None]:
        """One DescribeImages page from `token`, its launch-permission reads and its copies' sources; and the token
        of the next page (None: the last)."""
        here = self._here()
        submit: Callable[..., Future[Any]] = self._pool.submit
        page, following = here.page(
            "DescribeImages", token, Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True
        )
        images = [_image(described, here.region) for described in page.get("Images", []) if described.get("ImageId")]
        reads = {
            image.image_id: submit(
                here.permissions, "DescribeImageAttribute", "ImageId", image.image_id, "launchPermission"
            )
            for image in images
            if not image.public
        }
        cache = self._cache
        for image in images:  # a source this region lists is read already
            if image.image_id not in cache:
                cache[image.image_id] = SourceImage(image.image_id, here.region, here.account, image.tags)
        failed_before = {
            i.source_image_id
            for i in images
            if i.source_image_id is not None and i.source_image_id in cache and cache[i.source_image_id] is None
        }
        for image_id in sorted(str(i) for i in failed_before):
            here.ledger.not_read(
                f"ec2:DescribeImages {image_id} (source of a copy)", "not readable in an earlier sweep"
            )
        source_reads: list[Future[dict[str, SourceImage | None]]] = []
        for source_region, image_ids in sources_to_read(images, cache).items():
            if not is_region(source_region):
                for image_id in image_ids:
                    cache[image_id] = None
                    here.ledger.not_read(f"ec2:DescribeImages {image_id}", f"{source_region!r} is not an AWS region")
                continue
            try:
                source_client = self._clients("ec2", source_region)
            except LookupUnavailable as exc:
                for image_id in image_ids:
                    cache[image_id] = None
                    here.ledger.not_read(
                        f"ec2:DescribeImages {image_id} in {source_region} (source of a copy)", str(exc)
                    )
                continue
            source_reads.append(submit(_read_sources, here.ledger, source_client, source_region, image_ids))
        for read in source_reads:
            cache.update(read.result())
        described = tuple(image._replace(launch_permissions=_done(reads.get(image.image_id))) for image in images)
        sources = {
            image.source_image_id: cache.get(image.source_image_id)
            for image in images
            if image.source_image_id is not None
        }
        return _slice(here, images=described, sources=sources), following

    def snapshots(self, token: str | None) -> tuple[RegionPosture, str | None]:
        """One DescribeSnapshots page from `token`, which of its snapshots are public (one call by their ids), and
        the create-volume-permission reads of the others; and the token of the next page (None: the last)."""
        here = self._here()
        page, following = here.page("DescribeSnapshots", token, OwnerIds=["self"])
        snapshots = [
            _snapshot(described, here.region) for described in page.get("Snapshots", []) if described.get("SnapshotId")
        ]
        public = here.public_among([s.snapshot_id for s in snapshots]) if snapshots else set()
        reads = {
            snapshot.snapshot_id: self._pool.submit(
                here.permissions,
                "DescribeSnapshotAttribute",
                "SnapshotId",
                snapshot.snapshot_id,
                "createVolumePermission",
            )
            for snapshot in snapshots
            if snapshot.snapshot_id not in public
        }
        described = tuple(
            snapshot._replace(
                public=snapshot.snapshot_id in public,
                create_volume_permissions=_done(reads.get(snapshot.snapshot_id)),
            )
            for snapshot in snapshots
        )
        return _slice(here, snapshots=described), following


def _slice(
    here: _Region,
    *,
    images: tuple[OwnedImage, ...] = (),
    snapshots: tuple[OwnedSnapshot, ...] = (),
    instances: tuple[ParavirtualInstance, ...] = (),
    settings: AccountSettings | None = None,
    sources: Mapping[str, SourceImage | None] | None = None,
) -> RegionPosture:
    return RegionPosture(
        account=here.account,
        region=here.region,
        images=images,
        snapshots=snapshots,
        instances=instances,
        settings=settings if settings is not None else NOT_READ,
        sources=dict(sources or {}),
        calls=Counter(here.ledger.calls),
        retries=Counter(here.ledger.retries),
        unread=tuple(sorted(here.ledger.unread)),
        settings_read=settings is not None,
    )


def merged(account: str, region: str, slices: Sequence[RegionPosture]) -> RegionPosture:
    """The slices of one account-region as one posture (each resource is in one slice; the settings in one)."""
    settings = next((s.settings for s in slices if s.settings_read), None)
    calls: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    sources: dict[str, SourceImage | None] = {}
    for part in slices:
        calls.update(part.calls)
        retries.update(part.retries)
        sources.update(part.sources)
    return RegionPosture(
        account=account,
        region=region,
        images=tuple(i for s in slices for i in s.images),
        snapshots=tuple(n for s in slices for n in s.snapshots),
        instances=tuple(i for s in slices for i in s.instances),
        settings=settings if settings is not None else NOT_READ,
        sources=sources,
        calls=calls,
        retries=retries,
        unread=tuple(sorted(u for s in slices for u in s.unread)),
        settings_read=settings is not None,
    )


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
    `aws.sweep_client_config(concurrency)`, so that each worker has a connection): every page of RegionPages in
    the deployed sweep's order (settings, image pages, snapshot pages), merged.

    `clients` is called on this thread only (a factory over boto3's default session is not thread-safe): regions
    collected at the same time need a factory each. `source_cache`: the sources already read by this process
    (another region's sweep), filled with those read here; one thread at a time. Raises RegionFailed when a listing
    fails."""
    with RegionPages(
        clients, account, region, concurrency=concurrency, page_size=page_size, source_cache=source_cache
    ) as pages:
        slices = [pages.settings(), *every_page(pages.images), *every_page(pages.snapshots)]
    return merged(account, region, slices)


def every_page(page: Callable[[str | None], tuple[RegionPosture, str | None]]) -> Iterator[RegionPosture]:
    """Each slice of one listing (RegionPages.images or .snapshots), from its first page to its last."""
    token: str | None = None
    while True:
        part, token = page(token)
        yield part
        if token is None:
            return


def _done(future: Future[_T] | None) -> _T | None:
    return None if future is None else future.result()
