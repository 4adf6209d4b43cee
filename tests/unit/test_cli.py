"""`amiguard evaluate`: every input shape a user has at hand, exit codes, configuration, and the corpus."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from ami_guard import cli
from tests import records as r
from tests.corpus import SAMPLES, needs_corpus

PUBLIC = r.modify_image_attribute("ami-0123456789abcdef0", [{"group": "all"}], event_id="evt-public")
SHARE = r.modify_image_attribute("ami-0123456789abcdef0", [{"userId": "444455556666"}], event_id="evt-share")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = cli.main(["evaluate", "--offline", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


@pytest.fixture(autouse=True)
def _no_cdk_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # defaults, unless a test writes a cdk.json


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("raw.json", json.dumps(PUBLIC)),
        ("envelope.json", json.dumps(r.envelope(PUBLIC))),
        ("trail.json", json.dumps({"Records": [PUBLIC, SHARE]})),
        ("trail.json.gz", gzip.compress(json.dumps({"Records": [PUBLIC, SHARE]}).encode())),
        (
            "lookup.json",
            json.dumps(
                {
                    "Events": [
                        {"EventId": "x", "EventName": "ModifyImageAttribute", "CloudTrailEvent": json.dumps(PUBLIC)}
                    ]
                }
            ),
        ),
        ("lines.jsonl", json.dumps(r.envelope(PUBLIC)) + "\n\n" + json.dumps(SHARE) + "\n"),
    ],
)
def test_every_input_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str | bytes) -> None:
    code, findings, err = run(capsys, write(tmp_path / name, content))
    assert code == 0, err
    assert findings[0]["rule_id"] == "ami-public"
    assert findings[0]["event_id"] == "evt-public"
    assert findings[0]["severity"] == "CRITICAL"
    assert findings[0]["resources"][0]["id"] == "ami-0123456789abcdef0"
    assert "finding(s)" in err


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(SHARE).encode())))
    code, findings, _ = run(capsys, "-")
    assert code == 0
    assert [f["rule_id"] for f in findings] == ["ami-shared-untrusted"]


def test_non_ec2_events_are_skipped_quietly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    s3 = {"eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": "eu-west-1", "eventID": "s"}
    code, findings, err = run(capsys, write(tmp_path / "mixed.json", json.dumps({"Records": [s3, SHARE]})))
    assert code == 0 and len(findings) == 1
    assert "1 not EC2 API calls" in err and "skipped a record" not in err


def test_the_guardrail_calls_are_evaluated_offline(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    records = [
        r.enable_snapshot_block_public_access("block-new-sharing"),
        r.enable_allowed_images("audit-mode", flat=True),
        r.recycle_bin_call("DeleteRule", "jkrnexample"),
        r.export_image("ami-0123456789abcdef0", "exfil"),
    ]
    code, findings, err = run(capsys, write(tmp_path / "trail.json", json.dumps({"Records": records})))
    assert code == 0, err
    assert [f["rule_id"] for f in findings] == [
        "snapshot-block-public-access-weakened",
        "allowed-images-audit-only",
        "recycle-bin-rule-weakened",
        "image-exported",
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ("", "empty input"),
        (b"\x1f\x8b\x08garbage", "not a valid gzip file"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        ('{"a": 1}\n{broken\n', "line 2 is not JSON"),
    ],
)
def test_unreadable_input_exits_2_naming_file_and_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | bytes, problem: str
) -> None:
    bad = write(tmp_path / "bad.json", content)
    good = write(tmp_path / "good.json", json.dumps(PUBLIC))
    code, findings, err = run(capsys, bad, good)
    assert code == 2
    assert f"{bad}: " in err and problem in err
    assert [f["rule_id"] for f in findings] == ["ami-public"], "the readable input is still evaluated"


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json: no such file" in err


def test_malformed_record_is_named_not_fatal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    odd = {"eventSource": "ec2.amazonaws.com", "eventName": "ModifyImageAttribute"}  # no region
    code, _, err = run(capsys, write(tmp_path / "odd.json", json.dumps([odd, 42])))
    assert code == 0
    assert "skipped a record: the record has no awsRegion" in err
    assert "2 malformed" in err


def test_config_file_trusts_an_account(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write(tmp_path / "guard.json", json.dumps({"trustedAccounts": ["444455556666"]}))
    code, findings, _ = run(capsys, "--config", config, write(tmp_path / "s.json", json.dumps(SHARE)))
    assert code == 0 and findings == []


def test_cdk_json_in_working_directory_is_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path / "cdk.json", json.dumps({"app": "x", "context": {"amiGuard": {"minSeverity": "CRITICAL"}}}))
    code, findings, err = run(capsys, write(tmp_path / "t.json", json.dumps({"Records": [PUBLIC, SHARE]})))
    assert code == 0
    assert [f["rule_id"] for f in findings] == ["ami-public"]
    assert "at or above CRITICAL" in err


def test_bad_config_exits_2_naming_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write(tmp_path / "guard.json", json.dumps({"trustedAccounts": ["123"]}))
    code, _, err = run(capsys, "--config", config, write(tmp_path / "s.json", json.dumps(SHARE)))
    assert code == 2 and "trustedAccounts" in err and "'123'" in err


def test_offline_says_what_it_could_not_decide(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    launch = r.run_instances("ami-0pv", "m5.large", virtualization_type=None)
    code, findings, err = run(capsys, write(tmp_path / "l.json", json.dumps(launch)))
    assert code == 0 and findings == []
    assert "launch-paravirtual not decided" in err and "--offline makes no AWS call" in err


def test_summary_counts_every_undecided_check_by_cause(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    launch = r.run_instances("ami-0pv", "m5.large", virtualization_type=None)  # needs a lookup
    null_share = r.record("ModifyImageAttribute", None, {"_return": True})  # the record does not say
    code, findings, err = run(capsys, write(tmp_path / "t.json", json.dumps({"Records": [launch, null_share]})))
    assert code == 0 and findings == []
    assert "ami-public not decided: the record carries no requestParameters" in err
    assert "3 check(s) not decided: 1 need an AWS lookup (offline), 2 not settled by the record" in err


def test_installed_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "amiguard"
    if not script.exists():
        pytest.fail(f"the set-up must install the amiguard console script next to {sys.executable}")
    path = write(tmp_path / "p.json", json.dumps(PUBLIC))
    done = subprocess.run(
        [str(script), "evaluate", "--offline", path], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["rule_id"] == "ami-public"


@needs_corpus
def test_corpus_directory_offline(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_corpus import EXPECTED

    code, findings, err = run(capsys, str(SAMPLES))
    assert code == 0, err
    expected = sorted(rule for rules in EXPECTED.values() if rules for rule in rules)
    assert sorted(f["rule_id"] for f in findings) == expected
    assert "4 not EC2 API calls, 0 malformed" in err


HOSTILE = "ami-0123456789abcdef0\x1b]0;owned\x07\x1b[2J\r\n\u202e\u2028\x85\x9b31m"


def _terminal_safe(text: str) -> bool:
    """No character that a terminal acts on or a reader cannot see: only newlines end our lines."""
    return all(ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text)


def test_record_values_never_reach_the_terminal_raw(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given records whose ids carry terminal escape sequences, in a file whose name carries one too
    public = r.modify_image_attribute(HOSTILE, [{"group": "all"}], event_id="evt\x1b[31m-1")
    launch = r.run_instances(HOSTILE, "m5.large", virtualization_type=None, event_id="evt\x1b[31m-2")
    launch["userAgent"] = "\x1b[6n"
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "evil\x1b[32m.json", json.dumps({"Records": [public, launch]}))
    # When the CLI evaluates them
    code, findings, err = run(capsys, str(folder))
    # Then stderr shows the values escaped, one warning per line
    assert code == 0
    assert _terminal_safe(err)
    lines = err.splitlines()
    assert len(lines) == 2 and lines[1].startswith("amiguard: 1 input(s), 2 record(s)")
    assert "evil\\x1b[32m.json: event evt\\x1b[31m-2 (RunInstances): launch-paravirtual not decided" in lines[0]
    assert "ami-0123456789abcdef0\\x1b]0;owned\\x07\\x1b[2J\\r\\n\\u202e\\u2028\\x85\\x9b31m" in lines[0]
    # And stdout is JSON Lines in ASCII, each value exact
    assert [f["rule_id"] for f in findings] == ["ami-public"]
    assert findings[0]["resources"][0]["id"] == HOSTILE and findings[0]["event_id"] == "evt\x1b[31m-1"
    assert findings[0]["resources"][0]["console_url"] is None and findings[0]["resources"][0]["arn"] is None


def test_json_output_is_ascii_json_lines_whatever_the_record_holds(tmp_path: Path) -> None:
    # Through the installed script, as bytes: what a terminal or a pipe really receives
    script = Path(sys.executable).parent / "amiguard"
    record = r.modify_image_attribute(HOSTILE, [{"group": "all"}])
    record["userAgent"] = "\u2028\n\x00\x1b[0m"
    path = write(tmp_path / "p.json", json.dumps(record))
    done = subprocess.run([str(script), "evaluate", "--offline", path], capture_output=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii() and done.stderr.isascii()
    assert all(32 <= byte < 127 or byte == 10 for byte in done.stdout + done.stderr)
    (line,) = done.stdout.decode().splitlines()
    document = json.loads(line, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))
    assert document["actor"]["user_agent"] == "\u2028\n\x00\x1b[0m" and document["resources"][0]["id"] == HOSTILE


def test_output_bounds_a_huge_value_and_points_to_the_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image_id = "ami-" + "0" * 29_996
    record = r.modify_image_attribute(image_id, [{"group": "all"}], event_id="evt-huge")
    code, findings, _ = run(capsys, write(tmp_path / "h.json", json.dumps(record)))
    assert code == 0
    (document,) = findings
    assert document["resources"][0]["id"] == image_id[:1024] + "…[truncated, 30000 chars]"
    assert document["truncated"]["full"] == "every value is whole in the CloudTrail record with event id evt-huge"
