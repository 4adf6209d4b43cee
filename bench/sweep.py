"""The posture sweep against Cloud Custodian's pull mode, on one emulated account (issue 10, "Efficient at scale").

An emulated account (moto's server on loopback, bench/sweep_server.py, every request counted at the server) is
seeded once with IMAGES AMIs and SNAPSHOTS snapshots, each drawn private, public, shared with a trusted account,
with an untrusted one, or with both (fixed SEED, WEIGHTS). Then, round by round, in alternating order, each tool
runs as a user runs it, a fresh process timed from its start to its exit, credentials and endpoint from the
environment (AWS_ENDPOINT_URL):

- ours: `amiguard sweep --region R --json --config FILE` (FILE: trustedAccounts = [TRUSTED_ACCOUNT]);
- Cloud Custodian: `custodian run --cache-period 0 -s TMP -r R policies.json` in its own environment, the pull-mode
  `aws.ami` and `aws.ebs-snapshot` policies with the `cross-account` filter, whitelist = [TRUSTED_ACCOUNT]
  (bench.custodian.SWEEP_POLICIES).

The rounds: first a few on plain moto (PLAIN_ROUNDS, information, not budgeted), then the budgeted ones with the
emulator waiting BUDGET_LATENCY_MS (bench.cost.CALL_MS, the project's assumed wait of one AWS call) before answering
each call, the network round trip moto on loopback lacks. Why the budget is judged with a round trip: plain moto
answers every call with about 3 ms of its own CPU in one process and there is no network wait, so ours' 8 threads
have nothing to overlap that Cloud Custodian's 2 or 3 do not; the emulator is the bottleneck of both tools, and the
ratio of wall times tends to the ratio of calls. `--sweep-latency-ms` sets another wait (0: the budgets judged on
plain moto, no information rounds).

Per run: the wall time, the API calls by operation (the server's count, reset before the run) and the exposed
resources it reports: ours, the resources of its EXPOSURE_RULES findings (JSON lines on stdout); Custodian's, the
resources in each policy's resources.json. Their ratio of wall times is judged like the cold starts (bench.stats:
the median of the per-round ratios and its 95% interval, more rounds while the interval straddles the limit).

What is seeded and how moto differs from EC2 (the counts in the report depend on it):
- RegisterImage makes each AMI with a root snapshot owned by the account, as EC2 does: the account owns
  IMAGES + SNAPSHOTS snapshots, and both tools list and read all of them. Those root snapshots are left private.
- moto's default AMIs (owned by Amazon's accounts) exist in every region; neither tool lists them (Owners=self),
  and the seeding checks that none is among the account's.
- DescribeImages and DescribeSnapshots ignore MaxResults / NextToken: each listing is one page here where EC2 would
  give ceil(n / 1,000) (one more DescribeSnapshots page for each tool at 2,000 snapshots).
- DescribeSnapshots ignores OwnerIds / RestorableByUserIds: filtered in the server by demo.ec2_gaps.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import cost, report, stats
from bench.answers import ACCOUNT, REGION, TRUSTED_ACCOUNT
from bench.custodian import SWEEP_POLICIES
from bench.sweep_server import READY_LINE

ROOT = Path(__file__).resolve().parents[1]
SEED = 10
IMAGES = 1000
SNAPSHOTS = 1000
UNTRUSTED_ACCOUNT = "444455556666"
EXPOSURES = ("private", "public", "trusted", "untrusted", "both")
"""both: shared with the trusted and the untrusted account."""
WEIGHTS = (80, 4, 8, 4, 4)
EXPOSED = frozenset({"public", "untrusted", "both"})
EXPOSURE_RULES = frozenset({"ami-public", "ami-shared-untrusted", "snapshot-public", "snapshot-shared-untrusted"})
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIABENCHSWEEP000000", "AWS_SECRET_ACCESS_KEY": "bench-sweep-secret"}
START_TIMEOUT_SECONDS = 60
RUN_TIMEOUT_SECONDS = 600
BUDGET_LATENCY_MS = cost.CALL_MS
"""The wait before the emulator answers each call in the budgeted rounds: the project's assumed wait of one AWS call
(the lowest of bench.cost's assumptions, so the least favourable to ours), assumed, not measured. moto on loopback
has no network round trip, and answers every call with about 3 ms of its own CPU in one process: without a wait the
emulator is the bottleneck of both tools, and ours' threads have nothing to overlap (docs/performance.md)."""
PLAIN_ROUNDS = 3
"""Paired rounds on plain moto (no added wait), for information: reported, not budgeted."""
_CALLS_SAID = re.compile(r"; (\d+) AWS call\(s\)")


# --- what is seeded (pure) --------------------------------------------------------------------------------------


def draw(count: int, rng: random.Random) -> list[str]:
    """The exposure of each of `count` resources, drawn with WEIGHTS."""
    return rng.choices(EXPOSURES, WEIGHTS, k=count)


def tally(exposures: Iterable[str]) -> dict[str, int]:
    """{exposure: count} in EXPOSURES' order, zeros included."""
    counted = Counter(exposures)
    return {exposure: counted[exposure] for exposure in EXPOSURES}


def grants(exposure: str) -> tuple[bool, list[str]]:
    """(public, account ids) a resource of `exposure` is shared with."""
    accounts = {
        "private": [],
        "public": [],
        "trusted": [TRUSTED_ACCOUNT],
        "untrusted": [UNTRUSTED_ACCOUNT],
        "both": [TRUSTED_ACCOUNT, UNTRUSTED_ACCOUNT],
    }[exposure]
    return exposure == "public", accounts


def exposed(resources: Mapping[str, str]) -> set[str]:
    """The ids, of {id: exposure}, that are public or shared with an untrusted account: what both tools must find."""
    return {resource for resource, exposure in resources.items() if exposure in EXPOSED}


# --- what each tool reports (pure) ------------------------------------------------------------------------------


def ours_exposed(stdout: str) -> set[str]:
    """The resources of ours' exposure findings, from `amiguard sweep --json`'s JSON lines."""
    found: set[str] = set()
    for line in stdout.splitlines():
        if not line.strip():
            continue
        document = json.loads(line)
        if document.get("rule_id") in EXPOSURE_RULES:
            found.update(str(resource["id"]) for resource in document.get("resources", []))
    return found


def custodian_exposed(output_dir: Path, policies: Sequence[Mapping[str, Any]] = SWEEP_POLICIES) -> set[str]:
    """The resources in each policy's resources.json (ImageId for aws.ami, SnapshotId for aws.ebs-snapshot); a policy
    without one did not run, which is an error."""
    found: set[str] = set()
    for policy in policies:
        path = output_dir / str(policy["name"]) / "resources.json"
        if not path.is_file():
            raise RuntimeError(f"Cloud Custodian wrote no {path.relative_to(output_dir)}: the policy did not run")
        for item in json.loads(path.read_text(encoding="utf-8")):
            found.add(str(item.get("ImageId") or item["SnapshotId"]))
    return found


def difference(ours: Iterable[str], theirs: Iterable[str]) -> dict[str, list[str]]:
    """What one side reports and the other does not; both lists empty when the verdicts are identical."""
    mine, other = set(ours), set(theirs)
    return {"only_ours": sorted(mine - other), "only_theirs": sorted(other - mine)}


def calls_said(stderr: str) -> int | None:
    """The AWS calls ours counted itself (its summary line), to set beside the server's count."""
    found = _CALLS_SAID.findall(stderr)
    return int(found[-1]) if found else None


# --- the emulated account ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """bench.sweep_server in a child process (the account: ACCOUNT), on a free loopback port."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = _free_port()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8",
            "MOTO_ACCOUNT_ID": ACCOUNT,
            "PYTHONUNBUFFERED": "1",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.sweep_server", "--port", str(self.port)],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if READY_LINE in self.log.read_text(encoding="utf-8", errors="replace"):
                self.admin("health")
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the sweep emulator did not start:\n{self.log.read_text(errors='replace')[-4000:]}")

    def admin(self, route: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.endpoint}/_bench/{route}", method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system, from /proc; 0 where there is no /proc)."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def calls(self) -> dict[str, int]:
        return {str(name): int(n) for name, n in self.admin("calls").items()}

    def reset(self) -> None:
        self.admin("reset", "POST")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Seeded:
    images: dict[str, str]
    """AMI id -> exposure."""
    snapshots: dict[str, str]
    """Snapshot id -> exposure (the standalone ones)."""
    root_snapshots: list[str]
    """The snapshots EC2 (and moto) made for the AMIs: owned, private."""
    seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


def seed(server: Server, workers: int = 4) -> Seeded:
    """IMAGES AMIs and SNAPSHOTS snapshots, their exposures drawn from SEED, made through the EC2 API."""
    import boto3
    from botocore.config import Config

    began = time.perf_counter()
    rng = random.Random(SEED)
    image_exposures, snapshot_exposures = draw(IMAGES, rng), draw(SNAPSHOTS, rng)
    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=server.endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(max_pool_connections=workers * 2, retries={"mode": "standard", "max_attempts": 3}),
    )

    def image(n: int) -> str:
        image_id = str(ec2.register_image(Name=f"bench-sweep-{n:04d}", RootDeviceName="/dev/xvda")["ImageId"])
        public, accounts = grants(image_exposures[n])
        added = ([{"Group": "all"}] if public else []) + [{"UserId": account} for account in accounts]
        if added:
            ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": added})
        return image_id

    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]

    def snapshot(n: int) -> str:
        snapshot_id = str(ec2.create_snapshot(VolumeId=volume, Description=f"bench-sweep-{n:04d}")["SnapshotId"])
        public, accounts = grants(snapshot_exposures[n])
        # moto keeps create-volume permissions only from this form (OperationType with GroupNames / UserIds)
        if public:
            ec2.modify_snapshot_attribute(
                SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
            )
        if accounts:
            ec2.modify_snapshot_attribute(
                SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=accounts
            )
        return snapshot_id

    with ThreadPoolExecutor(workers) as pool:
        image_ids = list(pool.map(image, range(IMAGES)))
        snapshot_ids = list(pool.map(snapshot, range(SNAPSHOTS)))
    ec2.delete_volume(VolumeId=volume)
    seeded = Seeded(
        images=dict(zip(image_ids, image_exposures, strict=True)),
        snapshots=dict(zip(snapshot_ids, snapshot_exposures, strict=True)),
        root_snapshots=[],
    )
    check_seeded(ec2, seeded)
    seeded.seconds = round(time.perf_counter() - began, 1)
    seeded.calls = server.calls()
    return seeded


