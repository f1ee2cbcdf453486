"""Do predict, predict_quantiles, predict_var and predict_proba describe one distribution?

The setting of the risk page's first example: ``MetaLSTMForecaster(horizon=5)``
pretrained on 16 bundled companies (from 2015), then fitted on 250 days of each
of the other four at three origins (400 and 200 business days before the end,
and the end). At ``fh=[1, 5]`` it records, in standard deviations of the
forecast (``sqrt(predict_var)``): how far ``predict`` lies from the median
(``predict_quantiles`` at 0.5) and from ``predict_proba``'s mean; and the
ratio of ``predict_proba``'s variance to ``predict_var``.

Run ``python benchmarks/proba_consistency.py`` (about 2-3 minutes on 2 CPUs;
``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _reporting import QUICK_FORECASTER, command_line, environment, parse_args, write_json

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import load_stock_prices

FH = [1, 5]
HISTORY = 250
ORIGINS_BEFORE_END = (400, 200, 0)


def consistency(forecaster: MetaLSTMForecaster, y) -> dict[str, list[float]]:
    """The three comparisons at ``FH`` for a forecaster fitted on ``y``."""
    forecaster.fit(y)
    point = forecaster.predict(fh=FH).to_numpy()
    variance = forecaster.predict_var(fh=FH).to_numpy()[:, 0]
    median = forecaster.predict_quantiles(fh=FH, alpha=[0.5]).to_numpy()[:, 0]
    dist = forecaster.predict_proba(fh=FH)
    sd = np.sqrt(variance)
    return {
        "point_minus_median_sd": list((point - median) / sd),
        "point_minus_proba_mean_sd": list((point - dist.mean().to_numpy()[:, 0]) / sd),
        "proba_var_over_predict_var": list(dist.var().to_numpy()[:, 0] / variance),
    }


def main(argv: list[str] | None = None) -> None:
    """Pretrain once, fit at every origin, write the comparisons as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, one company")
    parser.add_argument("--out", default="benchmarks/results/proba_consistency.json")
    args = parse_args(parser, argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)

    prices = load_stock_prices(start="2015-01-01")
    tickers = prices.index.get_level_values(0).unique()
    settings = dict(QUICK_FORECASTER, verbose=0) if args.quick else {}
    forecaster = MetaLSTMForecaster(horizon=5, random_state=0, **settings)
    start = time.perf_counter()
    forecaster.pretrain(prices.loc[tickers[:16]])
    pretrain_seconds = time.perf_counter() - start

    rows = []
    for ticker in tickers[16:17] if args.quick else tickers[16:]:
        series = prices.loc[ticker].iloc[:, 0].asfreq("B")
        for before_end in ORIGINS_BEFORE_END[-1:] if args.quick else ORIGINS_BEFORE_END:
            end = len(series) - before_end
            y = series.iloc[end - HISTORY : end]
            rows.append(
                {"ticker": ticker, "origin": str(y.index[-1].date()), **consistency(forecaster, y)}
            )

    def extreme(key: str, reduce) -> float:
        return float(reduce([v for row in rows for v in row[key]]))

    summary = {
        "max_abs_point_minus_median_sd": extreme(
            "point_minus_median_sd", lambda v: np.max(np.abs(v))
        ),
        "max_abs_point_minus_proba_mean_sd": extreme(
            "point_minus_proba_mean_sd", lambda v: np.max(np.abs(v))
        ),
        "proba_var_over_predict_var_min": extreme("proba_var_over_predict_var", np.min),
        "proba_var_over_predict_var_max": extreme("proba_var_over_predict_var", np.max),
    }
    for key, value in summary.items():
        print(f"{key}: {value:.4f}")
    report = {
        "command": command_line("proba_consistency", argv),
        "environment": environment("sktime", "skpro"),
        "pretrain_seconds": pretrain_seconds,
        "summary": summary,
        "rows": rows,
    }
    print(f"wrote {write_json(args.out, report)}")


if __name__ == "__main__":
    main()
