"""Coverage of intervals read from few calibration residuals: two quantile rules.

A forecaster trained on one short series (``fit`` without ``pretrain``) keeps
only a few standardised calibration residuals (16 for 250 daily points with the
defaults). Its quantiles are quantiles of those residuals. This simulation
draws ``n`` residuals and one new value from the same distribution (standard
normal, Student-t with 4 degrees of freedom) and records how often the
central 80, 90 and 98 % intervals cover the new value, for:

* ``numpy``: ``np.quantile``'s default (linear between order statistics at
  ``i / (n - 1)``; beyond the sample, its minimum or maximum), the rule of
  version 0.1;
* ``conformal``: ``sk_metalstm._conformal.conformal_quantiles`` (order
  statistics at ``i / (n + 1)``, exponential tails beyond), the rule now used.

Run ``python benchmarks/small_calibration.py`` (seconds; ``--quick`` for a
smoke run).
"""

from __future__ import annotations

import argparse

import numpy as np
from _reporting import command_line, environment, parse_args, write_json
from scipy import stats

from sk_metalstm._conformal import conformal_quantiles

COVERAGES = (0.80, 0.90, 0.98)
SIZES = (8, 16, 24, 50, 200, 1000)
DISTRIBUTIONS = {"normal": stats.norm(), "student_t4": stats.t(4)}


def coverage(rule: str, n: int, draws: int, dist, rng: np.random.Generator) -> list[float]:
    """Share of ``draws`` new values inside each central interval of ``COVERAGES``."""
    levels = [a for c in COVERAGES for a in ((1 - c) / 2, (1 + c) / 2)]
    residuals = dist.rvs(size=(draws, n), random_state=rng)
    new = dist.rvs(size=draws, random_state=rng)
    if rule == "numpy":
        q = np.quantile(residuals, levels, axis=1)
    else:
        q = np.stack([conformal_quantiles(r, levels) for r in residuals], axis=1)
    inside = [(q[2 * i] <= new) & (new <= q[2 * i + 1]) for i in range(len(COVERAGES))]
    return [float(np.mean(hit)) for hit in inside]


def main(argv: list[str] | None = None) -> None:
    """Simulate every rule, size and distribution; print and write the coverages."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 draws, two sizes")
    parser.add_argument("--draws", type=int, default=20_000)
    parser.add_argument("--out", default="benchmarks/results/small_calibration.json")
    args = parse_args(parser, argv)
    draws, sizes = (200, SIZES[:2]) if args.quick else (args.draws, SIZES)
    rng = np.random.default_rng(0)
    rows = []
    for name, dist in DISTRIBUTIONS.items():
        for n in sizes:
            for rule in ("numpy", "conformal"):
                covered = coverage(rule, n, draws, dist, rng)
                rows.append(
                    {
                        "distribution": name,
                        "n": n,
                        "rule": rule,
                        **{f"coverage_{c:.2f}": v for c, v in zip(COVERAGES, covered, strict=True)},
                    }
                )
                shown = " / ".join(f"{v:.3f}" for v in covered)
                print(f"{name:11s} n={n:5d} {rule:9s} coverage 80/90/98 %: {shown}")
    report = {
        "command": command_line("small_calibration", argv),
        "environment": environment("scipy"),
        "draws": draws,
        "standard_error_at_0.90": float(np.sqrt(0.09 / draws)),
        "rows": rows,
    }
    print(f"wrote {write_json(args.out, report)}")


if __name__ == "__main__":
    main()
