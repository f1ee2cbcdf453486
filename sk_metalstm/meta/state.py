"""A meta-trained learner with the settings it was trained under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sk_metalstm.meta.base import MetaLearner

__all__ = ["MetaState", "ARCHITECTURE_KEYS", "LEARNER_KEYS"]

#: Settings a learner cannot be used without: they fix its network and tasks.
ARCHITECTURE_KEYS = ("window_length", "horizon", "hidden_size", "num_layers", "meta_learner")
#: Settings built into the learner when meta-training starts; changing them
#: afterwards would change nothing (``adapt_steps`` sets the steps at fit).
LEARNER_KEYS = ("inner_steps", "inner_lr", "first_order")


@dataclass(repr=False)
class MetaState:
    """What ``pretrain`` produces and ``MetaLSTMForecaster(pretrained=...)`` takes.

    Attributes
    ----------
    learner : MetaLearner
        Learned initial weights and update rule (a picklable ``nn.Module``).
    config : dict
        The forecaster parameters it was meta-trained with.
    history : list
        skorch training histories: step 1 (pooled) and step 2 (meta).
    residuals : dict or None
        Standardised query-window residuals (``"step"`` and ``"cumulative"``,
        each (n, horizon)): residuals divided by their forecast scale, whose
        quantiles calibrate prediction quantiles (``meta/calibration.py``).
    location_weight : ndarray or None
        Per-step weight (horizon,) of the network's forecast locations,
        calibrated on the same windows (``None``: 1, the locations as they are).
    """

    learner: MetaLearner
    config: dict[str, Any]
    history: list[Any] = field(default_factory=list)
    residuals: dict[str, Any] | None = None
    location_weight: np.ndarray | None = None

    def __repr__(self) -> str:
        # A forecaster's repr shows its parameters, this state among them: the
        # dataclass repr printed every residual and weight array.
        shown = ("meta_learner", "window_length", "horizon", "hidden_size", "num_layers")
        settings = ", ".join(f"{k}={self.config[k]!r}" for k in shown if k in self.config)
        return f"MetaState({settings})"

    def mismatches(self, params: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Settings fixed by pretraining in ``params`` that differ from this state's."""
        out = {
            k: (params[k], self.config[k])
            for k in (*ARCHITECTURE_KEYS, *LEARNER_KEYS)
            if params.get(k) is not None and k in self.config and params[k] != self.config[k]
        }
        # Log returns and differences share a scale-free input ("auto" mixes
        # them); a network trained on centred levels ("none") reads neither.
        ours, theirs = params.get("transform"), self.config.get("transform")
        if None not in (ours, theirs) and (ours == "none") != (theirs == "none"):
            out["transform"] = (ours, theirs)
        return out

    def check_matches(self, params: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the architecture settings ``params`` changes."""
        mismatches = self.mismatches(params)
        if mismatches:
            detail = ", ".join(f"{k}={v[0]!r} (state has {v[1]!r})" for k, v in mismatches.items())
            raise ValueError(
                f"pretrained state does not match this forecaster: {detail}. These "
                "settings are fixed by pretraining: leave them out "
                "(MetaLSTMForecaster.from_pretrained(state, ...) copies the state's), "
                "or pretrain again with the new values on a forecaster without this state "
                "(pretrained=None; adapt_steps sets the update steps at fit)."
            )
