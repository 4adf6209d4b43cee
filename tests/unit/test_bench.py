"""The benchmark gate (bench/): budgets judged on the interval of the median paired ratio, the asset measured with
its bytecode as Lambda loads it, and README figures that are results.json's."""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ami_guard_cdk.components import bytecode
from bench import answers, asset, cost, report, stats
from bench.aws_stub import install
from bench.run import Sampling, check_compiles, check_loaded, check_member_session

ROOT = Path(__file__).resolve().parents[2]


def test_the_median_interval_takes_the_binomial_ranks() -> None:
    # Given n ratios, the 95% interval of their median is [x(k), x(n+1-k)] with P(Binomial(n, 1/2) < k) <= 0.025:
    # k = 6 for n = 21 (P(X <= 5) = 0.0133, P(X <= 6) = 0.0392), k = 14 for n = 41, k = 1 for n = 6 (1/64).
    assert stats.median_interval([float(v) for v in range(21, 0, -1)]) == (6.0, 16.0)
    assert stats.median_interval([float(v) for v in range(1, 42)]) == (14.0, 28.0)
    assert stats.median_interval([6.0, 1.0, 5.0, 2.0, 4.0, 3.0]) == (1.0, 6.0)
    assert stats.coverage(21) == pytest.approx(0.97340, abs=1e-5)


def test_too_few_values_give_the_whole_range() -> None:
    assert stats.median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert stats.coverage(3) == 0.0


def test_a_budget_is_decided_only_by_an_interval_on_one_side_of_its_limit() -> None:
    assert stats.verdict(1.05, 1.15, 1.2) == "pass"
    assert stats.verdict(1.05, 1.2, 1.2) == "pass"
    assert stats.verdict(1.21, 1.3, 1.2) == "fail"
    assert stats.verdict(1.15, 1.25, 1.2) == "undecided"


def test_ratios_are_paired_round_by_round() -> None:
    assert stats.ratios([200.0, 150.0], [100.0, 150.0]) == [2.0, 1.0]
    with pytest.raises(ValueError, match="not paired"):
        stats.ratios([200.0], [100.0, 150.0])


def test_a_median_under_the_limit_with_a_straddling_interval_fails_the_gate_as_undecided() -> None:
    # Given ratios whose median (1.19) is under 1.2 but half of them far over it: a coin flip, not a pass.
    ratios = [1.10] * 10 + [1.19] + [1.30] * 10
    summary = stats.summary(ratios, 1.2)
    assert summary["median"] == 1.19
    assert summary["interval"] == [1.1, 1.3]
    assert summary["verdict"] == "undecided"
    budget = report._ratio_budget("cold start / floor, permission function <= 1.2", summary)
    assert budget["verdict"] == "undecided"
    assert budget["margin"] == pytest.approx(-0.083, abs=1e-3)  # from the interval's worse end, 1.3
    assert not report.passed([budget])


def test_a_clear_margin_passes_and_a_clear_excess_fails() -> None:
    clear = stats.summary([1.04, 1.05, 1.06, 1.07, 1.08, 1.09, 1.10] * 3, 1.2)
    over = stats.summary([1.25, 1.26, 1.27, 1.28, 1.29, 1.30, 1.31] * 3, 1.2)
    assert (clear["verdict"], clear["interval"]) == ("pass", [1.05, 1.09])
    assert (over["verdict"], over["interval"]) == ("fail", [1.26, 1.3])
    assert report.passed([report._ratio_budget("a", clear)])
    assert not report.passed([report._ratio_budget("a", clear), report._ratio_budget("b", over)])


def test_rounds_are_added_while_undecided_up_to_the_cap() -> None:
    plan = Sampling(runs=21, more=20, max_runs=81)
    assert [plan.next_batch(done) for done in (0, 21, 41, 61, 71, 81)] == [21, 20, 20, 20, 10, 0]