def check_seeded(ec2: Any, seeded: Seeded) -> None:
    """The account holds what was seeded and nothing else: its AMIs are exactly ours (moto's default AMIs, owned by
    Amazon, are listed in the region but not as the account's), its snapshots ours plus one root snapshot per AMI,
    and the permissions read back as drawn."""
    owned_images = {image["ImageId"] for image in ec2.describe_images(Owners=["self"])["Images"]}
    if owned_images != set(seeded.images):
        raise RuntimeError(f"the account owns {len(owned_images)} AMIs, {len(seeded.images)} seeded")
    every_image = ec2.describe_images()["Images"]
    if not any(image["OwnerId"] != ACCOUNT for image in every_image):
        raise RuntimeError("moto's default AMIs are missing: the seeded account is not moto's usual one")
    owned = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    roots = sorted(s["SnapshotId"] for s in owned if s["SnapshotId"] not in seeded.snapshots)
    if len(owned) != len(seeded.snapshots) + len(seeded.images) or len(roots) != len(seeded.images):
        raise RuntimeError(f"the account owns {len(owned)} snapshots: expected {len(seeded.snapshots)} + one per AMI")
    seeded.root_snapshots = roots
    public = {
        s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"], RestorableByUserIds=["all"])["Snapshots"]
    }
    drawn_public = {s for s, exposure in seeded.snapshots.items() if exposure == "public"}
    if public != drawn_public:
        raise RuntimeError(f"{len(public)} snapshots are public, {len(drawn_public)} drawn public")
    for image_id, exposure in list(seeded.images.items())[:50]:
        permissions = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
        public_now, accounts = grants(exposure)
        read = ({"all"} if public_now else set()) | set(accounts)
        if {p.get("Group") or p.get("UserId") for p in permissions} != read:
            raise RuntimeError(f"{image_id}: launch permissions {permissions}, drawn {exposure}")


