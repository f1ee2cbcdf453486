"""Held-out real series: does meta-learned adaptation help, or at least not hurt?

Protocol
--------
* Bundled data only. Pretraining panel: the first 10 companies of
  ``load_stock_prices`` and the first 7 currencies of ``load_exchange_rates``,
  cut at the first forecast origin of any held-out stock (so every pretraining
  observation precedes every forecast).
* Held-out series (never pretrained on): the other 10 companies and the other
  10 currencies. Each gets ``history`` business days, then ``n_eval`` rolling
  one-step forecasts: ``fit`` on the history, then ``predict``/``update`` one
  day at a time (adaptation only, never meta-training). Origins are the last
  ``n_eval`` days of each series. The three interest rates
  (``load_interest_rates``, quarterly, 60 quarters of history; modelled with
  ``transform="difference"``, or the package default with
  ``--rates-transform auto``, and scored on their changes either way) are
  scored separately: they are another asset class and frequency (their
  origins, 1984-2009, overlap the years of the daily pretraining data, which
  starts in 1990 and runs past them: not a strictly earlier test).
* Every ``meta_learner`` with the package defaults (``window_length=20``,
  ``horizon=1``) and a 240 s pretraining budget each (``max_time``);
  ``"none"`` is the pooled LSTM. Baselines on the same origins: the random
  walk (zero return) and AR(1) with intercept on the returns refitted on
  each sliding history (ARIMA(1,1,0) with drift on log prices, the classic
  baseline).

Metric: per series, MSE of the one-step return (rate change) forecast relative
to the random walk's; paired differences against the pooled LSTM and against
the random walk (``rel_mse - 1``), means with standard errors over series.

Run ``python benchmarks/held_out_real.py`` (every learner, ~25 min on 2 CPUs;
``--methods`` to narrow it) or ``--quick`` (smoke).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _reporting import (
    QUICK_FORECASTER,
    parse_args,
    relative_mse,
    rolling_one_step,
    standard_error,
    to_panel,
    to_wide,
    wide_increments,
    write_report,
)

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import load_exchange_rates, load_interest_rates, load_stock_prices

NEURAL = ["none", "ridge", "lstm", "metasgd", "maml", "reptile", "finetune"]


def rolling_ar1(z: np.ndarray, history: int) -> np.ndarray:
    """AR(1) with intercept on increments ``z`` (series, time), refitted per origin.

    ``z[:, k]`` is the increment ending at level ``k + 1``; the forecast for
    level ``t`` uses the ``history - 1`` increments before it.
    """
    n_eval = z.shape[1] + 1 - history
    preds = np.empty((len(z), n_eval))
    for j, t in enumerate(range(history, history + n_eval)):
        window = z[:, t - history : t - 1]
        for s, w in enumerate(window):
            design = np.column_stack([np.ones(len(w) - 1), w[:-1]])
            coef = np.linalg.lstsq(design, w[1:], rcond=None)[0]
            preds[s, j] = coef[0] + coef[1] * w[-1]
    return preds


def held_out_sets(cfg: dict[str, Any]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Pretraining panel and held-out groups (name, wide levels, history, transform)."""
    stocks = to_wide(load_stock_prices()).dropna()
    fx = to_wide(load_exchange_rates()).dropna()
    rates = to_wide(load_interest_rates()).dropna()
    n_stock, n_fx = cfg["n_pretrain_stocks"], cfg["n_pretrain_fx"]
    history, n_eval = cfg["history"], cfg["n_eval"]
    groups = [
        {
            "name": "stocks",
            "wide": stocks.iloc[-(history + n_eval) :, n_stock : n_stock + cfg["n_test_stocks"]],
            "history": history,
            "transform": "auto",
            "kind": "log_return",
        },
        {
            "name": "fx",
            "wide": fx.iloc[-(history + n_eval) :, n_fx : n_fx + cfg["n_test_fx"]],
            "history": history,
            "transform": "auto",
            "kind": "log_return",
        },
        {
            "name": "rates",
            "wide": rates.iloc[-(cfg["rates_history"] + n_eval) :],
            "history": cfg["rates_history"],
            "transform": cfg.get("rates_transform", "difference"),
            "kind": "difference",
        },
    ]
    first_origin = stocks.index[-n_eval]
    train = pd.concat(
        [
            stocks.iloc[:, :n_stock].loc[: first_origin - pd.Timedelta(days=1)],
            fx.iloc[:, :n_fx].loc[: first_origin - pd.Timedelta(days=1)],
        ],
        axis=1,
    ).dropna(how="all")
    train_panel = to_panel(train).dropna()
    return train_panel, groups


