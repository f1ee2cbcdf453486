"""Effect of torch intra-op threads on small-LSTM training, idle vs busy machine.

Justifies the estimators' default ``num_threads=1`` (fit/predict run inside
``torch_runtime(seed, num_threads)``, which sets torch's intra-op threads for
that call only). Two workloads:

(a) ``epoch``: one training epoch of ``LSTMNetwork`` (window 30, hidden 32,
    batch 64, ~1000 windows; Adam, MSE) -- what ``LSTMBaseRegressor`` runs;
(b) ``meta_step``: one meta-training step (``MetaNet.train_step``) of
    first-order Meta-SGD, 32 tasks per batch, vmap path, the configuration of
    ``meta_throughput.py``.

Each is timed with 1 thread, 2 threads, torch's default and twice the logical
CPU count (the oversubscription torch's default causes in containers whose CPU
quota is below the host's core count), under three conditions: no competitor,
a competing process spinning a pure-Python loop (one core busy), and a
competing process running a torch matmul loop with its default threads (every
core busy). Thread settings are interleaved round by round inside one process
so that load from elsewhere hits them alike; medians and ranges are reported.

Usage::

    python benchmarks/threads.py            # ~3-5 min
    python benchmarks/threads.py --quick    # smoke run

Results go to ``benchmarks/results/threads.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _reporting import (
    META_FULL,
    META_QUICK,
    RESULTS,
    ar1_series,
    command_line,
    environment,
    lag_windows,
    make_net,
    make_tasks,
    parse_args,
    rotate,
    time_stats,
    write_json,
)
from torch.utils.data import default_collate

from sk_metalstm.distribution import n_outputs
from sk_metalstm.networks import LSTMNetwork

DEFAULT_OUTPUT = RESULTS / "threads.json"

COMPETITORS = {
    "idle": None,
    "busy_python": "while True:\n    pass\n",
    "busy_torch": (
        "import torch\na = torch.randn(512, 512)\nwhile True:\n    a = torch.tanh(a @ a) \n"
    ),
}


def lstm_epoch_workload(n_windows: int, window: int, hidden: int, batch: int, seed: int):
    """A closure running one epoch of plain LSTMNetwork training."""
    windows, targets = lag_windows(ar1_series(n_windows + window + 1, 0.3, seed), window)
    X = torch.tensor(windows[:n_windows, :, None], dtype=torch.float32)
    y = torch.tensor(targets[:n_windows, None], dtype=torch.float32)
    torch.manual_seed(seed)
    net = LSTMNetwork(1, hidden, 1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)

    def epoch() -> None:
        for idx in torch.randperm(n_windows, generator=gen).split(batch):
            opt.zero_grad()
            loss = torch.mean((net(X[idx]) - y[idx]) ** 2)
            loss.backward()
            opt.step()

    return epoch


def meta_step_workload(cfg: dict[str, Any], tasks_per_batch: int, seed: int):
    """A closure running one Meta-SGD meta-training step on a fixed batch."""
    tasks = make_tasks(cfg, seed)
    torch.manual_seed(seed)
    base = LSTMNetwork(
        tasks.n_features, cfg["hidden_size"], cfg["num_layers"], n_outputs(cfg["horizon"])
    )
    net = make_net("metasgd", True, True, base, cfg, tasks_per_batch, seed)
    batch = default_collate([tasks[i] for i in range(tasks_per_batch)])
    return lambda: net.train_step(batch)


def start_competitor(code: str | None) -> subprocess.Popen | None:
    if code is None:
        return None
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(1.0)  # let it spin up (and torch import) before timing
    return proc


def stop_competitor(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 1 round")
    parser.add_argument("--rounds", type=int, default=None, help="timings per setting")
    parser.add_argument(
        "--conditions", nargs="+", choices=list(COMPETITORS), default=list(COMPETITORS)
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parse_args(parser, argv)

    default_threads = torch.get_num_threads()
    ncpu = os.cpu_count() or 1
    settings = {
        "1": 1,
        "2": 2,
        f"default({default_threads})": default_threads,
        f"oversubscribed({2 * ncpu})": 2 * ncpu,
    }
    rounds = args.rounds or (1 if args.quick else 5)
    if args.quick:
        workloads = {
            "epoch": lstm_epoch_workload(128, 10, 8, 64, args.seed),
            "meta_step": meta_step_workload(META_QUICK, 4, args.seed),
        }
    else:
        workloads = {
            "epoch": lstm_epoch_workload(1024, 30, 32, 64, args.seed),
            "meta_step": meta_step_workload(META_FULL, 32, args.seed),
        }
    env = environment()
    env["torch_default_threads"] = default_threads
    results: dict[str, Any] = {}
    for cond in args.conditions:
        proc = start_competitor(COMPETITORS[cond])
        try:
            times = {w: {s: [] for s in settings} for w in workloads}
            for n in settings.values():  # warm-up at every thread count
                torch.set_num_threads(n)
                for run in workloads.values():
                    run()
            for r in range(rounds):
                for s in rotate(list(settings), r):
                    torch.set_num_threads(settings[s])
                    for w, run in workloads.items():
                        t0 = time.perf_counter()
                        run()
                        times[w][s].append(time.perf_counter() - t0)
        finally:
            stop_competitor(proc)
            torch.set_num_threads(default_threads)
        results[cond] = {}
        for w, by_setting in times.items():
            base = statistics.median(by_setting["1"])
            results[cond][w] = {
                s: {
                    **time_stats(ts),
                    "relative_to_1_thread": statistics.median(ts) / base,
                    "n": len(ts),
                }
                for s, ts in by_setting.items()
            }
            line = "  ".join(
                f"{s}: {v['median_s'] * 1e3:7.0f} ms "
                f"({v['min_s'] * 1e3:.0f}-{v['max_s'] * 1e3:.0f})"
                for s, v in results[cond][w].items()
            )
            print(f"{cond:12} {w:9} {line}", flush=True)
    env["load_average_end"] = list(os.getloadavg())
    report = {
        "benchmark": "threads",
        "command": command_line("threads", argv),
        "quick": args.quick,
        "settings": settings,
        "workloads": {
            "epoch": "LSTMNetwork(1, 32, 1, 1), 1024 windows of length 30, batch 64, Adam",
            "meta_step": "MetaNet.train_step, metasgd first-order, vmap, 32 tasks, "
            "window 20, hidden 32, support 32, query 8, inner_steps 5",
        },
        "environment": env,
        "results": results,
    }
    print(f"wrote {write_json(args.output, report, indent=2)}")
    return report


if __name__ == "__main__":
    main()