# --- the two tools ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One tool's run: wall ms from its process's start to its exit, the server's count of its calls, what it found."""

    ms: float
    calls: dict[str, int]
    exposed: set[str]
    calls_said: int | None = None
    """Ours only: the calls its own summary line counts."""
    cpu_ms: float = 0.0
    """The tool's process's CPU time (user + system, its children's included)."""
    server_cpu_ms: float = 0.0
    """The emulator's CPU time while the tool ran: what answering its calls cost."""


@dataclass
class Tool:
    label: str
    command: list[str]
    environment: dict[str, str]
    output_dir: Path | None = None
    runs: list[Run] = field(default_factory=list)

    def run(self, server: Server) -> Run:
        if self.output_dir is not None:
            shutil.rmtree(self.output_dir, ignore_errors=True)
        server.reset()
        server_cpu = server.cpu_seconds()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        completed = subprocess.run(
            self.command,
            env=self.environment,
            cwd=self.environment["HOME"],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        ms = (time.perf_counter() - began) * 1000
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_ms = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) * 1000
        server_cpu_ms = (server.cpu_seconds() - server_cpu) * 1000
        calls = server.calls()
        if completed.returncode != 0:
            raise RuntimeError(f"{self.label} exited {completed.returncode}:\n{completed.stderr[-4000:]}")
        if self.output_dir is None:
            found, said = ours_exposed(completed.stdout), calls_said(completed.stderr)
        else:
            found, said = custodian_exposed(self.output_dir), None
        return Run(round(ms, 1), calls, found, said, round(cpu_ms, 1), round(server_cpu_ms, 1))


