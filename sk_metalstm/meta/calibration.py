"""Forecast residuals on query windows, for calibrated prediction quantiles.

After meta-training, every (sampled) task is adapted on its support set and
forecasts its query windows, exactly as at deployment: the first query window
*is* the deployment situation. The residuals, in the task's own scale, are kept
both per step and cumulated over steps (what a log-return or difference
forecast of the level ``k`` steps ahead accumulates). At predict time a quantile
of these residuals, times the series' own support scale, gives a quantile of
the forecast: split-conformal calibration with a per-series scale. Quantiles of
one empirical distribution are monotone in ``alpha``, so they never cross.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.tasks import TaskDataset

__all__ = ["query_residuals"]


def query_residuals(
    learner: MetaLearner,
    tasks: TaskDataset,
    *,
    max_tasks: int = 2000,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Scaled query residuals ``y - y_hat`` of the adapted learner.

    Parameters
    ----------
    learner : MetaLearner
        Trained learner (left in eval mode).
    tasks : TaskDataset
        Tasks to calibrate on (e.g. the meta-validation tasks, else all).
    max_tasks : int
        Random subsample size; calibration quantiles need a few thousand rows.
    batch_size : int
        Tasks per forward pass.
    seed : int
        Seed of the subsample.
    device : str
        Where to compute.

    Returns
    -------
    dict
        ``"step"``: (n, h) residuals per step; ``"cumulative"``: (n, h)
        residuals of the running sum over steps.
    """
    rng = np.random.default_rng(seed)
    chosen = np.arange(len(tasks))
    if len(chosen) > max_tasks:
        chosen = np.sort(rng.choice(chosen, size=max_tasks, replace=False))
    loader = DataLoader(Subset(tasks, chosen.tolist()), batch_size=batch_size)
    learner.to(device).eval()
    residuals = []
    for X, y in loader:
        X = {k: v.to(device) for k, v in X.items() if k != "query_y"}
        with torch.no_grad():
            pred = learner(**X)
        residuals.append((y.to(device) - pred).reshape(-1, y.shape[-1]).cpu())
    learner.cpu()
    step = torch.cat(residuals).double().numpy()
    return {"step": step, "cumulative": np.cumsum(step, axis=1)}
