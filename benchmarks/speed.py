"""Training speed against the floor and peers; adaptation against training from scratch.

Part 1, training. One configuration for every contender: window 30, hidden 32,
1 LSTM layer, batch 64, 20 epochs, Adam (lr 1e-3), MSE, about 1000 windows of a
generated AR(1) series, 1 torch thread. Contenders, alternating within one
process (each round runs every contender once, in a rotated order):

* ``floor``: a minimal hand-written PyTorch loop on ``sk_metalstm.networks.
  LSTMNetwork`` (shuffle, slice, forward, MSE, backward, Adam step);
* ``LSTMBaseRegressor.fit`` (2-D float64 input, as a user passes it);
* a bare skorch ``NeuralNetRegressor`` on the same module (no validation split);
* darts ``RNNModel(model="LSTM")`` (trains on sequences of ``training_length``
  31 and scores every step) and ``BlockRNNModel(model="LSTM")`` (window in, one
  value out: the closest match to ``LSTMNetwork``);
* neuralforecast ``LSTM`` (h=1, input_size 30, encoder hidden 32, 1 layer,
  decoder MLP 1 layer of 32, identity scaler), ``max_steps`` = 20 epochs'
  worth of 64-window batches.

darts and neuralforecast are optional peers (``benchmarks/requirements-peers.txt``);
a peer that is not installed is skipped with a note.

Part 2, adaptation. ``MetaLSTMForecaster`` (package defaults, window 30,
hidden 32) is pretrained once on 16 companies of ``load_stock_prices`` (data before the
first origin); then, for each of 4 held-out companies and several origins,
adapting to the company's last 250 days and forecasting one day ahead
(``from_pretrained(state).fit(y).predict(fh=1)``) is timed against training a
plain ``LSTMBaseRegressor`` (same training configuration as part 1) from
scratch on the same 250 days (standardised log-returns, window 30) and
predicting. Accuracy of both: MASE of the one-day log-price forecasts relative
to the random walk over the same origins.

Run ``python benchmarks/speed.py`` (~5-10 min on 2 busy cores) or ``--quick``.
Writes ``benchmarks/results/speed.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _reporting import (
    ar1_series,
    environment,
    lag_windows,
    parse_args,
    rotate,
    scratch_next_increment,
    to_panel,
    write_json,
)

WINDOW, HIDDEN, BATCH, EPOCHS, LR = 30, 32, 64, 20, 1e-3


# ------------------------------------------------------------------ data
def make_windows(n_windows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An AR(1) series and its (n, WINDOW) float64 windows and next-step targets."""
    z = ar1_series(n_windows + WINDOW, 0.5, seed)
    return z, *lag_windows(z, WINDOW)


