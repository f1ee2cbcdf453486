"""Shared by the benchmark scripts: rolling one-step forecasts and JSON reports.

Scripts run as ``python benchmarks/NAME.py`` import this module as a sibling.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sk_metalstm import MetaLSTMForecaster

#: Forecaster settings of the ``--quick`` smoke runs: seconds, not accuracy.
QUICK_FORECASTER = {
    "hidden_size": 8,
    "inner_steps": 1,
    "base_max_epochs": 1,
    "max_epochs": 1,
    "tasks_per_epoch": 64,
}


def to_panel(wide: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """(time x series) levels -> sktime ``pd-multiindex`` panel ``(instance, time)``."""
    panel = wide.stack().swaplevel().sort_index().to_frame(column)
    panel.index.names = ["instance", "time"]
    return panel


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


def machine() -> dict[str, Any]:
    """Where a result was measured."""
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def write_report(out: str, table: pd.DataFrame | None, **content: Any) -> None:
    """Print ``table`` and write it with ``content``, the machine and the date to ``out``."""
    report = dict(content)
    if table is not None:
        with pd.option_context("display.width", 200):
            print(table.round(4).to_string())
        report["summary"] = table.reset_index().to_dict(orient="records")
    report["machine"] = machine()
    report["date"] = time.strftime("%Y-%m-%d")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
