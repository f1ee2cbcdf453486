"""Monthly corporate bond yields: MetaLSTMForecaster vs random walk vs ARIMA.

One series only: Moody's Baa corporate bond yield (``load_interest_rates("BAA")``,
monthly, percent). There is no panel to pretrain on, so ``fit`` meta-trains on
the series' own history: it cuts tasks (support windows, then strictly later
query windows) from its time blocks, learns the base LSTM and the update rule
on them, and adapts to the most recent windows.

The backtest is sktime's ``evaluate`` with an ``ExpandingWindowSplitter``:
meta-training runs once, on 1919-2008, and then at each of the 118 monthly
origins from 2008-12 to 2018-09 the forecaster is updated (``strategy="update"``: it
adapts to the newest windows, no meta-training) and forecasts 1 and 3 months
ahead. The same origins are used for:

* the random walk (sktime ``NaiveForecaster``, next month = this month);
* ARIMA(1, 1, 0) from statsmodels (``StatsModelsARIMA``, re-estimated at every
  origin), when statsmodels is installed.

Rates are modelled in first differences (``transform="difference"``). The
forecaster's ``transform="auto"`` would pick log-returns here, because these
yields are always positive; differences are the usual choice for rates.

Run: ``python examples/interest_rates.py`` (about a minute on 2 busy CPU cores).
"""

from __future__ import annotations

import time
import warnings

import pandas as pd

# examples/_common.py, next to this script: rolling backtests and scores vs the random walk.
from _common import (
    EXAMPLES_EXTRA,
    RANDOM_WALK,
    format_table,
    hide_sktime_notice,
    results_table,
    rolling_forecasts,
    save_plot,
    score_frame,
    summary,
    verdict,
)

hide_sktime_notice()

SERIES = "BAA"
TRAIN_END = "2008-12"  # meta-training data end = first forecast origin
HORIZONS = [1, 3]
CONFIG = {
    "window_length": 12,
    "horizon": max(HORIZONS),
    "hidden_size": 16,
    "support_size": 48,
    "query_size": 6,
    "base_max_epochs": 5,
    "max_epochs": 5,
    "transform": "difference",
    "random_state": 0,
}


def forecasters() -> dict:
    """The models to compare, by name; ARIMA only if statsmodels is installed."""
    from sktime.forecasting.naive import NaiveForecaster

    from sk_metalstm import MetaLSTMForecaster

    with warnings.catch_warnings():  # sktime's notice about remember_data
        hide_sktime_notice()
        models = {
            "MetaLSTM": MetaLSTMForecaster(**CONFIG),
            RANDOM_WALK: NaiveForecaster(strategy="last"),
        }
    # sktime baselines keep all data they are updated with and refit on it.
    quiet = {"remember_data": True, "warnings": "off"}
    try:
        import statsmodels  # noqa: F401
        from sktime.forecasting.arima import StatsModelsARIMA
    except ImportError:
        print(f"statsmodels is not installed: skipping ARIMA ({EXAMPLES_EXTRA}).")
    else:
        with warnings.catch_warnings():
            hide_sktime_notice()
            models["ARIMA(1,1,0)"] = StatsModelsARIMA(order=(1, 1, 0))
    for name in (RANDOM_WALK, "ARIMA(1,1,0)"):
        if name in models:
            models[name].set_config(**quiet)
    return models


def main() -> None:
    """Backtest every model over 2009-2018, print the table, save a plot."""
    from sktime.split import ExpandingWindowSplitter

    from sk_metalstm.datasets import load_interest_rates

    started = time.perf_counter()
    y = load_interest_rates(SERIES)
    initial = int((y.index <= pd.Period(TRAIN_END, freq=y.index.freq)).sum())
    cv = ExpandingWindowSplitter(initial_window=initial, step_length=1, fh=HORIZONS)
    print(
        f"{SERIES}: {len(y)} months {y.index[0]} to {y.index[-1]}; first origin "
        f"{y.index[initial - 1]}, {cv.get_n_splits(y)} origins, h = {HORIZONS}"
    )

    parts, one_step = {}, {}
    for name, forecaster in forecasters().items():
        tic = time.perf_counter()
        frame = rolling_forecasts(forecaster, y, cv, strategy="update")
        print(f"{name}: backtest in {time.perf_counter() - tic:.0f} s")
        parts[(SERIES, name)] = score_frame(frame, y)
        if name != RANDOM_WALK:
            one_step[f"{name}, 1 month"] = frame[frame["step"] == 1].set_index("time")["pred"]

    table = results_table(parts, ["series", "model"])
    # The naive forecaster is the random walk: MASE exactly 1, and it never moves.
    is_rw = table.index.get_level_values("model") == RANDOM_WALK
    table.loc[is_rw, ["direction", "forecasts up"]] = float("nan")
    print("\nMASE vs RW < 1 beats the random walk:")
    print(format_table(table.droplevel("series")))
    for line in verdict(summary(table)):
        print("  " + line)

    shown = y[y.index >= pd.Period("2004-01", freq=y.index.freq)]
    save_plot(
        "interest_rates",
        [
            {
                "title": f"{SERIES} yield (%): 1-month-ahead forecasts from 2009",
                "history": shown,
                "forecasts": one_step,
                "start": y.index[initial - 1],
            }
        ],
    )
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
