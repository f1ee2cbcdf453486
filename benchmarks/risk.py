"""Risk forecasts on held-out real series: MetaLSTMForecaster against GARCH (issue 12).

Protocol
--------
* Bundled data only. Held-out series (never pretrained on): companies 11-15 of
  ``load_stock_prices`` and currencies 8-12 of ``load_exchange_rates``. Each gets
  ``history`` (250) daily log returns, then ``n_eval`` (100) rolling origins
  at the end of its data; the target is the next day's log return (one step
  ahead). Quantile levels 1, 5, 10, 90, 95 and 99 %.
* Baselines, each on the last ``history`` returns at every origin:
  historical simulation (empirical quantiles), RiskMetrics EWMA (lambda 0.94,
  zero mean, normal) and GARCH(1,1) with constant mean and Student-t shocks
  (``arch``, ``arch_model(100 * r, vol="GARCH", p=1, q=1, dist="t")``). To keep
  it fast GARCH is refitted every ``garch_refit`` (20) origins and, between
  refits, its variance is filtered one day at a time with the fitted
  parameters held fixed.
* The package: ``MetaLSTMForecaster`` with its defaults (``meta_learner="ridge"``;
  ``"none"`` is the pooled LSTM), pretrained once within ``max_time`` seconds on
  the first 10 companies and the first 7 currencies, cut before the first
  forecast origin of any held-out series (every pretraining observation
  precedes every forecast). It is fitted on the held-out histories
  (``from_pretrained``), then ``predict_quantiles(fh=[1])`` and ``update`` one
  day at a time (adaptation only, the history grows); a price quantile ``q``
  becomes the log-return quantile ``log(q / last price)``.

Metrics, per scope (all, stocks, fx): mean pinball loss over the 6 quantiles
(basis points of log return) and its paired difference against historical
simulation with a standard error over the origin x series cells (cells are
treated as independent: a lower bound on the true s.e.); empirical coverage of
the 80/90/98 % central intervals; for the 95 % and 99 % VaR (lower tail) the
exceedance rate, the Kupiec unconditional-coverage and Christoffersen
independence likelihood-ratio p-values (hits pooled over series, transitions
counted within each series), and the number of series whose own Kupiec test
rejects at 5 %; coverage of the 90 % interval when the trailing 20-day realised
volatility (known at the origin) is above vs below its median over the origins
of the same series.

Run ``python benchmarks/risk.py`` (~1.5 min on 2 CPUs) or ``--quick`` (smoke).
"""

from __future__ import annotations

import argparse
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
    standard_error,
    to_panel,
    to_wide,
    write_report,
)
from scipy import stats

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import load_exchange_rates, load_stock_prices

ALPHAS = [0.01, 0.05, 0.10, 0.90, 0.95, 0.99]
#: Central intervals: nominal coverage -> (lower, upper) quantile level.
INTERVALS = {0.80: (0.10, 0.90), 0.90: (0.05, 0.95), 0.98: (0.01, 0.99)}
VAR_LEVELS = [0.05, 0.01]
BASELINES = ["hist_sim", "ewma", "garch_t"]
NEURAL = ["ridge", "none"]


