"""The base network's two forms, the meta-learners' inner loops, and their training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import vmap

from sk_metalstm.callbacks import StopOnNonFiniteLoss
from sk_metalstm.distribution import gaussian_nll, n_outputs
from sk_metalstm.exceptions import TrainingDiverged
from sk_metalstm.meta import META_LEARNERS, MetaNet, TaskDataset, make_meta_learner
from sk_metalstm.meta.base import param_name, support_loss
from sk_metalstm.meta.training import build_meta_net
from sk_metalstm.networks import LSTMNetwork, count_layers, functional_forward
from sk_metalstm.windowing import TaskLayout

ADAPTIVE = [name for name in META_LEARNERS if name != "none"]
#: Learners that update every network weight with inner steps (not "ridge",
#: whose closed-form head is tested in test_ridge.py).
STEPPED = [name for name, cls in META_LEARNERS.items() if cls.adapts_network]


# These tests call torch directly, outside the estimators' torch_runtime.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in net.named_parameters()}


def _tasks(n_tasks=3, support=6, query=2, window=4, horizon=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n_tasks, support, window, 1, generator=g),
        torch.randn(n_tasks, support, horizon, generator=g),
        torch.randn(n_tasks, query, window, 1, generator=g),
        torch.randn(n_tasks, query, horizon, generator=g),
    )


def _learner(name, inner_steps=3, inner_lr=0.05, hidden=4, horizon=2, seed=0, input_size=1, **kw):
    torch.manual_seed(seed)
    base = LSTMNetwork(input_size, hidden, 1, n_outputs(horizon))
    return make_meta_learner(name, base, inner_steps=inner_steps, inner_lr=inner_lr, **kw)


def _close(a, b, atol):
    return all(torch.allclose(a[n], b[n], atol=atol, rtol=0) for n in a)


# -------------------------------------------------------------------- network
@pytest.mark.parametrize(
    "input_size,num_layers,output_size", [(1, 1, 1), (3, 1, 2), (1, 2, 3), (2, 2, 1)]
)
def test_functional_forward_equals_module(input_size, num_layers, output_size):
    torch.manual_seed(0)
    net = LSTMNetwork(input_size, 5, num_layers, output_size, dropout=0.3).eval()
    x = torch.randn(7, 6, input_size)
    params = dict(net.named_parameters())
    assert count_layers(params) == num_layers
    with torch.no_grad():
        expected = net(x)
        got = functional_forward(params, x)
    assert got.shape == (7, output_size)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_functional_forward_vmaps_over_parameter_sets():
    nets = []
    for seed in range(3):
        torch.manual_seed(seed)
        nets.append(LSTMNetwork(2, 4, 2, 3).eval())
    stacked = {n: torch.stack([_params(net)[n] for net in nets]) for n in _params(nets[0])}
    x = torch.randn(3, 5, 6, 2)  # one batch of windows per parameter set
    with torch.no_grad():
        per_set = vmap(functional_forward)(stacked, x)
        shared = vmap(functional_forward, in_dims=(0, None))(stacked, x[0])
        for i, net in enumerate(nets):
            torch.testing.assert_close(per_set[i], net(x[i]), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(shared[i], net(x[0]), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(per_set[0], per_set[1])


def test_functional_forward_is_differentiable_in_params():
    torch.manual_seed(0)
    net = LSTMNetwork(1, 4, 1, n_outputs(1))
    x, y = torch.randn(5, 3, 1), torch.randn(5, 1)
    grads = torch.func.grad(support_loss)(_params(net), x, y)
    gaussian_nll(net(x), y).backward()
    for n, p in net.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, atol=1e-6, rtol=1e-5)


# -------------------------------------------------------------- inner loops
def _perturb(learner):
    """Move learned update-rule parameters off their neutral start."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if hasattr(learner, "gate_out"):
            learner.gate_out.weight.normal_(0, 0.3, generator=g)
        if hasattr(learner, "alpha"):
            alphas = (
                learner.alpha.values()
                if isinstance(learner.alpha, torch.nn.ParameterDict)
                else [learner.alpha]
            )
            for a in alphas:
                a.mul_(torch.rand(a.shape, generator=g) + 0.5)