def tools(work: Path, server: Server, custodian_python: str) -> tuple[Tool, Tool]:
    """Ours and Cloud Custodian, each with a HOME of its own (no AWS profile, no cache from a previous run)."""
    common = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
    }
    config = work / "amiguard-config.json"
    config.write_text(json.dumps({"trustedAccounts": [TRUSTED_ACCOUNT]}), encoding="utf-8")
    policies = work / "custodian-policies.json"
    policies.write_text(json.dumps({"policies": SWEEP_POLICIES}, indent=2), encoding="utf-8")
    homes = {name: work / f"home-{name}" for name in ("ours", "custodian")}
    for home in homes.values():
        home.mkdir()
    amiguard = Path(sys.executable).parent / "amiguard"
    custodian = Path(os.path.abspath(custodian_python)).parent / "custodian"
    for script in (amiguard, custodian):
        if not script.is_file():
            raise RuntimeError(f"{script}: not installed (make setup, make bench build both environments)")
    ours = Tool(
        "ours",
        [str(amiguard), "sweep", "--region", REGION, "--json", "--config", str(config)],
        {**common, "HOME": str(homes["ours"])},
    )
    output = work / "custodian-output"
    theirs = Tool(
        "custodian",
        [str(custodian), "run", "--cache-period", "0", "-s", str(output), "-r", REGION, str(policies)],
        {**common, "HOME": str(homes["custodian"])},
        output_dir=output,
    )
    return ours, theirs


@dataclass(frozen=True)
class Rounds:
    """Paired rounds: `first` at first, `more` at a time while the wall-time ratio is undecided, up to `most`."""

    first: int = 5
    more: int = 5
    most: int = 15

    def next_batch(self, done: int) -> int:
        return min(self.first if done == 0 else self.more, self.most - done)


def budget_latency(latency_ms: float | None) -> tuple[float, str]:
    """The budgeted rounds' wait per call and where it comes from: BUDGET_LATENCY_MS (bench.cost.CALL_MS, assumed)
    unless `--sweep-latency-ms` said otherwise (0: plain moto)."""
    if latency_ms is None:
        return BUDGET_LATENCY_MS, "bench.cost.CALL_MS (assumed, not measured)"
    return float(latency_ms), "--sweep-latency-ms"


def paired_rounds(server: Server, ours: Tool, theirs: Tool, count: int, label: str) -> list[list[str]]:
    """`count` more paired rounds, the order alternating from the rounds `ours` already has; the order of each."""
    order: list[list[str]] = []
    for _ in range(count):
        done = len(ours.runs)
        pair = (ours, theirs) if done % 2 == 0 else (theirs, ours)
        for tool in pair:
            tool.runs.append(tool.run(server))
        order.append([tool.label for tool in pair])
        print(
            f"sweep {label} round {done + 1}: ours {ours.runs[-1].ms:.0f} ms, {sum(ours.runs[-1].calls.values())} "
            f"calls; Cloud Custodian {theirs.runs[-1].ms:.0f} ms, {sum(theirs.runs[-1].calls.values())} calls",
            flush=True,
        )
    return order


