"""Under load: memory and time per round of ``update`` + ``predict`` on a 2,000-series panel.

A deployment keeps one fitted forecaster for a whole panel and, every period,
appends the new observation of each series (``update``) and forecasts the next
one (``predict``). Both must cost the same in round 100 as in round 1, and the
process must not grow: the forecaster keeps a bounded tail of each series
(``support_size + window_length + horizon`` points) and sktime's own copy of
the data is off (``remember_data=False``).

Protocol.

1. Pretrain ``MetaLSTMForecaster`` with the package defaults (``meta_learner=
   "ridge"``, ``num_threads=1``) on a separate generated panel
   (``make_ar_returns_panel``, 50 series of 500 prices, seed 1) within a
   ``max_time`` budget (``--pretrain-seconds``, 60 s): the load property does
   not depend on how well it was pretrained.
2. Generate the load panel: ``--n-series`` (2,000) AR(1)-return price series
   of ``--history`` (150) business days, ``pd-multiindex`` ``(series, time)``,
   with ``--rounds`` (100) further points per series held back, plus one more
   for the profiled round. Each round's one-point panel is cut (untimed) just
   before its ``update`` and dropped after it, as new data arrive.
3. ``MetaLSTMForecaster.from_pretrained(state).fit(panel)`` (timed).
4. ``--rounds`` rounds of ``update(next_points, update_params=True)`` (appends
   one point per series and re-adapts every series' ridge head) then
   ``predict(fh=[1])``; each round's update and predict are timed with
   ``time.perf_counter``; every forecast must be finite and indexed
   ``(series, next date)`` for all series. After each round, ``gc.collect()``
   then the resident set size (``VmRSS`` of ``/proc/self/status``), the peak
   (``VmHWM``, reset after pretraining through ``/proc/self/clear_refs`` so it
   covers fit and the rounds only), the count of objects tracked by the garbage
   collector, and the points the forecaster keeps (all its tails).
5. One more round under ``cProfile`` (not part of the timings): its top
   entries by cumulative time, overall and within ``sk_metalstm``.

Reported: fit time; mean and median time per round over the first and last 10
rounds; least-squares slopes, with standard errors (OLS, and Newey-West since
round-to-round noise is autocorrelated), of time per round (ms/round) and RSS
(MiB/round) against the round index, over all rounds and over the second half
(warm-up excluded); total RSS growth. Also a one-step sanity score: RMSE of the
log forecast against the random walk (ratio near 1 on AR(1) returns).

Run ``python benchmarks/load.py`` (about 15 min on 2 busy CPUs) or
``--quick`` (seconds); ``--malloc-trim`` also reads RSS after glibc's
``malloc_trim(0)``, i.e. without the freed heap glibc keeps. Writes
``benchmarks/results/load.json`` and, for a full run, the plot
``docs/img/load.png`` (``--plot``, ``--plot ''`` for none).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _reporting import (
    QUICK_FORECASTER,
    ROOT,
    command_line,
    parse_args,
    proc_status_mib,
    rss_mib,
    to_wide,
    write_report,
)

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import make_ar_returns_panel


# ------------------------------------------------------------------ memory
def malloc_trim() -> None:
    """Hand the C heap's free memory back to the system (glibc ``malloc_trim(0)``)."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); ``False`` if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ statistics
def slope(y: np.ndarray, x: np.ndarray | None = None) -> dict[str, float]:
    """Least-squares slope of ``y`` on ``x`` (default: 0, 1, ...) with OLS and HAC s.e.

    The Newey-West s.e. (Bartlett kernel, ``floor(4 (n/100)^(2/9))`` lags)
    allows for autocorrelated noise, e.g. a busy neighbour for a few rounds.
    """
    y = np.asarray(y, dtype=float)
    x = np.arange(len(y), dtype=float) if x is None else np.asarray(x, dtype=float)
    n = len(y)
    if n < 3:
        return {"slope": float("nan"), "se": float("nan"), "se_hac": float("nan"), "n": n}
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx
    resid = y - y.mean() - b * xc
    se = float(np.sqrt(resid @ resid / (n - 2) / sxx))
    score = xc * resid
    lags = int(np.floor(4 * (n / 100) ** (2 / 9)))
    long_run = float(score @ score)
    for lag in range(1, min(lags, n - 1) + 1):
        long_run += 2 * (1 - lag / (lags + 1)) * float(score[lag:] @ score[:-lag])
    se_hac = float(np.sqrt(max(long_run, 0.0) * n / (n - 2))) / sxx
    return {"slope": b, "se": se, "se_hac": se_hac, "n": n}


