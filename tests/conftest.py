"""Shared fixtures: tiny configurations, small data sets, a pretrained state.

Everything here is sized so that a fit takes well under a second on a 2-core
CPU; tests that need a realistic amount of training build their own data.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from hypothesis import settings

# Example budgets of the property tests that take theirs from the profile
# (tests/test_fuzz.py): "fast" by default, "slow" with --hypothesis-profile=slow.
settings.register_profile("fast", max_examples=100)
settings.register_profile("slow", max_examples=2000)
settings.load_profile("fast")

#: Forecaster settings small enough for sub-second fits on airline / tiny panels.
TINY = {
    "window_length": 4,
    "hidden_size": 4,
    "support_size": 8,
    "query_size": 2,
    "tasks_per_batch": 8,
    "max_epochs": 1,
    "base_max_epochs": 1,
    "inner_steps": 2,
    "random_state": 0,
    # A gradient learner: these fixtures exercise the inner-loop machinery.
    # The default learner ("ridge") is tested as a user gets it in test_ridge.py.
    "meta_learner": "metasgd",
}


def airline_copies(y: pd.Series, n: int = 4) -> pd.DataFrame:
    """A panel of ``n`` rescaled, shifted copies of ``y``: pretraining material."""
    return pd.concat(
        {f"s{i}": y * (1 + 0.2 * i) + 5 * i for i in range(n)}, names=["series", "time"]
    ).to_frame("y")


@pytest.fixture
def tiny() -> dict:
    """A fresh copy of the tiny forecaster settings."""
    return dict(TINY)


@pytest.fixture(scope="session")
def _airline() -> pd.Series:
    from sktime.datasets import load_airline

    return load_airline()


@pytest.fixture
def airline(_airline: pd.Series) -> pd.Series:
    """Monthly airline passengers (144 positive values, PeriodIndex)."""
    return _airline.copy()


@pytest.fixture(scope="session")
def _ar_panel() -> pd.DataFrame:
    from sk_metalstm.datasets import make_ar_returns_panel

    return make_ar_returns_panel(6, 80, random_state=0)


@pytest.fixture
def ar_panel(_ar_panel: pd.DataFrame) -> pd.DataFrame:
    """Six AR(1)-return price series of 80 business days, pd-multiindex."""
    return _ar_panel.copy()


@pytest.fixture(scope="session")
def _pretrained(_ar_panel: pd.DataFrame):
    from sk_metalstm.forecaster import MetaLSTMForecaster

    forecaster = MetaLSTMForecaster(horizon=2, **TINY)
    forecaster.pretrain(_ar_panel)
    return forecaster


@pytest.fixture
def pretrained_forecaster(_pretrained):
    """A tiny forecaster pretrained (horizon 2) on the AR panel; a deep copy per test."""
    return copy.deepcopy(_pretrained)


@pytest.fixture
def pretrained_state(pretrained_forecaster):
    """The ``MetaState`` of ``pretrained_forecaster``."""
    return pretrained_forecaster.pretrained_state_


@pytest.fixture
def meta_train_calls(monkeypatch) -> list:
    """Count (and pass through) every call of meta-training made by the forecaster."""
    import sk_metalstm.forecaster as module

    calls: list = []
    original = module.meta_train

    def counting(*args, **kwargs):
        calls.append(kwargs.get("config"))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "meta_train", counting)
    return calls


@pytest.fixture
def one_torch_thread():
    """One torch thread for tests that call torch directly (outside torch_runtime).

    Tiny networks run many times slower with several threads on a busy CPU.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
