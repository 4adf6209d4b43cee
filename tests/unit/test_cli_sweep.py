"""`amiguard sweep`: an emulated account (moto, in process; tests/functions/sweep_account.py fills moto's gaps) swept
from the command line: exactly what is exposed now, every run; exit codes; the terminal display, AWS values escaped."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from ami_guard import cli
from tests import records as r
from tests.functions.sweep_account import EmulatedEc2, emulated_account

HOME, FAR = r.REGION, r.OTHER_REGION  # eu-west-1, us-east-1
ACCOUNT = r.ACCOUNT
TRUSTED, UNTRUSTED = "222233334444", "999988887777"
# characters an XML response can carry that a terminal acts on (C1 CSI, NEL, bidi override, line separator), rich
# markup and an emoji code
HOSTILE = "ops\u202e\x9b2J\x85[link=https://evil.example]click[/link]\u2028:skull: here"


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatedEc2]:
    monkeypatch.chdir(tmp_path)  # no cdk.json: the policy is the --config file's
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    with emulated_account(monkeypatch) as account:
        yield account


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "guard.json"
    path.write_text(json.dumps({"trustedAccounts": [TRUSTED]}))
    return str(path)


class Seeded:
    """HOME holds one resource per standing exposure and one of each that is fine; FAR holds the tagged source of
    HOME's copies. The account-level settings (EmulatedEc2's defaults) are the same in both regions: image block
    public access on, snapshot block public access off ("unblocked"), Allowed AMIs in audit mode."""

    def __init__(self, ec2: EmulatedEc2) -> None:
        self.public = ec2.image("public", launch_permissions=[{"Group": "all"}])
        self.trusted = ec2.image("shared-trusted", launch_permissions=[{"UserId": TRUSTED}])
        self.untrusted = ec2.image("shared-untrusted", launch_permissions=[{"UserId": UNTRUSTED}])
        self.paravirtual = ec2.image("paravirtual", virtualization_type="paravirtual")
        self.instance_store = ec2.image("instance-store", root_device_type="instance-store")
        self.golden = ec2.image("golden", FAR, tags={"team": HOSTILE})
        self.untagged_copy = ec2.copy(self.golden, FAR, name="copy-untagged")
        self.tagged_copy = ec2.copy(self.golden, FAR, name="copy-tagged")
        ec2.ec2().create_tags(Resources=[self.tagged_copy], Tags=[{"Key": "team", "Value": HOSTILE}])
        self.public_snapshot = ec2.snapshot(groups=["all"])
        self.trusted_snapshot = ec2.snapshot(user_ids=[TRUSTED])
        self.untrusted_snapshot = ec2.snapshot(user_ids=[UNTRUSTED])
        self.pv_running = ec2.instance(self.paravirtual)
        self.hvm_running = ec2.instance(self.trusted, instance_type="m5.large")


def expected_home(s: Seeded) -> list[tuple[str, str, str]]:
    """(region, rule id, first resource id), in the order the sweep prints them (by rule, then resource)."""
    return [
        (HOME, "allowed-images-audit-only", "allowed-images"),
        (HOME, "ami-public", s.public),
        (HOME, "ami-shared-untrusted", s.untrusted),
        (HOME, "copy-tags-missing", s.untagged_copy),
        (HOME, "image-instance-store", s.instance_store),
        (HOME, "image-paravirtual", s.paravirtual),
        (HOME, "instance-paravirtual", s.pv_running),
        (HOME, "snapshot-block-public-access-disabled", "snapshot-block-public-access"),
        (HOME, "snapshot-public", s.public_snapshot),
        (HOME, "snapshot-shared-untrusted", s.untrusted_snapshot),
    ]


EXPECTED_FAR = [
    (FAR, "allowed-images-audit-only", "allowed-images"),
    (FAR, "snapshot-block-public-access-disabled", "snapshot-block-public-access"),
]
RUN_FIELDS = ("event_id", "event")
"""What differs between two runs: the run's id and the time it read the region."""


def sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = cli.main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def found(documents: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(d["region"], d["rule_id"], d["resources"][0]["id"]) for d in documents]


def refuse_launch_permissions_of(image_id: str, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    """EC2 refuses to read one AMI's launch permissions."""
    read = AmisResponse.describe_image_attribute

    def refusing(self: Any) -> Any:
        if self._get_param("ImageId") == image_id:
            raise EC2ClientError("AuthFailure", message)
        return read(self)

    monkeypatch.setattr(AmisResponse, "describe_image_attribute", refusing)


def refuse_snapshot_listing_in(region: str, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    """EC2 refuses DescribeSnapshots in `region` (as it does a role without ec2:DescribeSnapshots there)."""
    listing = ElasticBlockStore.describe_snapshots

    def refusing(self: Any) -> Any:
        if self.region == region:
            raise EC2ClientError("UnauthorizedOperation", message)
        return listing(self)

    monkeypatch.setattr(ElasticBlockStore, "describe_snapshots", refusing)


def test_a_sweep_prints_exactly_what_is_exposed_now_every_time_it_runs(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account with public, shared (trusted and not), paravirtual, instance-store and untagged-copy resources
    seeded = Seeded(emulated)

    # When it is swept twice in a row, off a terminal
    first = sweep(capsys, "--region", HOME, "--region", FAR, "--config", config)
    second = sweep(capsys, "--region", HOME, "--region", FAR, "--config", config)

    # Then both runs exit 0 and print exactly the exposures, region by region in the order given
    for code, documents, err in (first, second):
        assert code == 0, err
        assert found(documents) == expected_home(seeded) + EXPECTED_FAR
        # and one summary line on stderr: 9 calls in FAR, 23 in HOME (collect.py's formula), 1 to sts
        assert err.splitlines() == [
            f"amiguard: account {ACCOUNT}: 2 region(s) swept; 12 finding(s) at or above INFO (2 CRITICAL, "
            "4 HIGH, 4 MEDIUM, 2 LOW); 33 AWS call(s)"
        ]
    # And the two runs print the same documents but for the run they belong to
    strip = [[{k: v for k, v in d.items() if k not in RUN_FIELDS} for d in run[1]] for run in (first, second)]
    assert strip[0] == strip[1]
    assert {d["event_id"] for d in first[1]} != {d["event_id"] for d in second[1]}


def test_a_source_one_region_listed_is_not_read_again_for_the_next(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given HOME's copies have their source in FAR, and FAR is swept first
    seeded = Seeded(emulated)
    code, documents, err = sweep(capsys, "--region", FAR, "--region", HOME, "--config", config)
    # Then the same findings, with one call fewer than HOME first: FAR's listing already read the source
    assert code == 0
    assert found(documents) == EXPECTED_FAR + expected_home(seeded)
    assert err.endswith("; 32 AWS call(s)\n")


def test_each_line_is_a_sweep_alert_document(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = Seeded(emulated)
    code, documents, _ = sweep(capsys, "--region", HOME, "--config", config)
    assert code == 0
    assert len(documents) == 10
    for document in documents:
        assert document["schema"] == "ami-guard/alert/v2"
        assert (document["origin"], document["status"]) == ("sweep", "open")
        assert (document["account"], document["region"]) == (ACCOUNT, HOME)
        assert document["event"]["source"] == "ami-guard.sweep"
        assert document["event"]["name"] == "PostureSweep"
        assert document["event_id"] == document["event"]["id"]
        assert document["event_id"].startswith("amiguard-cli-")
        assert document["event"]["time"].endswith("Z") and len(document["event"]["time"]) == 20
    assert {d["event_id"] for d in documents} == {documents[0]["event_id"]}, "one run id per run"
    (copy,) = [d for d in documents if d["rule_id"] == "copy-tags-missing"]
    assert copy["evidence"]["lostTags"] == {"team": HOSTILE}
    assert copy["evidence"]["sourceImageId"] == seeded.golden


def test_the_default_region_is_the_aws_configuration_s(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = Seeded(emulated)
    code, documents, _ = sweep(capsys, "--config", config)  # AWS_DEFAULT_REGION=eu-west-1
    assert code == 0
    assert found(documents) == expected_home(seeded)


def test_min_severity_is_read_from_the_config_as_evaluate_reads_it(
    emulated: EmulatedEc2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = Seeded(emulated)
    (tmp_path / "cdk.json").write_text(
        json.dumps({"context": {"amiGuard": {"minSeverity": "CRITICAL", "trustedAccounts": [TRUSTED]}}})
    )
    code, documents, err = sweep(capsys, "--region", HOME)
    assert code == 0
    assert found(documents) == [(HOME, "ami-public", seeded.public), (HOME, "snapshot-public", seeded.public_snapshot)]
    assert "2 finding(s) at or above CRITICAL (2 CRITICAL)" in err


def test_a_region_whose_listing_fails_exits_1_and_the_others_are_still_reported(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EC2 refuses to list snapshots in the first region asked
    seeded = Seeded(emulated)
    refuse_snapshot_listing_in(FAR, monkeypatch, "You are not authorized to perform this operation.")

    # When both regions are swept
    code, documents, err = sweep(capsys, "--region", FAR, "--region", HOME, "--config", config)

    # Then it exits 1, names the region and the call, and still reports the other region whole
    assert code == 1
    assert found(documents) == expected_home(seeded)
    assert err.splitlines()[0] == (
        f"amiguard: {ACCOUNT} {FAR}: not swept: ec2:DescribeSnapshots failed: UnauthorizedOperation: "
        "You are not authorized to perform this operation."
    )
    assert err.splitlines()[1].startswith(f"amiguard: account {ACCOUNT}: 1 region(s) swept, 1 failed ({FAR}); 10 ")


def test_what_could_not_be_read_is_counted_not_decided_and_not_guessed(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EC2 refuses to read the shares of the AMI shared outside the trust set, and a copy whose source is gone
    seeded = Seeded(emulated)
    refuse_launch_permissions_of(seeded.untrusted, monkeypatch, "Not authorized for images: [ami-x]")
    gone = emulated.image("gone", FAR)
    copy_of_gone = emulated.copy(gone, FAR, name="copy-of-gone")
    emulated.ec2(FAR).deregister_image(ImageId=gone)

    # When the region is swept
    code, documents, err = sweep(capsys, "--region", HOME, "--config", config)

    # Then it ran (exit 0), the AMI it could not read is not reported, and both checks are counted as open
    assert code == 0
    assert found(documents) == [f for f in expected_home(seeded) if f[2] != seeded.untrusted]
    assert copy_of_gone not in {d["resources"][0]["id"] for d in documents}
    assert err.splitlines() == [
        f"amiguard: account {ACCOUNT}: 1 region(s) swept; 9 finding(s) at or above INFO (2 CRITICAL, 2 HIGH, "
        "3 MEDIUM, 2 LOW); 2 check(s) not decided (1 ami-shared-untrusted, 1 copy-tags-missing); 2 item(s) not "
        "read; 26 AWS call(s)"
    ]


def test_missing_credentials_exit_1_saying_how_to_get_some(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no credentials anywhere in the chain (no moto: nothing may leave the machine, and nothing does)
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    code, documents, err = sweep(capsys, "--region", HOME)
    assert code == 1 and documents == []
    assert err == (
        "amiguard: sts:GetCallerIdentity failed: Unable to locate credentials (set AWS_PROFILE or --profile, "
        "run `aws configure`, or `aws sso login`)\n"
    )


@pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\) with code ExpiredToken:UserWarning")
def test_expired_credentials_exit_1_before_any_region_is_read(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    def expired(self: Any) -> Any:
        raise STSClientError("ExpiredToken", "The security token included in the request is expired")

    monkeypatch.setattr(TokenResponse, "get_caller_identity", expired)
    Seeded(emulated)
    code, documents, err = sweep(capsys, "--region", HOME, "--config", config)
    assert code == 1 and documents == []
    assert err == (
        "amiguard: sts:GetCallerIdentity failed: An error occurred (ExpiredToken) when calling the GetCallerIdentity "
        "operation: The security token included in the request is expired (the credentials have expired: renew "
        "them, e.g. `aws sso login`)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--region", "eu-west-1", "--region", "mars-1"], "amiguard: --region: 'mars-1' is not an AWS region name"),
        (["--region", "eu-west-1\x1b[2J"], "amiguard: --region: 'eu-west-1\\x1b[2J' is not an AWS region name"),
        (["--config", "absent.json"], "amiguard: configuration: absent.json: no such file"),
        (["--profile", "nobody"], "amiguard: AWS configuration: The config profile (nobody) could not be found"),
    ],
)
def test_unreadable_input_or_configuration_exits_2_before_any_call(
    emulated: EmulatedEc2,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    Seeded(emulated)
    code, documents, err = sweep(capsys, *argv)
    assert code == 2 and documents == []
    assert err.startswith(message) and len(err.splitlines()) == 1


def test_the_installed_script_has_the_sweep_command(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "amiguard"
    done = subprocess.run(
        [str(script), "sweep", "--region", "mars-1"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "amiguard: --region: 'mars-1' is not an AWS region name (like eu-west-1)\n"


def test_a_config_that_does_not_parse_exits_2_naming_the_key(
    emulated: EmulatedEc2, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "guard.json"
    bad.write_text(json.dumps({"trustedAccounts": ["123"]}))
    code, documents, err = sweep(capsys, "--region", HOME, "--config", str(bad))
    assert code == 2 and documents == []
    assert "trustedAccounts" in err and "'123'" in err


def test_no_region_anywhere_exits_2(
    emulated: EmulatedEc2, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    code, documents, err = sweep(capsys)
    assert code == 2 and documents == []
    assert err.startswith("amiguard: no region: pass --region R")


def _on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr; stdout stays a pipe


def test_on_a_terminal_a_progress_display_and_tables_with_aws_values_escaped(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a tag value and AWS error messages carrying terminal controls, rich markup and an emoji code
    seeded = Seeded(emulated)
    refuse_launch_permissions_of(seeded.untrusted, monkeypatch, HOSTILE)
    refuse_snapshot_listing_in(FAR, monkeypatch, HOSTILE)
    _on_a_terminal(monkeypatch)

    # When a person sweeps at a terminal
    code, documents, err = sweep(capsys, "--region", HOME, "--region", FAR, "--config", config)

    # Then the findings are on stdout as ever, the tag value exact in its JSON
    assert code == 1
    assert found(documents) == [f for f in expected_home(seeded) if f[2] != seeded.untrusted]
    (copy,) = [d for d in documents if d["rule_id"] == "copy-tags-missing"]
    assert copy["evidence"]["lostTags"] == {"team": HOSTILE}
    # And stderr is rich's display (styled): a row per account-region, the tables, what was not decided or read
    assert "\x1b[" in err, "rendered for a terminal"
    plain = _without_styles(err)
    # the last redraw of HOME's row: the share and setting reads its listings announced (6 AMIs not public, 9
    # snapshots not public, 3 settings), all answered (one refused), and every call it made
    rows = [" ".join(line.split()) for line in plain.splitlines() if f"{ACCOUNT} {HOME} " in line]
    assert rows[-1].split("━")[-1].strip().startswith("18/18 23 calls done: 9 finding(s)"), rows[-1]
    assert any(f"{ACCOUNT} {FAR}" in line and "failed" in line for line in plain.splitlines())
    assert "Findings by rule" in plain and f"Account {ACCOUNT}" in plain
    assert _row(plain, "ami-public") == ["ami-public", "CRITICAL", "1", "0"]
    assert _row(plain, "ami-shared-untrusted") == ["ami-shared-untrusted", "HIGH", "0", "1"]
    assert _row(plain, "instance-paravirtual") == ["instance-paravirtual", "LOW", "1", "0"]
    assert _row(plain, HOME) == [HOME, "swept", "9", "1", "1", "23"]
    *far, far_calls = _row(plain, FAR)
    assert far == [FAR, "failed", "-", "-", "-"] and 1 <= int(far_calls) <= 9  # as many as were made before it failed
    # And every AWS value is escaped: no control reaches the terminal, no markup or emoji code is obeyed
    escaped = "ops\\u202e\\x9b2J\\x85[link=https://evil.example]click[/link]\\u2028:skull: here"
    lines = plain.splitlines()
    failure = f"amiguard: {ACCOUNT} {FAR}: not swept: ec2:DescribeSnapshots failed: UnauthorizedOperation: {escaped}"
    assert any(line.endswith(failure) for line in lines)  # printed above the live rows, after their last redraw
    assert lines[lines.index("Not decided:") + 1] == (
        f"  ami-shared-untrusted: launch permissions of {seeded.untrusted} not read"
    )
    assert lines[lines.index("Not read:") + 1] == (
        f"  ec2:DescribeImageAttribute {seeded.untrusted} launchPermission: AuthFailure: {escaped}"
    )
    for raw in ("\u202e", "\x9b", "\x85", "\u2028", "\u2620", "\x1b]8;"):
        assert raw not in err
    assert lines[-1].startswith(f"amiguard: account {ACCOUNT}: 1 region(s) swept, 1 failed ({FAR})")


class _Screen(io.StringIO):
    """One terminal that both stdout and stderr write to."""

    def isatty(self) -> bool:
        return True


def test_when_stdout_is_the_same_terminal_the_json_lines_wait_for_the_display_to_end(
    emulated: EmulatedEc2, config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given stdout and stderr are one terminal
    seeded = Seeded(emulated)
    screen = _Screen()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)

    # When a person sweeps
    code = cli.main(["sweep", "--region", HOME, "--region", FAR, "--config", config])

    # Then the progress rows end, then come the JSON lines, then the tables: no line is drawn over
    assert code == 0
    text = _without_styles(screen.getvalue())
    first, last, tables = text.index('{"schema"'), text.rindex('{"schema"'), text.index("Findings by rule")
    last_row = max(m.start() for m in re.finditer(r"[0-9]+ calls +(waiting|listing|reading shares|done)", text))
    assert last_row < first < last < tables
    lines = [json.loads(line) for line in text[first:tables].splitlines() if line.strip()]
    assert found(lines) == expected_home(seeded) + EXPECTED_FAR


def test_json_on_a_terminal_prints_no_display_and_needs_no_rich(
    emulated: EmulatedEc2, config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a terminal, and no rich to import (the JSON path must not need it)
    seeded = Seeded(emulated)
    _on_a_terminal(monkeypatch)
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)  # type: ignore[arg-type]
    # When a sweep is asked for --json
    code, documents, err = sweep(capsys, "--region", HOME, "--config", config, "--json")
    # Then only the JSON lines and one summary line, unstyled
    assert code == 0
    assert found(documents) == expected_home(seeded)
    assert "\x1b" not in err and len(err.splitlines()) == 1 and err.startswith("amiguard: account ")


def _without_styles(text: str) -> str:
    """rich's output without its own control sequences (SGR styles, cursor moves, line erases)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def _row(plain: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first`."""
    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in plain.splitlines()]
    matching = [cells for cells in rows if cells[0] == first]
    assert len(matching) == 1, f"not one table row for {first!r} in:\n{plain}"
    return matching[0]
