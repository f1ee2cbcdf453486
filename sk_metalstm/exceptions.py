"""Exceptions raised by sk_metalstm's estimators."""

from __future__ import annotations

__all__ = ["TrainingDiverged"]


class TrainingDiverged(ValueError, RuntimeError):
    """Raised when a training loss, or adapted weights, become NaN or infinite.

    A ``ValueError`` as well as a ``RuntimeError``: its causes are the data
    (extreme values) or the settings (a learning rate too large), the things a
    ``ValueError`` names in scikit-learn. The estimator is left unfitted, so it
    never returns NaN forecasts.
    """
