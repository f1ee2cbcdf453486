"""Exchange rates: pretrain on a panel of currencies, forecast held-out ones.

``load_exchange_rates`` gives daily ECB euro reference rates. The forecaster is
pretrained (meta-trained) on 14 currencies and then backtested on three major
currencies it never saw (USD, GBP and JPY per euro), 1 and 5 business days
ahead, at 60 rolling origins with sktime ``evaluate(..., strategy="update")``:
at each origin it adapts to the currency's most recent windows without
meta-training again (``MetaLSTMForecaster.from_pretrained``). Pretraining uses
data up to the first forecast origin only.

Compared on the same origins:

* ``meta-learner``: Meta-SGD, ``meta_learner="metasgd"`` (learned
  initialisation and per-weight step sizes; not the default ``"ridge"``: a
  gradient learner, set against plain gradient steps);
* ``fine-tune``: ``meta_learner="finetune"``, the same pooled LSTM adapted by
  plain gradient steps, nothing meta-trained: what the meta-learner must beat;
* the random walk (next fixing = today's).

Exchange rates are famously hard to forecast beyond the random walk (Meese &
Rogoff, 1983); the script prints whether the random walk wins.

Run: ``python examples/exchange_rates.py`` (about 20 s on 2 CPU cores; up to 80 s under load).
"""

from __future__ import annotations

import time

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

HELD_OUT = ["USD", "GBP", "JPY"]
START = "2024-07-01"  # pretraining data start (recent years keep it fast)
HISTORY = 120  # business days before the first origin passed to fit
TEST = 60  # forecast origins per currency
HORIZONS = [1, 5]
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
MODELS = {"meta-learner": "metasgd", "fine-tune": "finetune"}


def main() -> None:
    """Pretrain on 14 currencies, backtest 3 held-out ones, print, plot."""
    from sktime.split import ExpandingWindowSplitter

    from sk_metalstm import MetaLSTMForecaster
    from sk_metalstm.datasets import load_exchange_rates

    started = time.perf_counter()
    rates = load_exchange_rates(start=START)
    dates = rates.loc[HELD_OUT[0]].index
    first_origin = dates[-(TEST + max(HORIZONS) - 1)]
    currencies = rates.index.get_level_values("currency").unique()
    seen = [c for c in currencies if c not in HELD_OUT]
    panel = rates.loc[seen]
    panel = panel[panel.index.get_level_values("time") <= first_origin]
    print(
        f"pretraining on {len(seen)} currencies ({', '.join(seen)}), {START} to "
        f"{first_origin.date()}; held out: {', '.join(HELD_OUT)}"
    )
    states = {}
    for name, learner in MODELS.items():
        tic = time.perf_counter()
        forecaster = MetaLSTMForecaster(**CONFIG, meta_learner=learner)
        forecaster.pretrain(panel)
        states[name] = forecaster.pretrained_state_
        print(f"pretrained {name} ({learner}) in {time.perf_counter() - tic:.0f} s")

    cv = ExpandingWindowSplitter(initial_window=HISTORY, step_length=1, fh=HORIZONS)
    parts, plots = {}, []
    for currency in HELD_OUT:
        y = rates.loc[currency].iloc[:, 0].rename(currency)
        y = y.iloc[-(HISTORY + TEST + max(HORIZONS) - 1) :]
        forecasts = {}
        for name, state in states.items():
            frame = rolling_forecasts(
                MetaLSTMForecaster.from_pretrained(state), y, cv, strategy="update"
            )
            parts[(currency, name)] = score_frame(frame, y)
            forecasts[f"{name}, 1 day"] = frame[frame["step"] == 1].set_index("time")["pred"]
        parts[(currency, RANDOM_WALK)] = random_walk_scores(frame, y)
        plots.append(
            {
                "title": f"{currency} per EUR (held out of pretraining)",
                "history": y,
                "forecasts": forecasts,
                "start": y.index[HISTORY - 1],
            }
        )

    table = results_table(parts, ["currency", "model"])
    print("\nPer currency (MASE vs RW < 1 beats the random walk):")
    print(format_table(table))
    means = summary(table)
    print(f"\nMean over the {len(HELD_OUT)} held-out currencies:")
    print(format_table(means))
    for line in verdict(means):
        print("  " + line)
    print(
        "\n3 currencies x 60 days is a small sample: read MASE within a few percent "
        "of 1 as parity with the random walk, not an edge."
    )
    save_plot("exchange_rates", plots)
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
