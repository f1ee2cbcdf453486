"""A skorch dataset that hands the data loader whole mini-batches.

skorch's default ``Dataset`` is indexed once per sample and the ``DataLoader``
then collates the rows into a batch: for a small LSTM that per-row Python work
costs as much as the forward and backward pass (``benchmarks/speed.py``). Since
PyTorch 2.0 a map-style dataset may define ``__getitems__``; the loader then asks
for all of a batch's indices at once, and ``pass_through`` (the collate
function) returns the result unchanged. Same batches, same order, same losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["TensorBatches", "pass_through"]


class TensorBatches(Dataset):
    """Inputs and targets held as tensors, fetched one mini-batch at a time.

    Parameters
    ----------
    X : ndarray or Tensor of shape (n_samples, ...)
        Inputs.
    y : ndarray or Tensor of shape (n_samples, ...) or None
        Targets; ``None`` (prediction) gives empty placeholder targets.
    """

    def __init__(self, X: np.ndarray | torch.Tensor, y: Any = None) -> None:
        self.X = torch.as_tensor(X)
        self.y = torch.zeros(len(self.X), 0) if y is None else torch.as_tensor(y)
        if len(self.y) != len(self.X):
            raise ValueError(
                f"X and y hold different numbers of samples: {len(self.X)} and {len(self.y)}."
            )

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i], self.y[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices)
        return self.X[idx], self.y[idx]


def pass_through(batch: Any) -> Any:
    """Collate function for ``TensorBatches``: the batch is already stacked."""
    return batch
