"""Calibration of MetaLSTMForecaster's prediction intervals on unseen series.

For each data set, pretrain on most series, then roll over unseen ones with
``update`` (no meta-training at test time) and record, at horizons 1 and 5:

* empirical coverage of the 80% and 95% intervals (nominal: 0.80, 0.95);
* mean pinball loss over quantiles {0.025, 0.1, 0.5, 0.9, 0.975}, relative to a
  random walk whose quantiles are the empirical quantiles of the series' own
  past h-step log-changes over the same history window.

Data: a generated AR(1)-returns panel, a generated regime-switching panel, the
bundled stock prices and exchange rates (``sk_metalstm.datasets``). On the
real data, pretraining ends at the first forecast origin (the last history
date; no target date is seen): other
companies and currencies share their market's moves, so their later dates
would leak the test period (early stopping and the interval calibration use
each series' latest tasks). The generated series are independent of each other.

Run ``python benchmarks/intervals.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _reporting import parse_args, to_panel, to_wide, write_json

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import (
    load_exchange_rates,
    load_stock_prices,
    make_ar_returns_panel,
    make_regime_switching_panel,
)

ALPHAS = [0.025, 0.1, 0.5, 0.9, 0.975]
STEPS = [1, 5]


def pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> np.ndarray:
    """Pinball (quantile) loss."""
    diff = y - q
    return np.maximum(alpha * diff, (alpha - 1) * diff)


def data_sets(quick: bool) -> dict[str, tuple[pd.DataFrame, int, bool]]:
    """Panels, the number of their series used for pretraining, and whether
    pretraining must end at the first forecast origin (real markets)."""
    n = 12 if quick else 50
    sets = {
        "ar1_panel": (
            make_ar_returns_panel(n_series=n, n_timepoints=300, random_state=0),
            30,
            False,
        ),
        "regime_panel": (
            make_regime_switching_panel(n_series=n, n_timepoints=300, random_state=0),
            30,
            False,
        ),
    }
    if not quick:
        sets["stocks"] = (load_stock_prices(start="2019-01-01"), 16, True)
        sets["fx"] = (load_exchange_rates(start="2019-01-01"), 13, True)
    if quick:
        sets = {k: (v[0], 8, v[2]) for k, v in sets.items()}
    return sets


def run(
    panel: pd.DataFrame, n_train: int, history: int, n_eval: int, cfg: dict, cut: bool
) -> dict:
    """Coverage and relative pinball loss on the unseen series of ``panel``."""
    names = panel.index.get_level_values(0).unique()
    wide = to_wide(panel)
    train = panel.loc[names[:n_train]]
    test = wide[names[n_train:]].iloc[-(history + n_eval + max(STEPS)) :]
    if cut:  # only dates before the first forecast's target
        train = train[train.index.get_level_values(-1) < test.index[history]]
    forecaster = MetaLSTMForecaster(horizon=max(STEPS), random_state=0, **cfg)
    start = time.perf_counter()
    forecaster.pretrain(train)
    pretrain_s = time.perf_counter() - start
    adapted = MetaLSTMForecaster.from_pretrained(forecaster.pretrained_state_)
    adapted.fit(to_panel(test.iloc[:history], "y", names=None))
    hits = {(s, c): [] for s in STEPS for c in (0.8, 0.95)}
    loss_model = {s: [] for s in STEPS}
    loss_rw = {s: [] for s in STEPS}
    for t in range(history, history + n_eval):
        quantiles = adapted.predict_quantiles(fh=STEPS, alpha=ALPHAS)
        logs = np.log(test.to_numpy())
        for i, step in enumerate(STEPS):
            q = quantiles.groupby(level=0, sort=False).nth(i).droplevel(1)
            q = q.reindex(test.columns).to_numpy()  # (series, alphas)
            actual = test.iloc[t + step - 1].to_numpy()
            lower95, upper95 = q[:, 0], q[:, -1]
            lower80, upper80 = q[:, 1], q[:, -2]
            hits[(step, 0.8)].extend((actual >= lower80) & (actual <= upper80))
            hits[(step, 0.95)].extend((actual >= lower95) & (actual <= upper95))
            # Random walk with empirical quantiles of past h-step log changes.
            past = logs[t - history + step : t] - logs[t - history : t - step]
            rw = logs[t - 1][:, None] + np.quantile(past, ALPHAS, axis=0).T
            log_actual = np.log(actual)
            loss_model[step].append(
                np.mean([pinball(log_actual, np.log(q[:, j]), a) for j, a in enumerate(ALPHAS)])
            )
            loss_rw[step].append(
                np.mean([pinball(log_actual, rw[:, j], a) for j, a in enumerate(ALPHAS)])
            )
        adapted.update(to_panel(test.iloc[[t]], "y", names=None))
    out = {
        "pretrain_seconds": pretrain_s,
        "n_series": int(test.shape[1]),
        "n_origins": n_eval,
        "pretrain_ends_at_first_origin": cut,
    }
    for step in STEPS:
        out[f"h{step}"] = {
            "coverage_80": float(np.mean(hits[(step, 0.8)])),
            "coverage_95": float(np.mean(hits[(step, 0.95)])),
            "pinball_vs_rw": float(np.mean(loss_model[step]) / np.mean(loss_rw[step])),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/intervals.json")
    args = parse_args(parser, argv)
    warnings.simplefilter("ignore", FutureWarning)
    torch.set_num_threads(1)
    cfg = dict(
        window_length=5,
        hidden_size=8 if args.quick else 16,
        support_size=60,
        query_size=10,
        max_epochs=1 if args.quick else 3,
        base_max_epochs=1 if args.quick else 3,
        lr=5e-3,
        validation_fraction=0.2,
    )
    history, n_eval = 120, (10 if args.quick else 60)
    results = {}
    for name, (panel, n_train, cut) in data_sets(args.quick).items():
        results[name] = run(panel, n_train, history, n_eval, cfg, cut)
        r = results[name]
        print(
            f"{name:13s} "
            + "  ".join(
                f"h{s}: cov80 {r[f'h{s}']['coverage_80']:.3f} cov95 {r[f'h{s}']['coverage_95']:.3f}"
                f" pinball/RW {r[f'h{s}']['pinball_vs_rw']:.3f}"
                for s in STEPS
            ),
            flush=True,
        )
    write_json(
        args.out,
        {
            "config": cfg,
            "history": history,
            "n_eval": n_eval,
            "results": results,
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
        },
    )


if __name__ == "__main__":
    main()