def run(cfg: dict[str, Any], methods: list[str], seed: int) -> dict[str, Any]:
    """Every method on every held-out group: per-series relative MSE."""
    train, groups = held_out_sets(cfg)
    actual, scores = {}, {}
    for g in groups:
        z = wide_increments(g["wide"], g["kind"])
        actual[g["name"]] = z[:, g["history"] - 1 :]
        scores.setdefault("ar1", {})[g["name"]] = relative_mse(
            rolling_ar1(z, g["history"]), actual[g["name"]]
        ).tolist()
    seconds = {}
    for name in methods:
        start = time.perf_counter()
        forecaster = MetaLSTMForecaster(
            meta_learner=name, horizon=1, random_state=seed, verbose=cfg["verbose"],
            **cfg["forecaster"],
        )
        forecaster.pretrain(train)
        pretrain_s = time.perf_counter() - start
        state = forecaster.pretrained_state_
        for g in groups:
            model = MetaLSTMForecaster.from_pretrained(state, transform=g["transform"], verbose=0)
            pred = rolling_one_step(model, g["wide"], g["history"], g["kind"])
            scores.setdefault(name, {})[g["name"]] = relative_mse(pred, actual[g["name"]]).tolist()
        seconds[name] = {"pretrain": pretrain_s, "total": time.perf_counter() - start}
        summary = {g: float(np.mean(v)) for g, v in scores[name].items()}
        print(f"  {name:9s} relMSE {summary} ({seconds[name]})", flush=True)
    return {
        "seed": seed,
        "scores": scores,
        "seconds": seconds,
        "series": {g["name"]: list(map(str, g["wide"].columns)) for g in groups},
        "pretrain_rows": int(len(train)),
    }


def summarise(result: dict[str, Any]) -> pd.DataFrame:
    """Per scope (stocks + fx = "held-out daily", and rates): paired differences with s.e."""
    scores = result["scores"]
    scopes = {"daily (stocks + fx)": ["stocks", "fx"], "rates (quarterly)": ["rates"]}
    rows = []
    for scope, names in scopes.items():
        per = {m: np.concatenate([scores[m][g] for g in names]) for m in scores}
        pooled = per.get("none")
        for method, values in per.items():
            vs_rw = values - 1.0
            row = {
                "scope": scope,
                "method": method,
                "rel_mse": values.mean(),
                "vs_rw": vs_rw.mean(),
                "vs_rw_se": standard_error(vs_rw),
                "n_series": len(values),
            }
            if pooled is not None:
                diff = values - pooled
                row["vs_pooled"] = diff.mean()
                row["vs_pooled_se"] = standard_error(diff)
            rows.append(row)
    return pd.DataFrame(rows).set_index(["scope", "method"])


CONFIGS = {
    "full": {
        "n_pretrain_stocks": 10,
        "n_pretrain_fx": 7,
        "n_test_stocks": 10,
        "n_test_fx": 10,
        "history": 120,
        "rates_history": 60,
        "n_eval": 100,
        "verbose": 1,
        # The same pretraining time budget for every learner.
        "forecaster": {"max_time": 240},
    },
    "quick": {
        "n_pretrain_stocks": 2,
        "n_pretrain_fx": 2,
        "n_test_stocks": 2,
        "n_test_fx": 2,
        "history": 60,
        "rates_history": 40,
        "n_eval": 3,
        "verbose": 0,
        "forecaster": {**QUICK_FORECASTER, "support_size": 16},
    },
}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--methods", nargs="+", default=NEURAL)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/held_out_real.json")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="combine earlier result files")
    parser.add_argument("--rates-transform", choices=["difference", "auto"], default="difference",
                        help="the package's transform for the interest rates (scored on their "
                             "changes either way); 'auto', the package default, models these "
                             "positive rates in log returns")
    args = parse_args(parser, argv)
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        write(parts[0]["config"], merge([p["result"] for p in parts]), args.out)
        return
    warnings.simplefilter("ignore", FutureWarning)
    cfg = {**CONFIGS["quick" if args.quick else "full"], "rates_transform": args.rates_transform}
    methods = list(dict.fromkeys(["none", *args.methods]))
    write(cfg, run(cfg, methods, args.seed), args.out)


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine runs: methods of one seed side by side; seeds averaged per series.

    With several seeds, each series' score is its mean over the seeds (of the
    methods every seed has), so standard errors stay over series.
    """
    averaged = [r["seed"] for r in results if isinstance(r["seed"], list)]
    if averaged and len(results) > 1:
        # Averaging an average with further seeds would weigh them unequally.
        raise ValueError(
            f"A result file holds seeds {averaged[0]} already averaged per series: "
            "merge the per-seed files instead, or give it alone to re-summarise it."
        )
    if averaged:
        return results[0]
    by_seed: dict[Any, dict[str, Any]] = {}
    for result in results:
        run = by_seed.setdefault(result["seed"], {**result, "scores": {}, "seconds": {}})
        run["scores"].update(result["scores"])
        run["seconds"].update(result["seconds"])
    runs = list(by_seed.values())
    if len(runs) == 1:
        return runs[0]
    methods = [m for m in runs[0]["scores"] if all(m in r["scores"] for r in runs)]
    scores = {
        m: {
            g: np.mean([r["scores"][m][g] for r in runs], axis=0).tolist()
            for g in runs[0]["scores"][m]
        }
        for m in methods
    }
    return {
        **runs[0],
        "seed": sorted(by_seed),
        "scores": scores,
        "seconds": {str(r["seed"]): r["seconds"] for r in runs},
    }


def write(cfg: dict[str, Any], result: dict[str, Any], out: str) -> None:
    """Print the summary and write everything to ``out`` as JSON."""
    write_report(out, summarise(result), config=cfg, result=result)


if __name__ == "__main__":
    main()
