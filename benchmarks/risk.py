"""Risk forecasts on held-out real series: every learner against GARCH, EWMA and HS.

Protocol
--------
* Bundled data only. Held-out series (never pretrained on): companies 11-20 of
  ``load_stock_prices`` and currencies 8-17 of ``load_exchange_rates`` (daily log
  returns), and the three quarterly interest rates of ``load_interest_rates``
  (scored on rate changes). Each daily series gets
  ``history`` (250) returns, then ``n_eval`` (100) rolling origins at the end of
  its data; the rates get ``rates_history`` (96) quarters and ``rates_eval``
  (100) origins. Targets: the next return (1 step) and the sum of the next 5
  (5 steps), at every origin (5-step targets overlap).
* Baselines, on the last ``history`` returns at every origin: historical
  simulation (empirical quantiles of the 1- or overlapping 5-step sums),
  RiskMetrics EWMA (lambda 0.94, zero mean, normal, square-root-of-time for 5
  steps) and GARCH(1,1) with constant mean and Student-t shocks (``arch``,
  ``arch_model(100 * r, vol="GARCH", p=1, q=1, dist="t")``), refitted every
  ``garch_refit`` (20) origins and filtered one day at a time in between; its
  5-step variance is the sum of the forecast daily variances, with the fitted
  standardised t quantiles.
* The package: ``MetaLSTMForecaster(horizon=5)`` with each ``meta_learner``
  and otherwise default settings, pretrained once on the first 10 companies
  and 7 currencies, cut before the first daily origin (every pretraining
  observation precedes every daily forecast; the rates, of another asset
  class and frequency, are scored over 1983-2009, years the daily
  pretraining data overlap and run past: a transfer test, not a strictly
  earlier one). Fitted on each group's
  histories (``from_pretrained``) with the default ``transform="auto"``: log
  returns for every group, the positive rates included (their quantiles are
  scored as rate changes; ``--rates-transform difference`` models the rates'
  changes instead, as before 2026-12-06), then ``predict_quantiles(fh=[1, 5])`` and
  ``update`` one origin at a time (adaptation only, the history grows). The
  default learner is also scored with Gaussian tails instead of its calibrated
  residual quantiles (``ridge_gaussian``): what the conformal step adds.

Metrics per horizon and scope (daily = stocks + fx; all = daily + rates): mean
pinball loss over the quantiles 1/5/10/90/95/99 % and CRPS (twice the mean
pinball loss over the 99 levels 1..99 %), both relative to GARCH-t: the mean
over series of each series' loss ratio, with its standard error over series
(unit-free, so stocks, currencies and rates pool; the origins of one series
are not independent, so they are not counted as separate observations);
the log score (negative log density of the target, each method's 99
quantiles made a distribution as ``predict_proba`` makes one: linear in
between, exponential tails), as its per-series mean difference from GARCH-t's,
with its standard error over series;
coverage of the 80/90/98 % central intervals, also when the trailing 20-day
realised volatility is above vs below its median over the origins of the same
series; for the 95 % and 99 % VaR (lower tail) the exceedance rate, Kupiec's
unconditional-coverage and Christoffersen's independence test p-values (hits
pooled over series, transitions counted within each series; overlapping
5-step targets make both over-reject) and the number of series whose own
Kupiec test rejects at 5 %.

Run ``python benchmarks/risk.py`` (every learner, ~35 min on 2 CPUs;
``--methods`` to narrow it) or ``--quick`` (smoke).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from _reporting import (
    QUICK_FORECASTER,
    command_line,
    environment,
    parse_args,
    standard_error,
    to_panel,
    to_wide,
    wide_increments,
    write_report,
)
from _risk_scoring import (
    ALPHAS,
    COLUMNS,
    GRID,
    HORIZONS,
    garch_t,
    log_score,
    package_quantiles,
    pinball,
    targets,
)
from scipy import stats

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import load_exchange_rates, load_interest_rates, load_stock_prices

#: Central intervals: nominal coverage -> (lower, upper) quantile level.
INTERVALS = {0.80: (0.10, 0.90), 0.90: (0.05, 0.95), 0.98: (0.01, 0.99)}
VAR_LEVELS = [0.05, 0.01]
BASELINES = ["hist_sim", "ewma", "garch_t"]
NEURAL = ["ridge", "none", "lstm", "metasgd", "maml", "reptile", "finetune"]
REFERENCE = "garch_t"


# ---------------------------------------------------------------------- data
def held_out_sets(cfg: dict[str, Any]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Pretraining panel (levels) and held-out groups.

    Each group: name, wide levels, history, ``kind`` (the increments that are
    scored and that the baselines model) and ``transform`` (the package's).
    """
    stocks = to_wide(load_stock_prices()).dropna()
    fx = to_wide(load_exchange_rates()).dropna()
    rates = to_wide(load_interest_rates()).dropna()
    n_stock, n_fx = cfg["n_pretrain_stocks"], cfg["n_pretrain_fx"]
    last_step = max(HORIZONS) - 1
    daily_rows = cfg["history"] + cfg["n_eval"] + last_step + 1
    rate_rows = cfg["rates_history"] + cfg["rates_eval"] + last_step + 1
    groups = [
        {
            "name": "stocks",
            "wide": stocks.iloc[-daily_rows:, n_stock : n_stock + cfg["n_test_stocks"]],
            "history": cfg["history"],
            "kind": "log_return",
            "transform": "auto",
        },
        {
            "name": "fx",
            "wide": fx.iloc[-daily_rows:, n_fx : n_fx + cfg["n_test_fx"]],
            "history": cfg["history"],
            "kind": "log_return",
            "transform": "auto",
        },
        {
            "name": "rates",
            "wide": rates.iloc[-rate_rows:, : cfg["n_test_rates"]],
            "history": cfg["rates_history"],
            "kind": "difference",
            # The package's default ("auto": log returns, as these rates are
            # positive) unless --rates-transform says otherwise.
            "transform": cfg.get("rates_transform", "auto"),
        },
    ]
    groups = [g for g in groups if g["wide"].shape[1]]
    # First origin: the date of the first forecast target of any daily series.
    first_target = min(g["wide"].index[g["history"] + 1] for g in groups[:2])
    cut = first_target - pd.Timedelta(days=1)
    train = pd.concat(
        [stocks.iloc[:, :n_stock].loc[:cut], fx.iloc[:, :n_fx].loc[:cut]], axis=1
    ).dropna(how="all")
    return to_panel(train).dropna(), groups


