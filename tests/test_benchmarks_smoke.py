"""Smoke test of the benchmark scripts: they run and write valid results.

Speed is not asserted here: speed claims live in ``benchmarks/`` and
``docs/performance.md``, where they are measured on a stated machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

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
