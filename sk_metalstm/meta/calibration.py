"""Standardised forecast residuals on query windows, for calibrated quantiles.

After meta-training, every (sampled) task is adapted on its support set and
forecasts its query windows, exactly as at deployment: the first query window
*is* the deployment situation. Each residual is divided by the scale the network
forecast for it, both per step and cumulated over steps (what a log-return or
difference forecast of the level ``k`` steps ahead accumulates; its scale is
``sqrt(sum of squared step scales)``). At predict time a quantile of these
standardised residuals, times the forecast scale of the series and step, gives
a quantile of the forecast: split-conformal calibration of a location-scale
forecast, i.e. filtered historical simulation with a learned volatility. The
tails are those of the residuals, not of a Gaussian. Quantiles of one empirical
distribution times a positive scale are monotone in ``alpha``: they never cross.

The same later tasks also calibrate the location: per step, the weight
``a = sum(y mu / s^2) / sum(mu^2 / s^2)`` (clipped to [0, 1]) by which the
forecast location ``mu`` best predicts the target (the slope of a
Mincer-Zarnowitz regression through the origin, weighted like the likelihood).
Where a location learned on earlier data carries no signal on later data
(daily prices, near a random walk) it shrinks toward the random walk;
where it does (an autoregression), it stays near 1.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from sk_metalstm.callbacks import clock, report_notice, report_progress
from sk_metalstm.distribution import split_outputs
from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.tasks import TaskDataset

__all__ = ["Calibration", "calibrate", "cumulative_scale", "location_weight"]

#: Seconds between progress lines, as ``ProgressReport`` prints them.
_REPORT_EVERY = 5.0


class Calibration(NamedTuple):
    """What held-out query windows calibrate: location weights and standardised residuals."""

    location_weight: np.ndarray
    residuals: dict[str, np.ndarray]


def calibrate(
    learner: MetaLearner,
    tasks: TaskDataset,
    *,
    max_tasks: int = 2000,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
    deadline: float | None = None,
    min_tasks: int = 256,
    verbose: int = 0,
    moving_queries_only: bool = True,
) -> Calibration | None:
    """Location weights and standardised query residuals of the adapted learner.

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
    deadline : float or None
        ``time.monotonic()`` value (the end of ``max_time``) after which no
        more batches are taken once ``min_tasks`` tasks are done. Tasks are
        taken in random order, so the ones done are a random subsample. A
        gradient learner adapts every task by inner steps: on a large panel
        2,000 tasks took half a minute, beyond a budget of one second.
    min_tasks : int
        Tasks calibrated on at least, deadline or not.
    verbose : int
        ``>= 1``: a progress line every 5 seconds, as training prints.
    moving_queries_only : bool
        Skip tasks whose query targets are all zero as well as those whose
        support is. False is the last resort for series that move too rarely
        to fill a query (coarsely rounded quotes, short series).

    Returns
    -------
    Calibration or None
        None if every task's support set (or, with ``moving_queries_only``, its
        query) is flat: nothing to calibrate on.
        ``location_weight`` (h,), see ``location_weight``; ``residuals``:
        ``"step"``, (n, h) standardised residuals per step of the weighted
        location, and ``"cumulative"``, (n, h) standardised residuals of the
        running sum over steps.
    """
    rng = np.random.default_rng(seed)
    chosen = np.arange(len(tasks))
    if len(chosen) > max_tasks:
        chosen = np.sort(rng.choice(chosen, size=max_tasks, replace=False))
    # Random order: whatever prefix a deadline leaves is a random subsample.
    chosen = rng.permutation(chosen)
    loader = DataLoader(Subset(tasks, chosen.tolist()), batch_size=batch_size)
    learner.to(device).eval()
    targets, locations, scales = [], [], []
    start = last = time.monotonic()
    done, reported, cut = 0, False, False
    for X, y in loader:
        now = time.monotonic()
        if deadline is not None and now > deadline and done >= min_tasks:
            cut = True
            break
        if verbose >= 1 and now - last >= _REPORT_EVERY:
            last, reported = now, True
            per_task = (now - start) / max(done, 1)
            left = per_task * (len(chosen) - done)
            if deadline is not None:  # the budget's end, or the minimum of tasks
                left = min(left, max(deadline - now, per_task * (min_tasks - done), 0.0))
            report_progress(f"calibration: {done}/{len(chosen)} tasks", now - start, left)
        done += len(y)
        # A task whose support or query never moved (a stale stretch) has
        # residuals of exactly zero (a flat query also pulls the location weight
        # to 0): calibrating on it would shrink every interval to a point.
        moving = X["support_y"].flatten(1).abs().amax(dim=1) > 0
        if moving_queries_only:
            moving &= y.flatten(1).abs().amax(dim=1) > 0
        if not bool(moving.any()):
            continue
        X = {k: v[moving].to(device) for k, v in X.items() if k != "query_y"}
        y = y[moving]
        with torch.no_grad():
            location, scale = split_outputs(learner(**X))
        targets.append(y.reshape(-1, y.shape[-1]))
        locations.append(location.reshape(-1, y.shape[-1]).cpu())
        scales.append(scale.reshape(-1, y.shape[-1]).cpu())
    learner.cpu()
    if verbose >= 1 and (reported or cut):  # no phase ends in silence
        how = " (time budget reached)" if cut else ""
        report_notice(
            f"calibration: finished on {done} of {len(chosen)} tasks{how} in "
            f"{clock(time.monotonic() - start)}"
        )
    if not targets:
        return None
    target, location, scale = (
        torch.cat(parts).double().numpy() for parts in (targets, locations, scales)
    )
    weight = location_weight(target, location, scale)
    residual = target - weight * location
    return Calibration(
        location_weight=weight,
        residuals={
            "step": residual / scale,
            "cumulative": np.cumsum(residual, axis=1) / cumulative_scale(scale),
        },
    )


def location_weight(target: np.ndarray, location: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-step weight (h,) in [0, 1] of forecast locations: ``target ~ a * location``.

    Least squares weighted by ``1 / scale^2``, the Gaussian likelihood's
    weights; a step whose locations are all zero keeps weight 1.
    """
    precision = 1.0 / np.square(scale)
    numerator = np.sum(precision * target * location, axis=0)
    denominator = np.sum(precision * np.square(location), axis=0)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, np.clip(numerator / safe, 0.0, 1.0), 1.0)


def cumulative_scale(scale: np.ndarray) -> np.ndarray:
    """Scale of the running sum of steps with scales ``scale`` (..., h): sqrt of cumsum of squares.

    Exact for independent steps; the calibration residuals absorb what
    correlation between steps there is. Scaled by the largest step before
    squaring: a series near 1e200 would otherwise overflow.
    """
    peak = np.max(scale, axis=-1, keepdims=True)
    peak = np.where(peak > 0, peak, 1.0)
    return peak * np.sqrt(np.cumsum(np.square(scale / peak), axis=-1))