# ----------------------------------------------------------------- baselines
def windows(r: np.ndarray, history: int, n_origins: int) -> np.ndarray:
    """(series, origins, history): the increments before each origin."""
    return np.lib.stride_tricks.sliding_window_view(r, history, axis=1)[:, :n_origins]


def hist_sim(r: np.ndarray, history: int, n_origins: int, steps: int) -> np.ndarray:
    """Empirical quantiles of the history's (overlapping) ``steps``-sums."""
    past = windows(r, history, n_origins)
    if steps > 1:
        past = np.lib.stride_tricks.sliding_window_view(past, steps, axis=-1).sum(-1)
    return np.moveaxis(np.quantile(past, GRID, axis=-1), 0, -1)


def ewma(
    r: np.ndarray, history: int, n_origins: int, steps: int, lam: float = 0.94
) -> np.ndarray:
    """RiskMetrics: zero mean, normal, EWMA variance, square-root-of-time over ``steps``."""
    weights = lam ** np.arange(history)[::-1]  # newest increment weighs most
    sigma2 = windows(r, history, n_origins) ** 2 @ weights / weights.sum()
    return np.sqrt(steps * sigma2)[..., None] * stats.norm.ppf(GRID)


# ---------------------------------------------------------------- the package


def gaussian_tails(state: Any) -> Any:
    """``state`` whose calibration residuals are exact standard-normal quantiles.

    Its forecasts are the network's Gaussian location-scale forecasts without
    the conformal step: what calibrating on standardised residuals adds.
    """
    z = stats.norm.ppf((np.arange(4000) + 0.5) / 4000)
    z = np.repeat(z[:, None], state.config["horizon"], axis=1)
    return dataclasses.replace(state, residuals={"step": z, "cumulative": z})


