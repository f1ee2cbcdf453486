"""Smoke test of the benchmark scripts: they run and write valid results.

Speed is not asserted here: speed claims live in ``benchmarks/`` and
``docs/performance.md``, where they are measured on a stated machine.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_meta_throughput_quick_writes_json(tmp_path):
    out = tmp_path / "meta_throughput.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "meta_throughput.py"), "--quick",
         "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    results = report["results"]
    assert {r["learner"] for r in results} == {"metasgd", "maml-fo", "maml-so", "lstm", "reptile"}
    for r in results:
        for path in ("vmap", "loop"):
            rate = r[path]["tasks_per_s"]
            assert math.isfinite(rate) and rate > 0
        assert r["speedup"] > 0
        # Both paths compute the same function: equal losses up to float rounding.
        sanity = r["sanity"]
        assert sanity["initial_loss_abs_diff"] <= 1e-5 * max(1.0, abs(sanity["initial_loss_loop"]))
        assert sanity["initial_meta_grad_max_abs_diff"] <= 1e-4 * max(
            1.0, sanity["initial_meta_grad_max_abs"]
        )


def _run_quick(script: str, out: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_few_shot_families_quick_reports_gap_closed(tmp_path):
    report = _run_quick(
        "few_shot.py", tmp_path / "fs.json", "--families", "ar2t", "--methods", "ridge"
    )
    rows = {(r["family"], r["method"]): r for r in report["summary"]}
    assert {("ar2t", m) for m in ("none", "ridge", "ar2", "oracle")} <= set(rows)
    assert rows[("ar2t", "oracle")]["gap_closed"] == pytest.approx(1.0)
    assert all(math.isfinite(r["rel_mse"]) for r in rows.values())


def test_few_shot_regime_quick_scores_the_regime_baselines(tmp_path):
    pytest.importorskip("statsmodels")
    report = _run_quick(
        "few_shot.py", tmp_path / "fs.json", "--families", "regime", "--methods", "none"
    )
    rows = {r["method"]: r for r in report["summary"]}
    assert {"bayes", "msar", "msar_pooled", "oracle", "none"} <= set(rows)
    assert all(math.isfinite(r["rel_mse"]) for r in rows.values())


def test_regime_ceiling_quick_rescores_the_stored_regime_runs(tmp_path):
    # Regenerates seed 0's series from the stored few_shot results (and checks
    # their oracle against the stored one), then scores the informed forecasters.
    report = _run_quick("regime_ceiling.py", tmp_path / "rc.json")
    rows = {r["method"]: r for r in report["summary"]}
    informed = {"hamilton_prior", "hamilton_prior_head", "hamilton_prior_head_window"}
    assert set(rows) == {"none", "ridge", "bayes", "oracle", "bayes_window"} | informed
    assert report["seeds"] == [0]
    assert all(math.isfinite(r["rel_mse"]) and r["n_series"] == 40 for r in rows.values())
    # Deterministic: seed 0's scores are those of the published ten-seed run.
    published = json.loads((ROOT / "benchmarks/results/regime_ceiling.json").read_text())
    for method, scores in report["runs"]["0"].items():
        np.testing.assert_allclose(scores, published["runs"]["0"][method], rtol=1e-9)


def test_regime_sequence_lstm_quick_scores_next_to_the_stored_runs(tmp_path):
    report = _run_quick("regime_sequence_lstm.py", tmp_path / "sl.json")
    rows = {r["method"]: r for r in report["summary"]}
    assert set(rows) == {"none", "ridge", "bayes", "oracle", "sequence_lstm"}
    assert report["config"]["sequence_lstm"] == {"hidden": 8, "epochs": 2}
    assert all(math.isfinite(r["rel_mse"]) and r["n_series"] == 40 for r in rows.values())
    # The stored methods' scores pass through unchanged.
    published = json.loads((ROOT / "benchmarks/results/regime_ceiling.json").read_text())
    for method in ("none", "ridge", "bayes", "oracle"):
        assert report["runs"]["0"][method] == published["runs"]["0"][method]


def test_held_out_real_merged_file_resummarises_to_its_published_table(tmp_path):
    # The three-seed file (seeds averaged per series) re-summarised alone gives
    # the table stored with it; merging it with further seeds is refused.
    stored = ROOT / "benchmarks" / "results" / "held_out_real_default.json"
    out = tmp_path / "ho.json"
    script = str(ROOT / "benchmarks" / "held_out_real.py")
    proc = subprocess.run(
        [sys.executable, script, "--merge", str(stored), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out.read_text())["summary"] == json.loads(stored.read_text())["summary"]
    proc = subprocess.run(
        [sys.executable, script, "--merge", str(stored), str(stored), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0 and "already averaged" in proc.stderr


def test_held_out_real_quick_reports_paired_differences(tmp_path):
    report = _run_quick("held_out_real.py", tmp_path / "ho.json", "--methods", "ridge")
    rows = {(r["scope"], r["method"]): r for r in report["summary"]}
    assert ("daily (stocks + fx)", "ridge") in rows and ("rates (quarterly)", "ar1") in rows
    daily = rows[("daily (stocks + fx)", "ridge")]
    assert daily["n_series"] == 4 and math.isfinite(daily["vs_pooled_se"])


def test_pretrain_cost_quick_reports_phase_ratio(tmp_path):
    report = _run_quick("pretrain_cost.py", tmp_path / "pc.json")
    default = report["default"]
    assert default["learner"] == "ridge" and default["series"] == 20
    assert len(default["phases"]) == 2 and default["meta_over_pooled_time"] > 0
    assert report["adaptation"]["speedup_median"] > 0


def test_proba_consistency_quick_compares_the_probabilistic_methods(tmp_path):
    report = _run_quick("proba_consistency.py", tmp_path / "pc.json")
    summary = report["summary"]
    assert len(report["rows"]) == 1 and len(report["rows"][0]["proba_var_over_predict_var"]) == 2
    assert all(math.isfinite(value) for value in summary.values())


def test_small_calibration_quick_compares_both_quantile_rules(tmp_path):
    report = _run_quick("small_calibration.py", tmp_path / "sc.json")
    rules = {(r["distribution"], r["n"], r["rule"]) for r in report["rows"]}
    assert ("normal", 8, "numpy") in rules and ("student_t4", 16, "conformal") in rules
    assert all(0 <= r["coverage_0.98"] <= 1 for r in report["rows"])


def test_load_quick_reports_flat_rounds(tmp_path):
    report = _run_quick("load.py", tmp_path / "load.json")
    rounds = report["rounds"]
    assert len(rounds) == report["config"]["rounds"] and report["quick"] is True
    assert all(r["round_s"] > 0 and r["rss_mib"] > 0 for r in rounds)
    assert math.isfinite(report["memory"]["rss_slope_mib_per_round"]["slope"])
    assert math.isfinite(report["time"]["round_s"]["slope_ms_per_round"]["se_hac"])
    assert report["sanity"]["forecasts_checked"] == 20 * len(rounds)
    assert report["profile"]["sk_metalstm"]


SCRIPTS = sorted(path.name for path in (ROOT / "benchmarks").glob("[!_]*.py"))


def test_scripts_import_only_the_shared_helper():
    # What two scripts need lives in benchmarks' _-prefixed helpers: no script imports
    # another script or the examples, and none edits sys.path to do so.
    forbidden = {name.removesuffix(".py") for name in SCRIPTS} | {"examples", "_common"}
    for name in SCRIPTS:
        source = (ROOT / "benchmarks" / name).read_text()
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & forbidden, (name, imported & forbidden)
        assert "sys.path" not in source, name


def test_every_script_imports():
    # Scripts without a quick run above are at least imported, as they run:
    # with their own folder first on sys.path (one process for all of them).
    folder = ROOT / "benchmarks"
    code = (
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(folder)!r})\n"
        f"for path in {[str(folder / name) for name in SCRIPTS]!r}:\n"
        "    spec = importlib.util.spec_from_file_location('script', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_risk_quick_scores_quantiles_against_garch(tmp_path):
    pytest.importorskip("arch")
    report = _run_quick("risk.py", tmp_path / "risk.json")
    rows = {(r["steps"], r["scope"], r["method"]): r for r in report["summary"]}
    methods = {"hist_sim", "ewma", "garch_t", "ridge", "none"}
    for steps in (1, 5):
        assert {(steps, "all", m) for m in methods} <= set(rows)
        assert rows[(steps, "all", "garch_t")]["pinball_rel_garch"] == pytest.approx(1.0)
        for m in methods:
            row = rows[(steps, "all", m)]
            # One stock, one currency and one interest rate, 20 origins each.
            assert row["n_series"] == 3 and row["n_origins"] == 20
            assert math.isfinite(row["pinball_bp"]) and math.isfinite(row["crps_bp"])
            assert 0 <= row["cov90"] <= 1 and 0 <= row["var95_kupiec_p"] <= 1


def test_scale_prior_quick_pretrains_once_per_candidate(tmp_path):
    pytest.importorskip("arch")
    report = _run_quick("scale_prior.py", tmp_path / "sp.json")
    rows = {r["k"]: r for r in report["summary"]}
    assert set(rows) == {1.0, 3.0}
    # Paired against the largest candidate, which is itself the reference.
    assert rows[3.0]["diff_1"] == 0 and rows[3.0]["diff_5"] == 0
    for row in rows.values():
        assert math.isfinite(row["pinball_1"]) and math.isfinite(row["diff_se_1"])
    # A different prior weight gives different forecasts: the candidate reached the learner.
    assert rows[1.0]["pinball_1"] != rows[3.0]["pinball_1"]


def test_few_shot_bayes_bound_learns_each_series_coefficients():
    # The regime family's Bayes forecast starts from the prior and, as a series'
    # returns accumulate, approaches the oracle that knows its coefficients.
    folder = ROOT / "benchmarks"
    code = (
        "import importlib.util, sys, numpy as np\n"
        f"sys.path.insert(0, {str(folder)!r})\n"
        f"spec = importlib.util.spec_from_file_location('fs', {str(folder / 'few_shot.py')!r})\n"
        "fs = importlib.util.module_from_spec(spec); spec.loader.exec_module(fs)\n"
        "r, oracle, _ = fs.FAMILIES['regime'](30, 1500, np.random.default_rng(0))\n"
        "gap = np.abs(fs.bayes_regime(r, grid=13) - oracle) / np.abs(oracle).mean()\n"
        "print(gap[:, 1:100].mean(), gap[:, -100:].mean())\n"
    )
    early, late = map(float, _run_code(code, timeout=120).split())
    assert late < 0.1 < early


def test_risk_scores_a_rate_modelled_in_log_returns_on_its_changes():
    # The package's default transform models a positive rate in log returns;
    # the benchmark must turn its level quantiles into rate changes, the units
    # of the targets and of GARCH. Rates near 5 % make a unit slip a factor of 5.
    pytest.importorskip("arch")
    code = (
        "import sys, numpy as np, torch\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "torch.set_num_threads(1)\n"
        "from _reporting import QUICK_FORECASTER, to_wide\n"
        "from _risk_scoring import GRID, package_quantiles\n"
        "from sk_metalstm import MetaLSTMForecaster\n"
        "from sk_metalstm.datasets import load_interest_rates, load_stock_prices\n"
        "train = load_stock_prices(tickers=['AAPL', 'AMD'], start='2020-01-01')\n"
        "state = MetaLSTMForecaster(horizon=5, random_state=0, verbose=0, support_size=16,\n"
        "    max_time=5, **QUICK_FORECASTER).pretrain(train).pretrained_state_\n"
        "wide = to_wide(load_interest_rates(['AAA', 'BAA'])).loc['1990':].iloc[:60]\n"
        "lo, hi = (int(np.argmin(abs(GRID - p))) for p in (0.05, 0.95))\n"
        "for transform in ('auto', 'difference'):\n"
        "    group = {'wide': wide, 'history': 50, 'kind': 'difference', 'transform': transform}\n"
        "    q = package_quantiles(state, group, 3)[1]\n"
        "    changes = np.abs(np.diff(wide.to_numpy(), axis=0))\n"
        "    print(np.mean(q[..., hi] - q[..., lo]), np.mean(changes))\n"
    )
    lines = _run_code(code, timeout=300).split("\n")[:2]
    (log_width, mean_change), (diff_width, _) = (map(float, line.split()) for line in lines)
    # Both 90 % intervals are of the order of the rates' own quarterly changes.
    for width in (log_width, diff_width):
        assert 0.5 * mean_change < width < 10 * mean_change
    assert 0.4 < log_width / diff_width < 2.5


def test_quick_runs_never_replace_the_published_results():
    # pretrain_cost.py --quick replaced results/pretrain_cost.json, which the
    # docs cite, with one-epoch numbers (and so did every script but two).
    code = (
        "import argparse, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "from pathlib import Path\n"
        "from _reporting import parse_args\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--quick', action='store_true')\n"
        "p.add_argument('--out', default='benchmarks/results/x.json')\n"
        "p.add_argument('--output', type=Path, default=Path('benchmarks/results/y.json'))\n"
        "for argv in (['--quick'], [], ['--quick', '--out', 'mine.json']):\n"
        "    a = parse_args(p, argv)\n"
        "    print(a.out, a.output.as_posix())\n"
    )
    assert _run_code(code, timeout=60).split("\n")[:3] == [
        "benchmarks/results/x_quick.json benchmarks/results/y_quick.json",
        "benchmarks/results/x.json benchmarks/results/y.json",
        "mine.json benchmarks/results/y_quick.json",
    ]
    # Every script parses its options through it.
    for script in sorted((ROOT / "benchmarks").glob("[!_]*.py")):
        source = script.read_text()
        if "--quick" in source:
            assert "parse_args(parser, argv)" in source, script.name


def _run_code(code: str, timeout: int) -> str:
    """Standard output of ``code`` run in a fresh interpreter from the repository root."""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
