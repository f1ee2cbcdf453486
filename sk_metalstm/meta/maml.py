"""MAML (Finn et al. 2017): learn the initial weights; adapt by plain SGD."""

from __future__ import annotations

from sk_metalstm.meta.base import MetaLearner

__all__ = ["MAMLLearner"]


class MAMLLearner(MetaLearner):
    """``meta_learner="maml"``: learned ``theta0``, fixed inner step ``inner_lr``.

    The update rule is the base class's plain gradient step; what is
    meta-learned is only the initialisation. ``first_order=True`` gives
    first-order MAML (FOMAML).
    """
