"""skorch callbacks specific to meta-training."""

from __future__ import annotations

import math
from typing import Any

from skorch.callbacks import Callback

__all__ = ["StopOnNonFiniteLoss", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """Raised when a training loss becomes NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or inf.

    Continuing would only write NaN into the weights and, later, the forecasts.
    """

    def on_batch_end(self, net: Any, batch: Any = None, training: bool = False, **kw: Any) -> None:
        """Check the loss skorch just recorded for this batch."""
        key = "train_loss" if training else "valid_loss"
        loss = net.history[-1, "batches", -1, key]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"{key} became {loss} at epoch {len(net.history)}; training was stopped. "
                "Lower lr or inner_lr, reduce inner_steps, or check the data for "
                "extreme values (the last finite weights are kept in the history)."
            )
