"""The meta-training outer loop as a skorch ``NeuralNet``: one sample is one task."""

from __future__ import annotations

from typing import Any

import torch
from skorch import NeuralNet

from sk_metalstm.meta.base import TrainingOutput

__all__ = ["MetaNet"]


class MetaNet(NeuralNet):
    """``NeuralNet`` whose module is a ``MetaLearner``.

    skorch supplies the loop, history, callbacks, device handling and
    checkpoints; this class only lets the meta-learner shape its training loss
    (Reptile's surrogate gradient, the pooled model's support windows).
    """

    def get_loss(
        self,
        y_pred: torch.Tensor | TrainingOutput,
        y_true: torch.Tensor,
        X: Any = None,
        training: bool = False,
    ) -> torch.Tensor:
        """Query-set loss (Gaussian NLL), through the learner's ``outer_loss`` when training."""
        terms: dict[str, Any] = {}
        if isinstance(y_pred, TrainingOutput):
            y_pred, terms = y_pred
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if training:
            loss = self.module_.outer_loss(loss, terms)
        return loss
