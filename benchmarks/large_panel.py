"""Large panels: time per epoch and peak memory of ``pretrain`` as the panel grows.

For each panel size (series of ``--length`` points from
``make_ar_returns_panel``) a fresh Python process

1. builds the panel (the user's input) and records its size and the process's
   peak RSS after building it;
2. runs ``MetaLSTMForecaster.pretrain`` (metasgd, hidden 16, window 20,
   support 32, query 8, one pooled and one meta epoch, 64 tasks per batch) and
   records the epoch durations from skorch's history and the peak RSS
   (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: torch's allocations
   included, unlike ``tracemalloc``).

``task_stride`` is chosen per size so that every epoch has about
``--tasks-per-epoch`` tasks (at least one task per series), which keeps the
whole run to a few minutes; seconds per task then show how the cost scales,
and the time of a default-stride epoch is extrapolated from it. A second fresh
process per size measures, with ``tracemalloc``, the Python/numpy peak of
pretrain's data preparation alone (epochs set to 0), and a third builds the
meta-training ``TaskDataset`` at the default stride (``query_size``) to show
its size against what materialising every task would cost.

Usage::

    python benchmarks/large_panel.py                   # 10, 100, 1000, 5000 series (~10 min)
    python benchmarks/large_panel.py --quick           # smoke run (seconds)
    python benchmarks/large_panel.py --sizes 100 1000 --tasks-per-epoch 2000

Results go to ``benchmarks/results/large_panel.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _reporting import RESULTS, ROOT, command_line, environment, parse_args, rss_mib, write_json

DEFAULT_OUTPUT = RESULTS / "large_panel.json"

CONFIG = dict(
    meta_learner="metasgd",
    hidden_size=16,
    window_length=20,
    horizon=1,
    support_size=32,
    query_size=8,
    inner_steps=5,
    tasks_per_batch=64,
    max_epochs=1,
    base_max_epochs=1,
    random_state=0,
    num_threads=1,
)
MIB = 1024.0**2


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def layout_span(config: dict[str, Any]) -> int:
    from sk_metalstm.windowing import TaskLayout

    return TaskLayout(
        config["window_length"], config["horizon"], config["support_size"], config["query_size"]
    ).span


def tasks_per_series(n_increments: int, span: int, stride: int) -> int:
    return max(0, (n_increments - span) // stride + 1)


def choose_stride(n_series: int, n_increments: int, span: int, target: int) -> int:
    """The stride whose task count is closest to ``target`` (one task per series at least)."""
    strides = range(1, n_increments - span + 2)
    return min(
        strides, key=lambda s: abs(n_series * tasks_per_series(n_increments, span, s) - target)
    )


def build_panel(n_series: int, length: int):
    from sk_metalstm.datasets import make_ar_returns_panel

    t0 = time.perf_counter()
    panel = make_ar_returns_panel(n_series, length, random_state=0)
    return panel, time.perf_counter() - t0


# ------------------------------------------------------------------ children
def child_pretrain(n_series: int, length: int, stride: int) -> dict[str, Any]:
    """Build the panel, pretrain once; times and peak RSS."""
    import torch

    from sk_metalstm import MetaLSTMForecaster

    torch.set_num_threads(1)
    out: dict[str, Any] = {"rss_after_imports_mib": peak_rss_mib()}
    panel, out["panel_build_s"] = build_panel(n_series, length)
    out["panel_bytes_deep_mib"] = panel.memory_usage(deep=True).sum() / MIB
    out["panel_values_mib"] = panel.to_numpy().nbytes / MIB
    out["peak_rss_after_panel_mib"] = peak_rss_mib()
    out["rss_after_panel_mib"] = rss_mib(collect=False)

    forecaster = MetaLSTMForecaster(**CONFIG, task_stride=stride)
    t0 = time.perf_counter()
    forecaster.pretrain(panel)
    out["pretrain_s"] = time.perf_counter() - t0
    out["peak_rss_after_pretrain_mib"] = peak_rss_mib()
    history = forecaster.pretrained_state_.history
    out["pooled_epoch_s"] = float(history[0][-1, "dur"])
    out["meta_epoch_s"] = float(history[1][-1, "dur"])
    out["meta_train_loss"] = float(history[1][-1, "train_loss"])
    return out


def child_prep(n_series: int, length: int, stride: int) -> dict[str, Any]:
    """Pretrain with zero epochs under tracemalloc: the data preparation's Python peak."""
    from sk_metalstm import MetaLSTMForecaster

    panel, _ = build_panel(n_series, length)
    config = {**CONFIG, "max_epochs": 0, "base_max_epochs": 0}
    tracemalloc.start()
    t0 = time.perf_counter()
    MetaLSTMForecaster(**config, task_stride=stride).pretrain(panel)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"prep_tracemalloc_peak_mib": peak / MIB, "prep_s": seconds}


