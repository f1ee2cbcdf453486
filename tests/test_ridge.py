"""The default learner ("ridge"): a closed-form head shrunk toward the pooled one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import make_ar_returns_panel
from sk_metalstm.distribution import gaussian_nll, n_outputs, split_outputs
from sk_metalstm.meta.ridge import RidgeHeadLearner
from sk_metalstm.networks import LSTMNetwork


def _learner(window: int = 6, seed: int = 0) -> RidgeHeadLearner:
    torch.manual_seed(seed)
    # One step: a location and a log-scale output.
    return RidgeHeadLearner(LSTMNetwork(1, 8, 1, n_outputs(1))).eval()


def _ar1_support(phi: float, n: int, window: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    z = np.zeros(n + window + 1)
    for t in range(1, len(z)):
        z[t] = phi * z[t - 1] + rng.standard_normal()
    z /= np.sqrt(np.mean(z**2))
    x = np.lib.stride_tricks.sliding_window_view(z, window + 1)
    sx = torch.tensor(x[:, :window, None], dtype=torch.float32)
    sy = torch.tensor(x[:, window:], dtype=torch.float32)
    return sx[None], sy[None]


def test_default_meta_learner_is_ridge():
    assert MetaLSTMForecaster().meta_learner == "ridge"


def test_ridge_finds_an_autoregression_in_a_long_history():
    learner = _learner()
    # Let the data speak: weak prior on the lags.
    with torch.no_grad():
        learner.log_precision.fill_(0.0)
    sx, sy = _ar1_support(phi=0.7, n=2000, window=6, seed=1)
    head = learner.adapt_for_inference(sx, sy)["ridge.weight"][0]
    # Lag features follow the LSTM state; the first is the latest input.
    lag1 = head[learner.theta0["lstm__weight_hh_l0"].shape[1], 0]
    with torch.no_grad():
        pred, _ = split_outputs(learner.predict_batch({"ridge.weight": head[None]}, sx[:1])[0])
    r2 = 1 - torch.mean((pred - sy[0]) ** 2) / torch.mean(sy[0] ** 2)
    assert float(r2) > 0.4  # an AR(1) with phi = 0.7 explains 49%
    assert abs(float(lag1)) > 0.2


def test_ridge_keeps_the_pooled_location_when_it_already_fits():
    learner = _learner()
    sx, _ = _ar1_support(phi=0.0, n=40, window=6, seed=2)
    with torch.no_grad():
        pooled = learner.features(sx[0]) @ learner.prior_mean[:, :1]
    head = learner.adapt_for_inference(sx, pooled[None])["ridge.weight"][0]
    torch.testing.assert_close(head[:, :1], learner.prior_mean.detach()[:, :1])


def _scales(learner: RidgeHeadLearner, sx: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """Adapted over pooled scale per step, when the targets spread ``spread`` (S, h) x pooled."""
    with torch.no_grad():
        location, scale = split_outputs(learner.features(sx[0]) @ learner.prior_mean)
        noise = torch.randn(location.shape, generator=torch.Generator().manual_seed(0))
        sy = location + spread * scale * noise
        head = learner.adapt_for_inference(sx, sy[None])["ridge.weight"]
        _, adapted = split_outputs(learner.predict_batch({"ridge.weight": head}, sx)[0])
    return torch.exp(torch.mean(torch.log(adapted / scale), dim=0))


@pytest.mark.parametrize("ratio", [3.0, 0.3])
def test_ridge_scales_the_distribution_to_the_series_volatility(ratio):
    # Targets spread `ratio` times the pooled scale around the pooled location:
    # the adapted scale follows, shrunk a little toward the pooled one.
    learner = _learner()
    sx, _ = _ar1_support(phi=0.0, n=400, window=6, seed=5)
    multiplier = float(_scales(learner, sx, torch.full((len(sx[0]), 1), ratio))[0])
    assert abs(np.log(multiplier / ratio)) < np.log(1.2)


def _two_step_learner() -> RidgeHeadLearner:
    torch.manual_seed(0)
    return RidgeHeadLearner(LSTMNetwork(1, 8, 1, n_outputs(2))).eval()


def test_ridge_scales_each_step_on_its_own():
    # A series whose next step is calm but whose second step is wild.
    learner = _two_step_learner()
    sx, _ = _ar1_support(phi=0.0, n=400, window=6, seed=6)
    first, second = _scales(learner, sx, torch.tensor([0.5, 2.0]).expand(len(sx[0]), 2))
    assert float(first) < 0.7 < 1.5 < float(second)


def test_ridge_scale_follows_the_recent_support_windows():
    # Turbulent long ago, calm lately: with a short memory the forecast is calm.
    learner = _learner()
    with torch.no_grad():
        learner.log_scale_memory.fill_(np.log(20.0))
    sx, _ = _ar1_support(phi=0.0, n=400, window=6, seed=7)
    spread = torch.ones(len(sx[0]), 1)
    spread[:-100] = 3.0
    calm_lately = float(_scales(learner, sx, spread)[0])
    assert calm_lately < 1.3
    spread = torch.flip(spread, dims=[0])
    assert float(_scales(learner, sx, spread)[0]) > 2.0


def test_ridge_scale_prior_weight_is_fixed_and_saved():
    # Gradient on the pretraining series, where the pooled scale was fitted,
    # would teach it to trust the pooled scale more than unseen series warrant.
    learner = _learner()
    assert "log_scale_prior_weight" not in dict(learner.named_parameters())
    k = float(learner.state_dict()["log_scale_prior_weight"].exp())
    assert k == pytest.approx(RidgeHeadLearner.scale_prior_weight)
    torch.manual_seed(0)
    heavy = RidgeHeadLearner(LSTMNetwork(1, 8, 1, n_outputs(1)), scale_prior_weight=1000.0)
    assert float(heavy.log_scale_prior_weight.exp()) == pytest.approx(1000.0)


def test_ridge_scale_trusts_the_series_more_with_a_lighter_prior():
    # A series half as volatile as the pooled network expects, 100 windows of history.
    sx, _ = _ar1_support(phi=0.0, n=100, window=6, seed=8)
    spread = torch.full((len(sx[0]), 1), 0.5)
    default = float(_scales(_learner(), sx, spread)[0])
    torch.manual_seed(0)
    heavy = RidgeHeadLearner(LSTMNetwork(1, 8, 1, n_outputs(1)), scale_prior_weight=100.0).eval()
    assert default < float(_scales(heavy, sx, spread)[0])
    assert default < 0.56  # 0.61 with the weight that gradient descent learned (29)


def test_ridge_adapts_in_batch_like_one_series_at_a_time():
    learner = _learner()
    batches = [_ar1_support(phi, 30, 6, seed) for seed, phi in enumerate((0.5, -0.3, 0.0))]
    sx = torch.cat([b[0] for b in batches])
    sy = torch.cat([b[1] for b in batches])
    together = learner.adapt_for_inference(sx, sy)["ridge.weight"]
    for i, (x, y) in enumerate(batches):
        alone = learner.adapt_for_inference(x, y)["ridge.weight"][0]
        torch.testing.assert_close(together[i], alone, atol=1e-5, rtol=1e-4)


def test_ridge_meta_gradient_reaches_body_prior_and_precisions():
    learner = _learner().train()
    sx, sy = _ar1_support(phi=0.5, n=30, window=6, seed=3)
    qx, qy = _ar1_support(phi=0.5, n=10, window=6, seed=4)
    loss = gaussian_nll(learner(sx, sy, qx), qy)
    loss.backward()
    assert learner.log_scale_memory.grad is not None
    assert learner.log_precision.grad is not None
    assert torch.any(learner.log_precision.grad != 0)
    assert torch.any(learner.prior_mean.grad != 0)
    assert torch.any(learner.theta0["lstm__weight_hh_l0"].grad != 0)


@pytest.fixture(scope="module")
def default_forecaster():
    """The default forecaster pretrained on a small AR panel (few epochs for speed)."""
    panel = make_ar_returns_panel(12, 260, random_state=0)
    forecaster = MetaLSTMForecaster(
        horizon=2, base_max_epochs=3, max_epochs=3, random_state=0, verbose=0
    )
    return forecaster.pretrain(panel)


def test_default_forecaster_fit_predict_update_intervals(default_forecaster):
    y = make_ar_returns_panel(1, 150, random_state=9).droplevel(0).iloc[:, 0]
    before = y.copy()
    forecaster = MetaLSTMForecaster.from_pretrained(default_forecaster.pretrained_state_)
    forecaster.fit(y.iloc[:140])
    pred = forecaster.predict(fh=[1, 2])
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    forecaster.update(y.iloc[140:])
    assert forecaster.cutoff[0] == y.index[-1]
    quantiles = forecaster.predict_quantiles(fh=[1, 2], alpha=[0.05, 0.5, 0.95])
    assert np.all(np.diff(quantiles.to_numpy(), axis=1) >= 0)
    pd.testing.assert_series_equal(y, before)


def test_default_forecaster_adapts_short_histories(default_forecaster):
    # Fewer support windows than the tasks it was trained on: the prior carries it.
    y = make_ar_returns_panel(1, 40, random_state=3).droplevel(0).iloc[:, 0]
    forecaster = MetaLSTMForecaster.from_pretrained(default_forecaster.pretrained_state_)
    assert np.all(np.isfinite(forecaster.fit(y).predict(fh=[1, 2])))


def test_ridge_zero_adapt_steps_keeps_the_prior_head():
    learner = _learner()
    sx, sy = _ar1_support(phi=0.6, n=50, window=6, seed=5)
    head = learner.adapt_for_inference(sx, sy, inner_steps=0)["ridge.weight"][0]
    torch.testing.assert_close(head, learner.prior_mean.detach())
    assert not head.requires_grad


def test_ridge_adapts_whatever_inner_steps_says():
    # inner_steps is documented as unused by "ridge", but fit took adapt_steps
    # from it: inner_steps=0 silently kept every series at the prior head.
    panel = make_ar_returns_panel(8, 200, random_state=0)
    names = panel.index.get_level_values(0).unique()
    settings = dict(window_length=6, hidden_size=4, horizon=1, support_size=24, query_size=4)
    settings.update(max_epochs=1, base_max_epochs=1, random_state=0, verbose=0)
    heads = {}
    for steps in (0, 1):
        forecaster = MetaLSTMForecaster(inner_steps=steps, **settings)
        forecaster.pretrain(panel.loc[names[:4]]).fit(panel.loc[names[4:]])
        prior = forecaster.pretrained_state_.learner.prior_mean.detach()
        adapted = forecaster.adapted_params_
        assert not any(torch.equal(p["ridge.weight"], prior) for p in adapted.values())
        heads[steps] = [p["ridge.weight"] for p in adapted.values()]
    for zero, one in zip(heads[0], heads[1], strict=True):
        torch.testing.assert_close(zero, one)
