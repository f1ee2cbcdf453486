"""Few-shot benchmark on generated families: does adaptation find structure in a short history?

Protocol (one family, one seed)
-------------------------------
* A generated panel of log-price series whose returns follow one family, each
  series with parameters of its own:

  - ``ar1``: AR(1), ``phi`` uniform on (-0.6, 0.6), Gaussian shocks;
  - ``ar2t``: AR(2) (stationary coefficient pairs), Student-t shocks (4 d.f.);
  - ``regime``: AR(1) switching between a trending calm regime and a
    mean-reverting turbulent one (hidden Markov chain, per-series
    coefficients); its oracle is the Hamilton filter with the true parameters
    (the best forecast from past returns; the regime itself is not observed);
  - ``vol``: AR(1) with volatilities spread over two orders of magnitude and a
    volatility break half-way through each series.

* Every neural forecaster (``MetaLSTMForecaster`` with each ``meta_learner``,
  *package defaults* except ``window_length=10`` and ``horizon=1``, and a
  120 s pretraining budget, ``max_time``) is pretrained on ``n_train``
  series, then fitted (adapted) on ``n_test`` unseen series given ``history``
  points, and rolled forward one step at a time with ``update`` over
  ``n_eval`` points (no meta-training at test time).
* Baselines on the same origins: the random walk (zero return), an AR model of
  the family's order refitted by least squares on the same sliding history,
  and the oracle (the true conditional mean). For ``regime`` also the
  family's own model (``statsmodels``): a two-regime Markov-switching AR(1)
  refitted on each sliding history (``msar``), and the same model with
  parameters averaged over fits to the pretraining series (``msar_pooled``);
  and the Bayes-optimal forecast given the family's prior (``bayes``), the
  bound that no method beats in expectation.

Metric: one-step MSE of the log-return forecast relative to the random walk's,
per series. ``gap closed`` = (pooled - method) / (pooled - oracle). Paired
differences against the pooled LSTM are per series, with standard errors over
series (and seeds).

Run ``python benchmarks/few_shot.py`` (every family and learner, ~40 min on 2
CPUs; ``--families``/``--methods`` to narrow it) or ``--quick`` (smoke).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _regime_family import bayes_regime, hamilton_filter, regime_returns
from _reporting import (
    QUICK_FORECASTER,
    parse_args,
    relative_mse,
    rolling_one_step,
    standard_error,
    to_panel,
    write_report,
)

from sk_metalstm.forecaster import MetaLSTMForecaster

NEURAL = ["none", "finetune", "maml", "metasgd", "reptile", "lstm", "ridge"]

Family = Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray, int]]


def _ar1(n: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    phi = rng.uniform(-0.6, 0.6, n)
    sigma = np.exp(rng.uniform(np.log(0.005), np.log(0.03), n))
    r = np.zeros((n, t))
    for k in range(1, t):
        r[:, k] = phi * r[:, k - 1] + sigma * rng.standard_normal(n)
    return r, phi[:, None] * np.roll(r, 1, axis=1), 1


def _ar2t(n: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    # Stationary AR(2): draw the two (real) roots' inverses in (-0.7, 0.7).
    a, b = rng.uniform(-0.7, 0.7, n), rng.uniform(-0.7, 0.7, n)
    phi1, phi2 = a + b, -a * b
    sigma = np.exp(rng.uniform(np.log(0.005), np.log(0.03), n))
    shocks = rng.standard_t(4, (n, t)) / np.sqrt(2.0)  # unit variance
    r = np.zeros((n, t))
    for k in range(2, t):
        r[:, k] = phi1 * r[:, k - 1] + phi2 * r[:, k - 2] + sigma * shocks[:, k]
    oracle = phi1[:, None] * np.roll(r, 1, axis=1) + phi2[:, None] * np.roll(r, 2, axis=1)
    return r, oracle, 2


def _vol(n: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    phi = rng.uniform(-0.6, 0.6, n)
    sigma = np.exp(rng.uniform(np.log(0.001), np.log(0.1), n))
    factor = np.where(rng.random(n) < 0.5, 3.0, 1 / 3.0)
    r = np.zeros((n, t))
    for k in range(1, t):
        s = np.where(k < t // 2, sigma, sigma * factor)
        r[:, k] = phi * r[:, k - 1] + s * rng.standard_normal(n)
    return r, phi[:, None] * np.roll(r, 1, axis=1), 1


FAMILIES: dict[str, Family] = {"ar1": _ar1, "ar2t": _ar2t, "regime": regime_returns, "vol": _vol}


def to_prices(returns: np.ndarray, names: list[str]) -> pd.DataFrame:
    """(time x series) prices ``100 * exp(cumsum(r))`` on business days."""
    index = pd.bdate_range("2000-01-03", periods=returns.shape[1])
    return pd.DataFrame(100 * np.exp(np.cumsum(returns, axis=1)).T, index=index, columns=names)


def rolling_ar(returns: np.ndarray, order: int, history: int, n_eval: int) -> np.ndarray:
    """AR(``order``) without intercept, least squares on each sliding history.

    ``returns[:, k]`` is the return ending at price ``k`` (``returns[:, 0]`` is 0);
    the forecast of ``returns[:, t]`` uses returns ``t - history + 1 .. t - 1``.
    """
    preds = np.empty((returns.shape[0], n_eval))
    for j, t in enumerate(range(history, history + n_eval)):
        r = returns[:, t - history + 1 : t]
        lags = np.stack([r[:, order - 1 - i : r.shape[1] - 1 - i] for i in range(order)], -1)
        target = r[:, order:]
        for s in range(len(r)):
            coef = np.linalg.lstsq(lags[s], target[s], rcond=None)[0]
            preds[s, j] = coef @ r[s, -1 : -order - 1 : -1]
    return preds


def _markov_switching_fit(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Two-regime AR(1) (switching coefficient and variance) fitted by ML to ``r``.

    Returns the coefficients, volatilities and staying probabilities (in the
    fit's regime order) and the statsmodels result. Fitted on ``100 * r`` (the
    optimiser's scale), converted back.
    """
    from statsmodels.tsa.regime_switching.markov_autoregression import MarkovAutoregression

    model = MarkovAutoregression(
        100 * r, k_regimes=2, order=1, trend="n", switching_ar=True, switching_variance=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the fit is used as it is
        result = model.fit(disp=False, search_reps=5, rng=0)  # seeded: repeatable
    params = dict(zip(model.param_names, result.params, strict=True))
    phi = np.array([params["ar.L1[0]"], params["ar.L1[1]"]])
    sigma = np.sqrt([params["sigma2[0]"], params["sigma2[1]"]]) / 100
    stay = np.diag(result.regime_transition[:, :, -1])
    return phi, sigma, stay, result


def rolling_markov_switching(
    returns: np.ndarray, history: int, n_eval: int
) -> tuple[np.ndarray, int]:
    """The regime family's own model refitted on each sliding history, and its failures.

    Forecast: each regime's AR(1) forecast weighted by its predicted
    probability (the filtered probabilities moved one step by the fitted
    transition matrix). A fit that fails or forecasts a non-finite value
    forecasts zero (the random walk) and is counted.
    """
    preds = np.zeros((returns.shape[0], n_eval))
    failed = 0
    for s in range(returns.shape[0]):
        for j, t in enumerate(range(history, history + n_eval)):
            r = returns[s, t - history + 1 : t]
            try:
                phi, _, _, result = _markov_switching_fit(r)
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                # e.g. statsmodels' "Steady-state probabilities could not be constructed"
                failed += 1
                continue
            transition = result.regime_transition[:, :, -1]  # [to, from]
            predicted = transition @ result.filtered_marginal_probabilities[-1]
            value = float(predicted @ phi * r[-1])
            if np.isfinite(value):
                preds[s, j] = value
            else:
                failed += 1
    return preds, failed


def pooled_markov_switching(
    train: np.ndarray, test: np.ndarray, history: int, n_eval: int
) -> np.ndarray:
    """The regime family's own model with parameters pooled over the pretraining series.

    Each pretraining series is fitted on its own; the coefficients, volatilities
    (calm regime first) and staying probability are averaged, and every test
    series is Hamilton-filtered with them: what a correctly specified model
    knows from the panel alone, before it adapts to a series.
    """
    fits = []
    for r in train:
        try:
            fits.append(_markov_switching_fit(r[1:])[:3])
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            continue  # a failed fit leaves the average to the others
    # Regime labels are arbitrary per fit: align them, calm regime first.
    calm_first = [tuple(p[np.argsort(sigma)] for p in (phi, sigma)) for phi, sigma, _ in fits]
    phi, sigma = (np.mean([f[k] for f in calm_first], axis=0) for k in (0, 1))
    stay = float(np.mean([f[2] for f in fits]))
    n = len(test)
    filtered = hamilton_filter(test, np.tile(phi, (n, 1)), np.tile(sigma, (n, 1)), stay).forecasts
    return filtered[:, history : history + n_eval]


def run(family: str, seed: int, cfg: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """All methods on one generated panel: per-series relative MSE and timings."""
    rng = np.random.default_rng(seed)
    n_train, n_test = cfg["n_train"], cfg["n_test"]
    history, n_eval = cfg["history"], cfg["n_eval"]
    returns, oracle, order = FAMILIES[family](n_train + n_test, cfg["train_points"], rng)
    returns[:, 0], oracle[:, : order + 1] = 0.0, 0.0
    names = [f"s{i:03d}" for i in range(n_train + n_test)]
    train = to_panel(to_prices(returns[:n_train], names[:n_train]))
    test_returns = returns[n_train:, : history + n_eval]
    test = to_prices(test_returns, names[n_train:])
    actual = test_returns[:, history : history + n_eval]
    scores = {
        "oracle": relative_mse(oracle[n_train:, history : history + n_eval], actual),
        f"ar{order}": relative_mse(rolling_ar(test_returns, order, history, n_eval), actual),
    }
    if family == "regime":
        scores["bayes"] = relative_mse(
            bayes_regime(test_returns)[:, history : history + n_eval], actual
        )
        scores["msar_pooled"] = relative_mse(
            pooled_markov_switching(returns[:n_train], test_returns, history, n_eval), actual
        )
        refitted, failed = rolling_markov_switching(test_returns, history, n_eval)
        scores["msar"] = relative_mse(refitted, actual)
        print(f"  regime seed {seed}: {failed} Markov-switching refits failed", flush=True)
    seconds: dict[str, dict[str, float]] = {}
    for name in methods:
        start = time.perf_counter()
        forecaster = MetaLSTMForecaster(
            meta_learner=name, random_state=seed, verbose=0, **cfg["forecaster"]
        )
        forecaster.pretrain(train)
        pretrain_s = time.perf_counter() - start
        pred = rolling_one_step(forecaster, test, history, "log_return")
        scores[name] = relative_mse(pred, actual)
        seconds[name] = {"pretrain": pretrain_s, "total": time.perf_counter() - start}
        print(
            f"  {family} seed {seed} {name:9s} relMSE {scores[name].mean():.4f} "
            f"(pretrain {pretrain_s:.0f}s, total {seconds[name]['total']:.0f}s)",
            flush=True,
        )
    print(
        f"  {family} seed {seed} oracle {scores['oracle'].mean():.4f}; "
        f"ar{order} {scores[f'ar{order}'].mean():.4f}",
        flush=True,
    )
    return {
        "family": family,
        "seed": seed,
        "scores": {k: v.tolist() for k, v in scores.items()},
        "seconds": seconds,
    }


def summarise(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Per family and method: relative MSE, paired difference vs pooled (s.e.), gap closed."""
    rows = []
    for family in dict.fromkeys(r["family"] for r in runs):
        mine = [r for r in runs if r["family"] == family]
        stack = {
            m: np.concatenate([r["scores"][m] for r in mine])
            for m in mine[0]["scores"]
            if all(m in r["scores"] for r in mine)
        }
        if "none" not in stack:
            continue
        pooled, oracle = stack["none"], stack["oracle"]
        gap = pooled.mean() - oracle.mean()
        for method, values in stack.items():
            diff = values - pooled
            se = standard_error(diff)
            rows.append(
                {
                    "family": family,
                    "method": method,
                    "rel_mse": values.mean(),
                    "diff_vs_pooled": diff.mean(),
                    "diff_se": se,
                    "gap_closed": -diff.mean() / gap,
                    "gap_closed_se": se / abs(gap),
                    "n_series": len(values),
                }
            )
    return pd.DataFrame(rows).set_index(["family", "method"])


CONFIGS = {
    "full": {
        "n_train": 80,
        "n_test": 40,
        "train_points": 500,
        "history": 120,
        "n_eval": 40,
        # Every learner gets the same pretraining time budget (ridge and the
        # pooled model finish well within it; the gradient learners may not).
        "forecaster": {"window_length": 10, "horizon": 1, "max_time": 120},
    },
    "quick": {
        "n_train": 8,
        "n_test": 4,
        "train_points": 200,
        "history": 120,
        "n_eval": 5,
        "forecaster": {**QUICK_FORECASTER, "window_length": 10, "horizon": 1, "support_size": 32},
    },
}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=NEURAL)
    parser.add_argument("--out", default="benchmarks/results/few_shot.json")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="summarise earlier result files")
    args = parse_args(parser, argv)
    if args.merge:
        write(*merge(args.merge), args.out)
        return
    warnings.simplefilter("ignore", FutureWarning)
    cfg = CONFIGS["quick" if args.quick else "full"]
    methods = list(dict.fromkeys(["none", *args.methods]))
    runs = [run(f, s, cfg, methods) for f in args.families for s in args.seeds]
    write(cfg, runs, args.out)


def merge(files: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Runs of several result files; a later file's scores replace an earlier one's.

    Runs are matched by family and seed (same generated data), so methods run
    in separate processes, or re-run after a change, combine into one table.
    """
    results = [json.loads(Path(f).read_text()) for f in files]
    cfg = results[0]["config"]
    if any(r["config"] != cfg for r in results):
        raise ValueError("Result files were produced with different configurations.")
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for result in results:
        for run in result["runs"]:
            key = (run["family"], run["seed"])
            if key not in runs:
                runs[key] = {**run, "scores": {}, "seconds": {}}
            runs[key]["scores"].update(run["scores"])
            runs[key]["seconds"].update(run["seconds"])
    return cfg, list(runs.values())


def write(cfg: dict[str, Any], runs: list[dict[str, Any]], out: str) -> None:
    """Print the summary and write everything to ``out`` as JSON."""
    write_report(out, summarise(runs), config=cfg, runs=runs)


if __name__ == "__main__":
    main()
