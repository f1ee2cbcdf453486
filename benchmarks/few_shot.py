"""Few-shot benchmark: does meta-learned adaptation pay on unseen series?

Protocol (one seed)
-------------------
* A generated panel of log-price series whose returns are AR(1) with a
  coefficient ``phi_i`` and volatility ``sigma_i`` of their own
  (``make_ar_returns_panel``): a short input window cannot pin ``phi_i`` down,
  a few months of history can.
* Every neural forecaster is pretrained on ``--n-train`` training series, then
  fitted (adapted) on ``--n-test`` unseen series given only ``--history`` points,
  and rolled forward one step at a time with ``update`` over ``--n-eval``
  points (history window sliding, no meta-training at test time).
* Baselines on the same origins: random walk (zero return), AR(1) fitted by
  least squares on the same history, and the oracle (true ``phi_i``).

Metric: one-step MAE of the log-return forecast relative to the random walk's,
per series, averaged over series. ``gap closed`` = (pooled - method) /
(pooled - oracle): the share of the pooled-to-oracle gap a method closes.
Several seeds give paired differences against the pooled LSTM with standard
errors.

Run ``python benchmarks/few_shot.py`` (full) or ``--quick`` (smoke).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sk_metalstm.datasets import make_ar_returns_panel
from sk_metalstm.forecaster import MetaLSTMForecaster

NEURAL = ["none", "finetune", "maml", "metasgd", "reptile", "lstm"]


def split_panel(
    panel: pd.DataFrame, n_train: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First ``n_train`` instances for training, the rest unseen."""
    names = panel.index.get_level_values(0).unique()
    train = panel.loc[names[:n_train]]
    test = panel.loc[names[n_train:]]
    return train, test


def _returns(panel: pd.DataFrame) -> np.ndarray:
    """(series, time-1) array of log-returns of an equal-length panel."""
    wide = panel.iloc[:, 0].unstack(level=0).to_numpy().T
    return np.diff(np.log(wide), axis=1)


def rolling_neural(
    forecaster: MetaLSTMForecaster,
    test: pd.DataFrame,
    history: int,
    n_eval: int,
) -> np.ndarray:
    """Predicted one-step log-returns, shape (series, n_eval), via fit + update."""
    wide = test.iloc[:, 0].unstack(level=0)
    hist = wide.iloc[:history].stack().swaplevel().sort_index().to_frame("price")
    forecaster.fit(hist, fh=[1])
    preds = []
    for t in range(history, history + n_eval):
        last = wide.iloc[t - 1].to_numpy()
        pred = forecaster.predict(fh=[1]).iloc[:, 0]
        pred = pred.groupby(level=0, sort=False).first().reindex(wide.columns)
        preds.append(np.log(pred.to_numpy() / last))
        step = wide.iloc[[t]].stack().swaplevel().sort_index().to_frame("price")
        forecaster.update(step)
    return np.array(preds).T


def rolling_ar1(returns: np.ndarray, history: int, n_eval: int) -> np.ndarray:
    """AR(1) without intercept, refitted by least squares on each sliding history."""
    preds = np.empty((returns.shape[0], n_eval))
    for k in range(n_eval):
        # Returns index t-1 is the return ending at price t; history prices give
        # history - 1 returns.
        r = returns[:, k : k + history - 1]
        phi = np.sum(r[:, 1:] * r[:, :-1], axis=1) / np.sum(r[:, :-1] ** 2, axis=1)
        preds[:, k] = phi * r[:, -1]
    return preds