# ---------------------------------------------------------------------- data
def held_out_sets(cfg: dict[str, Any]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Pretraining panel (levels) and held-out groups (name, wide levels)."""
    stocks = to_wide(load_stock_prices()).dropna()
    fx = to_wide(load_exchange_rates()).dropna()
    n_stock, n_fx = cfg["n_pretrain_stocks"], cfg["n_pretrain_fx"]
    rows = cfg["history"] + cfg["n_eval"] + 1  # levels: history returns + n_eval targets
    groups = [
        {"name": "stocks", "wide": stocks.iloc[-rows:, n_stock : n_stock + cfg["n_test_stocks"]]},
        {"name": "fx", "wide": fx.iloc[-rows:, n_fx : n_fx + cfg["n_test_fx"]]},
    ]
    groups = [g for g in groups if g["wide"].shape[1]]
    # First origin: the date of the first forecast target of any held-out series.
    first_target = min(g["wide"].index[cfg["history"] + 1] for g in groups)
    cut = first_target - pd.Timedelta(days=1)
    train = pd.concat(
        [stocks.iloc[:, :n_stock].loc[:cut], fx.iloc[:, :n_fx].loc[:cut]], axis=1
    ).dropna(how="all")
    return to_panel(train).dropna(), groups


def log_returns(wide: pd.DataFrame) -> np.ndarray:
    """(series, time) daily log returns."""
    return np.diff(np.log(wide.to_numpy().T), axis=1)


# ----------------------------------------------------------------- baselines
def windows(r: np.ndarray, history: int) -> np.ndarray:
    """(series, origins, history): the returns before each origin."""
    return np.lib.stride_tricks.sliding_window_view(r[:, :-1], history, axis=1)


def hist_sim(r: np.ndarray, history: int) -> np.ndarray:
    """Empirical quantiles of the last ``history`` returns: (series, origins, alphas)."""
    return np.moveaxis(np.quantile(windows(r, history), ALPHAS, axis=-1), 0, -1)


def ewma(r: np.ndarray, history: int, lam: float = 0.94) -> np.ndarray:
    """RiskMetrics: zero mean, normal, EWMA variance over the last ``history`` returns."""
    weights = lam ** np.arange(history)[::-1]  # newest return weighs most
    sigma2 = windows(r, history) ** 2 @ weights / weights.sum()
    return np.sqrt(sigma2)[..., None] * stats.norm.ppf(ALPHAS)


def garch_t(r: np.ndarray, history: int, refit: int) -> tuple[np.ndarray, int]:
    """GARCH(1,1)-t quantiles, refitted every ``refit`` origins; (quantiles, failed fits)."""
    from arch import arch_model
    from arch.utility.exceptions import DataScaleWarning

    warnings.simplefilter("ignore", DataScaleWarning)  # FX: 100 * r is small; kept as specified
    n_series, n_origins = r.shape[0], r.shape[1] - history
    out = np.empty((n_series, n_origins, len(ALPHAS)))
    failed = 0
    for s in range(n_series):
        x = 100 * r[s]
        for j in range(n_origins):
            t = history + j  # index of the target return
            if j % refit == 0:
                res = arch_model(x[t - history : t], vol="GARCH", p=1, q=1, dist="t").fit(
                    disp="off", show_warning=False
                )
                failed += int(res.convergence_flag != 0)
                mu, omega, a, b, nu = (res.params[k] for k in ("mu", "omega", "alpha[1]",
                                                                "beta[1]", "nu"))
                sigma2 = res.conditional_volatility[-1] ** 2
                last = x[t - 1]
                # t shocks scaled to unit variance.
                z = stats.t.ppf(ALPHAS, nu) * np.sqrt((nu - 2) / nu)
            # Filter one day: variance of return t given returns up to t - 1.
            sigma2 = omega + a * (last - mu) ** 2 + b * sigma2
            out[s, j] = (mu + np.sqrt(sigma2) * z) / 100
            last = x[t]
    return out, failed


# ---------------------------------------------------------------- the package
def package_quantiles(
    state: Any, wide: pd.DataFrame, history: int
) -> np.ndarray:
    """(series, origins, alphas) log-return quantiles from a pretrained state."""
    model = MetaLSTMForecaster.from_pretrained(state, verbose=0)
    model.fit(to_panel(wide.iloc[: history + 1]), fh=[1])
    out = []
    for t in range(history + 1, len(wide)):
        last = wide.iloc[t - 1].to_numpy()
        q = model.predict_quantiles(fh=[1], alpha=ALPHAS)
        q = q.groupby(level=0, sort=False).first().reindex(wide.columns).to_numpy()
        out.append(np.log(q / last[:, None]))
        model.update(to_panel(wide.iloc[[t]]))
    return np.stack(out, axis=1)


# ------------------------------------------------------------------- metrics
def pinball(y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean pinball loss over ``ALPHAS``: y (series, origins), q (series, origins, alphas)."""
    diff = y[..., None] - q
    a = np.asarray(ALPHAS)
    return np.maximum(a * diff, (a - 1) * diff).mean(axis=-1)


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


def score(y: np.ndarray, q: np.ndarray, q_ref: np.ndarray, high_vol: np.ndarray) -> dict:
    """Every metric of one method on one scope."""
    loss, loss_ref = pinball(y, q), pinball(y, q_ref)
    diff = (loss - loss_ref).ravel()
    row = {
        "pinball_bp": 1e4 * loss.mean(),
        "rel_hs": loss.mean() / loss_ref.mean(),
        "diff_hs_bp": 1e4 * diff.mean(),
        "diff_hs_se_bp": 1e4 * standard_error(diff),
    }
    col = {a: i for i, a in enumerate(ALPHAS)}
    for nominal, (lo, hi) in INTERVALS.items():
        inside = (y >= q[..., col[lo]]) & (y <= q[..., col[hi]])
        row[f"cov{round(100 * nominal)}"] = inside.mean()
        if nominal == 0.90:
            row["cov90_hi_vol"] = inside[high_vol].mean()
            row["cov90_lo_vol"] = inside[~high_vol].mean()
    for p in VAR_LEVELS:
        hits = y < q[..., col[p]]
        tag = f"var{round(100 * (1 - p))}"
        row[f"{tag}_rate"] = hits.mean()
        row[f"{tag}_kupiec_p"] = kupiec_p(hits, p)
        row[f"{tag}_christ_p"] = christoffersen_p(hits)
        row[f"{tag}_n_reject"] = int(sum(kupiec_p(h, p) < 0.05 for h in hits))
    return row


# ----------------------------------------------------------------------- run
def run(cfg: dict[str, Any], methods: list[str], seed: int) -> dict[str, Any]:
    """Quantile forecasts of every method on every held-out series, and their scores."""
    train, groups = held_out_sets(cfg)
    history = cfg["history"]
    quantiles: dict[str, dict[str, np.ndarray]] = {}
    actual, high_vol, seconds, notes = {}, {}, {}, {}
    for g in groups:
        r = log_returns(g["wide"])
        actual[g["name"]] = r[:, history:]
        vol = np.std(windows(r, 20)[:, history - 20 :], axis=-1, ddof=1)
        high_vol[g["name"]] = vol > np.median(vol, axis=1, keepdims=True)
        start = time.perf_counter()
        quantiles.setdefault("hist_sim", {})[g["name"]] = hist_sim(r, history)
        seconds.setdefault("hist_sim", 0.0)
        seconds["hist_sim"] += time.perf_counter() - start
        start = time.perf_counter()
        quantiles.setdefault("ewma", {})[g["name"]] = ewma(r, history)
        seconds.setdefault("ewma", 0.0)
        seconds["ewma"] += time.perf_counter() - start
        start = time.perf_counter()
        quantiles.setdefault("garch_t", {})[g["name"]], failed = garch_t(
            r, history, cfg["garch_refit"]
        )
        seconds.setdefault("garch_t", 0.0)
        seconds["garch_t"] += time.perf_counter() - start
        notes["garch_t_fits_not_converged"] = notes.get("garch_t_fits_not_converged", 0) + failed
    print(f"  baselines done ({seconds})", flush=True)
    for name in methods:
        start = time.perf_counter()
        forecaster = MetaLSTMForecaster(
            meta_learner=name, random_state=seed, verbose=cfg["verbose"], **cfg["forecaster"]
        )
        forecaster.pretrain(train)
        pretrain_s = time.perf_counter() - start
        for g in groups:
            quantiles.setdefault(name, {})[g["name"]] = package_quantiles(
                forecaster.pretrained_state_, g["wide"], history
            )
        seconds[name] = {"pretrain": pretrain_s, "total": time.perf_counter() - start}
        print(f"  {name:9s} done ({seconds[name]})", flush=True)
    return {
        "seed": seed,
        "quantiles": quantiles,
        "actual": actual,
        "high_vol": high_vol,
        "seconds": seconds,
        "notes": notes,
        "series": {g["name"]: list(map(str, g["wide"].columns)) for g in groups},
        "first_target": {g["name"]: str(g["wide"].index[history + 1].date()) for g in groups},
        "pretrain_rows": int(len(train)),
        "pretrain_last_date": str(train.index.get_level_values(-1).max().date()),
    }


def summarise(result: dict[str, Any]) -> pd.DataFrame:
    """Scores per scope and method."""
    names = list(result["actual"])
    scopes = {"all": names, **{n: [n] for n in names}}
    rows = []
    for scope, parts in scopes.items():
        y = np.concatenate([result["actual"][n] for n in parts])
        hv = np.concatenate([result["high_vol"][n] for n in parts])
        ref = np.concatenate([result["quantiles"]["hist_sim"][n] for n in parts])
        for method, per in result["quantiles"].items():
            q = np.concatenate([per[n] for n in parts])
            rows.append({"scope": scope, "method": method, **score(y, q, ref, hv),
                         "n_series": len(y), "n_origins": y.shape[1]})
    return pd.DataFrame(rows).set_index(["scope", "method"])


CONFIGS = {
    "full": {
        "n_pretrain_stocks": 10,
        "n_pretrain_fx": 7,
        "n_test_stocks": 5,
        "n_test_fx": 5,
        "history": 250,
        "n_eval": 100,
        "garch_refit": 20,
        "verbose": 0,
        "forecaster": {"max_time": 60},
    },
    "quick": {
        "n_pretrain_stocks": 2,
        "n_pretrain_fx": 2,
        "n_test_stocks": 1,
        "n_test_fx": 1,
        "history": 250,
        "n_eval": 20,
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
                        help="meta_learner values of the package to score (default: ridge none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/risk.json")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", FutureWarning)
    cfg = CONFIGS["quick" if args.quick else "full"]
    env = environment("arch", "scipy", "pandas")
    start = time.perf_counter()
    result = run(cfg, list(dict.fromkeys(args.methods)), args.seed)
    env["load_average_end"] = list(os.getloadavg())
    table = summarise(result)
    result["quantiles"] = {m: {g: v.tolist() for g, v in per.items()}
                           for m, per in result["quantiles"].items()}
    result["actual"] = {g: v.tolist() for g, v in result["actual"].items()}
    result["high_vol"] = {g: v.tolist() for g, v in result["high_vol"].items()}
    write_report(
        args.out, table, config=cfg, quick=args.quick, command=command_line("risk", argv),
        environment=env, total_seconds=time.perf_counter() - start, result=result,
        notes={
            **result["notes"],
            "garch": f"GARCH(1,1)-t refitted every {cfg['garch_refit']} origins on the last "
                     f"{cfg['history']} returns; filtered daily with fixed parameters between",
            "package": "fit on the history, then predict_quantiles + update one day at a time "
                       "(the history grows); quantiles are split-conformal from pretraining "
                       "residuals",
            "se": "paired s.e. over origin x series cells, treated as independent",
        },
    )


if __name__ == "__main__":
    main()
