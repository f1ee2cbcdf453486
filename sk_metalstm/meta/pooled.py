"""No meta-learned adaptation: the pooled network, and plain fine-tuning."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sk_metalstm.distribution import gaussian_nll
from sk_metalstm.meta.base import MetaLearner, Params, TaskBatch, TrainingOutput
from sk_metalstm.networks import network_like

__all__ = ["PooledLearner", "FineTuneLearner"]


def _predict_windows(params: Params, windows: Tensor) -> Tensor:
    # (tasks, n, L, F) -> (tasks, n, h) with one shared set of weights, through
    # nn.LSTM's fused kernels (no per-task weights, so nothing to vmap).
    flat = torch.func.functional_call(network_like(params), params, (windows.flatten(0, 1),))
    return flat.unflatten(0, windows.shape[:2])


class PooledLearner(MetaLearner):
    """``meta_learner="none"``: one network for every series (step 1 of the method).

    Trained on the support and query windows of every task alike, so it is the
    ordinary pooled ("global") LSTM; it does not adapt.
    """

    # Nothing to check after "adapting": the weights are the pooled ones.
    adapts_network = False

    def adapt(self, support_x: Tensor, support_y: Tensor, inner_steps: int | None = None) -> Params:
        """Return ``theta0`` unchanged."""
        return self.initial_params()

    def adapt_for_inference(
        self, support_x: Tensor, support_y: Tensor, inner_steps: int | None = None
    ) -> Params:
        """Return ``theta0`` once per task."""
        n_tasks = len(support_x)
        return {
            n: p.detach().expand(n_tasks, *p.shape).clone()
            for n, p in self.initial_params().items()
        }

    def predict_tasks(self, tasks: TaskBatch) -> Tensor:
        """Predict query windows with the shared weights."""
        return _predict_windows(self.initial_params(), tasks.query_x)

    def training_step(self, tasks: TaskBatch) -> TrainingOutput:
        """The query prediction, and the loss on the support windows as well."""
        # Pooled training fits every window of the task, not only the query.
        support = gaussian_nll(
            _predict_windows(self.initial_params(), tasks.support_x), tasks.support_y
        )
        counts = (tasks.support_y.shape[1], tasks.query_x.shape[1])
        return TrainingOutput(
            self.predict_tasks(tasks), {"support_loss": support, "counts": counts}
        )

    def outer_loss(self, query_loss: Tensor, terms: dict[str, Any]) -> Tensor:
        """Mean of support and query losses, weighted by their window counts."""
        if "support_loss" not in terms:
            return query_loss
        n_support, n_query = terms["counts"]
        return (n_support * terms["support_loss"] + n_query * query_loss) / (n_support + n_query)


class FineTuneLearner(MetaLearner):
    """``meta_learner="finetune"``: plain SGD from the pooled weights.

    The baseline every meta-learner must beat: ``inner_steps`` gradient steps of
    size ``inner_lr`` on the support set; nothing is meta-trained.
    """

    trainable = False