def measure(
    custodian_python: str,
    plan: Rounds,
    loads: list[float],
    latency_ms: float | None = None,
    plain_rounds: int = PLAIN_ROUNDS,
) -> dict[str, Any]:
    """Seed the account, run both tools once unmeasured (what a first run writes, bytecode, stays out of the
    figures), then:

    - information: `plain_rounds` paired rounds on plain moto (no added wait), not budgeted;
    - budgeted: paired rounds with the emulator waiting `latency_ms` before answering each call of the tools (not
      the seeding's), the network round trip moto lacks: None is BUDGET_LATENCY_MS (bench.cost.CALL_MS, assumed),
      0 judges the budgets on plain moto (and leaves out the information rounds, which would be the same); in
      alternating order until the wall-time ratio is decided or `plan.most` rounds."""
    latency, latency_from = budget_latency(latency_ms)
    own_loads = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="ami-guard-bench-sweep-") as temp:
        work = Path(temp)
        server = Server(work / "emulator.log")
        server.start()
        try:
            print(f"sweep: seeding {IMAGES} AMIs and {SNAPSHOTS} snapshots (seed {SEED})", flush=True)
            seeded = seed(server)
            print(f"sweep: seeded in {seeded.seconds} s", flush=True)
            ours, theirs = tools(work, server, custodian_python)
            for tool in (ours, theirs):
                tool.run(server)
            information: dict[str, Any] | None = None
            if latency and plain_rounds:
                plain_ours, plain_theirs = replace(ours, runs=[]), replace(theirs, runs=[])
                plain_order = paired_rounds(server, plain_ours, plain_theirs, plain_rounds, "plain moto (information)")
                own_loads.append(round(os.getloadavg()[0], 2))
                information = {
                    "latency_ms": 0.0,
                    "order": plain_order,
                    "ours": side(plain_ours),
                    "custodian": side(plain_theirs),
                }
            server.admin(f"latency?ms={latency}", "POST")
            label = f"budgeted, {latency:g} ms a call" if latency else "budgeted, plain moto"
            order: list[list[str]] = []
            while True:
                order += paired_rounds(server, ours, theirs, plan.next_batch(len(ours.runs)), label)
                own_loads.append(round(os.getloadavg()[0], 2))
                ratio = stats.summary(
                    stats.ratios([r.ms for r in ours.runs], [r.ms for r in theirs.runs]), report.SWEEP_WALL_TIME_RATIO
                )
                if ratio["verdict"] != "undecided" or len(ours.runs) >= plan.most:
                    break
                print(f"sweep: {len(ours.runs)} rounds, wall-time ratio undecided ({ratio['interval']}): sampling more")
        finally:
            server.stop()
    loads.extend(own_loads)
    return {
        **results(seeded, ours, theirs, order, plan),
        "load_average": own_loads,
        "latency_ms": latency,
        "latency_from": latency_from,
        "information": information,
    }


def side(tool: Tool) -> dict[str, Any]:
    """One tool's runs as results.json's raw figures hold them."""
    return {
        "ms": [run.ms for run in tool.runs],
        "calls": [run.calls for run in tool.runs],
        "exposed": [sorted(run.exposed) for run in tool.runs],
        "calls_said": [run.calls_said for run in tool.runs],
        "cpu_ms": [run.cpu_ms for run in tool.runs],
        "server_cpu_ms": [run.server_cpu_ms for run in tool.runs],
        "command": [Path(tool.command[0]).name, *tool.command[1:2]],
    }


def results(seeded: Seeded, ours: Tool, theirs: Tool, order: list[list[str]], plan: Rounds) -> dict[str, Any]:
    """The raw figures bench.report.conclude reads (results["sweep"])."""
    truth = exposed(seeded.images) | exposed(seeded.snapshots)
    return {
        "seed": SEED,
        "weights": dict(zip(EXPOSURES, WEIGHTS, strict=True)),
        "account": ACCOUNT,
        "region": REGION,
        "trusted_accounts": [TRUSTED_ACCOUNT],
        "untrusted_account": UNTRUSTED_ACCOUNT,
        "seeded": {
            "images": tally(seeded.images.values()),
            "snapshots": tally(seeded.snapshots.values()),
            "image_root_snapshots": len(seeded.root_snapshots),
            "exposed": sorted(truth),
            "seconds": seeded.seconds,
            "calls": seeded.calls,
        },
        "rounds": {"first": plan.first, "more": plan.more, "most": plan.most, "order": order},
        "ours": side(ours),
        "custodian": side(theirs),
    }