@pytest.mark.parametrize("name", list(META_LEARNERS))
def test_vectorized_adaptation_equals_python_loop(name):
    learner = _learner(name).eval()
    _perturb(learner)
    sx, sy, qx, _ = _tasks()
    learner.vectorize = True
    fast = learner.adapt_batch(sx, sy)
    fast_pred = learner(sx, sy, qx)
    learner.vectorize = False
    slow = learner.adapt_batch(sx, sy)
    slow_pred = learner(sx, sy, qx)
    assert set(fast) == set(slow)
    for n in fast:
        assert fast[n].shape[0] == 3
        torch.testing.assert_close(fast[n], slow[n], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_pred, slow_pred, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_task_limit", [16, 1])
@pytest.mark.parametrize("name", STEPPED)
def test_inference_adaptation_equals_meta_training_path(name, per_task_limit):
    # fit/update adapt through nn.LSTM's fused kernels task by task (or vmap
    # beyond per_task_limit); both must give the weights meta-training sees.
    torch.manual_seed(0)
    learner = make_meta_learner(
        name, LSTMNetwork(2, 4, 2, n_outputs(3)), inner_steps=3, inner_lr=0.05
    ).eval()
    _perturb(learner)
    g = torch.Generator().manual_seed(1)
    sx, sy = torch.randn(3, 6, 5, 2, generator=g), torch.randn(3, 6, 3, generator=g)
    reference = learner.adapt_batch(sx, sy)
    learner.per_task_limit = per_task_limit
    got = learner.adapt_for_inference(sx, sy)
    assert set(got) == set(reference)
    for n in got:
        assert not got[n].requires_grad
        torch.testing.assert_close(got[n], reference[n], atol=1e-5, rtol=1e-5)
    zero = learner.adapt_for_inference(sx, sy, inner_steps=0)
    for n, p in learner.initial_params().items():
        torch.testing.assert_close(zero[n], p.detach().expand_as(zero[n]))


@pytest.mark.parametrize("name", STEPPED)
def test_adaptation_under_no_grad(name):
    learner = _learner(name).eval()
    sx, sy, _, _ = _tasks()
    theta0 = learner.initial_params()
    with torch.no_grad():
        adapted = learner.adapt_batch(sx, sy)
    changed = any(not torch.allclose(adapted[n], theta0[n].expand_as(adapted[n])) for n in theta0)
    assert changed == (name != "none")
    if name != "none":
        # Each task gets its own weights.
        assert not torch.allclose(adapted["head.bias"][0], adapted["head.bias"][1])


@pytest.mark.parametrize("name", [n for n in STEPPED if n != "none"])
def test_zero_steps_return_initialisation(name):
    learner = _learner(name).eval()
    sx, sy, _, _ = _tasks()
    adapted = learner.adapt_batch(sx, sy, inner_steps=0)
    theta0 = learner.initial_params()
    for n in theta0:
        torch.testing.assert_close(adapted[n], theta0[n].expand_as(adapted[n]))


def test_adaptation_lowers_support_loss():
    learner = _learner("finetune", inner_steps=10, inner_lr=0.1).eval()
    sx, sy, _, _ = _tasks()
    adapted = learner.adapt_batch(sx, sy)
    theta0 = learner.initial_params()
    for k in range(3):
        before = support_loss(theta0, sx[k], sy[k])
        after = support_loss({n: p[k] for n, p in adapted.items()}, sx[k], sy[k])
        assert after < before


def test_metasgd_and_lstm_rule_start_as_maml():
    sx, sy, _, _ = _tasks()
    one = {
        name: _learner(name, inner_steps=1).adapt_batch(sx, sy)
        for name in ("maml", "metasgd", "lstm")
    }
    # After one step theta - theta0 = 0, so the LSTM rule's forget gate has no
    # effect and all three are the same gradient step.
    assert _close(one["metasgd"], one["maml"], 1e-7)
    assert _close(one["lstm"], one["maml"], 1e-6)
    theta0 = _learner("maml").initial_params()
    assert not _close(
        one["maml"], {n: p.expand_as(one["maml"][n]) for n, p in theta0.items()}, 1e-4
    )

    five = {
        name: _learner(name, inner_steps=5).adapt_batch(sx, sy)
        for name in ("maml", "metasgd", "lstm")
    }
    assert _close(five["metasgd"], five["maml"], 1e-6)
    # Later steps keep sigmoid(5) ~ 0.993 of the move away from theta0: close
    # to MAML relative to the distance travelled, but not equal.
    theta0 = {n: p.expand_as(five["maml"][n]) for n, p in theta0.items()}
    gap = sum(torch.sum((five["lstm"][n] - five["maml"][n]) ** 2) for n in theta0).sqrt()
    moved = sum(torch.sum((five["maml"][n] - theta0[n]) ** 2) for n in theta0).sqrt()
    assert 0 < gap < 0.05 * moved


def _meta_gradient(learner, tasks):
    sx, sy, qx, qy = tasks
    learner.zero_grad()
    gaussian_nll(learner(sx, sy, qx), qy).backward()
    return {n: p.grad.clone() for n, p in learner.theta0.items()}


def test_second_order_meta_gradient_differs_from_first_order():
    tasks = _tasks()
    first = _meta_gradient(_learner("maml", first_order=True, inner_lr=0.3), tasks)
    second = _meta_gradient(_learner("maml", first_order=False, inner_lr=0.3), tasks)
    assert all(torch.isfinite(g).all() for g in second.values())
    assert not _close(first, second, 1e-6)
    # The vmapped second-order gradient agrees with the per-task loop.
    loop = _learner("maml", first_order=False, inner_lr=0.3, vectorize=False)
    assert _close(_meta_gradient(loop, tasks), second, 1e-5)


def test_metasgd_meta_gradient_reaches_step_sizes():
    learner = _learner("metasgd")
    sx, sy, qx, qy = _tasks()
    gaussian_nll(learner(sx, sy, qx), qy).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in learner.alpha.values())


