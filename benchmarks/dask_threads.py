"""Do torch threads oversubscribe the cores of Dask workers? ``num_threads`` on a cluster.

``LSTMBaseRegressor(num_threads=1)`` (the default) sets torch's intra-op thread
count to 1 for the duration of ``fit``/``predict`` and restores it afterwards;
``num_threads=None`` keeps whatever torch is set to in the process (and thread)
that runs the fit. This script times one hyperparameter search,

    GridSearchCV(LSTMBaseRegressor(hidden_size=32, max_epochs=4, random_state=0,
                                   num_threads=...),
                 {"lr": [1e-3, 1e-2], "num_layers": [1, 2]},
                 cv=TimeSeriesSplit(3), n_jobs=-1, refit=False)

i.e. 2x2 grid x 3 folds = 12 fits (``refit=False``: the 12 fits and their
scoring, no final refit in the client), on the length-20 windows of a generated
AR(1) series (2,500 windows; ``--quick``: 300), under
``joblib.parallel_backend("dask")`` against a ``distributed.LocalCluster`` with
2 worker processes of 1 thread each that the script starts and closes itself:

(a) ``num_threads=1``, the default;
(b) ``num_threads=None`` with the workers' torch at its default. Dask's nanny
    sets ``OMP_NUM_THREADS=1`` in the workers it spawns, so that default is 1
    thread (recorded under ``workers`` in the JSON);
(c) ``num_threads=None`` with torch raised to ``os.cpu_count()`` threads in each
    worker: the oversubscribed case a user gets with ``num_threads=None`` when
    something else raised the workers' threads;
(d) the same search in this process, sequentially (``n_jobs=1``, no Dask),
    ``num_threads=1``, for reference.

Torch's intra-op thread count is per OS thread once a thread has used torch
(OpenMP's ``omp_set_num_threads`` sets the calling thread's value), and
``client.run`` executes in a worker's event-loop thread, not in the executor
thread that runs tasks. So for (c) the threads are raised with
``client.run(torch.set_num_threads, n)`` *and* with a task pinned to each worker
(which reaches the executor thread); after every Dask run a probe task fits a
tiny regressor on each worker and records ``torch.get_num_threads()`` inside
``fit``, so the JSON shows the thread count the timed fits really ran with.

The conditions alternate within each round (the order rotates from round to
round) so that load from other processes hits them alike; per-condition
seconds, medians and the ratio to (a) are reported, and the scores and best
parameters of every condition are compared with the sequential run's
(``a_matches_sequential`` for the default). A markdown table for
``docs/scaling.md`` is printed at the end.

Usage::

    python benchmarks/dask_threads.py            # 3 rounds; ~15-25 min on a busy
                                                 # 2-core machine, mostly condition (c)
    python benchmarks/dask_threads.py --quick    # smoke run (300 windows, 2 rounds, ~2 min)

Results go to ``benchmarks/results/dask_threads.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from _reporting import (
    RESULTS,
    ar1_series,
    command_line,
    environment,
    lag_windows,
    parse_args,
    rotate,
    time_stats,
    write_json,
)
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

from sk_metalstm import LSTMBaseRegressor

DEFAULT_OUTPUT = RESULTS / "dask_threads.json"

WINDOW = 20
GRID = {"lr": [1e-3, 1e-2], "num_layers": [1, 2]}
N_SPLITS = 3
WORKERS = 2


def ar_windows(n_windows: int, seed: int, phi: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Windows of length ``WINDOW`` of an AR(1) series and the value after each."""
    return lag_windows(ar1_series(n_windows + WINDOW, phi, seed, skip=1), WINDOW)


def make_search(num_threads: int | None, n_jobs: int, max_epochs: int = 4) -> GridSearchCV:
    return GridSearchCV(
        LSTMBaseRegressor(
            hidden_size=32, max_epochs=max_epochs, random_state=0, num_threads=num_threads
        ),
        GRID,
        cv=TimeSeriesSplit(n_splits=N_SPLITS),
        n_jobs=n_jobs,
        refit=False,
    )