# ------------------------------------------------------------------- metrics


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * np.log(y)


def kupiec_p(hits: np.ndarray, p: float) -> float:
    """Kupiec unconditional-coverage LR test p-value (chi2, 1 df)."""
    n, x = hits.size, int(hits.sum())
    pi = x / n
    lr = -2 * (_xlogy(n - x, 1 - p) + _xlogy(x, p) - _xlogy(n - x, 1 - pi) - _xlogy(x, pi))
    return float(stats.chi2.sf(max(lr, 0.0), 1))


def christoffersen_p(hits: np.ndarray) -> float:
    """Christoffersen independence LR test p-value; ``hits`` (series, origins).

    First-order transitions are counted within each series and pooled.
    """
    prev, cur = hits[:, :-1].ravel(), hits[:, 1:].ravel()
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    if n01 + n11 == 0 or n00 + n10 == 0:
        return float("nan")  # no exceedance (or nothing else): untestable
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi0 = n01 / max(n00 + n01, 1)
    pi1 = n11 / max(n10 + n11, 1)
    restricted = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    free = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    return float(stats.chi2.sf(max(-2 * (restricted - free), 0.0), 1))


def _paired(loss: np.ndarray, loss_ref: np.ndarray) -> tuple[float, float, float]:
    """Mean over series of the loss ratio, and the ratio minus 1 with its s.e. over series.

    Per-series ratios are unit-free, so stocks, currencies and rates pool.
    """
    ratio = loss.mean(axis=1) / loss_ref.mean(axis=1)
    se = standard_error(ratio) if len(ratio) > 1 else float("nan")
    return float(ratio.mean()), float(ratio.mean() - 1), se


def score(
    y: np.ndarray, q: np.ndarray, q_ref: np.ndarray, ref_log: np.ndarray, high_vol: np.ndarray
) -> dict:
    """Every metric of one method on one scope and horizon (``q``: full grid).

    ``ref_log`` is GARCH's ``log_score(y, q_ref)``, computed once for all methods.
    """
    alphas = np.asarray(ALPHAS)
    row: dict[str, Any] = {}
    for name, levels, cols, factor in (
        ("pinball", alphas, COLUMNS, 1.0),
        ("crps", GRID, slice(None), 2.0),
    ):
        loss = factor * pinball(y, q[..., cols], levels)
        loss_ref = factor * pinball(y, q_ref[..., cols], levels)
        ratio, diff, se = _paired(loss, loss_ref)
        row[f"{name}_bp"] = 1e4 * loss.mean()
        row[f"{name}_rel_garch"] = ratio
        row[f"{name}_rel_garch_se"] = se
    # Log score (negative log density; per series, the difference from GARCH's,
    # which removes the series' units). Lower is better.
    diff = (log_score(y, q) - ref_log).mean(axis=1)
    row["log_score_minus_garch"] = float(diff.mean())
    row["log_score_minus_garch_se"] = standard_error(diff) if len(diff) > 1 else float("nan")
    col = {a: c for a, c in zip(ALPHAS, COLUMNS, strict=True)}
    for nominal, (lo, hi) in INTERVALS.items():
        inside = (y >= q[..., col[lo]]) & (y <= q[..., col[hi]])
        tag = f"cov{round(100 * nominal)}"
        row[tag] = inside.mean()
        if nominal in (0.90, 0.98):
            row[f"{tag}_hi_vol"] = inside[high_vol].mean()
            row[f"{tag}_lo_vol"] = inside[~high_vol].mean()
    for p in VAR_LEVELS:
        hits = y < q[..., col[p]]
        tag = f"var{round(100 * (1 - p))}"
        row[f"{tag}_rate"] = hits.mean()
        row[f"{tag}_kupiec_p"] = kupiec_p(hits, p)
        row[f"{tag}_christ_p"] = christoffersen_p(hits)
        row[f"{tag}_n_reject"] = int(sum(kupiec_p(h, p) < 0.05 for h in hits))
    return row