def test_reptile_gradient_points_to_adapted_weights():
    learner = _learner("reptile", inner_steps=3, inner_lr=0.1).train()
    sx, sy, qx, qy = _tasks()
    pred, terms = learner(sx, sy, qx, qy)  # a TrainingOutput while training
    query_loss = gaussian_nll(pred, qy)
    loss = learner.outer_loss(query_loss, terms)
    assert loss.item() == pytest.approx(query_loss.item())  # reported loss is the query loss
    loss.backward()
    # Reptile adapts training tasks on support + query windows.
    adapted = learner.adapt_batch(torch.cat([sx, qx], 1), torch.cat([sy, qy], 1))
    theta0 = learner.initial_params()
    for key, p in learner.theta0.items():
        name = param_name(key)
        expected = theta0[name].detach() - adapted[name].detach().mean(0)
        torch.testing.assert_close(p.grad, expected, atol=1e-6, rtol=1e-5)
    # So an SGD step (theta0 -= lr * grad) moves theta0 toward the adapted mean.
    before = {n: p.detach().clone() for n, p in learner.theta0.items()}
    torch.optim.SGD(learner.parameters(), lr=0.5).step()
    for key, p in learner.theta0.items():
        target = adapted[param_name(key)].detach().mean(0)
        assert torch.norm(p.detach() - target) < torch.norm(before[key] - target)


def test_reptile_evaluation_adapts_on_support_only():
    learner = _learner("reptile").eval()
    sx, sy, qx, qy = _tasks()
    expected = learner.predict_batch(learner.adapt_batch(sx, sy), qx)
    torch.testing.assert_close(learner(sx, sy, qx, qy), expected)
    assert learner.outer_loss(torch.tensor(2.0), {}) == 2.0


def test_pooled_training_loss_weights_support_and_query():
    learner = _learner("none").train()
    sx, sy, qx, qy = _tasks(support=6, query=2)
    pred, terms = learner(sx, sy, qx, qy)
    query_loss = gaussian_nll(pred, qy)
    theta0 = learner.initial_params()
    support = gaussian_nll(functional_forward(theta0, sx.flatten(0, 1)), sy.flatten(0, 1))
    expected = (6 * support + 2 * query_loss) / 8
    torch.testing.assert_close(learner.outer_loss(query_loss, terms), expected)


def test_unknown_meta_learner():
    with pytest.raises(ValueError, match="Unknown meta_learner 'sgd'"):
        make_meta_learner("sgd", LSTMNetwork(1, 4))


