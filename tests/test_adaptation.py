"""meta.adaptation: adapting one learner to many support sets at once, and forecasting."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sk_metalstm.distribution import n_outputs, with_volatility_channel
from sk_metalstm.exceptions import AdaptationFallbackWarning, TrainingDiverged
from sk_metalstm.meta import make_meta_learner
from sk_metalstm.meta.adaptation import adapt_to_supports, forecast_windows
from sk_metalstm.networks import LSTMNetwork, functional_forward

WINDOW, HORIZON = 4, 2


# These tests call torch directly, outside the estimators' torch_runtime.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _learner(name="metasgd", input_size=1, **options):
    torch.manual_seed(0)
    # Adaptation appends the volatility channel to the inputs.
    base = LSTMNetwork(input_size + 1, 4, 1, n_outputs(HORIZON))
    return make_meta_learner(name, base, **{"inner_steps": 3, "inner_lr": 0.05, **options})


def _support(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A scaled support set as ``support_for_adaptation`` gives it (univariate)."""
    return {
        "support_x": rng.standard_normal((n, WINDOW)).astype(np.float32),
        "support_y": rng.standard_normal((n, HORIZON)).astype(np.float32),
    }


def _adapt(learner, supports, labels=None, steps=None):
    labels = labels or [f" (instance {i})" for i in range(len(supports))]
    return adapt_to_supports(
        learner, supports, steps=steps, device="cpu", num_threads=1, labels=labels
    )


@pytest.mark.parametrize("name", ["ridge", "metasgd"])
def test_supports_of_different_sizes_adapt_as_if_alone(name):
    learner = _learner(name)
    rng = np.random.default_rng(0)
    supports = [_support(n, rng) for n in (5, 3, 5, 2, 3)]
    calls = []
    adapt_for_inference = learner.adapt_for_inference

    def recording(sx, sy, steps):
        calls.append(tuple(sx.shape))
        return adapt_for_inference(sx, sy, steps)

    learner.adapt_for_inference = recording
    together = _adapt(learner, supports)
    # One batched call per support size, in order of first appearance.
    assert calls == [(2, 5, WINDOW, 2), (2, 3, WINDOW, 2), (1, 2, WINDOW, 2)]
    assert len(together) == len(supports)
    for support, params in zip(supports, together, strict=True):
        alone = _adapt(learner, [support])[0]
        assert params.keys() == alone.keys()
        for key, value in params.items():
            assert value.device.type == "cpu" and not value.requires_grad
            torch.testing.assert_close(value, alone[key], rtol=1e-5, atol=1e-6, msg=key)
    # Each series got its own weights.
    for key in together[0]:
        assert not torch.allclose(together[0][key], together[1][key]), key
    assert not learner.training  # left in eval mode


@pytest.mark.parametrize("name", ["ridge", "metasgd"])
def test_a_large_panel_adapts_in_bounded_batches(name, monkeypatch):
    # One batch for a whole panel: peak memory grew with it (4,000 series 2.5 GB).
    import sk_metalstm.meta.adaptation as adaptation

    learner = _learner(name)
    rng = np.random.default_rng(0)
    supports = [_support(5, rng) for _ in range(7)]
    together = _adapt(learner, supports)
    monkeypatch.setattr(adaptation, "_MAX_WINDOWS", 10)  # two series of 5 windows
    calls = []
    adapt_for_inference = learner.adapt_for_inference

    def recording(sx, sy, steps):
        calls.append(len(sx))
        return adapt_for_inference(sx, sy, steps)

    learner.adapt_for_inference = recording
    batched = _adapt(learner, supports)
    assert calls == [2, 2, 2, 1]
    for params, reference in zip(batched, together, strict=True):
        for key, value in params.items():
            torch.testing.assert_close(value, reference[key], rtol=1e-5, atol=1e-6, msg=key)
            # Its own storage, not a view of the batch (pickle wrote the batch per series).
            assert value.untyped_storage().nbytes() == value.nbytes


def test_steps_overrides_the_learners_inner_steps():
    learner = _learner("metasgd")
    support = _support(4, np.random.default_rng(1))
    unchanged = _adapt(learner, [support], steps=0)[0]
    for key, value in learner.initial_params().items():
        torch.testing.assert_close(unchanged[key], value.detach(), rtol=0, atol=0)
    one, three = _adapt(learner, [support], steps=1)[0], _adapt(learner, [support])[0]
    assert any(not torch.equal(one[k], three[k]) for k in one)


def test_non_finite_adapted_weights_fall_back_naming_the_series():
    # As pretrain's validation and calibration do (they used to differ: fit raised).
    learner = _learner("metasgd")
    rng = np.random.default_rng(2)
    exploding = _support(3, rng)
    exploding["support_y"][:] = 1e30  # a squared error of 1e60: infinite in float32
    labels = [" (instance 'a')", " (instance 'b')", " (instance 'c')"]
    with pytest.warns(AdaptationFallbackWarning, match="1 of 3 series.*instance 'b'"):
        adapted = _adapt(learner, [_support(3, rng), exploding, _support(2, rng)], labels=labels)
    for key, value in learner.initial_params().items():
        torch.testing.assert_close(adapted[1][key], value.detach(), rtol=0, atol=0)


