"""Quickstart: meta-learn on 16 stocks, forecast 4 unseen ones from 120 days of history.

Steps 1-2 (``pretrain``) learn, across 16 companies, an LSTM and a way to adapt
it. Step 3 (``fit``/``update``) adapts it to a company it has never seen, from
its last 120 trading days only, and forecasts 1 and 5 days ahead over a rolling
backtest on the next 60 days (56 origins: each 5-day target falls inside
them). The random walk (tomorrow's price = today's) is the bar: daily prices
are close to a random walk, and the table says so when it wins.

Run: ``python examples/quickstart.py`` (about 80 s on 2 CPU cores).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sktime.forecasting.model_evaluation import evaluate
from sktime.split import ExpandingWindowSplitter

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import load_stock_prices

HISTORY, TEST, HORIZONS = 120, 60, [1, 5]


def backtest(forecaster: MetaLSTMForecaster, y: pd.Series) -> pd.DataFrame:
    """Rolling-origin forecasts over the last ``TEST`` days (sktime ``evaluate``).

    The ``update`` strategy adapts again at every origin without meta-training.
    """
    cv = ExpandingWindowSplitter(initial_window=HISTORY, step_length=1, fh=HORIZONS)
    result = evaluate(forecaster, cv, y, strategy="update", return_data=True)
    rows = []
    for _, fold in result.iterrows():
        last = float(np.ravel(y.loc[fold["cutoff"]])[0])  # the random walk's forecast
        for step, (t, pred) in zip(HORIZONS, fold["y_pred"].items(), strict=True):
            rows.append({"step": step, "time": t, "pred": pred, "last": last})
    return pd.DataFrame(rows)


def scores(frame: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """MAE relative to the random walk, and directional accuracy."""
    actual = y.loc[frame["time"]].to_numpy()
    last, pred = frame["last"].to_numpy(), frame["pred"].to_numpy()
    up_true = actual > last
    return {
        "mase": float(np.mean(np.abs(pred - actual)) / np.mean(np.abs(last - actual))),
        "direction": float(np.mean(up_true == (pred > last))),
        "always_up": float(np.mean(up_true)),
    }


def main() -> None:
    """Pretrain, adapt to unseen stocks, and print a table against the random walk."""
    prices = load_stock_prices(start="2020-06-01")
    tickers = prices.index.get_level_values(0).unique()
    seen, unseen = list(tickers[:16]), list(tickers[16:])
    # Pretrain only on data before the backtest window: market-wide moves in the
    # seen companies would otherwise leak the test period into the meta-learner.
    test_start = prices.loc[unseen[0]].index[-TEST]
    before_test = prices[prices.index.get_level_values(1) < test_start]

    # The package defaults: the "ridge" learner, progress lines while it trains.
    forecaster = MetaLSTMForecaster(horizon=max(HORIZONS), random_state=0)
    forecaster.pretrain(before_test.loc[seen])  # steps 1 and 2, once
    adapted = MetaLSTMForecaster.from_pretrained(forecaster.pretrained_state_)

    rows, plots = [], {}
    for ticker in unseen:
        y = prices.loc[ticker].iloc[:, 0].iloc[-(HISTORY + TEST) :].asfreq("B")
        meta = backtest(adapted, y)
        plots[ticker] = (y, meta[meta["step"] == 1])
        for step in HORIZONS:
            m = scores(meta[meta["step"] == step], y)
            rows.append(
                {
                    "ticker": ticker,
                    "h": step,
                    "MASE vs random walk": m["mase"],
                    "direction": m["direction"],
                    "always up": m["always_up"],
                }
            )
    table = pd.DataFrame(rows).set_index(["ticker", "h"])
    print(table.to_string(float_format="{:.3f}".format))
    mean_ratio = table["MASE vs random walk"].mean()
    verdict = "below" if mean_ratio < 1 else "NOT below"
    print(
        f"\nMean MAE relative to the random walk: {mean_ratio:.3f} ({verdict} 1). "
        "Daily prices are close to a random walk: over 60 days a difference of a "
        "few percent is within noise, so read this as parity, not an edge."
    )
    save_plot(plots)


def save_plot(plots: dict[str, tuple[pd.Series, pd.DataFrame]]) -> None:
    """History and one-day-ahead forecasts for each unseen stock."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # an optional extra
        print('matplotlib is not installed (pip install "sk_metalstm[examples]"); no plot saved.')
        return
    fig, axes = plt.subplots(len(plots), 1, figsize=(8, 2.2 * len(plots)), sharex=False)
    for ax, (ticker, (y, forecast)) in zip(np.atleast_1d(axes), plots.items(), strict=True):
        ax.plot(y.index, y.to_numpy(), color="black", lw=1, label="price")
        ax.plot(forecast["time"], forecast["pred"], color="tab:red", lw=1, label="1-day forecast")
        ax.axvline(y.index[HISTORY - 1], color="grey", ls=":", lw=1)
        ax.set_title(f"{ticker} (unseen during pretraining)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out = Path(__file__).parent / "output"
    out.mkdir(exist_ok=True)
    fig.savefig(out / "quickstart.png", dpi=110)
    print(f"plot saved to {out / 'quickstart.png'}")


if __name__ == "__main__":
    main()
