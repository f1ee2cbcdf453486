"""Devices: CUDA training, ``device="auto"``, and GPU-trained models used on CPU-only machines.

Tests marked ``gpu`` need a CUDA device and are skipped without one (run them
alone with ``pytest -m gpu``). The others run anywhere: they hide CUDA from
torch with ``monkeypatch`` to check what a CPU-only machine does, or (skipped
where CUDA is present) load files that a GPU run would have saved.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import airline_copies
from skorch.exceptions import DeviceWarning

from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster
from sk_metalstm._torch_runtime import resolve_device
from sk_metalstm.persistence import load, save

#: The device the ``gpu`` tests train on.
GPU = "cuda"

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY = dict(
    window_length=6,
    horizon=3,
    hidden_size=8,
    support_size=8,
    query_size=2,
    tasks_per_batch=8,
    max_epochs=2,
    base_max_epochs=2,
    inner_steps=2,
    random_state=0,
)


def _windows(n: int = 300, length: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(n + length) / 5) + 0.05 * rng.standard_normal(n + length)
    return np.lib.stride_tricks.sliding_window_view(series[:-1], length)[:n], series[length:][:n]


@pytest.fixture(scope="module")
def y(_airline) -> pd.Series:
    return _airline


@pytest.fixture(scope="module")
def cpu_state(y):
    """A meta-learner pretrained on CPU on rescaled copies of airline."""
    return MetaLSTMForecaster(**TINY).pretrain(airline_copies(y)).pretrained_state_


def _hide_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


# --------------------------------------------------------- any machine
def test_auto_resolves_to_cpu_without_cuda(monkeypatch, y):
    _hide_cuda(monkeypatch)
    assert resolve_device("auto") == "cpu"
    X, target = _windows()
    regressor = LSTMBaseRegressor(hidden_size=4, max_epochs=1, device="auto", random_state=0)
    regressor.fit(X, target)
    assert regressor.net_.device == "cpu"
    assert all(p.device.type == "cpu" for p in regressor.net_.module_.parameters())
    assert np.all(np.isfinite(regressor.predict(X)))
    forecaster = MetaLSTMForecaster(**TINY, device="auto").fit(y)
    assert np.all(np.isfinite(forecaster.predict(fh=[1, 2, 3])))


def test_cuda_on_cpu_only_machine_raises_clear_error_at_fit(monkeypatch, y, cpu_state):
    _hide_cuda(monkeypatch)
    X, target = _windows()
    message = "device='cuda' was requested but torch sees no CUDA device"
    # Construction is free (scikit-learn's rule); fit says what is wrong and what to do.
    regressor = LSTMBaseRegressor(hidden_size=4, max_epochs=1, device="cuda")
    with pytest.raises(ValueError, match=message) as info:
        regressor.fit(X, target)
    assert "device='cpu' or device='auto'" in str(info.value)
    with pytest.raises(ValueError, match=message):
        MetaLSTMForecaster(**TINY, device="cuda").fit(y)  # meta-trains
    with pytest.raises(ValueError, match=message):
        MetaLSTMForecaster.from_pretrained(cpu_state, device="cuda").fit(y)  # adapts only
    with pytest.raises(ValueError, match="cuda:1"):
        LSTMBaseRegressor(hidden_size=4, max_epochs=1, device="cuda:1").fit(X, target)


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_forecaster_saved_on_cuda_loads_on_cpu(airline, pretrained_state, tmp_path):
    forecaster = MetaLSTMForecaster.from_pretrained(pretrained_state).fit(airline[:130])
    reference = copy.deepcopy(forecaster)
    forecaster.device = "cuda"  # as a GPU run leaves it (its tensors are on the CPU)
    # Without load's mapping, adapting again would ask for the missing GPU.
    with pytest.raises(ValueError, match="no CUDA device"):
        pickle.loads(pickle.dumps(forecaster)).update(airline[130:133])
    save(forecaster, tmp_path / "gpu.pt")
    loaded = load(tmp_path / "gpu.pt")
    assert loaded.device == "cpu"
    pd.testing.assert_series_equal(loaded.predict(fh=[1, 2]), reference.predict(fh=[1, 2]))
    loaded.update(airline[130:133])
    reference.update(airline[130:133])
    pd.testing.assert_series_equal(loaded.predict(fh=[1, 2]), reference.predict(fh=[1, 2]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_regressor_saved_on_cuda_loads_on_cpu(tmp_path):
    X, target = _windows()
    reg = LSTMBaseRegressor(hidden_size=4, max_epochs=2, random_state=0).fit(X, target)
    expected = reg.predict(X)
    reg.device, reg.net_.device = "cuda", "cuda"
    save(reg, tmp_path / "gpu.pt")
    with pytest.warns(DeviceWarning):
        loaded = load(tmp_path / "gpu.pt")
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), expected)


# ----------------------------------------------------------------- GPU
@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("device", [GPU, "auto"])
def test_regressor_fits_and_predicts_on_gpu(device):
    X, target = _windows()
    params = dict(hidden_size=8, max_epochs=3, lr=1e-2, random_state=0)
    on_gpu = LSTMBaseRegressor(**params, device=device).fit(X, target)
    assert torch.device(on_gpu.net_.device).type == "cuda"
    assert all(p.is_cuda for p in on_gpu.net_.module_.parameters())
    pred = on_gpu.predict(X)
    assert pred.dtype == np.float64 and pred.shape == target.shape
    # Same seed, same data: the CPU fit is the same model up to float32 noise.
    on_cpu = LSTMBaseRegressor(**params, device="cpu").fit(X, target)
    np.testing.assert_allclose(pred, on_cpu.predict(X), atol=1e-2)


@pytest.mark.gpu
@cuda_only
@pytest.mark.parametrize("device", [GPU, "auto"])
def test_forecaster_meta_trains_adapts_and_predicts_on_gpu(device, y, cpu_state):
    forecaster = MetaLSTMForecaster(**TINY, device=device).fit(y)
    pred = forecaster.predict(fh=[1, 2, 3])
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    # Fitted state is kept on the CPU whatever the device.
    learner_params = list(forecaster.pretrained_state_.learner.parameters())
    assert all(p.device.type == "cpu" for p in learner_params)
    assert all(p.device.type == "cpu" for p in forecaster.adapted_params_[None].values())
    assert np.all(np.isfinite(forecaster.predict_interval(fh=[1, 2], coverage=0.8)))
    # Adapting a CPU-pretrained learner on the GPU gives the CPU's forecasts.
    gpu = MetaLSTMForecaster.from_pretrained(cpu_state, device=device).fit(y)
    cpu = MetaLSTMForecaster.from_pretrained(cpu_state, device="cpu").fit(y)
    np.testing.assert_allclose(gpu.predict(fh=[1, 2, 3]), cpu.predict(fh=[1, 2, 3]), rtol=1e-4)
    gpu.update(y.iloc[-3:] * 1.05)
    cpu.update(y.iloc[-3:] * 1.05)
    np.testing.assert_allclose(gpu.predict(fh=[1]), cpu.predict(fh=[1]), rtol=1e-4)


_CPU_ONLY_SCRIPT = """
import pickle, warnings
import numpy as np, torch
from sktime.datasets import load_airline
from sk_metalstm.persistence import load
assert not torch.cuda.is_available()
X = np.load(r"{dir}/X.npy")
expected = np.load(r"{dir}/expected.npz")
y = load_airline()
names = ["regressor", "forecaster_cuda", "forecaster_auto"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # skorch's DeviceWarning: cuda -> cpu
    with open(r"{dir}/models.pkl", "rb") as file:
        models = {{"pickle": pickle.load(file)}}
    models["persistence"] = {{name: load(r"{dir}/" + name + ".pt") for name in names}}
for how, m in models.items():
    reg = m["regressor"]
    assert all(p.device.type == "cpu" for p in reg.net_.module_.parameters()), how
    np.testing.assert_allclose(reg.predict(X), expected["regressor"], rtol=1e-4, atol=1e-5)
    for name in names[1:]:
        f = m[name]
        np.testing.assert_allclose(
            f.predict(fh=[1, 2, 3]).to_numpy(), expected[name], rtol=1e-5, err_msg=how
        )
    # device="auto" re-resolves here (cpu), so the model also adapts to new data.
    m["forecaster_auto"].update(y.iloc[-3:] * 1.05)
    assert np.isfinite(m["forecaster_auto"].predict(fh=[1])).all()
    # device="cuda" predicts, but adapting again needs the device it names.
    try:
        m["forecaster_cuda"].update(y.iloc[-3:] * 1.05)
    except ValueError as error:
        assert "no CUDA device" in str(error)
    else:
        raise AssertionError("update with device='cuda' on a CPU-only machine should raise")
print("ok")
"""


@pytest.mark.gpu
@cuda_only
def test_gpu_trained_models_load_and_predict_in_cpu_only_process(tmp_path, y):
    X, target = _windows()
    models = {
        "regressor": LSTMBaseRegressor(hidden_size=8, max_epochs=2, random_state=0, device=GPU),
        "forecaster_cuda": MetaLSTMForecaster(**TINY, device=GPU),
        "forecaster_auto": MetaLSTMForecaster(**TINY, device="auto"),
    }
    models["regressor"].fit(X, target)
    models["forecaster_cuda"].fit(y)
    models["forecaster_auto"].fit(y)
    assert torch.device(models["regressor"].net_.device).type == "cuda"
    expected = {
        "regressor": models["regressor"].predict(X),
        "forecaster_cuda": models["forecaster_cuda"].predict(fh=[1, 2, 3]).to_numpy(),
        "forecaster_auto": models["forecaster_auto"].predict(fh=[1, 2, 3]).to_numpy(),
    }
    np.save(tmp_path / "X.npy", X)
    np.savez(tmp_path / "expected.npz", **expected)
    with open(tmp_path / "models.pkl", "wb") as file:
        pickle.dump(models, file)
    for name, model in models.items():
        save(model, tmp_path / f"{name}.pt")

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    script = textwrap.dedent(_CPU_ONLY_SCRIPT).format(dir=tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.gpu
@cuda_only
def test_forecaster_fitted_on_gpu_loads_on_cpu(airline, tiny, tmp_path, monkeypatch):
    forecaster = MetaLSTMForecaster(horizon=2, device="cuda", **tiny).fit(airline[:130])
    gpu_pred = forecaster.predict(fh=[1, 2])
    save(forecaster, tmp_path / "gpu.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine
    loaded = load(tmp_path / "gpu.pt")
    assert loaded.device == "cpu"
    np.testing.assert_allclose(loaded.predict(fh=[1, 2]), gpu_pred, rtol=1e-5)
    loaded.update(airline[130:133])
    assert np.all(np.isfinite(loaded.predict(fh=[1, 2])))
