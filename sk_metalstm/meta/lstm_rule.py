"""A learned, coordinate-wise LSTM update rule (after Ravi & Larochelle 2017).

The rule is an LSTM cell whose cell state is the base network's weights. For
every weight coordinate ``j`` at inner step ``t`` it computes

    f_t = sigmoid(.)        forget gate: how much of the move away from theta0 to keep
    i_t = 2 * sigmoid(.)    input gate: a multiplier on the step size
    c_t = tanh(.)           how much momentum to mix into the direction
    theta_t = theta0 + f_t * (theta_{t-1} - theta0) - alpha_j * i_t * (g_t + c_t * m_t)

from features shared across coordinates (one small network applied to every
coordinate): the preprocessed gradient and momentum (``log|x|/p, sign x``,
Andrychowicz et al. 2016), the preprocessed support loss and its change since
the last step (the loss trend), the step index, the previous gates, and a
learned embedding of the weight tensor the coordinate belongs to.

What it adds to Ravi & Larochelle, and why. A first version of the plain rule
learned an almost uniform step (SGD at 4x the cost): shared gates cannot tell
coordinates apart. Here ``alpha`` is a learned per-coordinate base step (as in
Meta-SGD), the tensor embedding lets gates differ by layer and gate block, and
momentum and loss trend give it state to act on. The forget gate decays toward
the learned initialisation rather than toward zero: decaying a pretrained
network's weights toward zero would erase it. With the output layer initialised
to zero (forget bias high, input gate 1, no momentum) the rule starts almost
as Meta-SGD at initialisation, i.e. plain gradient descent with step
``inner_lr``: the forget gate (sigmoid(5) = 0.9933, not 1) pulls the weights
0.67 % of their way back toward ``theta0`` at each step after the first.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from sk_metalstm.meta.base import MetaLearner, Params, param_name

__all__ = ["LSTMRuleLearner", "preprocess"]

_N_FEATURES = 2 + 2 + 2 + 2 + 1 + 2  # grad, momentum, loss, loss trend, step, gates


def preprocess(x: Tensor, p: float = 10.0) -> Tensor:
    """Andrychowicz et al.'s scale-free encoding of ``x`` as two features."""
    big = x.abs() >= math.exp(-p)
    log_part = torch.where(big, torch.log(x.abs().clamp_min(1e-38)) / p, -torch.ones_like(x))
    sign_part = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack([log_part, sign_part], dim=-1)


class LSTMRuleLearner(MetaLearner):
    """``meta_learner="lstm"``: learned initial weights and a learned LSTM update rule.

    Parameters
    ----------
    *args, **kwargs
        Passed to ``MetaLearner``.
    gate_hidden : int
        Width of the shared coordinate-wise gate network.
    embedding_dim : int
        Size of the learned per-tensor embedding.
    momentum : float
        Decay of the gradient moving average fed to the gates.
    """

    def __init__(
        self,
        *args: Any,
        gate_hidden: int = 16,
        embedding_dim: int = 4,
        momentum: float = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.momentum = momentum
        sizes = [p.numel() for p in self.theta0.values()]
        self.alpha = nn.Parameter(torch.full((sum(sizes),), float(self.inner_lr)))
        self.tensor_embedding = nn.Parameter(0.1 * torch.randn(len(sizes), embedding_dim))
        self.register_buffer(
            "tensor_index",
            torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)),
            persistent=False,
        )
        self.gate_hidden = nn.Linear(_N_FEATURES + embedding_dim, gate_hidden)
        self.gate_out = nn.Linear(gate_hidden, 3)
        with torch.no_grad():
            # Start as plain gradient descent: f ~ 1, i = 1, c = 0.
            self.gate_out.weight.zero_()
            self.gate_out.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))

    def _flatten(self, params: Params) -> Tensor:
        return torch.cat([params[n].reshape(-1) for n in self._names()])

    def _names(self) -> list[str]:
        return [param_name(k) for k in self.theta0]

    def init_state(self, params: Params) -> dict[str, Tensor]:
        """Zero momentum, no previous loss, and previous gates (1, 1).

        Later steps store (forget gate, step scale / 2), about (0.99, 0.5) before
        meta-training, so (1, 1) is not a neutral value: it marks the first step,
        which the step feature marks too. Kept as it is, so that saved rules
        adapt as they were trained to.
        """
        flat = self._flatten(params)
        return {
            "momentum": torch.zeros_like(flat),
            "gates": torch.stack([torch.ones_like(flat), torch.ones_like(flat)], -1),
            "loss": None,
        }

    def update(
        self, params: Params, grads: Params, loss: Tensor, state: Any, step: int
    ) -> tuple[Params, Any]:
        """One application of the learned rule to every coordinate."""
        theta = self._flatten(params)
        theta0 = self._flatten(self.initial_params())
        g = self._flatten(grads)
        m = self.momentum * state["momentum"] + (1 - self.momentum) * g
        m_hat = m / (1 - self.momentum ** (step + 1))
        trend = torch.zeros_like(loss) if state["loss"] is None else loss - state["loss"]
        n = g.shape[0]
        shared = torch.cat(
            [
                preprocess(loss),
                preprocess(trend),
                torch.full_like(loss, (step + 1) / max(1, self.inner_steps))[None],
            ]
        ).expand(n, 5)
        features = torch.cat(
            [
                preprocess(g),
                preprocess(m_hat),
                shared,
                state["gates"],
                self.tensor_embedding[self.tensor_index],
            ],
            dim=-1,
        )
        f_raw, i_raw, c_raw = self.gate_out(torch.tanh(self.gate_hidden(features))).unbind(-1)
        forget, step_scale = torch.sigmoid(f_raw), 2 * torch.sigmoid(i_raw)
        direction = g + torch.tanh(c_raw) * m_hat
        new_theta = theta0 + forget * (theta - theta0) - self.alpha * step_scale * direction
        new_state = {
            "momentum": m,
            "gates": torch.stack([forget, step_scale / 2], -1),
            "loss": loss,
        }
        return self._unflatten(new_theta, params), new_state

    def _unflatten(self, flat: Tensor, like: Params) -> Params:
        out, offset = {}, 0
        for name in self._names():
            size = like[name].numel()
            out[name] = flat[offset : offset + size].view_as(like[name])
            offset += size
        return out
