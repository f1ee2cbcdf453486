"""A torch ``Dataset`` of tasks, cut lazily from a panel of increment series.

Only the series and an index of (series, start) pairs are held in memory; each
task's windows are cut and scaled when a batch asks for it, so a panel of
thousands of long series costs its own size, not that of every window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from sk_metalstm.distribution import with_volatility_channel
from sk_metalstm.windowing import TaskLayout, cut_task, task_starts

__all__ = ["TaskDataset"]


class TaskDataset(Dataset):
    """Tasks over many series; item ``k`` is ``(X, y)`` as skorch expects.

    Parameters
    ----------
    series : sequence of arrays
        Increments of each series (see ``sk_metalstm.windowing``): 1-D, or
        (time, 1 + n_exogenous) with exogenous features after the increments.
    layout : TaskLayout
        Window, horizon, support and query sizes.
    stride : int
        Distance between the first windows of consecutive tasks of a series.

    Notes
    -----
    ``X`` is a dict with ``support_x`` (S, L, F), ``support_y`` (S, h),
    ``query_x`` (Q, L, F) and ``query_y``; ``y`` is ``query_y`` (Q, h). The
    ``F = n_features`` inputs are the increments, the exogenous features and
    the absolute increments (``distribution.with_volatility_channel``).
    """

    def __init__(self, series: Sequence[np.ndarray], layout: TaskLayout, stride: int) -> None:
        self.series = [np.asarray(z, dtype=np.float64) for z in series]
        # The network sees one more feature: the volatility channel.
        self.n_features = 2 if self.series[0].ndim == 1 else self.series[0].shape[1] + 1
        self.layout = layout
        index = [
            np.column_stack([np.full(len(s), i), s])
            for i, z in enumerate(self.series)
            if len(s := task_starts(len(z), layout, stride))
        ]
        self.index = np.concatenate(index) if index else np.empty((0, 2), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        series_id, start = self.index[k]
        task = cut_task(self.series[series_id], int(start), self.layout)
        X = {
            "support_x": torch.from_numpy(with_volatility_channel(task["support_x"])),
            "support_y": torch.from_numpy(task["support_y"]),
            "query_x": torch.from_numpy(with_volatility_channel(task["query_x"])),
            "query_y": torch.from_numpy(task["query_y"]),
        }
        return X, X["query_y"]

    def split_by_time(self, valid_fraction: float) -> tuple[TaskDataset, TaskDataset]:
        """Hold out the latest tasks of every series (never a shuffled split)."""
        train, valid = self._empty_like(), self._empty_like()
        # One pass over the index (a scan per series was quadratic in the panel).
        rows = self.index[np.argsort(self.index[:, 0], kind="stable")]
        _, starts, counts = np.unique(rows[:, 0], return_index=True, return_counts=True)
        n_valid = np.round(valid_fraction * counts).astype(np.int64)  # half to even, as round()
        position = np.arange(len(rows)) - np.repeat(starts, counts)
        held_out = position >= np.repeat(counts - n_valid, counts)
        train.index, valid.index = rows[~held_out], rows[held_out]
        return train, valid

    def _empty_like(self) -> TaskDataset:
        clone = TaskDataset.__new__(TaskDataset)
        clone.series, clone.layout, clone.n_features = self.series, self.layout, self.n_features
        clone.index = np.empty((0, 2), dtype=np.int64)
        return clone
