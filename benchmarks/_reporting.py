"""Shared by the benchmark scripts: everything more than one of them needs.

Scripts run as ``python benchmarks/NAME.py`` import this module as a sibling
(the script's folder is first on ``sys.path``); no script imports another
script. Sections: where results go and what they record (``environment``,
``command_line``, ``write_json``, ``write_report``); timing and statistics;
memory; data (panels, generated AR(1) windows); forecasting helpers; the
meta-training workload of ``meta_throughput.py`` and ``threads.py``.

Only the standard library and numpy are imported at the top: torch, pandas
and ``sk_metalstm`` are imported where they are used, so that a script that
measures memory or start-up (``large_panel.py``) controls what its processes
load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from sk_metalstm import MetaLSTMForecaster
    from sk_metalstm.meta import TaskDataset
    from sk_metalstm.networks import LSTMNetwork

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: Forecaster settings of the ``--quick`` smoke runs: seconds, not accuracy.
QUICK_FORECASTER = {
    "hidden_size": 8,
    "inner_steps": 1,
    "base_max_epochs": 1,
    "max_epochs": 1,
    "tasks_per_epoch": 64,
}


# ------------------------------------------------------------ what is recorded
def versions(*names: str) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` where it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            return next(line.split(":", 1)[1].strip() for line in file if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or ""


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return ""


def environment(*packages: str) -> dict[str, Any]:
    """Machine, versions and load: what a reader needs to trust the numbers.

    torch, skorch and numpy are always listed; ``packages`` adds other
    distributions (``None`` where one is not installed). ``torch_threads`` is
    torch's intra-op thread count now; scripts add ``load_average_end`` when
    they finish.
    """
    import torch

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions("torch", "skorch", "numpy", *packages),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "load_average_start": list(os.getloadavg()),
    }


def machine() -> dict[str, Any]:
    """Where a result was measured, in brief (the ``machine`` entry of ``write_report``)."""
    return {
        "python": sys.version.split()[0],
        "torch": versions("torch")["torch"],
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def command_line(script: str, argv: list[str] | None) -> str:
    """How a result was produced: ``python benchmarks/SCRIPT.py ARGS``.

    ``argv`` is what ``main`` was given (``None``: the process's arguments).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{script}.py", *args])


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``; a ``--quick`` run on the default output writes a twin.

    The default outputs hold the published figures that the docs cite: a smoke
    run left on them writes ``<name>_quick.json`` beside them instead.
    """
    args = parser.parse_args(argv)
    if not getattr(args, "quick", False):
        return args
    for dest in ("out", "output"):
        default = parser.get_default(dest)
        if default is not None and getattr(args, dest, None) == default:
            path = Path(default)
            quick = path.with_name(f"{path.stem}_quick{path.suffix}")
            setattr(args, dest, quick if isinstance(default, Path) else str(quick))
    return args


def write_json(path: str | Path, content: Any, indent: int = 1) -> Path:
    """Write ``content`` as JSON to ``path`` (folders created); the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=indent, default=str) + "\n")
    return path


def write_report(out: str, table: pd.DataFrame | None, **content: Any) -> None:
    """Print ``table`` and write it with ``content``, the machine and the date to ``out``."""
    import pandas as pd

    report = dict(content)
    if table is not None:
        with pd.option_context("display.width", 200):
            print(table.round(4).to_string())
        report["summary"] = table.reset_index().to_dict(orient="records")
    report["machine"] = machine()
    report["date"] = time.strftime("%Y-%m-%d")
    write_json(out, report)