def window_stats(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "median": float(np.median(values))}


# ------------------------------------------------------------------ data
def make_panels(
    n_series: int, history: int, rounds: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The fit panel, the whole panel (fit + held-back points) and its prices wide.

    The held-back points are cut into one-point panels round by round
    (``step_panel``) and dropped after use, as a deployment receives them:
    pandas keeps a (dead) weak reference in an input frame for each view
    ``update`` took of it, so a harness that held every round's input alive
    would see Python objects grow that the forecaster does not hold.
    """
    full = make_ar_returns_panel(n_series, history + rounds + 1, random_state=seed)
    wide = to_wide(full)  # time x series
    fit_panel = full.loc[full.index.get_level_values(1) < wide.index[history]]
    return fit_panel, full, wide


def step_panel(full: pd.DataFrame, n_series: int, n_times: int, t: int) -> pd.DataFrame:
    """The one-point panel of time position ``t`` (every series), a copy of ``full``'s rows."""
    return full.take(np.arange(n_series) * n_times + t)


def kept_points(forecaster: MetaLSTMForecaster) -> int:
    """Levels the forecaster keeps across all series."""
    return int(sum(len(state.tail) for state in forecaster._states.values()))


def check_forecast(pred: pd.DataFrame, names: pd.Index, date: pd.Timestamp) -> None:
    """Every series forecast once, finite, at ``(series, date)``."""
    expected = pd.MultiIndex.from_arrays([names, np.full(len(names), date)])
    if not pred.index.equals(expected):
        raise AssertionError(f"forecast index {pred.index[:3].tolist()}... != {expected[:3]}")
    if not np.all(np.isfinite(pred.to_numpy())):
        raise AssertionError("non-finite forecast")


# ------------------------------------------------------------------ profile
def profile_round(
    forecaster: MetaLSTMForecaster, step: pd.DataFrame, top: int = 15
) -> dict[str, Any]:
    """One update + predict under cProfile: top entries by cumulative time."""
    profiler = cProfile.Profile()
    tic = time.perf_counter()
    profiler.enable()
    forecaster.update(step, update_params=True)
    forecaster.predict(fh=[1])
    profiler.disable()
    wall = time.perf_counter() - tic
    stats = pstats.Stats(profiler, stream=io.StringIO())

    def rows(only_package: bool) -> list[dict[str, Any]]:
        entries = []
        for (file, line, name), (_, nc, tt, ct, _) in stats.stats.items():
            if only_package and "sk_metalstm" not in file:
                continue
            short = file.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            entries.append(
                {
                    "function": f"{short}:{line}({name})",
                    "calls": nc,
                    "tottime_s": round(tt, 4),
                    "cumtime_s": round(ct, 4),
                }
            )
        return sorted(entries, key=lambda e: -e["cumtime_s"])[:top]

    return {"wall_s_profiled": wall, "overall": rows(False), "sk_metalstm": rows(True)}


# ------------------------------------------------------------------ plot
def plot(rounds: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 3.6))
    r = rounds["round"]
    ax_t.plot(r, rounds["update_s"], label="update", lw=1)
    ax_t.plot(r, rounds["predict_s"], label="predict", lw=1)
    ax_t.plot(r, rounds["round_s"], label="round", lw=1.5, color="k")
    ax_t.set(xlabel="round", ylabel="seconds", title="Time per round", ylim=(0, None))
    ax_t.legend(frameon=False)
    ax_m.plot(r, rounds["rss_mib"], label="RSS after gc", color="k", lw=1.5)
    ax_m.plot(r, rounds["peak_rss_mib"], label="peak RSS", color="grey", ls="--", lw=1)
    ax_m.set(xlabel="round", ylabel="MiB", title="Memory", ylim=(0, None))
    ax_m.legend(frameon=False)
    n = int(rounds["n_series"].iloc[0])
    fig.suptitle(f"MetaLSTMForecaster, {n:,} series: update + predict(fh=1) per round")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ driver
