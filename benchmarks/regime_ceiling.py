"""How much of the hidden-regime gap can a learner close that is told almost everything?

``few_shot.py`` asks the default learner to close 80 % of the pooled-to-oracle
gap on the hidden-regime family; it closes about 28 %. This script measures
two forecasters that are *told* what no learner is (the two volatilities, the
staying probability and the prior of the coefficients), on the same unseen
series, origins and scores as ``few_shot.py``:

* ``hamilton_prior``: the Hamilton filter with the prior's mean coefficients
  (0.35 calm, -0.35 turbulent): what a perfect pooled model knows before it
  adapts to a series;
* ``hamilton_prior_head``: that filter's predicted regime probabilities ``p``
  as features, ``r[t-1] * p_calm`` and ``r[t-1] * p_turbulent``, with a
  Bayesian linear head per series (prior: the coefficients' true mean and
  variance; each return weighted by its predicted precision) re-solved on the
  same sliding 120-point history: the best a closed-form head on ideal
  features can do;

next to the Bayes-optimal forecast (the posterior over both coefficients,
``bayes``), read with the pooled LSTM, the default and the oracle from the
stored ``few_shot.py`` results. The head and the Bayes forecast are also
restarted at each origin on the sliding history alone (``*_window``). The
test series are regenerated from each run's seed, and their oracle is
checked against the stored one.

Run ``python benchmarks/regime_ceiling.py`` (ten seeds from the stored files,
about 2 minutes on 2 CPUs) or ``--quick`` (seed 0).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _regime_family import (
    REGIME_PHI_RANGES,
    REGIME_SIGMAS,
    REGIME_STAY,
    bayes_regime,
    hamilton_filter,
)
from _regime_scoring import STORED, regenerate, stored_runs, summarise
from _reporting import parse_args, relative_mse, write_report


def informed_forecasts(returns: np.ndarray, history: int, n_eval: int) -> dict[str, np.ndarray]:
    """The two informed forecasters' predictions at origins ``history .. history + n_eval - 1``."""
    n = len(returns)
    sigmas = np.asarray(REGIME_SIGMAS)
    prior_mean = np.array([np.mean(r) for r in REGIME_PHI_RANGES])
    prior_var = np.array([(hi - lo) ** 2 / 12 for lo, hi in REGIME_PHI_RANGES])  # uniform
    filtered = hamilton_filter(
        returns, np.tile(prior_mean, (n, 1)), sigmas, REGIME_STAY, keep_predicted=True
    )
    p = filtered.predicted  # (n, t, 2)
    lagged = np.concatenate([np.zeros((n, 1)), returns[:, :-1]], axis=1)
    features = p * lagged[..., None]
    precision = 1.0 / (p @ sigmas**2)  # each return's predicted precision
    head = np.empty((n, n_eval))
    for j, t in enumerate(range(history, history + n_eval)):
        # The regression sees the sliding history, returns t - history + 1 .. t - 1
        # (the first has no lag within it); the probabilities are filtered from
        # the series' start, as the oracle's and the Bayes bound's are: the
        # returns a learner has been given (fit on the history, then updates).
        window = slice(t - history + 2, t)
        x, y, w = features[:, window], returns[:, window], precision[:, window]
        gram = np.einsum("ntk,nt,ntl->nkl", x, w, x) + np.diag(1 / prior_var)
        moment = np.einsum("ntk,nt,nt->nk", x, w, y) + prior_mean / prior_var
        coef = np.linalg.solve(gram, moment[..., None])[..., 0]
        head[:, j] = np.sum(coef * features[:, t], axis=1)
    origins = slice(history, history + n_eval)
    return {"hamilton_prior": filtered.forecasts[:, origins], "hamilton_prior_head": head}


def window_forecasts(returns: np.ndarray, history: int, n_eval: int) -> dict[str, np.ndarray]:
    """The head and the Bayes forecast restarted at each origin on its sliding history alone.

    The rows above filter from the series' first return, as the learners have
    seen it (fit on the history, then one update per origin); these see only
    the ``history - 1`` returns before the origin, as the refitted AR does.
    """
    n = len(returns)
    head, bayes = np.empty((n, n_eval)), np.empty((n, n_eval))
    for j, t in enumerate(range(history, history + n_eval)):
        # Position 0 is the return without a lag (zero), as at a series' start.
        window = np.concatenate([np.zeros((n, 1)), returns[:, t - history + 1 : t + 1]], axis=1)
        head[:, j] = informed_forecasts(window, history, 1)["hamilton_prior_head"][:, 0]
        bayes[:, j] = bayes_regime(window)[:, history]
    return {"hamilton_prior_head_window": head, "bayes_window": bayes}


def run(seed: int, cfg: dict[str, Any], stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-series relative MSE of the stored and the informed methods on one seed."""
    history, n_eval = cfg["history"], cfg["n_eval"]
    _, test, actual = regenerate(seed, cfg, stored)
    informed = informed_forecasts(test, history, n_eval) | window_forecasts(test, history, n_eval)
    return {**stored, **{name: relative_mse(pred, actual) for name, pred in informed.items()}}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seed 0 only")
    parser.add_argument("--stored", nargs="+", default=STORED, help="few_shot.py result files")
    parser.add_argument("--out", default="benchmarks/results/regime_ceiling.json")
    args = parse_args(parser, argv)
    cfg, stored = stored_runs(args.stored)
    seeds = sorted(stored)[:1] if args.quick else sorted(stored)
    runs = {seed: run(seed, cfg, stored[seed]) for seed in seeds}
    write_report(
        args.out,
        summarise(runs),
        config=cfg,
        seeds=seeds,
        runs={str(s): {m: v.tolist() for m, v in r.items()} for s, r in runs.items()},
    )


if __name__ == "__main__":
    main()