# ------------------------------------------------------ timing and statistics
def rotate(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` starting at position ``k`` (mod its length): the order of round ``k``.

    Contenders timed in turn, in an order that rotates from round to round, so
    that load from other processes hits them alike.
    """
    k %= len(items)
    return [*items[k:], *items[:k]]


def time_stats(seconds: Sequence[float]) -> dict[str, float]:
    """Median, minimum and maximum of repeated timings."""
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
    }


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of ``values`` (sample standard deviation / sqrt(n))."""
    values = np.asarray(values)
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def relative_mse(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-series MSE relative to the random walk (zero-increment forecast).

    ``pred`` and ``actual`` are (series, origins) increments.
    """
    return np.mean((pred - actual) ** 2, axis=1) / np.mean(actual**2, axis=1)


# -------------------------------------------------------------------- memory
def proc_status_mib(field: str) -> float:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB (NaN if absent)."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_mib(collect: bool = True) -> float:
    """Resident set size now in MiB, after a full garbage collection unless ``collect=False``."""
    if collect:
        gc.collect()
    return proc_status_mib("VmRSS")


# ---------------------------------------------------------------------- data
def to_panel(
    wide: pd.DataFrame,
    column: str = "value",
    names: Sequence[str] | None = ("instance", "time"),
) -> pd.DataFrame:
    """(time x series) levels -> sktime ``pd-multiindex`` panel ``(series, time)``.

    ``names`` names the two index levels (``None``: as ``stack`` leaves them).
    """
    panel = wide.stack().swaplevel().sort_index().to_frame(column)
    if names is not None:
        panel.index.names = list(names)
    return panel


def wide_increments(wide: pd.DataFrame, kind: str) -> np.ndarray:
    """(series, time) increments of each column of a (time x series) frame.

    ``kind`` is ``"log_return"`` or ``"difference"``, transformed exactly as
    the package does (``sk_metalstm.windowing.to_increments``).
    """
    from sk_metalstm.windowing import to_increments

    return np.stack([to_increments(wide[c].to_numpy(), kind) for c in wide.columns])


def to_wide(panel: pd.DataFrame) -> pd.DataFrame:
    """A panel's first column as a (time x series) frame."""
    return panel.iloc[:, 0].unstack(level=0)


def ar1_series(length: int, phi: float, seed: int, skip: int = 0) -> np.ndarray:
    """``length`` points of an AR(1) starting at 0 with standard normal shocks.

    ``skip`` shocks are drawn first and left unused (so that a script keeps
    the data its published results were measured on).
    """
    shocks = np.random.default_rng(seed).standard_normal(skip + length - 1)[skip:]
    z = np.zeros(length)
    for t in range(1, length):
        z[t] = phi * z[t - 1] + shocks[t - 1]
    return z


def lag_windows(z: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, window) windows of ``z`` (contiguous) and the value after each."""
    X = np.lib.stride_tricks.sliding_window_view(z[:-1], window)
    return np.ascontiguousarray(X), z[window:]


# ------------------------------------------------------------- forecasting
def rolling_one_step(
    forecaster: MetaLSTMForecaster, wide: pd.DataFrame, history: int, kind: str
) -> np.ndarray:
    """One-step increment forecasts, (series, len(wide) - history).

    ``fit`` on the first ``history`` rows of the (time x series) levels, then
    ``predict`` and ``update`` one row at a time (adaptation only). ``kind``
    is ``"log_return"`` or ``"difference"``: how a level forecast becomes an
    increment forecast.
    """
    forecaster.fit(to_panel(wide.iloc[:history]), fh=[1])
    preds = []
    for t in range(history, len(wide)):
        last = wide.iloc[t - 1].to_numpy()
        pred = forecaster.predict(fh=[1]).iloc[:, 0]
        pred = pred.groupby(level=0, sort=False).first().reindex(wide.columns).to_numpy()
        preds.append(np.log(pred / last) if kind == "log_return" else pred - last)
        forecaster.update(to_panel(wide.iloc[[t]]))
    return np.array(preds).T


def scratch_next_increment(increments: np.ndarray, window: int, **regressor: Any) -> float:
    """An LSTM trained from scratch on ``increments``: its forecast of the next one.

    ``LSTMBaseRegressor(**regressor)`` is fitted on the standardised increments
    (windows of ``window``, next value as target); the forecast is mapped back
    to the increments' scale. The baseline that adaptation of a pretrained
    forecaster is timed against.
    """
    from sk_metalstm import LSTMBaseRegressor

    mu, sd = increments.mean(), increments.std()
    s = (increments - mu) / sd
    X = np.lib.stride_tricks.sliding_window_view(s[:-1], window)
    reg = LSTMBaseRegressor(**regressor).fit(X, s[window:])
    return float(reg.predict(s[-window:][None])[0] * sd + mu)


# ------------------------------------------------ meta-training workload
#: The meta-training configuration of ``meta_throughput.py`` and ``threads.py``.
META_FULL = {
    "window_length": 20,
    "hidden_size": 32,
    "num_layers": 1,
    "horizon": 1,
    "support_size": 32,
    "query_size": 8,
    "inner_steps": 5,
    "inner_lr": 0.1,
    "gradient_clip": 1.0,
    "n_series": 40,
    "n_timepoints": 1000,
}
#: Its ``--quick`` version.
META_QUICK = {
    **META_FULL,
    "window_length": 8,
    "hidden_size": 8,
    "support_size": 8,
    "query_size": 4,
    "inner_steps": 2,
    "n_series": 4,
    "n_timepoints": 200,
}


def make_tasks(cfg: dict[str, Any], seed: int) -> TaskDataset:
    """Tasks cut from a generated AR(1)-returns panel."""
    from sk_metalstm.datasets import make_ar_returns_panel
    from sk_metalstm.meta import TaskDataset
    from sk_metalstm.windowing import TaskLayout, to_increments

    panel = make_ar_returns_panel(cfg["n_series"], cfg["n_timepoints"], random_state=seed)
    series = [
        to_increments(g.to_numpy().ravel(), "log_return") for _, g in panel.groupby(level=0)
    ]
    layout = TaskLayout(
        cfg["window_length"], cfg["horizon"], cfg["support_size"], cfg["query_size"]
    )
    return TaskDataset(series, layout, stride=cfg["query_size"])


def make_net(learner_name: str, first_order: bool, vectorize: bool, base: LSTMNetwork,
             cfg: dict[str, Any], tasks_per_batch: int, seed: int):
    """A MetaNet exactly as ``meta_train`` builds it (default outer optimizer/lr)."""
    import torch

    from sk_metalstm.meta import make_meta_learner
    from sk_metalstm.meta.training import build_meta_net

    torch.manual_seed(seed)  # the lstm rule draws its tensor embedding
    learner = make_meta_learner(
        learner_name, base, inner_steps=cfg["inner_steps"], first_order=first_order,
        vectorize=vectorize, inner_lr=cfg["inner_lr"],
    )
    net = build_meta_net(
        learner, max_epochs=1, batch_size=tasks_per_batch, lr=None,
        gradient_clip=cfg["gradient_clip"], valid=None, callbacks=None, device="cpu",
        verbose=0,
    )
    return net.initialize()