def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-series", type=int, default=2000)
    parser.add_argument("--history", type=int, default=150, help="points per series at fit")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--pretrain-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--out", default="benchmarks/results/load.json")
    parser.add_argument("--plot", default=None, help="PNG path ('' for none)")
    parser.add_argument(
        "--malloc-trim",
        action="store_true",
        help="after each RSS reading, malloc_trim(0) and read RSS again (rss_trimmed_mib): "
        "live memory without the free heap glibc keeps; changes what the next round finds",
    )
    args = parse_args(parser, argv)
    warnings.simplefilter("ignore", FutureWarning)
    if args.quick:
        args.n_series, args.history, args.rounds = 20, 60, 4
        args.pretrain_seconds = min(args.pretrain_seconds, 1.0)
    plot_path = args.plot
    if plot_path is None:
        plot_path = "" if args.quick else str(ROOT / "docs" / "img" / "load.png")

    # 1. Pretrain (not measured).
    rss_start = rss_mib()
    extra = {**QUICK_FORECASTER, "tasks_per_epoch": 32} if args.quick else {}
    pretrainer = MetaLSTMForecaster(
        random_state=0, max_time=args.pretrain_seconds, verbose=0, **extra
    )
    tic = time.perf_counter()
    shape = (10, 200) if args.quick else (50, 500)
    pretrainer.pretrain(make_ar_returns_panel(*shape, random_state=args.seed + 1))
    pretrain_s = time.perf_counter() - tic
    state = pretrainer.pretrained_state_
    del pretrainer
    print(f"pretrain ({state.config['meta_learner']}): {pretrain_s:.1f} s", flush=True)

    # 2. The panel and its rounds.
    fit_panel, full, wide = make_panels(args.n_series, args.history, args.rounds, args.seed)
    names, prices, n_times = wide.columns, wide.to_numpy(), len(wide)
    rss_before_fit = rss_mib()
    peak_reset = reset_peak()

    # 3. Fit.
    forecaster = MetaLSTMForecaster.from_pretrained(state, verbose=0)
    tic = time.perf_counter()
    forecaster.fit(fit_panel)
    fit_s = time.perf_counter() - tic
    check_forecast(forecaster.predict(fh=[1]), names, wide.index[args.history])
    del fit_panel
    rss_after_fit = rss_mib()
    print(f"fit {args.n_series} series: {fit_s:.1f} s, RSS {rss_after_fit:.0f} MiB", flush=True)

    # 4. Rounds.
    records = []
    # Running sums, not per-round arrays: the harness itself must not grow
    # (2 x 2,000 float64 a round would be 31 KiB/round of the measured RSS slope).
    sq_err, sq_rw, checked = 0.0, 0.0, 0
    for r in range(args.rounds):
        step = step_panel(full, args.n_series, n_times, args.history + r)
        t0 = time.perf_counter()
        forecaster.update(step, update_params=True)
        t1 = time.perf_counter()
        pred = forecaster.predict(fh=[1])
        t2 = time.perf_counter()
        check_forecast(pred, names, wide.index[args.history + r + 1])
        del step
        actual, last = prices[args.history + r + 1], prices[args.history + r]
        sq_err += float(np.sum(np.log(pred.to_numpy()[:, 0] / actual) ** 2))
        sq_rw += float(np.sum(np.log(last / actual) ** 2))
        checked += len(actual)
        del pred
        records.append(
            {
                "round": r,
                "n_series": args.n_series,
                "update_s": t1 - t0,
                "predict_s": t2 - t1,
                "round_s": t2 - t0,
                "rss_mib": rss_mib(),
                "peak_rss_mib": proc_status_mib("VmHWM"),
                "gc_objects": len(gc.get_objects()),
                "kept_points": kept_points(forecaster),
                "load_1min": os.getloadavg()[0],
            }
        )
        if args.malloc_trim:
            malloc_trim()
            records[-1]["rss_trimmed_mib"] = proc_status_mib("VmRSS")
        if r % 10 == 0 or r == args.rounds - 1:
            rec = records[-1]
            print(
                f"round {r:>3}: update {rec['update_s']:.2f} s, predict {rec['predict_s']:.2f} s,"
                f" RSS {rec['rss_mib']:.0f} MiB (peak {rec['peak_rss_mib']:.0f}),"
                f" {rec['gc_objects']} objects",
                flush=True,
            )

    # 5. One profiled round.
    profile = profile_round(
        forecaster, step_panel(full, args.n_series, n_times, args.history + args.rounds)
    )

    rounds = pd.DataFrame(records)
    half = args.rounds // 2
    k = min(10, args.rounds)
    first, last = rounds.iloc[:k], rounds.iloc[-k:]
    summary = {}
    for column in ("round_s", "update_s", "predict_s"):
        summary[column] = {
            f"first_{k}": window_stats(first[column]),
            f"last_{k}": window_stats(last[column]),
            "slope_ms_per_round": {
                key: v * 1e3 if key != "n" else v for key, v in slope(rounds[column]).items()
            },
            "slope_ms_per_round_second_half": {
                key: v * 1e3 if key != "n" else v
                for key, v in slope(rounds[column].iloc[half:], rounds["round"].iloc[half:]).items()
            },
        }
    memory = {
        "rss_start_mib": rss_start,
        "rss_before_fit_mib": rss_before_fit,
        "rss_after_fit_mib": rss_after_fit,
        "rss_first_round_mib": float(rounds["rss_mib"].iloc[0]),
        "rss_last_round_mib": float(rounds["rss_mib"].iloc[-1]),
        "rss_growth_over_rounds_mib": float(rounds["rss_mib"].iloc[-1] - rounds["rss_mib"].iloc[0]),
        "rss_growth_since_fit_mib": float(rounds["rss_mib"].iloc[-1] - rss_after_fit),
        # glibc may keep ~150 MiB of freed heap after a round or not: medians
        # of 10 rounds are robust to that two-level noise where one round is not.
        f"rss_median_first_{k}_mib": float(first["rss_mib"].median()),
        f"rss_median_last_{k}_mib": float(last["rss_mib"].median()),
        "rss_growth_median_last_vs_first_mib": float(
            last["rss_mib"].median() - first["rss_mib"].median()
        ),
        "rss_max_after_gc_mib": float(rounds["rss_mib"].max()),
        "peak_rss_mib": float(rounds["peak_rss_mib"].iloc[-1]),
        "peak_covers": "fit and rounds" if peak_reset else "whole process (reset not allowed)",
        "rss_slope_mib_per_round": slope(rounds["rss_mib"]),
        "rss_slope_mib_per_round_second_half": slope(
            rounds["rss_mib"].iloc[half:], rounds["round"].iloc[half:]
        ),
        "malloc_trim": args.malloc_trim,
        "gc_objects_first": int(rounds["gc_objects"].iloc[0]),
        "gc_objects_last": int(rounds["gc_objects"].iloc[-1]),
        "gc_objects_slope_per_round": slope(rounds["gc_objects"]),
        "kept_points_first": int(rounds["kept_points"].iloc[0]),
        "kept_points_last": int(rounds["kept_points"].iloc[-1]),
    }
    if args.malloc_trim:
        trimmed = rounds["rss_trimmed_mib"]
        memory["rss_trimmed_first_mib"] = float(trimmed.iloc[0])
        memory["rss_trimmed_last_mib"] = float(trimmed.iloc[-1])
        memory["rss_trimmed_slope_mib_per_round"] = slope(trimmed)
        memory["rss_trimmed_slope_mib_per_round_second_half"] = slope(
            trimmed.iloc[half:], rounds["round"].iloc[half:]
        )
    sanity = {
        "rmse_log_forecast": float(np.sqrt(sq_err / checked)),
        "rmse_log_random_walk": float(np.sqrt(sq_rw / checked)),
        "rmse_ratio_vs_random_walk": float(np.sqrt(sq_err / sq_rw)),
        "forecasts_checked": checked,
    }

    table = pd.DataFrame(
        {
            f"first {k} mean": [summary[c][f"first_{k}"]["mean"] for c in summary],
            f"first {k} median": [summary[c][f"first_{k}"]["median"] for c in summary],
            f"last {k} mean": [summary[c][f"last_{k}"]["mean"] for c in summary],
            f"last {k} median": [summary[c][f"last_{k}"]["median"] for c in summary],
            "slope ms/round": [summary[c]["slope_ms_per_round"]["slope"] for c in summary],
            "s.e. (HAC)": [summary[c]["slope_ms_per_round"]["se_hac"] for c in summary],
            "2nd half slope": [
                summary[c]["slope_ms_per_round_second_half"]["slope"] for c in summary
            ],
            "2nd half s.e. (HAC)": [
                summary[c]["slope_ms_per_round_second_half"]["se_hac"] for c in summary
            ],
        },
        index=pd.Index(["round (s)", "update (s)", "predict (s)"], name="time"),
    )
    command = command_line("load", argv)
    write_report(
        args.out,
        table,
        command=command,
        quick=args.quick,
        config={
            "n_series": args.n_series,
            "history": args.history,
            "rounds": args.rounds,
            "seed": args.seed,
            "pretrain_panel": "make_ar_returns_panel({}, {}, random_state=seed + 1)".format(*shape),
            "pretrain_max_time_s": args.pretrain_seconds,
            "forecaster": {
                k: v
                for k, v in forecaster.get_params(deep=False).items()
                if k not in ("pretrained", "callbacks")
            },
            "kept_points_per_series": kept_points(forecaster) / args.n_series,
        },
        environment={
            "torch_threads_outside": torch.get_num_threads(),
            "forecaster_num_threads": forecaster.num_threads,
            "load_average_end": os.getloadavg(),
        },
        pretrain_s=pretrain_s,
        fit_s=fit_s,
        time=summary,
        memory=memory,
        sanity=sanity,
        profile=profile,
        rounds=records,
    )
    rs, rs2 = memory["rss_slope_mib_per_round"], memory["rss_slope_mib_per_round_second_half"]
    print(
        f"fit {fit_s:.1f} s | RSS {rss_after_fit:.0f} -> {memory['rss_last_round_mib']:.0f} MiB"
        f" (rounds: {memory['rss_growth_over_rounds_mib']:+.1f} MiB; median of last {k} vs"
        f" first {k}: {memory['rss_growth_median_last_vs_first_mib']:+.1f}), slope "
        f"{rs['slope']:+.3f} +- {rs['se_hac']:.3f} MiB/round (2nd half {rs2['slope']:+.3f} +- "
        f"{rs2['se_hac']:.3f}), peak {memory['peak_rss_mib']:.0f} MiB | kept points "
        f"{memory['kept_points_first']} -> {memory['kept_points_last']} | RMSE vs RW "
        f"{sanity['rmse_ratio_vs_random_walk']:.3f}"
    )
    print("profile (one round, cumulative s, within sk_metalstm):")
    for entry in profile["sk_metalstm"]:
        print(f"  {entry['cumtime_s']:8.3f}  {entry['calls']:>6}  {entry['function']}")
    if plot_path:
        plot(rounds, Path(plot_path))
        print(f"wrote {plot_path}")


if __name__ == "__main__":
    main()
