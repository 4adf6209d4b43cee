"""The benchmark gate (bench/): budgets judged on the interval of the median paired ratio, the asset measured from
source, and README figures that are results.json's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report, stats
from bench.run import Sampling, check_from_source

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


def test_a_run_that_used_the_assets_bytecode_is_refused() -> None:
    compiled = {"from_source": {"compiled": ["ami_guard.events"], "bytecode": []}}
    check_from_source("permission", "ours", compiled)
    with pytest.raises(RuntimeError, match="not run from source"):
        check_from_source("permission", "ours", {"from_source": {"compiled": [], "bytecode": ["ami_guard.events"]}})
    with pytest.raises(RuntimeError, match="not run from source"):
        check_from_source("permission", "ours", {"from_source": {"compiled": [], "bytecode": []}})
    with pytest.raises(RuntimeError, match="not run from source"):
        check_from_source("permission", "floor", compiled)


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
