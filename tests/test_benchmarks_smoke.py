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
