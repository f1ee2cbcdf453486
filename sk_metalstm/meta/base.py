"""The shared shape of every meta-learner: a learned start, an update rule, vmap.

A meta-learner is an ``nn.Module`` that owns the base network's initial weights
(``theta0``) and the parameters of its update rule. ``adapt`` applies the rule
``inner_steps`` times to one task's support set; ``forward`` adapts a batch of
tasks at once with ``torch.func.vmap`` and predicts their query windows. A
skorch ``NeuralNet`` (``MetaNet``) trains the module like any other network:
one sample is one task.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from sk_metalstm.distribution import gaussian_nll
from sk_metalstm.networks import LSTMNetwork, functional_forward, network_like

__all__ = ["MetaLearner", "Params", "TaskBatch", "TrainingOutput", "param_name", "support_loss"]

#: Relative tolerance of ``keep_improvements``: float32 losses of the same weights,
#: computed through the fused and the vmapped kernels, differed by up to 5e-8
#: (50 series on CPU); 1e-5 leaves room for other kernels and devices.
_ROUNDING = 1e-5

Params = dict[str, Tensor]


class TaskBatch(NamedTuple):
    """A batch of tasks: support and query windows with their targets."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor | None


class TrainingOutput(NamedTuple):
    """``forward``'s result while training, when the loss needs more than the query.

    ``MetaNet`` scores ``prediction`` against the query targets and hands the
    query loss with ``terms`` to the learner's ``outer_loss``.
    """

    prediction: Tensor
    terms: dict[str, Any]


def _to_key(name: str) -> str:
    # ParameterDict keys may not contain dots.
    return name.replace(".", "__")


def param_name(key: str) -> str:
    """The network parameter name (``"lstm.weight_ih_l0"``) of a ``ParameterDict`` key."""
    return key.replace("__", ".")


def support_loss(params: Params, x: Tensor, y: Tensor) -> Tensor:
    """Gaussian negative log-likelihood of the base network on one task's windows."""
    return gaussian_nll(functional_forward(params, x), y)