def child_dataset(n_series: int, length: int) -> dict[str, Any]:
    """The meta-training TaskDataset at the default stride: its size vs all tasks materialised."""
    import numpy as np

    from sk_metalstm.meta import TaskDataset
    from sk_metalstm.windowing import TaskLayout, to_increments

    panel, _ = build_panel(n_series, length)
    values = panel.to_numpy(dtype=np.float64).reshape(n_series, length)
    series = [to_increments(v, "log_return") for v in values]
    del panel, values
    layout = TaskLayout(
        CONFIG["window_length"], CONFIG["horizon"], CONFIG["support_size"], CONFIG["query_size"]
    )
    tracemalloc.start()
    rss0 = rss_mib(collect=False)
    t0 = time.perf_counter()
    tasks = TaskDataset(series, layout, stride=CONFIG["query_size"])
    build_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    for k in range(0, len(tasks), max(1, len(tasks) // 256)):
        tasks[k]
    per_task_s = (time.perf_counter() - t0) / len(range(0, len(tasks), max(1, len(tasks) // 256)))
    X, _ = tasks[0]
    task_bytes = sum(v.numel() * v.element_size() for v in X.values())
    return {
        "default_stride": CONFIG["query_size"],
        "n_tasks": len(tasks),
        "dataset_build_s": build_s,
        "dataset_tracemalloc_peak_mib": peak / MIB,
        "dataset_rss_growth_mib": rss_mib(collect=False) - rss0,
        "index_mib": tasks.index.nbytes / MIB,
        "series_mib": sum(s.nbytes for s in tasks.series) / MIB,
        "bytes_per_task_materialised": task_bytes,
        "all_tasks_materialised_mib": len(tasks) * task_bytes / MIB,
        "cut_task_s": per_task_s,
    }


CHILDREN = {"pretrain": child_pretrain, "prep": child_prep, "dataset": child_dataset}


def run_child(kind: str, *args: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["child_peak_rss_mib"] = result.get("peak_rss_after_pretrain_mib")
    return result


# ------------------------------------------------------------------- driver
def linear_fit(x: list[float], y: list[float]) -> dict[str, float]:
    """Least-squares line y = a + b x, with the largest relative deviation from it."""
    import numpy as np

    b, a = np.polyfit(x, y, 1)
    fitted = a + b * np.asarray(x)
    worst = float(np.max(np.abs(np.asarray(y) - fitted) / np.asarray(y)))
    return {"intercept": float(a), "slope": float(b), "max_rel_deviation": worst}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--length", type=int, default=1000, help="points per series")
    parser.add_argument("--tasks-per-epoch", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parse_args(parser, argv)

    if args.child:
        kind, *numbers = args.child
        print(json.dumps(CHILDREN[kind](*map(int, numbers))))
        return
    if args.quick:
        args.sizes, args.length, args.tasks_per_epoch = [5, 20], 200, 200

    span = layout_span(CONFIG)
    n_increments = args.length - 1  # log-returns
    report: dict[str, Any] = {
        "benchmark": "large_panel",
        "command": command_line("large_panel", argv),
        "quick": args.quick,
        "config": {**CONFIG, "length": args.length, "tasks_per_epoch_target": args.tasks_per_epoch},
        "environment": environment("sktime", "pandas"),
        "results": [],
    }
    for n in args.sizes:
        stride = choose_stride(n, n_increments, span, args.tasks_per_epoch)
        n_tasks = n * tasks_per_series(n_increments, span, stride)
        default_tasks = n * tasks_per_series(n_increments, span, CONFIG["query_size"])
        row: dict[str, Any] = {"n_series": n, "task_stride": stride, "tasks_per_epoch": n_tasks}
        t0 = time.perf_counter()
        row.update(run_child("pretrain", n, args.length, stride))
        row.update(run_child("prep", n, args.length, stride))
        row.update(run_child("dataset", n, args.length))
        row.pop("child_peak_rss_mib", None)
        row["meta_s_per_task"] = row["meta_epoch_s"] / n_tasks
        row["pooled_s_per_task"] = row["pooled_epoch_s"] / n_tasks
        row["default_stride_tasks_per_epoch"] = default_tasks
        row["default_stride_epoch_s_extrapolated"] = (
            row["meta_s_per_task"] + row["pooled_s_per_task"]
        ) * default_tasks
        row["pretrain_peak_rss_over_imports_mib"] = (
            row["peak_rss_after_pretrain_mib"] - row["rss_after_imports_mib"]
        )
        row["wall_s"] = time.perf_counter() - t0
        report["results"].append(row)
        print(
            f"{n:>5} series  stride {stride:>4}  {n_tasks:>6} tasks  "
            f"meta epoch {row['meta_epoch_s']:7.1f}s ({1e3 * row['meta_s_per_task']:.2f} ms/task)  "
            f"pooled {row['pooled_epoch_s']:6.1f}s  pretrain {row['pretrain_s']:6.1f}s  "
            f"peak RSS {row['peak_rss_after_pretrain_mib']:7.0f} MiB "
            f"(panel {row['peak_rss_after_panel_mib']:6.0f})  "
            f"prep peak {row['prep_tracemalloc_peak_mib']:6.0f} MiB",
            flush=True,
        )
    rows = report["results"]
    sizes = [r["n_series"] for r in rows]
    report["environment"]["load_average_end"] = os.getloadavg()
    report["scaling"] = {
        "peak_rss_mib_vs_n_series": linear_fit(
            sizes, [r["peak_rss_after_pretrain_mib"] for r in rows]
        ),
        "prep_peak_mib_vs_n_series": linear_fit(
            sizes, [r["prep_tracemalloc_peak_mib"] for r in rows]
        ),
        "meta_epoch_s_vs_tasks": linear_fit(
            [r["tasks_per_epoch"] for r in rows], [r["meta_epoch_s"] for r in rows]
        ),
    }
    print(f"wrote {write_json(args.output, report, indent=2)}")


if __name__ == "__main__":
    main()
