"""The LSTM network shared by every estimator, in two equivalent forms.

``LSTMNetwork`` is a plain ``nn.Module`` (fast ``nn.LSTM`` kernels) used by
``LSTMBaseRegressor`` and as the base learner of the meta-learners.
``functional_forward`` computes the same function from a dict of parameters with
matmuls only, so that ``torch.func.vmap`` can batch it over tasks (``vmap`` has
no batching rule for ``nn.LSTM``) and ``torch.func.grad`` can differentiate it
with respect to per-task weights.

This module depends on torch only: no scikit-learn, pandas or sktime.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
from torch import Tensor, nn

__all__ = ["LSTMNetwork", "functional_forward", "count_layers", "network_like", "last_hidden"]


class LSTMNetwork(nn.Module):
    """Sequence-to-vector LSTM: the last hidden state feeds a linear head.

    Parameters
    ----------
    input_size : int
        Number of features per time step.
    hidden_size : int
        Number of hidden units per LSTM layer.
    num_layers : int
        Number of stacked LSTM layers.
    output_size : int
        Number of outputs (e.g. forecast horizons of a direct multi-step model).
    dropout : float
        Dropout between stacked layers and before the head (training only).
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 32,
        num_layers: int = 1,
        output_size: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape (batch, time, features) to (batch, output_size)."""
        out, _ = self.lstm(x)
        return self.head(self.dropout(out[:, -1]))


def count_layers(params: dict[str, Tensor]) -> int:
    """Number of LSTM layers in a parameter dict of ``LSTMNetwork``."""
    return sum(1 for name in params if name.startswith("lstm.weight_ih_l"))


_templates = threading.local()
#: Templates kept per thread, the most recently used: a search over sizes and
#: horizons in one long-running process kept one network (with its storage)
#: for every shape it had seen.
_MAX_TEMPLATES = 8


def network_like(params: dict[str, Tensor]) -> LSTMNetwork:
    """An eval-mode ``LSTMNetwork`` shaped like ``params``, whose own weights are unused.

    Callers replace every weight through ``torch.func.functional_call``. Built
    on the meta device and then given uninitialised storage (random
    initialisation would consume the caller's torch RNG), and kept per thread
    and shape (the last few shapes used): building one costs milliseconds, more
    than adapting a series, and ``functional_call`` swaps weights in place, so
    threads must not share.
    """
    key = (
        params["lstm.weight_ih_l0"].shape[1],
        params["lstm.weight_hh_l0"].shape[1],
        count_layers(params),
        params["head.bias"].shape[0],
        str(params["head.bias"].device),
    )
    cache = _templates.__dict__.setdefault("networks", OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    with torch.device("meta"):
        network = LSTMNetwork(*key[:4])
    cache[key] = network.to_empty(device=key[4]).eval()
    while len(cache) > _MAX_TEMPLATES:
        cache.popitem(last=False)
    return cache[key]


def last_hidden(params: dict[str, Tensor], x: Tensor) -> Tensor:
    """Last hidden state of the LSTM part of ``params`` for inputs ``x`` (batch, time, features).

    Runs ``nn.LSTM``'s fused kernels (differentiable in ``params``), which is
    several times faster than the step-by-step ``functional_forward`` when one
    set of weights serves a whole batch.
    """
    lstm = network_like(params).lstm
    weights = {n.removeprefix("lstm."): p for n, p in params.items() if n.startswith("lstm.")}
    out, _ = torch.func.functional_call(lstm, weights, (x,))
    return out[:, -1]


def functional_forward(params: dict[str, Tensor], x: Tensor) -> Tensor:
    """Evaluate ``LSTMNetwork`` (in eval mode) with the weights in ``params``.

    Parameters
    ----------
    params : dict of str to Tensor
        Parameters named as in ``LSTMNetwork.named_parameters()``.
    x : Tensor of shape (batch, time, features)
        Input sequences, oldest step first.

    Returns
    -------
    Tensor of shape (batch, output_size)
        Identical (up to float rounding) to ``LSTMNetwork.eval()(x)``.
    """
    sequence = x
    for layer in range(count_layers(params)):
        w_ih = params[f"lstm.weight_ih_l{layer}"]
        w_hh = params[f"lstm.weight_hh_l{layer}"]
        bias = params[f"lstm.bias_ih_l{layer}"] + params[f"lstm.bias_hh_l{layer}"]
        hidden_size = w_hh.shape[1]
        # One matmul for the input projection of every time step; only the
        # recurrent part has to run step by step.
        projected = sequence @ w_ih.T + bias
        h = x.new_zeros(x.shape[0], hidden_size)
        c = x.new_zeros(x.shape[0], hidden_size)
        outputs = []
        # unbind, not projected[:, t]: the backward of T selects would build T
        # zero-filled copies of ``projected`` (most of a vmapped meta-step).
        for projected_t in projected.unbind(1):
            gates = projected_t + h @ w_hh.T
            i, f, g, o = gates.chunk(4, dim=-1)  # PyTorch's gate order
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        sequence = torch.stack(outputs, dim=1)
    return sequence[:, -1] @ params["head.weight"].T + params["head.bias"]
