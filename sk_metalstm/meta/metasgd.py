"""Meta-SGD (Li et al. 2017): learn the initial weights and a step size per weight."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sk_metalstm.meta.base import MetaLearner, Params, param_name

__all__ = ["MetaSGDLearner"]


class MetaSGDLearner(MetaLearner):
    """``meta_learner="metasgd"``: ``theta <- theta - alpha * grad``, ``alpha`` learned.

    ``alpha`` has the shape of the weights and starts at ``inner_lr``, so before
    meta-training the rule is MAML's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = nn.ParameterDict(
            {k: nn.Parameter(torch.full_like(p, self.inner_lr)) for k, p in self.theta0.items()}
        )

    def update(
        self, params: Params, grads: Params, loss: Tensor, state: Any, step: int
    ) -> tuple[Params, Any]:
        """Gradient step with learned per-weight step sizes."""
        alpha = {param_name(k): a for k, a in self.alpha.items()}
        return {n: p - alpha[n] * grads[n] for n, p in params.items()}, state