class MetaLearner(nn.Module):
    """Base class: learned initial weights plus an ``inner_steps``-step update rule.

    Subclasses override ``init_state`` and ``update``; everything that touches
    ``vmap``, ``grad`` and no-grad callers lives here once.

    Parameters
    ----------
    base : LSTMNetwork
        Network whose weights become the learned initialisation ``theta0``.
    inner_steps : int
        Update-rule applications per adaptation.
    first_order : bool
        Treat support gradients as constants in the meta-gradient (no
        second derivatives): about an order of magnitude cheaper on CPU.
    vectorize : bool
        Batch tasks with ``torch.func.vmap``; ``False`` loops over tasks in
        Python (the reference the throughput benchmark compares against).
    inner_lr : float
        Step size of the default update rule (a plain gradient step), or the
        starting value of a learned one. Learners without steps ignore it.
    """

    #: Whether meta-training changes anything (False for fixed rules).
    trainable: bool = True
    #: Whether adaptation moves a whole set of network weights per task by an
    #: update rule, whose result ``keep_improvements`` checks (False for the
    #: pooled network, which does not adapt, and for a closed-form head).
    adapts_network: bool = True
    #: Up to this many tasks, ``adapt_for_inference`` loops over tasks with
    #: fused ``nn.LSTM`` autograd; beyond it ``vmap`` is faster (measured on
    #: CPU: 5-7x faster for one task, 1.1-2x at 8, 0.6-0.8x at 64).
    per_task_limit: int = 16

    def __init__(
        self,
        base: LSTMNetwork,
        inner_steps: int = 5,
        first_order: bool = True,
        vectorize: bool = True,
        inner_lr: float = 0.1,
    ) -> None:
        super().__init__()
        self.theta0 = nn.ParameterDict(
            {_to_key(n): nn.Parameter(p.detach().clone()) for n, p in base.named_parameters()}
        )
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.vectorize = vectorize
        self.inner_lr = inner_lr

    # -- the pieces subclasses define ------------------------------------------
    def init_state(self, params: Params) -> Any:
        """Optimizer state carried between update steps (none by default)."""
        return None

    def update(
        self, params: Params, grads: Params, loss: Tensor, state: Any, step: int
    ) -> tuple[Params, Any]:
        """One application of the update rule: by default a gradient step of ``inner_lr``.

        That is the rule of MAML, Reptile and plain fine-tuning; learned rules
        override it.
        """
        return {n: p - self.inner_lr * grads[n] for n, p in params.items()}, state

    # -- shared machinery ------------------------------------------------------
    def initial_params(self) -> Params:
        """``theta0`` as a dict keyed like ``LSTMNetwork.named_parameters()``."""
        return {param_name(k): v for k, v in self.theta0.items()}

    def adapt(self, support_x: Tensor, support_y: Tensor, inner_steps: int | None = None) -> Params:
        """Adapt ``theta0`` to one task (unbatched; ``vmap`` adds the task axis)."""
        steps = self.inner_steps if inner_steps is None else inner_steps
        params = self.initial_params()
        state = self.init_state(params)
        grad_fn = grad_and_value(support_loss)
        for step in range(steps):
            grads, loss = grad_fn(params, support_x, support_y)
            if self.first_order:
                grads = {n: g.detach() for n, g in grads.items()}
            params, state = self.update(params, grads, loss.detach(), state, step)
        return params

    def adapt_batch(
        self, support_x: Tensor, support_y: Tensor, inner_steps: int | None = None
    ) -> Params:
        """Adapt a batch of tasks: inputs have a leading task axis."""
        # Callers such as skorch's validation and predict run under no_grad;
        # the inner loop needs gradients all the same.
        with torch.enable_grad():
            if self.vectorize:
                return vmap(lambda sx, sy: self.adapt(sx, sy, inner_steps), randomness="same")(
                    support_x, support_y
                )
            per_task = [
                self.adapt(sx, sy, inner_steps) for sx, sy in zip(support_x, support_y, strict=True)
            ]
            return {n: torch.stack([p[n] for p in per_task]) for n in per_task[0]}

    def adapt_for_inference(
        self, support_x: Tensor, support_y: Tensor, inner_steps: int | None = None
    ) -> Params:
        """Adapt a batch of tasks when no meta-gradient is needed (fit, update).

        Same rule and result as ``adapt_batch`` (up to float rounding), but each
        task's support gradients come from plain autograd through ``nn.LSTM``'s
        fused kernels, one task at a time: without the meta-gradient, ``vmap``
        over the step-by-step functional LSTM buys nothing and costs several
        times more for a few tasks (``benchmarks/speed.py``). From
        ``per_task_limit`` tasks on, ``vmap``'s batching wins and is used instead.
        Returns detached weights.
        """
        if len(support_x) > self.per_task_limit:
            with torch.no_grad():
                adapted = self.adapt_batch(support_x, support_y, inner_steps)
            return {n: p.detach() for n, p in adapted.items()}
        steps = self.inner_steps if inner_steps is None else inner_steps
        network = self._inference_network()
        adapted = []
        for sx, sy in zip(support_x, support_y, strict=True):
            params = {n: p.detach() for n, p in self.initial_params().items()}
            state = self.init_state(params)
            for step in range(steps):
                leaves = {n: p.requires_grad_(True) for n, p in params.items()}
                with torch.enable_grad():
                    loss = gaussian_nll(functional_call(network, leaves, (sx,)), sy)
                    grads = torch.autograd.grad(loss, list(leaves.values()))
                with torch.no_grad():
                    params, state = self.update(
                        leaves, dict(zip(leaves, grads, strict=True)), loss.detach(), state, step
                    )
                params = {n: p.detach() for n, p in params.items()}
            adapted.append(params)
        return {n: torch.stack([a[n] for a in adapted]) for n in adapted[0]}

    def _inference_network(self) -> LSTMNetwork:
        """An eval-mode ``LSTMNetwork`` shaped like ``theta0`` (its weights unused)."""
        return network_like(self.initial_params())

    def predict_batch(self, params: Params, query_x: Tensor) -> Tensor:
        """Predict each task's query windows with its own adapted weights."""
        if self.vectorize:
            return vmap(functional_forward)(params, query_x)
        return torch.stack(
            [
                functional_forward({n: p[i] for n, p in params.items()}, qx)
                for i, qx in enumerate(query_x)
            ]
        )

    def forward(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        query_y: Tensor | None = None,
    ) -> Tensor | TrainingOutput:
        """Adapt on each task's support set and predict its query windows.

        Shapes: ``support_x`` (tasks, S, L, F), ``support_y`` (tasks, S, h),
        ``query_x`` (tasks, Q, L, F); returns (tasks, Q, h). While training
        with ``query_y`` given, ``training_step`` decides (Reptile adapts on
        all of a task's windows; learners whose loss needs more than the query
        prediction return a ``TrainingOutput``).
        """
        tasks = TaskBatch(support_x, support_y, query_x, query_y)
        if self.training and query_y is not None:
            return self.training_step(tasks)
        return self.predict_tasks(tasks)

    def predict_tasks(self, tasks: TaskBatch) -> Tensor:
        """Adapt on each task's support set and predict its query windows.

        Outside training, as at deployment, a task whose adaptation made its
        support fit worse keeps the starting weights (``keep_improvements``), so
        validation and calibration see what ``fit`` and ``update`` forecast.
        """
        params = self.adapt_batch(tasks.support_x, tasks.support_y)
        if not self.training and self.adapts_network:
            params, _ = self.keep_improvements(params, tasks.support_x, tasks.support_y)
        return self.predict_batch(params, tasks.query_x)

    def keep_improvements(
        self, adapted: Params, support_x: Tensor, support_y: Tensor
    ) -> tuple[Params, Tensor]:
        """Per task, the adapted weights where they fit the support set no worse than before.

        An update rule that works lowers the support loss; where it raised it
        (or made it non-finite) it overshot, and the initial weights are the
        better forecast. A closed-form learner (``adapts_network=False``)
        checks itself by leave-one-out instead.

        Parameters
        ----------
        adapted : dict of str to Tensor
            Adapted weights, with a leading task axis.
        support_x, support_y : Tensor
            Support windows (tasks, S, L, F) and targets (tasks, S, h).

        Returns
        -------
        params : dict of str to Tensor
            ``adapted``, with the initial weights for the tasks that got worse.
        kept : Tensor
            (tasks,) bool, True where the adapted weights were kept.
        """
        with torch.no_grad():
            start = {n: p.detach() for n, p in self.initial_params().items()}
            # One fused pass: every task starts from the same weights.
            network = self._inference_network()
            out = functional_call(network, start, (support_x.flatten(0, 1),))
            before = gaussian_nll(out.unflatten(0, support_x.shape[:2]), support_y, dim=(1, 2))
            after = gaussian_nll(
                self._outputs(adapted, support_x, network), support_y, dim=(1, 2)
            )
            # The two losses come through different kernels (fused, per-task or
            # vmapped), which round differently: an adaptation that changed
            # (almost) nothing must not count as worse. NaN compares False: a
            # non-finite loss after adapting is not kept.
            kept = after <= before + _ROUNDING * (1.0 + before.abs())
            # Weights may overflow where the loss does not show it (yet).
            finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in adapted.values()])
            kept = kept & finite.all(0)
        # The starting weights broadcast over the task axis.
        params = {
            n: torch.where(kept.view(-1, *[1] * (p.dim() - 1)), p, start[n])
            for n, p in adapted.items()
        }
        return params, kept

    def _outputs(self, params: Params, x: Tensor, network: LSTMNetwork) -> Tensor:
        """``predict_batch``, through ``network``'s fused kernels for a few tasks.

        As in ``adapt_for_inference``: ``vmap`` over the functional LSTM pays
        off only from ``per_task_limit`` tasks on.
        """
        if len(x) > self.per_task_limit:
            return self.predict_batch(params, x)
        return torch.stack(
            [
                functional_call(network, {n: p[i] for n, p in params.items()}, (xi,))
                for i, xi in enumerate(x)
            ]
        )

    def training_step(self, tasks: TaskBatch) -> Tensor | TrainingOutput:
        """``forward`` while meta-training: by default as at deployment."""
        return self.predict_tasks(tasks)

    def outer_loss(self, query_loss: Tensor, terms: dict[str, Any]) -> Tensor:
        """Training loss from the query loss and ``forward``'s ``TrainingOutput.terms``.

        The query loss itself by default; Reptile and the pooled learner shape it.
        """
        return query_loss