def relative_mae(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-series MAE relative to the random walk (zero-return forecast)."""
    return np.mean(np.abs(pred - actual), axis=1) / np.mean(np.abs(actual), axis=1)


def run_seed(seed: int, cfg: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """All methods on one generated panel; per-series relative MAE per method."""
    n_points = cfg["train_points"]
    panel, params = make_ar_returns_panel(
        n_series=cfg["n_train"] + cfg["n_test"],
        n_timepoints=n_points,
        phi_range=tuple(cfg["phi_range"]),
        random_state=seed,
        return_params=True,
    )
    train, test = split_panel(panel, cfg["n_train"])
    test = test.groupby(level=0, sort=False).head(cfg["history"] + cfg["n_eval"])
    returns = _returns(test)
    history, n_eval = cfg["history"], cfg["n_eval"]
    actual = returns[:, history - 1 : history - 1 + n_eval]
    phi_true = params["phi"].to_numpy()[cfg["n_train"] :]

    last_returns = returns[:, history - 2 : history - 2 + n_eval]
    scores: dict[str, np.ndarray] = {
        "oracle": relative_mae(phi_true[:, None] * last_returns, actual),
        "ar1": relative_mae(rolling_ar1(returns, history, n_eval), actual),
    }
    seconds: dict[str, float] = {}
    for name in methods:
        start = time.perf_counter()
        forecaster = MetaLSTMForecaster(
            meta_learner=name, random_state=seed, **cfg["forecaster"]
        )
        forecaster.pretrain(train)
        pretrain_s = time.perf_counter() - start
        preds = rolling_neural(forecaster, test, history, n_eval)
        scores[name] = relative_mae(preds, actual)
        seconds[name] = pretrain_s
        print(
            f"  seed {seed} {name:9s} relMAE {scores[name].mean():.4f} "
            f"(pretrain {pretrain_s:.0f}s, total {time.perf_counter() - start:.0f}s)",
            flush=True,
        )
    print(
        f"  seed {seed} oracle    relMAE {scores['oracle'].mean():.4f}; "
        f"ar1 {scores['ar1'].mean():.4f}",
        flush=True,
    )
    return {"scores": {k: v.tolist() for k, v in scores.items()}, "pretrain_seconds": seconds}


def summarise(runs: list[dict[str, Any]], methods: list[str]) -> pd.DataFrame:
    """Mean relative MAE, gap closed, and paired differences vs pooled with s.e."""
    rows = []
    for name in [*methods, "ar1", "oracle"]:
        per_seed = np.array([np.mean(r["scores"][name]) for r in runs])
        pooled = np.array([np.mean(r["scores"]["none"]) for r in runs])
        oracle = np.array([np.mean(r["scores"]["oracle"]) for r in runs])
        diff = per_seed - pooled
        gap = (pooled - per_seed) / (pooled - oracle)
        se = lambda x: float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")  # noqa: E731
        rows.append(
            {
                "method": name,
                "rel_mae": per_seed.mean(),
                "rel_mae_se": se(per_seed),
                "diff_vs_pooled": diff.mean(),
                "diff_se": se(diff),
                "gap_closed": gap.mean(),
                "gap_closed_se": se(gap),
            }
        )
    return pd.DataFrame(rows).set_index("method")


CONFIGS = {
    "full": {
        "n_train": 200,
        "n_test": 50,
        "train_points": 500,
        "history": 120,
        "n_eval": 60,
        "phi_range": [-0.6, 0.6],
        "forecaster": {
            "window_length": 10,
            "hidden_size": 32,
            "support_size": 100,
            "query_size": 10,
            "inner_steps": 5,
            "inner_lr": 0.1,
            "tasks_per_batch": 32,
            "base_max_epochs": 10,
            "max_epochs": 10,
        },
    },
    "medium": {
        "n_train": 100,
        "n_test": 40,
        "train_points": 400,
        "history": 120,
        "n_eval": 40,
        "phi_range": [-0.6, 0.6],
        "forecaster": {
            "window_length": 10,
            "hidden_size": 16,
            "support_size": 100,
            "query_size": 10,
            "inner_steps": 5,
            "inner_lr": 0.1,
            "tasks_per_batch": 32,
            "base_max_epochs": 8,
            "max_epochs": 8,
        },
    },
    "quick": {
        "n_train": 20,
        "n_test": 8,
        "train_points": 200,
        "history": 120,
        "n_eval": 10,
        "phi_range": [-0.6, 0.6],
        "forecaster": {
            "window_length": 10,
            "hidden_size": 8,
            "support_size": 100,
            "query_size": 10,
            "inner_steps": 2,
            "tasks_per_batch": 16,
            "base_max_epochs": 1,
            "max_epochs": 1,
        },
    },
}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=NEURAL)
    parser.add_argument("--out", default="benchmarks/results/few_shot.json")
    parser.add_argument(
        "--merge", nargs="+", metavar="JSON", help="summarise result files of earlier runs"
    )
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out)
        return
    warnings.simplefilter("ignore", FutureWarning)
    torch.set_num_threads(1)
    cfg = CONFIGS["quick" if args.quick else args.config]
    methods = list(dict.fromkeys(["none", *args.methods]))
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(seed, cfg, methods))
    write(cfg, args.seeds, runs, methods, args.out)


def write(
    cfg: dict[str, Any], seeds: list[int], runs: list[dict[str, Any]], methods: list[str], out: str
) -> None:
    """Print the summary table and write everything to ``out`` as JSON."""
    table = summarise(runs, methods)
    print(table.round(4).to_string())
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "config": cfg,
                "seeds": seeds,
                "methods": methods,
                "summary": table.reset_index().to_dict(orient="records"),
                "runs": runs,
                "machine": {
                    "python": sys.version.split()[0],
                    "torch": torch.__version__,
                    "platform": platform.platform(),
                },
                "date": time.strftime("%Y-%m-%d"),
            },
            indent=1,
        )
    )


def merge(files: list[str], out: str) -> None:
    """Summarise several result files (e.g. seeds run in parallel processes)."""
    results = [json.loads(Path(f).read_text()) for f in files]
    cfg = results[0]["config"]
    if any(r["config"] != cfg for r in results):
        raise ValueError("Result files were produced with different configurations.")
    methods = results[0].get("methods") or [
        m for m in results[0]["runs"][0]["scores"] if m not in ("ar1", "oracle")
    ]
    seeds = [s for r in results for s in r["seeds"]]
    write(cfg, seeds, [run for r in results for run in r["runs"]], methods, out)


if __name__ == "__main__":
    main()
