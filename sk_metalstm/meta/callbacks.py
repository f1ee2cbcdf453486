"""skorch callbacks specific to meta-training."""

from __future__ import annotations

import math
from typing import Any

from skorch.callbacks import Callback

__all__ = ["KeepBestWeights", "StopOnNonFiniteLoss", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """Raised when a training loss becomes NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or inf.

    Continuing would only write NaN into the weights and, later, the
    predictions. A generic skorch callback: ``LSTMBaseRegressor`` and
    meta-training both use it by default.

    Parameters
    ----------
    hint : str
        What to try instead, appended to the error message.
    """

    def __init__(
        self,
        hint: str = "Lower lr, set gradient_clip, or check the data for extreme values.",
    ) -> None:
        self.hint = hint

    def on_batch_end(self, net: Any, batch: Any = None, training: bool = False, **kw: Any) -> None:
        """Check the loss skorch just recorded for this batch."""
        key = "train_loss" if training else "valid_loss"
        loss = net.history[-1, "batches", -1, key]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"{key} became {loss} at epoch {len(net.history)}; training was stopped "
                f"and the model is not usable. {self.hint}"
            )


class KeepBestWeights(Callback):
    """Keep the module weights of the best epoch; restore them when training ends.

    Training also ends this way on Ctrl-C (skorch stops the loop on
    ``KeyboardInterrupt`` and still calls ``on_train_end``), so an interrupted
    meta-training run keeps its best state so far.

    Parameters
    ----------
    monitor : str
        History key to minimise; falls back to ``"train_loss"`` for epochs
        without a validation loss.
    """

    def __init__(self, monitor: str = "valid_loss") -> None:
        self.monitor = monitor

    def initialize(self) -> KeepBestWeights:
        """Forget any previous run."""
        self.best_score_ = math.inf
        self.best_state_: dict[str, Any] | None = None
        return self

    def on_epoch_end(self, net: Any, **kw: Any) -> None:
        """Snapshot the weights when the monitored loss improves."""
        epoch = net.history[-1]
        score = epoch.get(self.monitor, epoch.get("train_loss", math.inf))
        if math.isfinite(score) and score < self.best_score_:
            self.best_score_ = score
            self.best_state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def on_train_end(self, net: Any, **kw: Any) -> None:
        """Put the best weights back."""
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
