"""Meta-learners: update rules over the base LSTM's weights, and their training loop."""

from __future__ import annotations

from typing import Any

from sk_metalstm._validation import check_choice
from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.lstm_rule import LSTMRuleLearner
from sk_metalstm.meta.maml import MAMLLearner
from sk_metalstm.meta.metasgd import MetaSGDLearner
from sk_metalstm.meta.net import MetaNet
from sk_metalstm.meta.pooled import FineTuneLearner, PooledLearner
from sk_metalstm.meta.reptile import ReptileLearner
from sk_metalstm.meta.ridge import RidgeHeadLearner
from sk_metalstm.meta.tasks import TaskDataset
from sk_metalstm.networks import LSTMNetwork

__all__ = [
    "META_LEARNERS",
    "MetaLearner",
    "MetaNet",
    "TaskDataset",
    "make_meta_learner",
]

#: ``meta_learner`` option -> class.
META_LEARNERS: dict[str, type[MetaLearner]] = {
    "ridge": RidgeHeadLearner,
    "lstm": LSTMRuleLearner,
    "metasgd": MetaSGDLearner,
    "maml": MAMLLearner,
    "reptile": ReptileLearner,
    "finetune": FineTuneLearner,
    "none": PooledLearner,
}


def make_meta_learner(name: str, base: LSTMNetwork, **options: Any) -> MetaLearner:
    """Build the meta-learner called ``name`` starting from ``base``'s weights.

    ``options`` are ``inner_steps``, ``first_order``, ``vectorize`` and
    ``inner_lr``, which every learner takes (and ignores where unused).
    """
    check_choice("meta_learner", name, META_LEARNERS)
    return META_LEARNERS[name](base, **options)
