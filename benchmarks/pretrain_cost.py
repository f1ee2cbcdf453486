"""What the default ``pretrain`` costs on the bundled stock panel, and what adaptation costs.

Part 1. ``MetaLSTMForecaster(random_state=0).pretrain(load_stock_prices())``:
the full bundled panel (20 companies, 1990-2022, about 172,000 prices) with the
package defaults; also on the first 1 and 5 companies (``--sizes N ...``
chooses others; ``--sizes`` alone skips them), to show how the cost grows
with the panel. Reports the wall time, the time of each
phase (pooled training, then meta-training, from skorch's epoch durations, so
the ratio is measured inside one run) and the epochs run (early stopping may
end a phase). ``--learners`` adds other learners with the same settings.

Part 2. On 10 exchange rates the model never saw (``load_exchange_rates``), the
last 250 business days each (the protocol of ``speed.py``, where version 0.1
measured 10x): ``fit`` + ``predict`` of the pretrained default
forecaster against training ``LSTMBaseRegressor()`` (its defaults, window 20)
from scratch on the same history's standardised log-returns and predicting.
Both timed alternately per series, medians and their ratio.

Run ``python benchmarks/pretrain_cost.py`` (about 2-3 min on 2 CPUs for the
default learner) or ``--quick``. Writes ``benchmarks/results/pretrain_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

import numpy as np
from _reporting import parse_args, rotate, scratch_next_increment, write_report

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import load_exchange_rates, load_stock_prices

#: Days of history of each unseen series in part 2.
HISTORY = 250


def pretrain_cost(
    learner: str, quick: bool, n_series: int | None = None
) -> tuple[dict[str, Any], MetaLSTMForecaster]:
    """Wall time and per-phase time of the default pretrain with ``learner``.

    ``n_series`` takes the first companies only (default: all 20).
    """
    panel = load_stock_prices()
    if n_series is not None:
        panel = panel.loc[panel.index.get_level_values(0).unique()[:n_series]]
    extra = {"base_max_epochs": 1, "max_epochs": 1, "tasks_per_epoch": 64} if quick else {}
    forecaster = MetaLSTMForecaster(meta_learner=learner, random_state=0, **extra)
    tic = time.perf_counter()
    forecaster.pretrain(panel)
    wall = time.perf_counter() - tic
    phases = [
        {"epochs": len(h), "seconds": float(sum(row["dur"] for row in h if "dur" in row))}
        for h in forecaster.pretrained_state_.history
    ]
    result = {
        "learner": learner,
        "series": int(panel.index.get_level_values(0).nunique()),
        "prices": len(panel),
        "pretrain_seconds": wall,
        "phases": phases,
    }
    if len(phases) == 2:
        result["meta_over_pooled_time"] = phases[1]["seconds"] / phases[0]["seconds"]
        result["meta_over_pooled_per_epoch"] = (phases[1]["seconds"] / phases[1]["epochs"]) / (
            phases[0]["seconds"] / phases[0]["epochs"]
        )
    print(f"pretrain {learner}: {json.dumps(result)}", flush=True)
    return result, forecaster


def adaptation_cost(forecaster: MetaLSTMForecaster, quick: bool) -> dict[str, Any]:
    """fit + predict of the pretrained forecaster vs an LSTM trained from scratch."""
    wide = load_exchange_rates(as_panel=False).dropna()
    columns = list(wide.columns[: 3 if quick else 10])
    state = forecaster.pretrained_state_
    window = state.config["window_length"]

    def adapt(y):
        forecaster = MetaLSTMForecaster.from_pretrained(state, verbose=0)
        return float(forecaster.fit(y).predict([1]).iloc[0])

    def scratch(y, seed):
        r = np.diff(np.log(y.to_numpy()))
        return float(y.iloc[-1] * np.exp(scratch_next_increment(r, window, random_state=seed)))

    times: dict[str, list[float]] = {"adapt": [], "scratch": []}
    for k, column in enumerate(columns):
        y = wide[column].iloc[-HISTORY:]
        jobs = {"adapt": lambda y=y: adapt(y), "scratch": lambda y=y, k=k: scratch(y, k)}
        for name in rotate(list(jobs), k):
            tic = time.perf_counter()
            jobs[name]()
            times[name].append(time.perf_counter() - tic)
    adapt_s, scratch_s = np.median(times["adapt"]), np.median(times["scratch"])
    result = {
        "series": columns,
        "history_points": HISTORY,
        "adapt_fit_predict_median_s": float(adapt_s),
        "scratch_fit_predict_median_s": float(scratch_s),
        "speedup_median": float(scratch_s / adapt_s),
        "times": times,
    }
    print(
        f"adapt+predict {adapt_s * 1e3:.1f} ms vs scratch {scratch_s:.2f} s: "
        f"{scratch_s / adapt_s:.0f}x",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--learners", nargs="+", default=[])
    parser.add_argument(
        "--sizes",
        nargs="*",
        type=int,
        default=[1, 5],
        help="also pretrain on the first N companies (default 1 5; none: skip)",
    )
    parser.add_argument("--out", default="benchmarks/results/pretrain_cost.json")
    args = parse_args(parser, argv)
    warnings.simplefilter("ignore", FutureWarning)
    default, forecaster = pretrain_cost(MetaLSTMForecaster().meta_learner, args.quick)
    write_report(
        args.out,
        None,
        default=default,
        others=[pretrain_cost(name, args.quick)[0] for name in args.learners],
        sizes=[pretrain_cost(default["learner"], args.quick, n)[0] for n in args.sizes],
        adaptation=adaptation_cost(forecaster, args.quick),
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