def conditions(ncpu: int) -> dict[str, dict[str, Any]]:
    """name -> estimator ``num_threads``, Dask or not, torch threads set in the workers."""
    return {
        "a_dask_num_threads_1": {
            "label": "Dask, `num_threads=1` (default)",
            "num_threads": 1, "dask": True, "worker_threads": None,
        },
        "b_dask_none_worker_default": {
            "label": "Dask, `num_threads=None`, workers' torch default",
            "num_threads": None, "dask": True, "worker_threads": None,
        },
        "c_dask_none_worker_raised": {
            "label": f"Dask, `num_threads=None`, workers' torch raised to {ncpu} threads",
            "num_threads": None, "dask": True, "worker_threads": ncpu,
        },
        "d_sequential": {
            "label": "sequential (`n_jobs=1`, no Dask), `num_threads=1`",
            "num_threads": 1, "dask": False, "worker_threads": None,
        },
    }


# --------------------------------------------------------- run on the workers
def _thread_info() -> dict[str, Any]:
    return {"thread": threading.current_thread().name, "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def _set_threads(n: int) -> dict[str, Any]:
    torch.set_num_threads(n)
    return _thread_info()


def _fit_probe(num_threads: int | None) -> dict[str, Any]:
    """Fit a tiny regressor; torch's thread count before, inside and after ``fit``."""
    from skorch.callbacks import Callback

    class Record(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.history.record("torch_threads", torch.get_num_threads())

    X, y = ar_windows(64, 0)
    before = torch.get_num_threads()
    reg = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0,
                            num_threads=num_threads, callbacks=[Record()]).fit(X, y)
    return {"thread": threading.current_thread().name, "before": before,
            "inside_fit": int(max(reg.history_[:, "torch_threads"])),
            "after": torch.get_num_threads()}


def on_each_worker(client, fn, *args) -> dict[str, Any]:
    """Run ``fn`` as a task pinned to every worker (in its executor thread)."""
    workers = sorted(client.scheduler_info()["workers"])
    futures = {w: client.submit(fn, *args, workers=[w], allow_other_workers=False, pure=False)
               for w in workers}
    return {w: f.result() for w, f in futures.items()}


def set_worker_threads(client, n: int) -> None:
    """torch.set_num_threads(n) in each worker's event-loop thread and executor thread."""
    client.run(torch.set_num_threads, n)
    on_each_worker(client, _set_threads, n)


# ---------------------------------------------------------------------- main
def summarise(name: str, runs: list[dict[str, Any]], seq: dict[str, Any]) -> dict[str, Any]:
    ts = [r["seconds"] for r in runs]
    same_scores = all(np.array_equal(r["mean_test_score"], seq["mean_test_score"]) for r in runs)
    same_params = all(r["best_params"] == seq["best_params"] for r in runs)
    max_diff = max(float(np.max(np.abs(np.subtract(r["mean_test_score"],
                                                   seq["mean_test_score"])))) for r in runs)
    out = {
        "seconds": ts,
        **time_stats(ts),
        "best_params": runs[0]["best_params"],
        "mean_test_score": runs[0]["mean_test_score"],
        "same_best_params_as_sequential": same_params,
        "same_mean_test_score_as_sequential": same_scores,
        "max_abs_score_diff_vs_sequential": max_diff,
    }
    probes = [r["threads_inside_fit"] for r in runs if "threads_inside_fit" in r]
    if probes:
        out["torch_threads_inside_fit"] = sorted({v for p in probes for v in p.values()})
        out["probes"] = [r["probe"] for r in runs]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 windows, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timings per condition (default 3; 2 with --quick)")
    parser.add_argument("--n-windows", type=int, default=None,
                        help="windows of length 20 (default 2500; 300 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parse_args(parser, argv)

    from distributed import Client, LocalCluster
    from distributed import __version__ as distributed_version

    ncpu = os.cpu_count() or 1
    rounds = args.rounds or (2 if args.quick else 3)
    n_windows = args.n_windows or (300 if args.quick else 2500)
    X, y = ar_windows(n_windows, args.seed)
    conds = conditions(ncpu)
    names = list(conds)

    env = environment()
    env.update({
        "cpu_count": ncpu,
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "dask": importlib.metadata.version("dask"),
        "distributed": distributed_version,
        "sklearn": importlib.metadata.version("scikit-learn"),
        "joblib": joblib.__version__,
    })
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        # Worker state before anything ran there: event-loop thread (client.run)
        # and executor thread (pinned task).
        workers = {
            "n_workers": WORKERS,
            "threads_per_worker": 1,
            "event_loop_thread_at_start": client.run(_thread_info),
            "executor_thread_at_start": on_each_worker(client, _thread_info),
        }
        default_threads = sorted(
            {v["torch_threads"] for v in workers["executor_thread_at_start"].values()})
        if len(default_threads) != 1:
            raise RuntimeError(f"workers disagree on torch's default: {default_threads}")
        worker_default = default_threads[0]
        workers["torch_default_threads"] = worker_default
        print(f"{n_windows} windows, {rounds} rounds, {ncpu} CPUs, "
              f"worker torch default {worker_default} thread(s), "
              f"load {os.getloadavg()[0]:.2f}", flush=True)

        # Warm-up (untimed): imports and first-call costs in the workers and here.
        with joblib.parallel_backend("dask"):
            make_search(1, -1, max_epochs=1).fit(X[:200], y[:200])
        make_search(1, 1, max_epochs=1).fit(X[:200], y[:200])

        try:
            for r in range(rounds):
                for name in rotate(names, r):
                    cond = conds[name]
                    search = make_search(cond["num_threads"], -1 if cond["dask"] else 1)
                    if cond["dask"]:
                        set_worker_threads(client, cond["worker_threads"] or worker_default)
                        t0 = time.perf_counter()
                        with joblib.parallel_backend("dask"):
                            search.fit(X, y)
                        seconds = time.perf_counter() - t0
                    else:
                        t0 = time.perf_counter()
                        search.fit(X, y)
                        seconds = time.perf_counter() - t0
                    run = {
                        "round": r,
                        "seconds": seconds,
                        "best_params": search.best_params_,
                        "mean_test_score": search.cv_results_["mean_test_score"].tolist(),
                    }
                    if cond["dask"]:
                        probe = on_each_worker(client, _fit_probe, cond["num_threads"])
                        run["probe"] = probe
                        run["threads_inside_fit"] = {w: p["inside_fit"] for w, p in probe.items()}
                    runs[name].append(run)
                    print(f"round {r}  {name:28} {seconds:7.2f} s  "
                          f"threads in fit {run.get('threads_inside_fit', '-')}", flush=True)
        finally:
            set_worker_threads(client, worker_default)
        workers["executor_thread_at_end"] = on_each_worker(client, _thread_info)

    env["load_average_end"] = list(os.getloadavg())
    seq = runs["d_sequential"][0]
    results = {name: {"label": conds[name]["label"], "num_threads": conds[name]["num_threads"],
                      "dask": conds[name]["dask"],
                      "worker_threads_set": (conds[name]["worker_threads"] or worker_default)
                      if conds[name]["dask"] else None,
                      **summarise(name, runs[name], seq)}
               for name in names}
    base = results["a_dask_num_threads_1"]["median_s"]
    for res in results.values():
        res["relative_to_num_threads_1"] = res["median_s"] / base
    a = results["a_dask_num_threads_1"]
    a_matches = a["same_best_params_as_sequential"] and a["same_mean_test_score_as_sequential"]

    table = ["| Condition | Median s | vs `num_threads=1` |", "|---|---|---|"]
    table += [
        f"| {res['label']} | {res['median_s']:.1f} | {res['relative_to_num_threads_1']:.2f}x |"
        for res in results.values()
    ]
    report = {
        "benchmark": "dask_threads",
        "command": command_line("dask_threads", argv),
        "quick": args.quick,
        "rounds": rounds,
        "workload": {
            "search": "GridSearchCV(LSTMBaseRegressor(hidden_size=32, max_epochs=4, "
            "random_state=0, num_threads=...), {'lr': [1e-3, 1e-2], 'num_layers': [1, 2]}, "
            "cv=TimeSeriesSplit(3), refit=False): 12 fits",
            "data": f"AR(1) phi=0.6, {n_windows} windows of length {WINDOW}, seed {args.seed}",
            "cluster": f"LocalCluster(n_workers={WORKERS}, threads_per_worker=1, processes=True)",
        },
        "environment": env,
        "workers": workers,
        "a_matches_sequential": a_matches,
        "results": results,
        "runs": runs,
        "markdown_table": "\n".join(table),
    }
    write_json(args.output, report, indent=2)
    print(f"\n(a) num_threads=1 on Dask matches the sequential search exactly: {a_matches}")
    print(f"load average start {env['load_average_start']}, end {env['load_average_end']}\n")
    print(report["markdown_table"])
    print(f"\nwrote {args.output}")
    return report


if __name__ == "__main__":
    main()
