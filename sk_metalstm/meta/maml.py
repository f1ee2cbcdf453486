"""MAML (Finn et al. 2017): learn the initial weights; adapt by plain SGD."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from sk_metalstm.meta.base import MetaLearner, Params

__all__ = ["MAMLLearner"]


class MAMLLearner(MetaLearner):
    """``meta_learner="maml"``: learned ``theta0``, fixed inner step ``inner_lr``.

    ``first_order=True`` gives first-order MAML (FOMAML).
    """

    def __init__(self, *args: Any, inner_lr: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inner_lr = inner_lr

    def update(
        self, params: Params, grads: Params, loss: Tensor, state: Any, step: int
    ) -> tuple[Params, Any]:
        """Gradient step with the fixed inner learning rate."""
        return {n: p - self.inner_lr * grads[n] for n, p in params.items()}, state