def test_a_cold_start_of_ours_counts_only_if_every_asset_module_came_from_its_bytecode() -> None:
    from_bytecode = {"loaded": {"compiled": [], "bytecode": ["ami_guard.events", "ami_guard.guard"]}}
    check_loaded("permission", "ours", from_bytecode)
    with pytest.raises(RuntimeError, match="expected every module from its bytecode"):
        check_loaded(
            "permission", "ours", {"loaded": {"compiled": ["ami_guard.events"], "bytecode": ["ami_guard.guard"]}}
        )
    with pytest.raises(RuntimeError, match="expected every module from its bytecode"):
        check_loaded("permission", "ours", {"loaded": {"compiled": [], "bytecode": []}})
    # the floor imports nothing of the asset; Cloud Custodian's archive ships no bytecode and is compiled
    check_loaded("permission", "floor", {"loaded": {"compiled": [], "bytecode": []}})
    with pytest.raises(RuntimeError, match="expected nothing of the asset"):
        check_loaded("permission", "floor", from_bytecode)
    check_loaded("permission", "custodian", {"loaded": {"compiled": ["c7n.policy"], "bytecode": []}})
    with pytest.raises(RuntimeError, match="expected every module from source"):
        check_loaded("permission", "custodian", {"loaded": {"compiled": [], "bytecode": ["c7n.policy"]}})


def test_the_ratio_without_bytecode_adds_the_compile_time_to_ours_round_by_round() -> None:
    # Given three rounds, ours 100, 110 and 120 ms against a floor of 100 ms, and 10 ms to compile the asset
    pairs = {"ours_cpu_ms": [100.0, 110.0, 120.0], "cpu_ms": [100.0, 100.0, 100.0]}
    # Then the ratios would be 1.1, 1.2 and 1.3: their median, and (three rounds) the whole range as its interval
    assert report.without_bytecode(pairs, "cpu_ms", 10.0) == {"median": 1.2, "interval": [1.1, 1.3]}


def test_the_audited_run_of_ours_must_compile_no_asset_file() -> None:
    loaded = {"compiled": [], "bytecode": ["ami_guard.guard"]}
    check_compiles("permission", "ours", {"compiled_files": [], "loaded": loaded})
    with pytest.raises(RuntimeError, match="compiled although it ships bytecode"):
        check_compiles("permission", "ours", {"compiled_files": ["ami_guard/guard.py"], "loaded": loaded})
    with pytest.raises(RuntimeError, match="not compiled from source"):
        check_compiles("permission", "custodian", {"compiled_files": [], "loaded": loaded})


CHILD_PROBE = """
import json, sys
from bench.child import _loaded, _record_compiles
code_dir = sys.argv[1]
compiled = []
_record_compiles(code_dir, compiled)
sys.path.insert(0, code_dir)
import shipped, forgotten, stale
print(json.dumps({"loaded": _loaded(code_dir), "compiled_files": sorted(compiled)}))
"""


