"""Few-shot stock forecasting: meta-learner vs pooled LSTM vs random walk.

Pretrain (meta-train) once on 16 of the 20 companies of ``load_stock_prices``,
then forecast the 4 held-out companies from a short history only (60 or 120
trading days), 1 and 5 days ahead, over a rolling backtest of 60 origins with
sktime's ``evaluate(..., strategy="update")``. Three forecasters:

* ``meta-learner``: ``MetaLSTMForecaster`` with the default ``meta_learner``,
  which adapts the network to each held-out company at every origin;
* ``pooled LSTM``: ``meta_learner="none"``, the same LSTM trained on the same
  tasks for the same number of epochs (base + meta epochs) but never adapted;
* the random walk (tomorrow's price = today's).

``MetaLSTMForecaster.from_pretrained(state, support_size=...)`` reuses the
meta-trained state, so nothing is meta-trained again during the backtest, and
sets how many windows the forecaster adapts on so that it sees exactly the
short history. Pretraining uses data up to the first forecast origin only
(other companies' later prices would leak market-wide moves into the test).

Daily prices are close to a random walk. The script prints whether the random
walk wins; over 4 companies x 60 days, differences of a few percent are noise.

Run: ``python examples/stocks_few_shot.py`` (about 2 minutes on 2 busy CPU cores).
"""

from __future__ import annotations

import time

import pandas as pd

# examples/_common.py, next to this script: rolling backtests and scores vs the random walk.
from _common import (
    RANDOM_WALK,
    format_table,
    hide_sktime_notice,
    random_walk_scores,
    results_table,
    rolling_forecasts,
    save_plot,
    score_frame,
    summary,
    verdict,
)

hide_sktime_notice()

HELD_OUT = ["AMD", "JPM", "KO", "XOM"]  # four sectors; the other 16 are for pretraining
HISTORIES = [60, 120]  # trading days the forecaster may use at each origin
TEST = 60  # forecast origins per company
HORIZONS = [1, 5]
START = "2021-01-01"  # pretraining data start (recent years keep it fast)
CONFIG = {
    "window_length": 20,
    "horizon": max(HORIZONS),
    "hidden_size": 16,
    "support_size": 60,
    "query_size": 10,
    "base_max_epochs": 2,
    "max_epochs": 2,
    "random_state": 0,
}


def pretrain_models(panel: pd.DataFrame) -> dict:
    """Meta-train the default meta-learner and the pooled LSTM on ``panel``."""
    from sk_metalstm import MetaLSTMForecaster

    pooled_epochs = CONFIG["base_max_epochs"] + CONFIG["max_epochs"]  # same budget
    specs = {
        "meta-learner": MetaLSTMForecaster(**CONFIG),
        "pooled LSTM": MetaLSTMForecaster(
            **{**CONFIG, "base_max_epochs": pooled_epochs}, meta_learner="none"
        ),
    }
    states = {}
    for name, forecaster in specs.items():
        tic = time.perf_counter()
        forecaster.pretrain(panel)
        states[name] = forecaster.pretrained_state_
        print(f"pretrained {name} ({forecaster.meta_learner}) in {time.perf_counter() - tic:.0f} s")
    return states


def main() -> None:
    """Pretrain once, backtest the held-out companies, print the table, save a plot."""
    from sktime.split import SlidingWindowSplitter

    from sk_metalstm import MetaLSTMForecaster
    from sk_metalstm.datasets import load_stock_prices

    started = time.perf_counter()
    prices = load_stock_prices(start=START)
    dates = prices.loc[HELD_OUT[0]].index
    # Origins are the TEST dates before the last max(HORIZONS) - 1 ones.
    first_origin = dates[-(TEST + max(HORIZONS) - 1)]
    tickers = prices.index.get_level_values("ticker").unique()
    seen = [t for t in tickers if t not in HELD_OUT]
    panel = prices.loc[seen]
    panel = panel[panel.index.get_level_values("time") <= first_origin]
    print(
        f"pretraining on {len(seen)} companies, {START} to {first_origin.date()}; "
        f"held out: {', '.join(HELD_OUT)}"
    )
    states = pretrain_models(panel)

    parts, plots = {}, {}
    window, horizon = CONFIG["window_length"], CONFIG["horizon"]
    for history in HISTORIES:
        cv = SlidingWindowSplitter(window_length=history, step_length=1, fh=HORIZONS)
        for ticker in HELD_OUT:
            y = prices.loc[ticker].iloc[:, 0].rename(ticker)
            y = y.iloc[-(history + TEST + max(HORIZONS) - 1) :]
            for name, state in states.items():
                # Adapt on exactly `history` points: support windows = history - L - h.
                forecaster = MetaLSTMForecaster.from_pretrained(
                    state, support_size=history - window - horizon
                )
                frame = rolling_forecasts(forecaster, y, cv, strategy="update")
                parts[(history, ticker, name)] = score_frame(frame, y)
                if history == max(HISTORIES):
                    one_step = frame[frame["step"] == 1].set_index("time")["pred"]
                    plots.setdefault(ticker, {"y": y, "forecasts": {}})
                    plots[ticker]["forecasts"][f"{name}, 1 day"] = one_step
            parts[(history, ticker, RANDOM_WALK)] = random_walk_scores(frame, y)

    table = results_table(parts, ["history", "ticker", "model"])
    print("\nPer company (MASE vs RW < 1 beats the random walk):")
    print(format_table(table))
    for history in HISTORIES:
        means = summary(table.xs(history, level="history"))
        print(f"\nMean over the {len(HELD_OUT)} held-out companies, history {history} days:")
        print(format_table(means))
        for line in verdict(means):
            print("  " + line)
    print(
        "\nDaily prices are close to a random walk: 4 companies x 60 days is a small "
        "sample, so read MASE within a few percent of 1 as parity, not an edge."
    )

    save_plot(
        "stocks_few_shot",
        [
            {
                "title": f"{ticker}: held out of pretraining, {max(HISTORIES)}-day history",
                "history": plot["y"],
                "forecasts": plot["forecasts"],
                "start": plot["y"].index[max(HISTORIES) - 1],
            }
            for ticker, plot in plots.items()
        ],
    )
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