# ----------------------------------------------------------------------- run
def _timed(seconds: dict[str, float], name: str, fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = fn(*args)
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
    return result


def run(cfg: dict[str, Any], methods: list[str], seed: int) -> dict[str, Any]:
    """Quantile forecasts of every method on every held-out series, per horizon."""
    train, groups = held_out_sets(cfg)
    quantiles: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    actual, high_vol, seconds, origins = {}, {}, {}, {}
    failed = 0
    for g in groups:
        history, name = g["history"], g["name"]
        n = cfg["n_eval"] if name != "rates" else cfg["rates_eval"]
        origins[name] = n
        r = wide_increments(g["wide"], g["kind"])
        actual[name] = {k: targets(r, history, n, k) for k in HORIZONS}
        vol = np.std(windows(r, history, n)[..., -20:], axis=-1, ddof=1)
        high_vol[name] = vol > np.median(vol, axis=1, keepdims=True)
        for method, fn in (("hist_sim", hist_sim), ("ewma", ewma)):
            quantiles.setdefault(method, {})[name] = {
                k: _timed(seconds, method, fn, r, history, n, k) for k in HORIZONS
            }
        garch, bad = _timed(seconds, "garch_t", garch_t, r, history, n, cfg["garch_refit"])
        quantiles.setdefault("garch_t", {})[name] = garch
        failed += bad
    print(f"  baselines done ({ {k: round(v, 1) for k, v in seconds.items()} })", flush=True)
    for method in methods:
        start = time.perf_counter()
        forecaster = MetaLSTMForecaster(
            meta_learner=method, horizon=max(HORIZONS), random_state=seed,
            verbose=cfg["verbose"], **cfg["forecaster"],
        )
        forecaster.pretrain(train)
        pretrain_s = time.perf_counter() - start
        state = forecaster.pretrained_state_
        variants = {method: state}
        if method == NEURAL[0]:  # the default: with Gaussian instead of calibrated tails
            variants[f"{method}_gaussian"] = gaussian_tails(state)
        for name, variant in variants.items():
            quantiles[name] = {
                g["name"]: package_quantiles(variant, g, origins[g["name"]]) for g in groups
            }
        seconds[method] = {"pretrain": pretrain_s, "total": time.perf_counter() - start}
        print(f"  {method:9s} done ({ {k: round(v) for k, v in seconds[method].items()} })",
              flush=True)
    return {
        "seed": seed,
        "quantiles": quantiles,
        "actual": actual,
        "high_vol": high_vol,
        "seconds": seconds,
        "notes": {"garch_t_fits_not_converged": failed},
        "series": {g["name"]: list(map(str, g["wide"].columns)) for g in groups},
        "first_target": {g["name"]: str(g["wide"].index[g["history"] + 1]) for g in groups},
        "pretrain_rows": int(len(train)),
        "pretrain_last_date": str(train.index.get_level_values(-1).max().date()),
    }


def summarise(result: dict[str, Any]) -> pd.DataFrame:
    """Scores per horizon, scope and method."""
    names = list(result["actual"])
    daily = [n for n in names if n != "rates"]
    scopes = {"all": names, "daily": daily, **{n: [n] for n in names}}
    rows = []
    for k in HORIZONS:
        for scope, parts in scopes.items():
            y = np.concatenate([result["actual"][n][k] for n in parts])
            hv = np.concatenate([result["high_vol"][n] for n in parts])
            ref = np.concatenate([result["quantiles"][REFERENCE][n][k] for n in parts])
            ref_log = log_score(y, ref)
            for method, per in result["quantiles"].items():
                q = np.concatenate([per[n][k] for n in parts])
                rows.append({"steps": k, "scope": scope, "method": method,
                             **score(y, q, ref, ref_log, hv), "n_series": len(y),
                             "n_origins": y.shape[1]})
    return pd.DataFrame(rows).set_index(["steps", "scope", "method"])


def per_series_losses(result: dict[str, Any]) -> dict[str, Any]:
    """{steps: {method: {series group: [per-series mean pinball and CRPS]}}}."""
    out: dict[str, Any] = {}
    for k in HORIZONS:
        for method, per in result["quantiles"].items():
            for name, q in per.items():
                y = result["actual"][name][k]
                out.setdefault(str(k), {}).setdefault(method, {})[name] = {
                    "pinball": pinball(y, q[k][..., COLUMNS], np.asarray(ALPHAS)).mean(1).tolist(),
                    "crps": (2 * pinball(y, q[k], GRID)).mean(1).tolist(),
                }
    return out


def save_quantiles(path: str, result: dict[str, Any]) -> None:
    """Every quantile array as ``q/<method>/<group>/<steps>``, targets as ``y/<group>/<steps>``."""
    arrays = {
        f"q/{method}/{name}/{k}": q
        for method, per in result["quantiles"].items()
        for name, by_step in per.items()
        for k, q in by_step.items()
    }
    arrays |= {f"y/{name}/{k}": y for name, by_step in result["actual"].items()
               for k, y in by_step.items()}
    arrays |= {f"high_vol/{name}": v for name, v in result["high_vol"].items()}
    np.savez_compressed(path, grid=GRID, **arrays)


CONFIGS = {
    "full": {
        "n_pretrain_stocks": 10,
        "n_pretrain_fx": 7,
        "n_test_stocks": 10,
        "n_test_fx": 10,
        "n_test_rates": 3,
        "history": 250,
        "n_eval": 100,
        # Equal origin counts let every scope stack into one (series, origins) array.
        "rates_history": 96,
        "rates_eval": 100,
        "garch_refit": 20,
        "verbose": 0,
        # The package defaults: pretraining stops by early stopping, not a budget.
        "forecaster": {},
    },
    "quick": {
        "n_pretrain_stocks": 2,
        "n_pretrain_fx": 2,
        "n_test_stocks": 1,
        "n_test_fx": 1,
        "n_test_rates": 1,
        "history": 250,
        "n_eval": 20,
        "rates_history": 100,
        "rates_eval": 20,
        "garch_refit": 20,
        "verbose": 0,
        "forecaster": {**QUICK_FORECASTER, "support_size": 16, "max_time": 5},
    },
}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--methods", nargs="*", default=NEURAL,
                        help="meta_learner values of the package to score (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/risk.json")
    parser.add_argument("--rates-transform", choices=["auto", "difference"], default="auto",
                        help="the package's transform for the interest rates (default: the "
                             "package default, log returns for these positive rates; "
                             "'difference' as before 2026-12-06). Scored on rate changes "
                             "either way")
    parser.add_argument("--save-quantiles", metavar="NPZ",
                        help="also write every forecast quantile, target and volatility "
                             "flag to this .npz (for analyses without re-running)")
    args = parse_args(parser, argv)
    warnings.simplefilter("ignore", FutureWarning)
    cfg = {**CONFIGS["quick" if args.quick else "full"], "rates_transform": args.rates_transform}
    env = environment("arch", "scipy", "pandas")
    start = time.perf_counter()
    result = run(cfg, list(dict.fromkeys(args.methods)), args.seed)
    env["load_average_end"] = list(os.getloadavg())
    table = summarise(result)
    # Per-series losses instead of every quantile (tens of MB of JSON).
    result["per_series"] = per_series_losses(result)
    if args.save_quantiles:
        save_quantiles(args.save_quantiles, result)
    for key in ("quantiles", "actual", "high_vol"):
        del result[key]
    write_report(
        args.out, table, config=cfg, quick=args.quick, command=command_line("risk", argv),
        environment=env, total_seconds=time.perf_counter() - start, result=result,
        notes={
            "garch": f"GARCH(1,1)-t refitted every {cfg['garch_refit']} origins on the last "
                     "history; filtered daily with fixed parameters between; 5-step variance "
                     "= sum of forecast daily variances, standardised t quantiles",
            "package": "horizon=5; fit on the history, then predict_quantiles(fh=[1, 5]) + "
                       "update one origin at a time (the history grows)",
            "se": "relative losses: mean over series of per-series ratios, s.e. over series",
            "overlap": "5-step targets overlap (every origin): VaR tests over-reject there",
        },
    )


if __name__ == "__main__":
    main()