def test_non_finite_starting_weights_raise_naming_the_series():
    # Nothing finite to fall back to: forecasts would be NaN.
    learner = _learner("metasgd")
    with torch.no_grad():
        next(iter(learner.parameters())).fill_(float("nan"))
    labels = [" (instance 'a')", " (instance 'b')"]
    rng = np.random.default_rng(2)
    with pytest.raises(TrainingDiverged, match="series \\(instance 'a'\\) gave non-finite weights"):
        _adapt(learner, [_support(3, rng), _support(3, rng)], labels=labels)


def test_an_overshooting_update_rule_keeps_the_initial_weights_and_warns():
    # A finite but far too large step: the series' own windows fit worse after it.
    learner = _learner("finetune", inner_lr=50.0)
    rng = np.random.default_rng(4)
    supports = [_support(4, rng), _support(4, rng)]
    labels = [" (instance 'a')", " (instance 'b')"]
    with pytest.warns(AdaptationFallbackWarning, match="2 of 2 series.*instance 'a'.*inner_lr"):
        adapted = _adapt(learner, supports, labels=labels)
    for params in adapted:
        for key, value in learner.initial_params().items():
            torch.testing.assert_close(params[key], value.detach(), rtol=0, atol=0)


@pytest.mark.parametrize(("name", "inner_lr"), [("none", 0.05), ("finetune", 1e-12)])
def test_no_fallback_warning_when_adapting_changes_nothing(name, inner_lr):
    # Beyond per_task_limit series the loss after adapting comes through vmap,
    # the one before through the fused kernels; rounding must not read as
    # "worse". The pooled network does not adapt at all: nothing to check.
    learner = _learner(name, inner_lr=inner_lr)
    rng = np.random.default_rng(6)
    supports = [_support(8, rng) for _ in range(3 * learner.per_task_limit)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdaptationFallbackWarning)
        _adapt(learner, supports)


def test_an_update_rule_that_helps_is_kept():
    learner = _learner("finetune", inner_lr=0.05)
    supports = [_support(6, np.random.default_rng(5))]
    sx = torch.from_numpy(with_volatility_channel(supports[0]["support_x"]))[None]
    sy = torch.from_numpy(supports[0]["support_y"])[None]
    expected = learner.adapt_for_inference(sx, sy)
    adapted = _adapt(learner, supports)[0]
    assert any(
        not torch.equal(adapted[k], v.detach()) for k, v in learner.initial_params().items()
    )
    for key, value in expected.items():
        torch.testing.assert_close(adapted[key], value[0])
    initial = {k: v.detach()[None] for k, v in learner.initial_params().items()}
    _, kept = learner.keep_improvements(expected, sx, sy)
    assert kept.tolist() == [True]
    # The check compares with the initial weights: they are never worse than themselves.
    assert learner.keep_improvements(initial, sx, sy)[1].tolist() == [True]


def test_validation_and_calibration_forecasts_use_the_same_fallback():
    # predict_tasks (eval mode: validation, calibration) forecasts what fit would.
    learner = _learner("finetune", inner_lr=50.0).eval()
    rng = np.random.default_rng(6)
    support, query = _support(4, rng), _support(3, rng)
    sx = torch.from_numpy(with_volatility_channel(support["support_x"]))[None]
    sy = torch.from_numpy(support["support_y"])[None]
    qx = torch.from_numpy(with_volatility_channel(query["support_x"]))[None]
    with torch.no_grad():
        out = learner(sx, sy, qx)
    initial = {k: v.detach()[None] for k, v in learner.initial_params().items()}
    torch.testing.assert_close(out, learner.predict_batch(initial, qx))


@pytest.mark.parametrize("name", ["metasgd", "ridge"])
def test_forecast_windows_batches_series_like_one_at_a_time(name):
    learner = _learner(name)
    rng = np.random.default_rng(3)
    supports = [_support(4, rng), _support(4, rng), _support(2, rng)]
    params = _adapt(learner, supports)
    windows = np.stack([s["support_x"][-1] for s in supports])
    out = forecast_windows(learner, params, windows, num_threads=1)
    assert out.shape == (3, n_outputs(HORIZON)) and out.dtype == np.float64
    for i, p in enumerate(params):
        alone = forecast_windows(learner, [p], windows[i : i + 1], num_threads=1)[0]
        np.testing.assert_allclose(out[i], alone, rtol=1e-5, atol=1e-6)
    if name == "metasgd":  # the network's own forward pass, for one series
        with torch.no_grad():
            x = torch.from_numpy(with_volatility_channel(windows[:1]))
            expected = functional_forward(params[0], x)[0]
        np.testing.assert_allclose(out[0], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_forecast_windows_with_covariates():
    learner = _learner("metasgd", input_size=3)
    rng = np.random.default_rng(4)
    support = {
        "support_x": rng.standard_normal((5, WINDOW, 3)).astype(np.float32),
        "support_y": rng.standard_normal((5, HORIZON)).astype(np.float32),
    }
    params = _adapt(learner, [support])
    out = forecast_windows(learner, params, support["support_x"][-1:], num_threads=1)
    assert out.shape == (1, n_outputs(HORIZON)) and np.all(np.isfinite(out))
