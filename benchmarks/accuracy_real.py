"""Accuracy on real data: rolling-origin backtests against the random walk and peers.

Part 1, backtests. For each asset class (stocks, exchange rates, an interest
rate), a few test series are backtested with sktime's ``evaluate`` on an
``ExpandingWindowSplitter`` (one origin per period over the last ``n_eval``
periods, ``fh=[1, 5]``). The target is the log price (stocks, FX) or the rate
level (interest rates). Forecasters, side by side on the same origins:

* random walk (``NaiveForecaster("last")``) and drift (``NaiveForecaster("drift")``);
* ARIMA(1,1,0) (sktime ``StatsModelsARIMA``, refitted at every origin:
  strategy ``"update"``);
* ``LSTMBaseRegressor`` through ``make_reduction`` (recursive, window 20) on
  standardised first differences, trained once on the data before the first
  origin and rolled forward without refitting (strategy ``"no-update_params"``:
  a refit per origin would cost a full training each);
* ``MetaLSTMForecaster`` with every ``meta_learner`` ("none" is the pooled
  LSTM), pretrained once per asset class and seed on a panel of *other* series
  of the same class (other companies / currencies / rates), using only data up
  to the first forecast origin (no look-ahead), then
  ``MetaLSTMForecaster.from_pretrained(state)`` and ``evaluate(...,
  strategy="update")``: re-adapted at every origin, never re-meta-trained.

Metrics per series and step ``h`` (``last`` = value at the origin):

* ``MASE vs RW`` = MAE(model) / MAE(random walk) on the same origins;
* ``direction``: share of origins where ``pred > last`` matches
  ``actual > last``; ``always up``: share where ``actual > last`` (a
  directional accuracy is worth something only above
  ``max(always up, 1 - always up)``);
* ``R2 oos``: out-of-sample R^2 of the h-step change against a zero forecast,
  ``1 - sum((actual - pred)^2) / sum((actual - last)^2)``;
* Diebold-Mariano test against the random walk, squared-error loss,
  Newey-West variance with ``h - 1`` lags and the Harvey-Leybourne-Newbold
  small-sample correction (t with n-1 df): ``statsmodels.tsa.stattools.
  diebold_mariano_test(y, rw, model, criterion="mse", lags=h-1,
  harvey_adj=True, horizon=h)``. Positive statistic = model better.

Neural models are run with several seeds; summaries give the mean over series
and the spread (min-max) over seeds.

Part 2, few-shot on real data. Pretrain on 16 companies (data before the first
origin), then forecast the 4 held-out companies given only 20/60/120 trading
days of history (``SlidingWindowSplitter``), against a plain LSTM
(``LSTMBaseRegressor`` via ``make_reduction``) trained from scratch on the same
short history at every origin (strategy ``"refit"``), the pooled LSTM and the
random walk. Window 10 here, so that a 20-day history holds a few windows.

Run ``python benchmarks/accuracy_real.py`` (full, ~20-25 min on 2 busy cores) or
``--quick`` (smoke, < 1 min). Writes ``benchmarks/results/accuracy_real.json``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from _reporting import command_line, environment, parse_args, to_panel, write_json

LEARNERS = ["none", "finetune", "metasgd", "maml", "reptile", "lstm"]
HORIZONS = [1, 5]  # scored steps
# Every forecaster predicts steps 1..5 (sktime's Differencer cannot invert a
# forecast on the gapped index of fh=[1, 5]); only HORIZONS are scored.
FH = list(range(1, max(HORIZONS) + 1))

FULL = {
    "n_eval": 40,  # origins per daily series
    "n_eval_rates": 60,  # origins for the monthly rate
    "seeds": [0, 1, 2],
    "learners": LEARNERS,
    "classes": {
        "stocks": {"test": ["AMD", "JPM", "KO", "XOM"], "start": "2020-06-01"},
        "fx": {"test": ["USD", "JPY"], "start": "2023-06-01"},
        "rates": {"test": ["BAA"], "start": "1970-01"},
    },
    "meta": {  # MetaLSTMForecaster settings (window 20 like the reduction)
        "window_length": 20,
        "hidden_size": 16,
        "support_size": 32,
        "query_size": 8,
        "task_stride": 20,
        "base_max_epochs": 2,
        "max_epochs": 2,
        "lr": 3e-3,
    },
    "rates_epochs": 6,  # the rate panel has one training series: more epochs
    "reduction": {"hidden_size": 16, "max_epochs": 10, "lr": 3e-3, "batch_size": 64},
    "few_shot": {
        "histories": [20, 60, 120],
        "n_eval": 20,
        "window_length": 10,
        "learners": ["none", "metasgd"],
        "plain_max_epochs": 20,
    },
}

QUICK = {
    **FULL,
    "n_eval": 6,
    "n_eval_rates": 6,
    "seeds": [0],
    "learners": ["none", "metasgd"],
    "classes": {
        "stocks": {"test": ["AMD"], "start": "2021-06-01"},
        "fx": {"test": ["USD"], "start": "2024-06-01"},
        "rates": {"test": ["BAA"], "start": "2005-01"},
    },
    "meta": {**FULL["meta"], "base_max_epochs": 1, "max_epochs": 1, "task_stride": 40},
    "rates_epochs": 1,
    "reduction": {**FULL["reduction"], "max_epochs": 2},
    "few_shot": {**FULL["few_shot"], "histories": [20], "n_eval": 4, "plain_max_epochs": 3},
}


# ------------------------------------------------------------------- data
def load_class(name: str, spec: dict) -> tuple[pd.DataFrame, str]:
    """Wide frame of targets (log prices / rate levels), all series of the class."""
    from sk_metalstm.datasets import load_exchange_rates, load_interest_rates, load_stock_prices

    if name == "stocks":
        return np.log(load_stock_prices(start=spec["start"], as_panel=False)), "difference"
    if name == "fx":
        return np.log(load_exchange_rates(start=spec["start"], as_panel=False)), "difference"
    # AAA and BAA monthly; TB3MS is quarterly only and left out.
    return load_interest_rates(["AAA", "BAA"], start=spec["start"], as_panel=False), "difference"


# --------------------------------------------------------------- evaluate
def run_evaluate(
    forecaster: Any, y: pd.Series, cv: Any, strategy: str, on_changes: bool = False
) -> pd.DataFrame:
    """Forecasts at every origin via sktime ``evaluate``: cutoff, step, pred, last, actual.

    With ``on_changes``, ``forecaster`` is evaluated on the first differences of
    ``y`` (``cv`` must then count one point less) and its forecasts are summed
    back onto the level at each origin.
    """
    from sktime.forecasting.model_evaluation import evaluate

    # record=True swallows sktime's per-clone FutureWarning: a plain "ignore"
    # filter does not hold, sktime resets the FutureWarning filter inside.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        target = y.diff().iloc[1:] if on_changes else y
        result = evaluate(
            forecaster, cv, target, strategy=strategy, return_data=True, error_score="raise"
        )
    position = pd.Series(np.arange(len(y)), index=y.index)
    rows = []
    for _, fold in result.iterrows():
        cutoff = fold["cutoff"]
        cutoff = cutoff[0] if isinstance(cutoff, pd.Index) else cutoff
        last = float(y.loc[cutoff])
        y_pred = fold["y_pred"]
        if on_changes:
            y_pred = last + y_pred.cumsum()
        for t, pred in y_pred.items():
            rows.append(
                {
                    "cutoff": cutoff,
                    "step": int(position.loc[t] - position.loc[cutoff]),
                    "pred": float(pred),
                    "last": last,
                    "actual": float(y.loc[t]),
                }
            )
    return pd.DataFrame(rows)


def metrics(frame: pd.DataFrame, step: int) -> dict:
    """MASE vs RW, direction, always up, R2 oos and DM vs RW at one step."""
    from statsmodels.tsa.stattools import diebold_mariano_test

    part = frame[frame["step"] == step]
    pred, last, actual = (part[c].to_numpy() for c in ("pred", "last", "actual"))
    rw_mae = np.mean(np.abs(actual - last))
    up = actual > last
    out = {
        "MASE": float(np.mean(np.abs(actual - pred)) / rw_mae),
        "direction": float(np.mean(up == (pred > last))),
        "always_up": float(np.mean(up)),
        "forecasts_up": float(np.mean(pred > last)),
        "R2_oos": float(1 - np.sum((actual - pred) ** 2) / np.sum((actual - last) ** 2)),
        "n": int(len(part)),
    }
    if np.allclose(pred, last):
        out.update(DM=np.nan, DM_p=np.nan)
    else:
        dm = diebold_mariano_test(
            actual, last, pred, criterion="mse", lags=step - 1, harvey_adj=True, horizon=step
        )
        out.update(DM=float(dm.statistic), DM_p=float(dm.pvalue))
    return out


# ------------------------------------------------------------ forecasters
def reduction_lstm(window: int, seed: int, cfg: dict) -> Any:
    """LSTMBaseRegressor via make_reduction, standardised; evaluate it on changes.

    Differencing happens outside (``run_evaluate(..., on_changes=True)``):
    inside a pipeline, sktime's ``Differencer`` keeps inverting from the level
    it was fitted on when updated with ``update_params=False``.
    """
    from sklearn.preprocessing import StandardScaler
    from sktime.forecasting.compose import TransformedTargetForecaster, make_reduction
    from sktime.transformations.series.adapt import TabularToSeriesAdaptor

    from sk_metalstm import LSTMBaseRegressor

    regressor = LSTMBaseRegressor(random_state=seed, **cfg)
    with warnings.catch_warnings(record=True):  # sktime's construction notice, see run_evaluate
        return TransformedTargetForecaster(
            [
                ("scale", TabularToSeriesAdaptor(StandardScaler())),
                ("lstm", make_reduction(regressor, window_length=window, strategy="recursive")),
            ]
        )


def pretrain_states(
    panel: pd.DataFrame, learners: list[str], seed: int, meta: dict, transform: str, epochs: int
) -> tuple[dict, dict]:
    """Meta-train every learner on ``panel``; the pooled LSTM gets base+meta epochs."""
    from sk_metalstm import MetaLSTMForecaster

    states, seconds = {}, {}
    for learner in learners:
        cfg = {**meta, "base_max_epochs": epochs, "max_epochs": epochs}
        if learner == "none":  # same total budget as base + meta
            cfg["base_max_epochs"] = 2 * epochs
        forecaster = MetaLSTMForecaster(
            **cfg,
            horizon=max(HORIZONS),
            meta_learner=learner,
            transform=transform,
            random_state=seed,
        )
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forecaster.pretrain(panel)
        seconds[learner] = time.perf_counter() - tic
        states[learner] = forecaster.pretrained_state_
    return states, seconds


# -------------------------------------------------------------- backtests
def backtest_class(name: str, spec: dict, cfg: dict, log: Any) -> tuple[list[dict], dict]:
    """All forecasters on the test series of one asset class."""
    from sktime.forecasting.arima import StatsModelsARIMA
    from sktime.forecasting.naive import NaiveForecaster
    from sktime.split import ExpandingWindowSplitter

    from sk_metalstm import MetaLSTMForecaster

    wide, transform = load_class(name, spec)
    n_eval = cfg["n_eval_rates"] if name == "rates" else cfg["n_eval"]
    hmax = max(HORIZONS)
    n = len(wide)
    initial = n - n_eval - hmax + 1  # last origin leaves hmax points to score
    first_origin = wide.index[initial - 1]
    train_names = [c for c in wide.columns if c not in spec["test"]]
    # No look-ahead: other series' data up to the first origin only.
    pretrain_panel = to_panel(wide.loc[:first_origin, train_names], "y", ("series", "time"))
    cv = ExpandingWindowSplitter(initial_window=initial, step_length=1, fh=FH)
    cv_changes = ExpandingWindowSplitter(initial_window=initial - 1, step_length=1, fh=FH)
    epochs = cfg["rates_epochs"] if name == "rates" else cfg["meta"]["max_epochs"]
    meta = {**cfg["meta"]}
    if name == "rates":
        meta["task_stride"] = 4  # ~600 monthly points: stride 20 would give few tasks
    info = {
        "n_points": n,
        "n_origins": n_eval,
        "first_origin": str(first_origin),
        "last_origin": str(wide.index[n - hmax - 1]),
        "pretrain_series": train_names,
        "pretrain_span": [str(wide.index[0]), str(first_origin)],
        "transform": transform,
        "pretrain_seconds": {},
        "backtest_seconds": {},
    }
    rows: list[dict] = []

    def record(model: str, series: str, seed: Any, frame: pd.DataFrame, seconds: float) -> None:
        info["backtest_seconds"].setdefault(model, 0.0)
        info["backtest_seconds"][model] += seconds
        for step in HORIZONS:
            rows.append(
                {
                    "class": name,
                    "series": series,
                    "model": model,
                    "seed": seed,
                    "h": step,
                    **metrics(frame, step),
                }
            )

    # sktime 1.2 warns about a change of default at every construction (see run_evaluate).
    with warnings.catch_warnings(record=True):
        baselines = {
            "random walk": (NaiveForecaster("last"), "update"),
            "drift": (NaiveForecaster("drift"), "update"),
            "ARIMA(1,1,0)": (StatsModelsARIMA(order=(1, 1, 0)), "update"),
        }
    for series in spec["test"]:
        y = wide[series].rename(series)
        for model, (forecaster, strategy) in baselines.items():
            tic = time.perf_counter()
            frame = run_evaluate(forecaster, y, cv, strategy)
            record(model, series, None, frame, time.perf_counter() - tic)
    log(f"  {name}: baselines done")
    for seed in cfg["seeds"]:
        states, seconds = pretrain_states(
            pretrain_panel, cfg["learners"], seed, meta, transform, epochs
        )
        info["pretrain_seconds"][seed] = seconds
        log(
            f"  {name} seed {seed}: pretrained "
            + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items())
        )
        for series in spec["test"]:
            y = wide[series].rename(series)
            tic = time.perf_counter()
            forecaster = reduction_lstm(cfg["meta"]["window_length"], seed, cfg["reduction"])
            frame = run_evaluate(forecaster, y, cv_changes, "no-update_params", on_changes=True)
            record("LSTM reduction", series, seed, frame, time.perf_counter() - tic)
            for learner, state in states.items():
                tic = time.perf_counter()
                forecaster = MetaLSTMForecaster.from_pretrained(state)
                frame = run_evaluate(forecaster, y, cv, "update")
                model = "pooled LSTM" if learner == "none" else f"meta {learner}"
                record(model, series, seed, frame, time.perf_counter() - tic)
        log(f"  {name} seed {seed}: backtests done")
    return rows, info


# --------------------------------------------------------------- few-shot
def few_shot(cfg: dict, log: Any) -> tuple[list[dict], dict]:
    """Held-out companies with 20/60/120 days of history: meta vs plain vs pooled LSTM."""
    from sktime.forecasting.naive import NaiveForecaster
    from sktime.split import SlidingWindowSplitter

    from sk_metalstm import MetaLSTMForecaster

    fs = cfg["few_shot"]
    spec = cfg["classes"]["stocks"]
    wide, transform = load_class("stocks", spec)
    hmax, window = max(HORIZONS), fs["window_length"]
    n_eval = fs["n_eval"]
    first_origin_pos = len(wide) - n_eval - hmax  # 0-based position of the first origin
    first_origin = wide.index[first_origin_pos]
    train_names = [c for c in wide.columns if c not in spec["test"]]
    panel = to_panel(wide.loc[:first_origin, train_names], "y", ("series", "time"))
    meta = {**cfg["meta"], "window_length": window}
    info = {"first_origin": str(first_origin), "n_origins": n_eval, "pretrain_seconds": {}}
    rows: list[dict] = []

    def record(model: str, history: int, series: str, seed: Any, frame: pd.DataFrame) -> None:
        for step in HORIZONS:
            rows.append(
                {
                    "history": history,
                    "series": series,
                    "model": model,
                    "seed": seed,
                    "h": step,
                    **metrics(frame, step),
                }
            )

    states_by_seed = {}
    for seed in cfg["seeds"]:
        states, seconds = pretrain_states(
            panel, fs["learners"], seed, meta, transform, cfg["meta"]["max_epochs"]
        )
        states_by_seed[seed] = states
        info["pretrain_seconds"][seed] = seconds
    log(f"  few-shot: pretrained ({len(cfg['seeds'])} seeds)")
    for history in fs["histories"]:
        cv = SlidingWindowSplitter(window_length=history, step_length=1, fh=FH)
        cv_changes = SlidingWindowSplitter(window_length=history - 1, step_length=1, fh=FH)
        for series in spec["test"]:
            # Exactly `history` points before the first origin, n_eval origins.
            y = wide[series].rename(series).iloc[first_origin_pos + 1 - history :]
            with warnings.catch_warnings(record=True):  # sktime's construction notice
                walk = NaiveForecaster("last")
            record("random walk", history, series, None, run_evaluate(walk, y, cv, "update"))
            for seed in cfg["seeds"]:
                plain = reduction_lstm(
                    window, seed, {**cfg["reduction"], "max_epochs": fs["plain_max_epochs"]}
                )
                frame = run_evaluate(plain, y, cv_changes, "refit", on_changes=True)
                record("plain LSTM", history, series, seed, frame)
                for learner, state in states_by_seed[seed].items():
                    # Adapt on exactly `history` points: support = history - L - h windows.
                    forecaster = MetaLSTMForecaster.from_pretrained(
                        state, support_size=max(1, history - window - hmax)
                    )
                    model = "pooled LSTM" if learner == "none" else f"meta {learner}"
                    record(model, history, series, seed, run_evaluate(forecaster, y, cv, "update"))
        log(f"  few-shot: history {history} done")
    return rows, info


# --------------------------------------------------------------- summary
def summarise(rows: list[dict], by: list[str]) -> list[dict]:
    """Mean over series per seed, then mean and min-max over seeds; DM win/loss counts."""
    frame = pd.DataFrame(rows)
    frame["seed"] = frame["seed"].fillna(-1)
    out = []
    keys = [*by, "h", "model"]
    for key, part in frame.groupby(keys, sort=False):
        per_seed = part.groupby("seed")[["MASE", "direction", "always_up", "R2_oos"]].mean()
        sig = part["DM_p"] < 0.05
        entry = dict(zip(keys, key, strict=True))
        entry.update(
            {
                "MASE": float(per_seed["MASE"].mean()),
                "MASE_min": float(per_seed["MASE"].min()),
                "MASE_max": float(per_seed["MASE"].max()),
                "direction": float(per_seed["direction"].mean()),
                "always_up": float(per_seed["always_up"].mean()),
                "R2_oos": float(per_seed["R2_oos"].mean()),
                "R2_oos_min": float(per_seed["R2_oos"].min()),
                "R2_oos_max": float(per_seed["R2_oos"].max()),
                "series_beating_rw": float((part["MASE"] < 1).mean()),
                "DM_better": int((sig & (part["DM"] > 0)).sum()),
                "DM_worse": int((sig & (part["DM"] < 0)).sum()),
                "DM_tests": int(part["DM"].notna().sum()),
                "n_seeds": int(len(per_seed)),
            }
        )
        out.append(entry)
    return out


def markdown(summary: list[dict], by: list[str]) -> str:
    """A markdown table of a summary."""
    head = [
        *by,
        "h",
        "model",
        "MASE vs RW (seed range)",
        "direction",
        "always up",
        "R2 oos",
        "DM better/worse (of tests)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        spread = f" ({s['MASE_min']:.3f}-{s['MASE_max']:.3f})" if s["n_seeds"] > 1 else ""
        dm = f"{s['DM_better']}/{s['DM_worse']} (of {s['DM_tests']})" if s["DM_tests"] else "-"
        direction = "-" if s["model"] == "random walk" else f"{s['direction']:.3f}"
        cells = [
            *(str(s[b]) for b in by),
            str(s["h"]),
            s["model"],
            f"{s['MASE']:.3f}{spread}",
            direction,
            f"{s['always_up']:.3f}",
            f"{s['R2_oos']:+.3f}",
            dm,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--skip-few-shot", action="store_true")
    parser.add_argument("--classes", nargs="*", help="subset of stocks fx rates")
    parser.add_argument("--out", default=None)
    args = parse_args(parser, argv)
    cfg = QUICK if args.quick else FULL
    out = args.out or (
        "benchmarks/results/accuracy_real_quick.json"
        if args.quick
        else "benchmarks/results/accuracy_real.json"
    )
    torch.set_num_threads(1)
    started = time.perf_counter()
    load = {"start": os.getloadavg()}

    def log(msg: str) -> None:
        print(
            f"[{time.perf_counter() - started:6.0f}s load {os.getloadavg()[0]:.1f}] {msg}",
            flush=True,
        )

    rows, infos = [], {}
    for name, spec in cfg["classes"].items():
        if args.classes and name not in args.classes:
            continue
        class_rows, infos[name] = backtest_class(name, spec, cfg, log)
        rows += class_rows
    summary = summarise(rows, ["class"])
    overall = summarise([{**r, "class": "all"} for r in rows], ["class"])
    print("\nBacktests (mean over series; MASE range over seeds):")
    print(markdown(summary, ["class"]))
    print("\nAll series pooled:")
    print(markdown(overall, ["class"]))
    result = {
        "environment": environment("sktime", "scikit-learn", "statsmodels", "pandas"),
        "config": cfg,
        "command": command_line("accuracy_real", argv),
        "backtests": {"info": infos, "rows": rows, "summary": summary, "overall": overall},
    }
    if not args.skip_few_shot:
        fs_rows, fs_info = few_shot(cfg, log)
        fs_summary = summarise(fs_rows, ["history"])
        print("\nFew-shot on held-out companies (mean over companies):")
        print(markdown(fs_summary, ["history"]))
        result["few_shot"] = {"info": fs_info, "rows": fs_rows, "summary": fs_summary}
    load["end"] = os.getloadavg()
    result["load_average"] = load
    result["total_seconds"] = time.perf_counter() - started
    log(f"done; load average at start {load['start']}, end {load['end']}")
    print(f"wrote {write_json(out, result)}")


if __name__ == "__main__":
    main()
