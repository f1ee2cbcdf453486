"""save/load for both estimators: identical predictions, across processes, GPU files on CPU."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sktime.datasets import load_airline

from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster
from sk_metalstm.persistence import load, save

TINY = dict(
    window_length=6, horizon=3, hidden_size=4, support_size=8, query_size=2,
    max_epochs=1, base_max_epochs=1, random_state=0,
)


@pytest.fixture(scope="module")
def fitted_forecaster():
    return MetaLSTMForecaster(**TINY).fit(load_airline())


def test_forecaster_round_trip_predicts_identically(fitted_forecaster, tmp_path):
    path = tmp_path / "forecaster.pt"
    save(fitted_forecaster, path)
    loaded = load(path)
    np.testing.assert_array_equal(
        loaded.predict(fh=[1, 2, 3]).to_numpy(), fitted_forecaster.predict(fh=[1, 2, 3]).to_numpy()
    )
    # The loaded forecaster still adapts on new data without meta-training.
    y = load_airline()
    loaded.update(y.iloc[-3:] * 1.05)
    assert loaded.predict(fh=[1]).iloc[0] != fitted_forecaster.predict(fh=[1]).iloc[0]


def test_regressor_round_trip_predicts_identically(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 6)), rng.normal(size=50)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
    save(model, tmp_path / "regressor.pt")
    np.testing.assert_array_equal(load(tmp_path / "regressor.pt").predict(X), model.predict(X))


def test_pretrained_state_loads_in_another_process(tmp_path):
    """A pretrained forecaster saved here predicts identically in a fresh interpreter."""
    y = load_airline()
    forecaster = MetaLSTMForecaster(**TINY)
    forecaster.pretrain(_panel(y))
    save(forecaster, tmp_path / "pretrained.pt")
    expected = MetaLSTMForecaster.from_pretrained(forecaster.pretrained_state_).fit(y)
    np.save(tmp_path / "expected.npy", expected.predict(fh=[1, 2, 3]).to_numpy())
    script = textwrap.dedent(
        f"""
        import numpy as np
        from sktime.datasets import load_airline
        from sk_metalstm import MetaLSTMForecaster
        from sk_metalstm.persistence import load
        forecaster = load(r"{tmp_path / 'pretrained.pt'}")
        assert forecaster.state == "pretrained", forecaster.state
        adapted = MetaLSTMForecaster.from_pretrained(forecaster.pretrained_state_)
        pred = adapted.fit(load_airline()).predict(fh=[1, 2, 3]).to_numpy()
        np.testing.assert_array_equal(pred, np.load(r"{tmp_path / 'expected.npy'}"))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_load_rejects_foreign_files(tmp_path):
    import torch

    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not written by"):
        load(tmp_path / "other.pt")


def _panel(y):
    import pandas as pd

    parts = {f"s{i}": y * (1 + 0.1 * i) for i in range(3)}
    return pd.concat(parts, names=["series", "time"]).to_frame("y")