# ----------------------------------------------------------- contenders
def fit_floor(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The hand-written loop: what one epoch costs with nothing around it."""
    from sk_metalstm.networks import LSTMNetwork

    torch.manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32).unsqueeze(-1)
    yt = torch.as_tensor(y, dtype=torch.float32).unsqueeze(-1)
    net = LSTMNetwork(1, HIDDEN, 1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    n = len(Xt)
    for _ in range(EPOCHS):
        perm = torch.randperm(n)
        total = 0.0
        for start in range(0, n, BATCH):
            idx = perm[start : start + BATCH]
            opt.zero_grad()
            loss = loss_fn(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    return total / n


def fit_regressor(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    """sk_metalstm's LSTMBaseRegressor."""
    from sk_metalstm import LSTMBaseRegressor

    reg = LSTMBaseRegressor(
        hidden_size=HIDDEN, max_epochs=EPOCHS, batch_size=BATCH, lr=LR, random_state=seed
    )
    reg.fit(X, y)
    return float(reg.history_[-1, "train_loss"])


def fit_skorch(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    """A bare skorch NeuralNetRegressor on the same module."""
    from skorch import NeuralNetRegressor

    from sk_metalstm.networks import LSTMNetwork

    torch.manual_seed(seed)
    net = NeuralNetRegressor(
        LSTMNetwork,
        module__input_size=1,
        module__hidden_size=HIDDEN,
        module__output_size=1,
        optimizer=torch.optim.Adam,
        lr=LR,
        max_epochs=EPOCHS,
        batch_size=BATCH,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    net.fit(X[:, :, None].astype(np.float32), y[:, None].astype(np.float32))
    return float(net.history[-1, "train_loss"])


_PL_QUIET = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
    "enable_checkpointing": False,
}


def fit_darts(z: np.ndarray, seed: int, block: bool) -> float:
    """darts RNNModel (or BlockRNNModel) with LSTM cells."""
    from darts import TimeSeries
    from darts.models import BlockRNNModel, RNNModel

    series = TimeSeries.from_values(z.astype(np.float32))
    common = {
        "hidden_dim": HIDDEN,
        "n_rnn_layers": 1,
        "batch_size": BATCH,
        "n_epochs": EPOCHS,
        "optimizer_kwargs": {"lr": LR},
        "random_state": seed,
        "pl_trainer_kwargs": _PL_QUIET,
        "save_checkpoints": False,
    }
    if block:
        model = BlockRNNModel(
            model="LSTM", input_chunk_length=WINDOW, output_chunk_length=1, **common
        )
    else:
        model = RNNModel(
            model="LSTM", input_chunk_length=WINDOW, training_length=WINDOW + 1, **common
        )
    model.fit(series, verbose=False)
    return float("nan")


def fit_neuralforecast(z: np.ndarray, seed: int) -> float:
    """neuralforecast LSTM, 20 epochs' worth of 64-window steps."""
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    n_windows = len(z) - WINDOW
    steps = EPOCHS * int(np.ceil(n_windows / BATCH))
    model = LSTM(
        h=1,
        input_size=WINDOW,
        encoder_hidden_size=HIDDEN,
        encoder_n_layers=1,
        decoder_hidden_size=HIDDEN,
        decoder_layers=1,
        max_steps=steps,
        learning_rate=LR,
        batch_size=1,
        windows_batch_size=BATCH,
        scaler_type="identity",
        val_check_steps=10**6,
        random_seed=seed,
        **_PL_QUIET,
    )
    df = pd.DataFrame({"unique_id": "s", "ds": np.arange(len(z)), "y": z.astype(np.float32)})
    NeuralForecast(models=[model], freq=1).fit(df)
    return float("nan")


def available(module: str) -> str | None:
    """None if ``module`` imports, else the reason it does not."""
    try:
        __import__(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def quiet() -> Any:
    """Silence lightning/darts/neuralforecast chatter (stdout, warnings, logging)."""
    with warnings.catch_warnings(record=True), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def training_speed(rounds: int, n_windows: int) -> dict:
    """Alternating rounds of every contender; medians and per-round ratios to the floor."""
    z, X, y = make_windows(n_windows)
    contenders: dict[str, Callable[[int], float]] = {
        "floor (hand-written loop)": lambda s: fit_floor(X, y, s),
        "LSTMBaseRegressor.fit": lambda s: fit_regressor(X, y, s),
        "skorch NeuralNetRegressor": lambda s: fit_skorch(X, y, s),
    }
    skipped = {}
    for name, module, fn in [
        ("darts RNNModel", "darts.models", lambda s: fit_darts(z, s, block=False)),
        ("darts BlockRNNModel", "darts.models", lambda s: fit_darts(z, s, block=True)),
        ("neuralforecast LSTM", "neuralforecast.models", lambda s: fit_neuralforecast(z, s)),
    ]:
        reason = available(module)
        if reason is None:
            contenders[name] = fn
        else:
            skipped[name] = (
                f"not installed or broken ({reason}); see benchmarks/requirements-peers.txt"
            )
            print(f"skipping {name}: {skipped[name]}")
    # Warm-up (imports, first-call allocations) outside the timed rounds.
    with quiet():
        for fn in contenders.values():
            fn(99)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    losses: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in rotate(names, r):
            torch.set_num_threads(1)
            tic = time.perf_counter()
            with quiet():
                loss = contenders[name](r)
            times[name].append(time.perf_counter() - tic)
            losses[name].append(loss)
            assert torch.get_num_threads() == 1, f"{name} changed torch's thread count"
        print(
            f"round {r}: "
            + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in names)
            + f" (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    floor = np.array(times[names[0]])
    out = {"n_windows": int(len(X)), "rounds": rounds, "skipped": skipped, "contenders": {}}
    for name in names:
        t = np.array(times[name])
        ratio = t / floor
        out["contenders"][name] = {
            "seconds": t.tolist(),
            "median_s": float(np.median(t)),
            "ratio_to_floor_median": float(np.median(ratio)),
            "ratio_to_floor_min": float(ratio.min()),
            "ratio_to_floor_max": float(ratio.max()),
            "final_train_loss": [float(v) for v in losses[name]],
        }
    return out


# ------------------------------------------------------------ adaptation
def adaptation_speed(n_origins: int, history: int, quick: bool) -> dict:
    """Adapt a pretrained MetaLSTMForecaster vs train a plain LSTM from scratch."""
    from sk_metalstm import MetaLSTMForecaster
    from sk_metalstm.datasets import load_stock_prices

    held_out = ["AMD", "JPM"] if quick else ["AMD", "JPM", "KO", "XOM"]
    wide = np.log(load_stock_prices(start="2021-01-01", as_panel=False))
    first = len(wide) - n_origins - 1  # position of the first origin
    train = [c for c in wide.columns if c not in ["AMD", "JPM", "KO", "XOM"]]
    panel = to_panel(wide.iloc[: first + 1][train], "y", names=None)
    # The package defaults (default learner, epochs, support size), except the
    # window and hidden size shared with the scratch model.
    quick_epochs = {"base_max_epochs": 1, "max_epochs": 1} if quick else {}
    meta = MetaLSTMForecaster(
        window_length=WINDOW,
        horizon=1,
        hidden_size=HIDDEN,
        transform="difference",
        random_state=0,
        verbose=0,
        **quick_epochs,
    )
    tic = time.perf_counter()
    with quiet():
        meta.pretrain(panel)
    pretrain_s = time.perf_counter() - tic
    state = meta.pretrained_state_

    def adapt(y_hist: pd.Series) -> float:
        forecaster = MetaLSTMForecaster.from_pretrained(state)
        with quiet():
            forecaster.fit(y_hist)
            return float(forecaster.predict(fh=[1]).iloc[0])

    def scratch(y_hist: pd.Series, seed: int) -> float:
        nxt = scratch_next_increment(
            np.diff(y_hist.to_numpy()), WINDOW,
            hidden_size=HIDDEN, max_epochs=EPOCHS, batch_size=BATCH, lr=LR, random_state=seed,
        )
        return float(y_hist.iloc[-1] + nxt)

    times = {"adapt": [], "scratch": []}
    errors = {"adapt": [], "scratch": [], "random walk": []}
    per_series = {}
    for ticker in held_out:
        y = wide[ticker]
        errs = {k: [] for k in errors}
        for k in range(n_origins):
            origin = first + k
            y_hist = y.iloc[origin + 1 - history : origin + 1]
            actual = float(y.iloc[origin + 1])
            jobs = {
                "adapt": lambda h=y_hist: adapt(h),
                "scratch": lambda h=y_hist, seed=k: scratch(h, seed),
            }
            for name in rotate(list(jobs), k):
                tic = time.perf_counter()
                pred = jobs[name]()
                times[name].append(time.perf_counter() - tic)
                errs[name].append(abs(actual - pred))
            errs["random walk"].append(abs(actual - float(y_hist.iloc[-1])))
        rw = np.mean(errs["random walk"])
        per_series[ticker] = {
            k: float(np.mean(v) / rw) for k, v in errs.items() if k != "random walk"
        }
        for k in errors:
            errors[k] += errs[k]
        print(f"adaptation {ticker}: MASE vs RW {per_series[ticker]}", flush=True)
    t_a, t_s = np.array(times["adapt"]), np.array(times["scratch"])
    rw = np.mean(errors["random walk"])
    return {
        "held_out": held_out,
        "history_days": history,
        "origins_per_series": n_origins,
        "pretrain_seconds_once": pretrain_s,
        "adapt_fit_predict_median_s": float(np.median(t_a)),
        "scratch_fit_predict_median_s": float(np.median(t_s)),
        "speedup_median": float(np.median(t_s) / np.median(t_a)),
        "speedup_per_pair_min": float((t_s / t_a).min()),
        "speedup_per_pair_max": float((t_s / t_a).max()),
        "MASE_vs_RW": {k: float(np.mean(v) / rw) for k, v in errors.items() if k != "random walk"},
        "MASE_vs_RW_per_series": per_series,
        "break_even_adaptations": float(pretrain_s / max(np.median(t_s) - np.median(t_a), 1e-9)),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--skip-adaptation", action="store_true")
    parser.add_argument(
        "--adaptation-only",
        action="store_true",
        help="re-measure part 2 only, keeping part 1 of the existing results file",
    )
    parser.add_argument("--out", default=None)
    args = parse_args(parser, argv)
    torch.set_num_threads(1)
    out = args.out or (
        "benchmarks/results/speed_quick.json" if args.quick else "benchmarks/results/speed.json"
    )
    started = time.perf_counter()
    load = {"start": os.getloadavg()}
    rounds = args.rounds or (1 if args.quick else 5)
    result = {
        "environment": environment(
            "scikit-learn", "darts", "neuralforecast", "pytorch_lightning"
        ),
        "config": {
            "window": WINDOW,
            "hidden": HIDDEN,
            "layers": 1,
            "batch": BATCH,
            "epochs": EPOCHS,
            "lr": LR,
            "threads": 1,
        },
    }
    if args.adaptation_only:
        result["training"] = json.loads(Path(out).read_text())["training"]
    else:
        result["training"] = training_speed(rounds, 200 if args.quick else 1000)
    load["after_training"] = os.getloadavg()
    print("\n| contender | median s | x floor (median, range) |\n|---|---|---|")
    for name, r in result["training"]["contenders"].items():
        print(
            f"| {name} | {r['median_s']:.2f} | {r['ratio_to_floor_median']:.2f}x "
            f"({r['ratio_to_floor_min']:.2f}-{r['ratio_to_floor_max']:.2f}) |"
        )
    if not args.skip_adaptation:
        a = adaptation_speed(3 if args.quick else 25, 250, args.quick)
        result["adaptation"] = a
        print(
            f"\nadapt+predict {a['adapt_fit_predict_median_s']:.3f}s vs scratch "
            f"{a['scratch_fit_predict_median_s']:.3f}s: {a['speedup_median']:.1f}x faster "
            f"(per pair {a['speedup_per_pair_min']:.1f}-{a['speedup_per_pair_max']:.1f}x); "
            f"MASE vs RW {a['MASE_vs_RW']}; pretrain once {a['pretrain_seconds_once']:.0f}s"
        )
    load["end"] = os.getloadavg()
    result["load_average"] = load
    result["total_seconds"] = time.perf_counter() - started
    path = write_json(out, result)
    print(f"wrote {path} in {result['total_seconds']:.0f}s; load {load}")


if __name__ == "__main__":
    main()