# ------------------------------------------------------------ outer training
def _ar1_dataset(n_series=8, length=200, phi=0.6, seed=0, layout=None):
    rng = np.random.default_rng(seed)
    series = []
    for _ in range(n_series):
        z = np.zeros(length)
        for t in range(1, length):
            z[t] = phi * z[t - 1] + rng.normal()
        series.append(z)
    layout = layout or TaskLayout(window_length=4, horizon=1, support_size=10, query_size=5)
    return TaskDataset(series, layout, stride=5)


def test_task_dataset_items_and_time_split():
    data = _ar1_dataset(n_series=2, length=60)
    X, y = data[0]
    # The increments and the volatility channel (their absolute values).
    assert X["support_x"].shape == (10, 4, 2) and X["query_x"].shape == (5, 4, 2)
    torch.testing.assert_close(X["support_x"][..., 1], X["support_x"][..., 0].abs())
    assert torch.equal(y, X["query_y"])
    train, valid = data.split_by_time(0.25)
    assert len(train) + len(valid) == len(data)
    for series_id in (0, 1):
        t_rows = train.index[train.index[:, 0] == series_id]
        v_rows = valid.index[valid.index[:, 0] == series_id]
        assert len(v_rows) > 0 and t_rows[:, 1].max() < v_rows[:, 1].min()


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_time_split_holds_out_each_series_latest_rounded_share(fraction):
    # Series of different lengths, their tasks interleaved in the index.
    data = _ar1_dataset(n_series=3, length=60)
    data.index = data.index[np.random.default_rng(0).permutation(len(data))]
    data.index = data.index[np.argsort(data.index[:, 1], kind="stable")]
    train, valid = data.split_by_time(fraction)
    for series_id in range(3):
        rows = data.index[data.index[:, 0] == series_id]
        cut = len(rows) - int(round(fraction * len(rows)))
        np.testing.assert_array_equal(train.index[train.index[:, 0] == series_id], rows[:cut])
        np.testing.assert_array_equal(valid.index[valid.index[:, 0] == series_id], rows[cut:])
    assert len(train) + len(valid) == len(data)


def test_metanet_meta_training_lowers_loss():
    data = _ar1_dataset(n_series=4, length=100)
    learner = _learner("metasgd", inner_steps=2, inner_lr=0.05, hidden=8, horizon=1, input_size=2)
    torch.manual_seed(0)
    net = build_meta_net(
        learner,
        max_epochs=6,
        batch_size=16,
        lr=1e-2,
        gradient_clip=1.0,
        valid=None,
        callbacks=None,
        device="cpu",
        verbose=0,
    )
    assert isinstance(net, MetaNet)
    net.fit(data, None)
    losses = net.history[:, "train_loss"]
    assert len(losses) == 6
    # gaussian_nll: about 1.6 (unit scale, no signal) toward 1.0 (AR(1) fitted).
    assert losses[-1] < losses[0] - 0.1
    assert all(np.isfinite(losses))


def test_nonfinite_loss_stops_training_with_a_clear_error():
    data = _ar1_dataset(n_series=2, length=60)
    data.series[0][:] = np.nan
    net = build_meta_net(
        _learner("maml", horizon=1, input_size=2),
        max_epochs=2,
        batch_size=4,
        lr=1e-3,
        gradient_clip=None,
        valid=None,
        callbacks=None,
        device="cpu",
        verbose=0,
    )
    assert any(isinstance(cb, StopOnNonFiniteLoss) for _, cb in net.callbacks)
    with pytest.raises(TrainingDiverged, match="train_loss became nan.*Lower lr"):
        net.fit(data, None)


def test_network_templates_stay_few_and_give_the_same_states():
    # One template per shape was kept for the life of the thread: a search over
    # hidden sizes and horizons in one process kept a network for every shape.
    from sk_metalstm import networks

    x = torch.randn(3, 5, 2)
    first = {n: p.detach() for n, p in networks.LSTMNetwork(2, 4, 1, 2).named_parameters()}
    before = networks.last_hidden(first, x)
    for hidden in range(5, 5 + 3 * networks._MAX_TEMPLATES):
        params = networks.LSTMNetwork(2, hidden, 1, 2).named_parameters()
        networks.last_hidden({n: p.detach() for n, p in params}, x)
    assert len(networks._templates.networks) == networks._MAX_TEMPLATES
    torch.testing.assert_close(networks.last_hidden(first, x), before)  # rebuilt alike
