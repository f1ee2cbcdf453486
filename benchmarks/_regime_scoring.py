"""Reading ``few_shot.py``'s stored hidden-regime runs and scoring against them.

Shared by ``regime_ceiling.py`` and ``regime_sequence_lstm.py``, which rescore
the same unseen series (regenerated from each stored seed) with forecasters of
their own and report them next to the stored pooled LSTM, default, Bayes bound
and oracle, paired per series.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _regime_family import regime_returns
from _reporting import relative_mse, standard_error

STORED = [
    "benchmarks/results/few_shot_default_seeds.json",
    "benchmarks/results/few_shot_regime_seeds.json",
]
#: Read from the stored runs; the rest are computed here.
STORED_METHODS = ("none", "ridge", "bayes", "oracle")


def stored_runs(files: list[str]) -> tuple[dict[str, Any], dict[int, dict[str, np.ndarray]]]:
    """The few-shot configuration and, per seed, the stored regime scores."""
    cfg, runs = None, {}
    for f in files:
        result = json.loads(Path(f).read_text())
        if cfg is not None and result["config"] != cfg:
            raise ValueError(f"{f} was produced with another configuration than {files[0]}.")
        cfg = result["config"]
        for run in result["runs"]:
            if run["family"] == "regime":
                scores = {m: np.asarray(run["scores"][m]) for m in STORED_METHODS}
                runs[run["seed"]] = scores
    if cfg is None or not runs:
        raise ValueError("No hidden-regime runs in the given files.")
    return cfg, runs


def summarise(runs: dict[int, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Relative MSE and share of the pooled-to-oracle gap closed, paired against the pooled LSTM."""
    stack = {m: np.concatenate([r[m] for r in runs.values()]) for m in next(iter(runs.values()))}
    pooled = stack["none"]
    gap = pooled.mean() - stack["oracle"].mean()
    rows = []
    for method, values in stack.items():
        diff = values - pooled
        rows.append(
            {
                "method": method,
                "rel_mse": values.mean(),
                "gap_closed": -diff.mean() / gap,
                "gap_closed_se": standard_error(diff) / gap,
                "vs_bayes": (values - stack["bayes"]).mean(),
                "vs_bayes_se": standard_error(values - stack["bayes"]),
                "n_series": len(values),
            }
        )
    return pd.DataFrame(rows).set_index("method")


def regenerate(
    seed: int, cfg: dict[str, Any], stored: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stored seed's returns, its unseen series and their scored returns, checked.

    Returns every series' returns (pretraining series first), the unseen
    series' first ``history + n_eval`` returns, and the ``n_eval`` returns
    scored; raises if their oracle's scores differ from the stored run's.
    """
    rng = np.random.default_rng(seed)
    n_train, n_test = cfg["n_train"], cfg["n_test"]
    history, n_eval = cfg["history"], cfg["n_eval"]
    returns, oracle, _ = regime_returns(n_train + n_test, cfg["train_points"], rng)
    returns[:, 0] = 0.0
    test = returns[n_train:, : history + n_eval]
    actual = test[:, history : history + n_eval]
    oracle_scores = relative_mse(oracle[n_train:, history : history + n_eval], actual)
    if not np.allclose(oracle_scores, stored["oracle"]):
        raise RuntimeError(f"seed {seed}: the regenerated series differ from the stored run's.")
    return returns, test, actual
