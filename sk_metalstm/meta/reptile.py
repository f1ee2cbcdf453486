"""Reptile (Nichol et al. 2018): move the initial weights toward adapted ones."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sk_metalstm.meta.base import MetaLearner, TaskBatch, TrainingOutput

__all__ = ["ReptileLearner"]


class ReptileLearner(MetaLearner):
    """``meta_learner="reptile"``: SGD inner loop; outer step toward its result.

    During meta-training each task is adapted on all its windows (support and
    query), and the meta-gradient is ``theta0 - theta_k`` averaged over tasks;
    with plain SGD of step ``epsilon`` as the outer optimizer this is Reptile's
    ``theta0 += epsilon * (theta_k - theta0)``. Evaluation and deployment adapt
    on the support set only, as every other learner does.
    """

    #: Reptile's outer update is an interpolation: plain SGD, not Adam, which
    #: rescales it per weight (and diverged in our runs).
    outer_optimizer = torch.optim.SGD
    default_outer_lr = 0.5

    def training_step(self, tasks: TaskBatch) -> TrainingOutput:
        """Adapt on all of each task's windows; the query prediction and a surrogate."""
        adapted = self.adapt_batch(
            torch.cat([tasks.support_x, tasks.query_x], dim=1),
            torch.cat([tasks.support_y, tasks.query_y], dim=1),
        )
        adapted = {n: p.detach() for n, p in adapted.items()}
        theta0 = self.initial_params()
        n_tasks = tasks.support_x.shape[0]
        surrogate = sum(0.5 * torch.sum((theta0[n] - adapted[n]) ** 2) for n in theta0) / n_tasks
        return TrainingOutput(self.predict_batch(adapted, tasks.query_x), {"surrogate": surrogate})

    def outer_loss(self, query_loss: Tensor, terms: dict[str, Any]) -> Tensor:
        """Report the query loss; take the gradient of Reptile's surrogate."""
        if "surrogate" not in terms:
            return query_loss
        surrogate = terms["surrogate"]
        return query_loss.detach() + surrogate - surrogate.detach()