def test_the_child_tells_a_module_loaded_from_unchecked_bytecode_from_one_it_compiled(tmp_path: Path) -> None:
    # Given an asset with a module compiled as the synth compiles, one without bytecode, and one whose pyc
    # (timestamp-based, as a developer's import writes it) Lambda could not rely on
    code_dir = tmp_path / "asset"
    code_dir.mkdir()
    (code_dir / "shipped.py").write_text("VALUE = 1\n", encoding="utf-8")
    bytecode.compile_tree(sys.executable, code_dir)
    (code_dir / "forgotten.py").write_text("VALUE = 2\n", encoding="utf-8")
    (code_dir / "stale.py").write_text("VALUE = 3\n", encoding="utf-8")
    py_compile.compile(str(code_dir / "stale.py"), doraise=True)

    # When a child with writing off imports the three
    completed = subprocess.run(
        [sys.executable, "-B", "-c", CHILD_PROBE, str(code_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(completed.stdout)

    # Then only the one with the synth's bytecode counts as loaded from it; the audit hook saw the other compile
    assert result["loaded"] == {"bytecode": ["shipped"], "compiled": ["forgotten", "stale"]}
    assert result["compiled_files"] == ["forgotten.py"]


def test_the_benchmarks_asset_is_zipped_with_unchecked_bytecode_for_its_own_python(tmp_path: Path) -> None:
    # Given functions/ with a developer's own bytecode beside the source
    py_compile.compile(str(ROOT / "functions" / "ami_guard" / "contract.py"), doraise=True)

    # When the benchmark builds its asset
    names = asset.build(tmp_path / "asset.zip")

    # Then each source has one pyc of this interpreter, unchecked-hash, and the developer's did not come along
    tag = sys.implementation.cache_tag
    sources = sorted(name for name in names if name.endswith(".py"))
    pycs = sorted(name for name in names if name.endswith(".pyc"))
    assert "ami_guard/handlers/permission_guard.py" in sources
    assert pycs == sorted(
        f"{name.rsplit('/', 1)[0]}/__pycache__/{name.rsplit('/', 1)[1][:-3]}.{tag}.pyc" for name in sources
    )
    with zipfile.ZipFile(tmp_path / "asset.zip") as archive:
        for pyc in pycs:
            header = archive.read(pyc)[:8]
            assert header[:4] == importlib.util.MAGIC_NUMBER, pyc
            assert int.from_bytes(header[4:8], "little") == 0b01, pyc


def test_the_readme_figures_are_those_of_results_json() -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(report.BEGIN)
    end = readme.index(report.END) + len(report.END)
    assert readme[start:end] == report.readme_block(results), "run `python -m bench.report --readme`"


def test_the_readme_block_shows_each_functions_ratio_and_interval() -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    block = report.readme_block(results)
    for name in ("permission", "launch", "image", "tamper"):
        ratio = results["cold_start_ratio"][name]
        low, high = ratio["interval"]
        assert f"| {ratio['median']} ({low}-{high}) |" in block


def test_a_readme_without_the_markers_is_not_rewritten() -> None:
    with pytest.raises(ValueError, match="markers"):
        report.rewrite_readme("# AMI Guard\n\nno markers here\n", {})


# --- organization mode: the member-role session's cost ---------------------------------------------------------


def _org_results(org_steady: list[str], own_ec2: int = 0) -> dict[str, object]:
    """Standalone and organization-mode warm results of one kind, as bench.run collects them."""
    standalone = {"name": "RunInstancesWithoutVirtualizationType", "variant": "quiet", "event_us": 700.0}
    standalone["steady_calls"] = ["dynamodb:PutItem", "ec2:DescribeImages", "dynamodb:UpdateItem"]
    organization = {
        **standalone,
        "event_us": 720.04,
        "steady_calls": org_steady,
        "container_first_calls": [
            "organizations:ListAccounts",
            "organizations:ListAccounts",
            "dynamodb:PutItem",
            "sts:AssumeRole",
            "ec2:DescribeImages",
            "dynamodb:UpdateItem",
        ],
        "ec2_calls_with_own_credentials": own_ec2,
    }
    return {"warm": {"launch": {"kinds": [standalone]}}, "organization": {"launch": {"kinds": [organization]}}}


def test_a_warm_organization_event_with_standalones_calls_passes_and_the_first_events_extra_calls_are_shown() -> None:
    # Given the same warm calls as standalone, in another order
    results = _org_results(["dynamodb:PutItem", "dynamodb:UpdateItem", "ec2:DescribeImages"])
    # When
    summary = report.organization_summary(results)
    # Then
    assert summary is not None
    entry = summary["api_calls"]["RunInstancesWithoutVirtualizationType"]["nothing_found"]
    assert entry["warm_beyond_standalone"] == []
    assert entry["first_event_beyond_warm"] == [
        "organizations:ListAccounts",
        "organizations:ListAccounts",
        "sts:AssumeRole",
    ]
    assert (entry["warm_us"], entry["standalone_warm_us"]) == (720.0, 700.0)
    checks = report.organization_budgets(summary)
    assert [(b["value"], b["verdict"]) for b in checks] == [(0, "pass"), (0, "pass")]
    assert report.passed(checks)


def test_a_warm_organization_event_that_assumes_the_role_again_fails_the_gate() -> None:
    # Given a warm event that renews its member session (an AssumeRole standalone never makes)
    results = _org_results(["dynamodb:PutItem", "sts:AssumeRole", "ec2:DescribeImages", "dynamodb:UpdateItem"])
    # When
    checks = report.organization_budgets(report.organization_summary(results))
    # Then
    beyond = checks[0]
    assert beyond["budget"] == (
        "AWS calls per warm event beyond standalone's, organization mode, "
        "RunInstancesWithoutVirtualizationType (nothing_found) <= 0"
    )
    assert (beyond["value"], beyond["verdict"]) == (1, "fail")
    assert not report.passed(checks)


def test_a_call_made_twice_where_standalone_makes_it_once_counts() -> None:
    assert report._beyond(["a", "b", "a", "c"], ["a", "c"]) == ["a", "b"]
    assert report._beyond(["a", "a"], ["a", "a", "b"]) == []


def test_an_ec2_call_with_the_hubs_own_credentials_fails_the_gate() -> None:
    results = _org_results(["dynamodb:PutItem", "ec2:DescribeImages", "dynamodb:UpdateItem"], own_ec2=2)
    checks = report.organization_budgets(report.organization_summary(results))
    assert checks[-1]["budget"] == "EC2 calls with the hub's own credentials, organization mode <= 0"
    assert (checks[-1]["value"], checks[-1]["verdict"]) == (2, "fail")


def test_results_without_organization_mode_fail_the_gate() -> None:
    checks = report.organization_budgets(report.organization_summary({"warm": {}}))
    assert [(b["budget"], b["verdict"]) for b in checks] == [("organization mode measured", "fail")]


def test_the_readme_line_names_the_first_events_extra_calls_and_the_budgets() -> None:
    summary = report.organization_summary(
        _org_results(["dynamodb:PutItem", "ec2:DescribeImages", "dynamodb:UpdateItem"])
    )
    assert summary is not None
    line = report.organization_line(summary, report.organization_budgets(summary))
    assert line == (
        "Organization mode (the hub of a 1,000-account organization): 2 of 2 budgets hold (no AWS call per warm "
        "event beyond standalone's, no EC2 call with the hub's own credentials); the first event in a container "
        "also makes: organizations:ListAccounts x 2 (1 of 1 kinds); sts:AssumeRole x 1 (1 of 1 kinds)."
    )
    assert report.compact(["x", "x", "x", "y", "x"]) == "x x 3, y, x"
    assert report.compact([]) == "none"


def test_ec2_read_without_assuming_a_member_role_is_refused() -> None:
    check_member_session("launch", ["sts:AssumeRole", "ec2:DescribeImages"], ["ec2:DescribeImages"])
    check_member_session("permission", ["organizations:ListAccounts"], ["dynamodb:PutItem"])
    with pytest.raises(RuntimeError, match="without assuming a member role"):
        check_member_session("launch", ["ec2:DescribeImages"], ["ec2:DescribeImages"])


def test_the_organization_is_listed_in_pages_of_twenty() -> None:
    # Given ListAccounts answered page after page, as the paginator asks
    pages, token = [], None
    while True:
        page = answers._list_accounts({} if token is None else {"NextToken": token})
        pages.append(page)
        token = page.get("NextToken")
        if token is None:
            break
    ids = [account["Id"] for page in pages for account in page["Accounts"]]
    # Then 1,000 accounts in 50 pages, the member and the hub among them, the trusted outsider not
    assert (len(pages), len(ids), len(set(ids))) == (50, 1000, 1000)
    assert pages[0]["NextToken"] == "20"
    assert {answers.ACCOUNT, answers.HUB_ACCOUNT} <= set(ids)
    assert answers.TRUSTED_ACCOUNT not in ids


def test_the_stub_records_whose_credentials_each_call_signs_with() -> None:
    # Given the Stubber on every client made from now on (undone at the end: other tests make real clients)
    import boto3
    from botocore import handlers

    before = list(handlers.BUILTIN_HANDLERS)
    try:
        log = install(answers.ANSWERS)
        hub = boto3.session.Session(
            aws_access_key_id="ASIAHUBBENCHMARK00", aws_secret_access_key="x", aws_session_token="y"
        )
        # When the hub assumes the member role and reads EC2 with its session
        role = "arn:aws:iam::111122223333:role/AmiGuardMember-Access-eu-west-1"
        credentials = hub.client("sts", region_name="eu-west-1").assume_role(RoleArn=role, RoleSessionName="bench")[
            "Credentials"
        ]
        member = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        member.client("ec2", region_name="eu-west-1").describe_images(ImageIds=["ami-0123456789abcdef0"])
        hub.client("ec2", region_name="eu-west-1").describe_images(ImageIds=["ami-0123456789abcdef0"])
    finally:
        handlers.BUILTIN_HANDLERS[:] = before
    # Then
    assert [(str(call), call.key) for call in log.take()] == [
        ("sts:AssumeRole", "ASIAHUBBENCHMARK00"),
        ("ec2:DescribeImages", "ASIA111122223333"),
        ("ec2:DescribeImages", "ASIAHUBBENCHMARK00"),
    ]


# --- the cost model (bench/cost.py) -------------------------------------------------------------------------------


def test_the_cost_model_uses_the_functions_memory_size() -> None:
    from ami_guard_cdk.components.guard_function import MEMORY_SIZE_MB

    assert cost.MEMORY_SIZE_MB == MEMORY_SIZE_MB


def test_billed_duration_is_cpu_at_the_functions_share_of_a_vcpu_plus_the_waits() -> None:
    # 98.2 µs x 1769 / 256 = 0.679 ms, + 1 ms of runtime, rounded up
    assert cost.billed_ms(98.2, ()) == 2
    # 703.3 µs -> 4.860 ms, + 20 + 150 + 20 ms of calls (one EC2) + 1 = 195.86 -> 196
    assert cost.billed_ms(703.3, ("dynamodb:PutItem", "ec2:DescribeImages", "dynamodb:UpdateItem")) == 196


def test_a_million_quiet_events_and_a_million_alerts_cost() -> None:
    quiet = cost.event_cost("RunInstances", "nothing_found", 98.2, ())
    # EventBridge 1.00 + 4 GB across regions x 0.02; Lambda 0.20 + 500 GB-s x 0.0000133334; logs 0.83 GB x 0.50
    assert quiet.eventbridge == pytest.approx(1.08)
    assert quiet.lambda_ == pytest.approx(0.2066667, abs=1e-6)
    assert (quiet.dynamodb, quiet.sns) == (0, 0)
    assert quiet.logs == pytest.approx(0.415)
    assert quiet.total == pytest.approx(1.7016667, abs=1e-6)
    alert = cost.event_cost("RunInstances", "alert", 1232.9, ("dynamodb:PutItem", "sns:Publish", "dynamodb:UpdateItem"))
    # 70 ms: 17,500 GB-s; two writes; one publish and one email; 1.65 GB of logs
    assert alert.billed_ms == 70
    assert alert.lambda_ == pytest.approx(0.4333345, abs=1e-6)
    assert (alert.dynamodb, alert.sns) == (pytest.approx(1.25), pytest.approx(20.5))
    assert alert.logs == pytest.approx(0.825)


def test_the_cost_takes_the_hubs_warm_time_when_organization_mode_was_measured() -> None:
    calls = {"calls": ["dynamodb:PutItem", "sns:Publish", "dynamodb:UpdateItem"]}
    results: dict[str, object] = {
        "api_calls": {"RunInstances": {"function": "launch", "nothing_found": {"calls": []}, "alert": calls}},
        "warm_event_us": {"RunInstances": 98.2},
        "warm_alert_us": {"RunInstances": 1232.9},
    }
    assert [c.billed_ms for c in cost.costs(results)] == [2, 70]
    # Given the hub's warm time: 1,500 µs -> 10.37 ms + 60 + 1 -> 72 ms for the alert
    results["organization"] = {"api_calls": {"RunInstances": {"alert": {"warm_us": 1500.0}}}}
    assert [c.billed_ms for c in cost.costs(results)] == [2, 72]
