"""save/load for both estimators: identical predictions, across processes, GPU files on CPU.

The safe format (save_pretrained/load_pretrained, save_regressor/load_regressor):
identical forecasts for every meta_learner, identical regressor predictions,
parameters that cannot be stored refused by name, crafted pickles refused
without running, invalid files refused with a clear ValueError, version warning,
GPU-written files on CPU.
"""

import copy
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY as CONF_TINY
from conftest import airline_copies
from skorch.callbacks import EarlyStopping
from sktime.datasets import load_airline

from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster
from sk_metalstm.meta import META_LEARNERS
from sk_metalstm.persistence import (
    load,
    load_pretrained,
    load_regressor,
    save,
    save_pretrained,
    save_regressor,
)

TINY = dict(
    window_length=6, horizon=3, hidden_size=4, support_size=8, query_size=2,
    max_epochs=1, base_max_epochs=1, random_state=0,
)


@pytest.fixture(scope="module")
def fitted_forecaster():
    return MetaLSTMForecaster(**TINY).fit(load_airline())


def test_a_fitted_panel_pickles_in_size_linear_in_its_series(pretrained_state):
    # Each series' adapted weights were a view of the whole panel's batch:
    # pickle wrote the batch once per series (562 MB for 1,000 series).
    from sk_metalstm.datasets import make_ar_returns_panel

    panel = make_ar_returns_panel(80, 60, random_state=0)
    names = panel.index.get_level_values(0).unique()
    sizes = [
        len(pickle.dumps(MetaLSTMForecaster.from_pretrained(pretrained_state).fit(panel.loc[part])))
        for part in (names[:40], names)
    ]
    assert sizes[1] < 2.3 * sizes[0]


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


@pytest.mark.parametrize(
    ("where", "error", "match"),
    [
        ("gpu", ValueError, "Unknown device 'gpu'"),
        (3, ValueError, "Unknown device 3"),
        pytest.param(
            "cuda", ValueError, "torch sees no CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible"),
        ),
    ],
)
def test_load_names_a_bad_map_location_not_the_file(where, error, match, tmp_path):
    # torch's device error was reported as "truncated or corrupt" (or, for a
    # regressor, a bad name was ignored).
    X = np.random.default_rng(0).normal(size=(40, 5, 1))
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, X[:, -1, 0])
    save(model, tmp_path / "m.pt")
    with pytest.raises(error, match=match):
        load(tmp_path / "m.pt", map_location=where)
    assert isinstance(load(tmp_path / "m.pt", map_location="auto"), LSTMBaseRegressor)
    # torch.load's other forms still pass through.
    assert isinstance(load(tmp_path / "m.pt", map_location={"cpu": "cpu"}), LSTMBaseRegressor)
    assert isinstance(load(tmp_path / "m.pt", map_location=lambda s, _: s), LSTMBaseRegressor)


def test_savers_name_the_wrong_kind_of_object_and_the_unfitted_one(
    pretrained_forecaster, tmp_path
):
    from sklearn.exceptions import NotFittedError

    X = np.random.default_rng(0).normal(size=(40, 5, 1))
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, X[:, -1, 0])
    # Told to "call pretrain or fit first", which a regressor cannot do.
    with pytest.raises(TypeError, match="LSTMBaseRegressor; for a regressor use save_regressor"):
        save_pretrained(model, tmp_path / "s.pt")
    with pytest.raises(TypeError, match="for a pretrained forecaster use save_pretrained"):
        save_regressor(pretrained_forecaster, tmp_path / "r.pt")
    with pytest.raises(NotFittedError, match="call fit first"):
        save_regressor(LSTMBaseRegressor(), tmp_path / "r.pt")
    with pytest.raises(NotFittedError, match="no pretrained_state_"):
        save_pretrained(MetaLSTMForecaster(), tmp_path / "s.pt")


def test_load_names_a_bytes_path_and_reads_an_open_file(tmp_path):
    # A bytes path was reported as "objects of another sk_metalstm version".
    X = np.random.default_rng(0).normal(size=(40, 5, 1))
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, X[:, -1, 0])
    save(model, tmp_path / "m.pt")
    with pytest.raises(TypeError, match="path must be a file name.*got bytes"):
        load(os.fsencode(tmp_path / "m.pt"))
    with open(tmp_path / "m.pt", "rb") as file:
        np.testing.assert_array_equal(load(file).predict(X[:3]), model.predict(X[:3]))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with open(tmp_path / "other.pt", "rb") as file, pytest.raises(ValueError, match="other.pt"):
        load(file)
    # Another version's file, opened: the warning failed on os.fspath(file).
    payload = torch.load(tmp_path / "m.pt", weights_only=False)
    torch.save({**payload, "version": "0.0.1"}, tmp_path / "old.pt")
    with open(tmp_path / "old.pt", "rb") as file:
        with pytest.warns(UserWarning, match="old.pt' was written by sk_metalstm 0.0.1"):
            load(file)


def _panel(y):
    import pandas as pd

    parts = {f"s{i}": y * (1 + 0.1 * i) for i in range(3)}
    return pd.concat(parts, names=["series", "time"]).to_frame("y")


# ===================================================== safe format: pretrained states
@pytest.fixture(scope="module", params=sorted(META_LEARNERS))
def pretrained_by_learner(request, _airline):
    """(settings, MetaState) pretrained with each meta_learner on two airline copies."""
    settings = {**CONF_TINY, "horizon": 3, "meta_learner": request.param, "verbose": 0}
    forecaster = MetaLSTMForecaster(**settings).pretrain(airline_copies(_airline, 2))
    return settings, forecaster.pretrained_state_


def test_pretrained_state_safe_round_trip_forecasts_identically(
    pretrained_by_learner, airline, tmp_path
):
    settings, state = pretrained_by_learner
    save_pretrained(state, tmp_path / "state.pt")
    rng_before = torch.get_rng_state()
    loaded = load_pretrained(tmp_path / "state.pt")
    assert torch.equal(torch.get_rng_state(), rng_before)  # loading draws no random numbers
    assert type(loaded.learner) is type(state.learner)
    assert loaded.config == state.config
    original_weights, loaded_weights = state.learner.state_dict(), loaded.learner.state_dict()
    assert original_weights.keys() == loaded_weights.keys()
    for name, tensor in original_weights.items():
        assert torch.equal(loaded_weights[name], tensor), name
    for key, values in state.residuals.items():
        np.testing.assert_array_equal(loaded.residuals[key], values)
        assert loaded.residuals[key].dtype == values.dtype
    np.testing.assert_array_equal(loaded.location_weight, state.location_weight)
    assert [list(h[:, "train_loss"]) for h in loaded.history] == [
        list(h[:, "train_loss"]) for h in state.history
    ]

    fh = [1, 2, 3]
    expected = MetaLSTMForecaster(**settings, pretrained=state).fit(airline)
    shared = MetaLSTMForecaster(**settings, pretrained=loaded).fit(airline)
    np.testing.assert_array_equal(shared.predict(fh=fh), expected.predict(fh=fh))
    np.testing.assert_array_equal(
        shared.predict_interval(fh=fh, coverage=0.8), expected.predict_interval(fh=fh, coverage=0.8)
    )


def test_save_pretrained_takes_a_forecaster_and_refuses_one_without_state(
    pretrained_state, tmp_path
):
    owner = MetaLSTMForecaster.from_pretrained(pretrained_state)
    owner.pretrained_state_ = pretrained_state
    save_pretrained(owner, tmp_path / "state.pt")
    assert load_pretrained(tmp_path / "state.pt").config == pretrained_state.config
    with pytest.raises(ValueError, match="no pretrained_state_"):
        save_pretrained(MetaLSTMForecaster(), tmp_path / "none.pt")


def test_pretrained_history_keeps_json_values_only(pretrained_state, tmp_path):
    pretrained_state.history[0][-1]["odd"] = object()
    pretrained_state.history[0][-1]["as_number"] = torch.tensor(2.5)
    save_pretrained(pretrained_state, tmp_path / "state.pt")
    last = load_pretrained(tmp_path / "state.pt").history[0][-1]
    assert "odd" not in last
    assert last["as_number"] == 2.5
    assert last["train_loss"] == pretrained_state.history[0][-1]["train_loss"]


def test_pretrained_random_state_instance_is_stored_as_none(pretrained_state, tmp_path):
    pretrained_state.config["random_state"] = np.random.RandomState(0)
    with pytest.warns(UserWarning, match="random_state"):
        save_pretrained(pretrained_state, tmp_path / "state.pt")
    assert load_pretrained(tmp_path / "state.pt").config["random_state"] is None


def test_pretrained_config_that_json_cannot_hold_is_refused(pretrained_state, tmp_path):
    pretrained_state.config["exog_columns"] = [("price", "close")]  # a tuple would come back a list
    # It said "set_params", which a state does not have.
    with pytest.raises(ValueError, match="exog_columns.*Name the covariates with strings"):
        save_pretrained(pretrained_state, tmp_path / "state.pt")


# ============================================================ safe format: regressor
def _regressor_cases():
    rng = np.random.default_rng(0)
    X2, X3 = rng.normal(size=(50, 6)), rng.normal(size=(50, 6, 2))
    frame = pd.DataFrame(X2, columns=[f"lag_{i}" for i in range(6)])
    return {
        "2d": (X2, rng.normal(size=50), {}),
        "3d_multi_output": (X3, rng.normal(size=(50, 3)), {"num_layers": 2, "dropout": 0.1}),
        "dataframe_newest_first": (frame, rng.normal(size=50), {"lag_order": "newest_first"}),
        "torch_optimizer_class": (X2, rng.normal(size=50), {"optimizer": torch.optim.RMSprop}),
    }


@pytest.mark.parametrize("case", sorted(_regressor_cases()))
def test_regressor_safe_round_trip_predicts_identically(case, tmp_path):
    X, y, params = _regressor_cases()[case]
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=2, random_state=0, **params).fit(X, y)
    save_regressor(model, tmp_path / "regressor.pt")
    loaded = load_regressor(tmp_path / "regressor.pt")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert list(loaded.history_[:, "train_loss"]) == list(model.history_[:, "train_loss"])
    if isinstance(X, pd.DataFrame):
        np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    # Still a regular estimator: it refits.
    assert loaded.fit(X, y).predict(X).shape == model.predict(X).shape


def test_regressor_file_keeps_the_fitted_lag_order(tmp_path):
    X, y = np.random.default_rng(1).normal(size=(40, 5)), np.random.default_rng(2).normal(size=40)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, lag_order="newest_first").fit(X, y)
    model.set_params(lag_order="oldest_first")  # for the next fit only
    save_regressor(model, tmp_path / "regressor.pt")
    loaded = load_regressor(tmp_path / "regressor.pt")
    assert loaded.lag_order_ == "newest_first"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "param, value",
    [
        ("callbacks", [EarlyStopping(monitor="train_loss")]),
        ("random_state", np.random.RandomState(0)),
        ("optimizer", type("MyAdam", (torch.optim.Adam,), {})),
    ],
)
def test_save_regressor_refuses_parameters_it_cannot_store_safely(param, value, tmp_path):
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, **{param: value}).fit(X, y)
    with pytest.raises(ValueError, match=f"{param}=.*cannot be stored safely"):
        save_regressor(model, tmp_path / "regressor.pt")
    assert not (tmp_path / "regressor.pt").exists()


@pytest.mark.parametrize(("param", "value"), [("hidden_size", 8), ("num_layers", 2)])
def test_save_regressor_refuses_an_architecture_changed_after_fit(param, value, tmp_path):
    # The file would hold 4-unit weights described as 8 units: unloadable.
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y)
    model.set_params(**{param: value})
    with pytest.raises(ValueError, match=f"{param}={value} was set after fit"):
        save_regressor(model, tmp_path / "regressor.pt")
    assert not (tmp_path / "regressor.pt").exists()
    model.set_params(hidden_size=4, num_layers=1)
    save_regressor(model, tmp_path / "regressor.pt")
    np.testing.assert_array_equal(load_regressor(tmp_path / "regressor.pt").predict(X),
                                  model.predict(X))


def test_save_regressor_refuses_an_unfitted_regressor(tmp_path):
    with pytest.raises(ValueError, match="fitted"):
        save_regressor(LSTMBaseRegressor(), tmp_path / "regressor.pt")


# ========================================================== safe format: bad files
@pytest.fixture
def safe_files(pretrained_state, tmp_path):
    """A pretrained state and a fitted regressor in the safe format: {loader name: path}."""
    save_pretrained(pretrained_state, tmp_path / "state.pt")
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    save_regressor(LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y), tmp_path / "reg.pt")
    return {"load_pretrained": tmp_path / "state.pt", "load_regressor": tmp_path / "reg.pt"}


LOADERS = {"load_pretrained": load_pretrained, "load_regressor": load_regressor}


class _WritesMarker:
    """Unpickling this object would create ``path``: a stand-in for malicious code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("where", ["top_level", "inside_a_valid_looking_file"])
def test_safe_load_refuses_a_crafted_pickle_without_running_it(
    loader, where, safe_files, tmp_path
):
    marker = tmp_path / "pwned"
    crafted = _WritesMarker(marker)
    if where == "inside_a_valid_looking_file":
        payload = torch.load(safe_files[loader], weights_only=True)
        payload["tensors"]["extra"] = crafted
        crafted = payload
    torch.save(crafted, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match="not a safe sk_metalstm file"):
        LOADERS[loader](tmp_path / "crafted.pt")
    assert not marker.exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_safe_load_refuses_files_written_by_pickle_save(loader, tmp_path):
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    save(LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y), tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="not a safe sk_metalstm file"):
        LOADERS[loader](tmp_path / "pickled.pt")


def _edit(path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def _edit_config(change):
    def edit(payload):
        config = json.loads(payload["config"])
        change(config)
        payload["config"] = json.dumps(config)

    return edit


BAD_FILES = {
    "unknown_format": (lambda p: p.update(format="someone_else/3"), "format is 'someone_else/3'"),
    "no_format": (lambda p: p.pop("format"), "format is None"),
    # Was "not a safe sk_metalstm file": an older version's own file, with no hint.
    "older_format_version": (
        lambda p: p.update(format=p["format"].rsplit("/", 1)[0] + "/0"),
        "another format version .*written by an older or newer sk_metalstm",
    ),
    "missing_key": (lambda p: p.pop("tensors"), r"lacks \['tensors'\]"),
    "extra_key": (lambda p: p.update(note="hi"), "unexpected entries"),
    "config_not_json": (lambda p: p.update(config="{oops"), "not valid JSON"),
    "tensors_not_tensors": (lambda p: p["tensors"].update(x=1.0), "map names to tensors"),
    "missing_tensor": (
        lambda p: p["tensors"].pop(next(iter(p["tensors"]))),
        "do not match the architecture",
    ),
    "unexpected_tensor": (
        lambda p: p["tensors"].update(x=torch.zeros(1)),
        "unexpected tensors|do not match the architecture",
    ),
    "not_a_dict": (lambda p: p.clear(), "format is None"),
    # Each failed deep in torch, converted silently, or passed NaN on to blame the data.
    "integer_tensor": (
        lambda p: p["tensors"].update({k: v.long() for k, v in p["tensors"].items()}),
        "is torch.int64 .* only dense float32 or float64",
    ),
    "bfloat16_tensor": (
        lambda p: p["tensors"].update({k: v.bfloat16() for k, v in p["tensors"].items()}),
        "is torch.bfloat16",
    ),
    "tensor_requiring_grad": (
        lambda p: p["tensors"].update({k: v.requires_grad_() for k, v in p["tensors"].items()}),
        "requiring grad",
    ),
    "nan_tensor": (
        lambda p: p["tensors"].update({k: v * np.nan for k, v in p["tensors"].items()}),
        "holds NaN or infinite values",
    ),
    "config_nested_too_deep": (lambda p: p.update(config="[" * 100_000), "not valid JSON"),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_safe_load_refuses_invalid_files_with_a_clear_error(loader, bad, safe_files):
    change, message = BAD_FILES[bad]
    _edit(safe_files[loader], change)
    with pytest.raises(ValueError, match=message):
        LOADERS[loader](safe_files[loader])


def _as_maml(description):
    # The stored learner is Meta-SGD: its per-weight step sizes have no place in MAML.
    description["learner"]["name"] = description["config"]["meta_learner"] = "maml"


@pytest.mark.parametrize(
    "loader, change",
    [
        ("load_pretrained", _edit_config(lambda c: c["config"].update(hidden_size=5))),
        ("load_pretrained", _edit_config(lambda c: c["config"].update(horizon=4))),
        ("load_pretrained", _edit_config(_as_maml)),
        ("load_regressor", _edit_config(lambda c: c["params"].update(hidden_size=5))),
        ("load_regressor", _edit_config(lambda c: c["fitted"].update(n_outputs_=2))),
    ],
    ids=["state_hidden_size", "state_horizon", "state_learner", "hidden_size", "n_outputs"],
)
def test_safe_load_refuses_config_that_does_not_match_tensors(loader, change, safe_files):
    _edit(safe_files[loader], change)
    with pytest.raises(ValueError, match="do not match the architecture"):
        LOADERS[loader](safe_files[loader])


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_safe_files_take_a_file_name_not_bytes_or_an_open_file(loader, safe_files):
    # torch said "expected str, bytes or os.PathLike" or "has no attribute 'seek'".
    path = safe_files[loader]
    with open(path, "rb") as handle, pytest.raises(TypeError, match="got BufferedReader"):
        LOADERS[loader](handle)
    with pytest.raises(TypeError, match="path must be a file name .* got bytes"):
        LOADERS[loader](os.fsencode(path))
    with pytest.raises(TypeError, match="got bytes"):
        save_pretrained(load_pretrained(safe_files["load_pretrained"]), os.fsencode(path))


def test_load_regressor_refuses_feature_names_that_disagree_with_the_feature_count(safe_files):
    # A hand-edited file with 2 names for 4 features loaded; predict then
    # checked a DataFrame against names and count that contradict each other.
    path = safe_files["load_regressor"]
    _edit(path, _edit_config(lambda c: c["fitted"].update(feature_names_in_=["a", "b"])))
    with pytest.raises(ValueError, match="feature_names_in_ has 2 names, but n_features_in_ is 4"):
        load_regressor(path)


def test_safe_load_refuses_junk_and_the_other_kind_of_file(safe_files, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    for loader in LOADERS.values():
        with pytest.raises(ValueError, match="not a safe sk_metalstm file"):
            loader(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="read it with load_pretrained"):
        load_regressor(safe_files["load_pretrained"])
    with pytest.raises(ValueError, match="read it with load_regressor"):
        load_pretrained(safe_files["load_regressor"])


@pytest.mark.parametrize(
    "loader, change, message",
    [
        ("load_pretrained", lambda c: c["learner"].update(name="evil"), "unknown meta_learner"),
        ("load_pretrained", lambda c: c["config"].pop("window_length"), "lacks the setting"),
        ("load_pretrained", lambda c: c["learner"]["options"].update(__dict__={}), "not a"),
        ("load_pretrained", lambda c: c["learner"]["options"].update(n_lags=2), "unknown"),
        ("load_pretrained", lambda c: c["learner"]["options"].update(inner_steps="5"), "integer"),
        ("load_regressor", lambda c: c["params"].update(lag_order="x"), "Unknown lag_order"),
        ("load_regressor", lambda c: c["params"].update(evil=1), r"unknown: \['evil'\]"),
        ("load_regressor", lambda c: c["params"].update(optimizer="torch.optim.os"), "unknown"),
        ("load_regressor", lambda c: c["fitted"].pop("n_outputs_"), "n_outputs_ must be"),
        ("load_regressor", lambda c: c["fitted"].update(lag_order_="x"), "Unknown lag_order_"),
        # A 7 KB file claiming these sizes took gigabytes and minutes before its refusal.
        ("load_pretrained", lambda c: c["config"].update(horizon=5 * 10**7), "horizon=50000000"),
        ("load_pretrained", lambda c: c["config"].update(hidden_size=10**4), "hidden_size"),
        ("load_pretrained", lambda c: c["config"].update(num_layers=10**6), "num_layers"),
        ("load_regressor", lambda c: c["fitted"].update(n_outputs_=10**8), "n_outputs_=1"),
        ("load_regressor", lambda c: c["params"].update(optimizer="torch.optim.Optimizer"),
         "unknown optimizer"),
        ("load_regressor", lambda c: c["fitted"].update(y_was_1d="false"), "true or false"),
        # fit sets both from X's second axis; a file labelled otherwise loaded.
        ("load_regressor", lambda c: c["fitted"].update(n_features_in_=6),
         "sequence_length_ is 4, but n_features_in_ is 6"),
    ],
    ids=[
        "learner_name", "config_key", "private_option", "foreign_option", "option_type",
        "param_value", "unknown_param", "optimizer", "fitted_attribute", "fitted_lag_order",
        "huge_horizon", "huge_hidden_size", "huge_num_layers", "huge_outputs",
        "abstract_optimizer", "fitted_flag_string", "sequence_length",
    ],
)
def test_safe_load_refuses_invalid_settings(loader, change, message, safe_files):
    _edit(safe_files[loader], _edit_config(change))
    with pytest.raises(ValueError, match=message):
        LOADERS[loader](safe_files[loader])


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_safe_load_warns_on_version_mismatch(loader, safe_files):
    _edit(safe_files[loader], lambda p: p.update(version="0.0.1"))
    with pytest.warns(UserWarning, match="written by sk_metalstm 0.0.1"):
        LOADERS[loader](safe_files[loader])


def test_safe_files_written_on_gpu_load_on_cpu(pretrained_state, airline, tmp_path, monkeypatch):
    """Simulated: every tensor is recorded as a CUDA one, as on a GPU machine."""
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, device="cuda")
    model.set_params(device="cpu").fit(X, y).set_params(device="cuda")
    pretrained_state.config["device"] = "cuda"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_pretrained(pretrained_state, tmp_path / "state.pt")
        save_regressor(model, tmp_path / "reg.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine
    with pytest.raises(RuntimeError, match="CUDA"):  # what the mapping avoids
        torch.load(tmp_path / "reg.pt", weights_only=True)
    state = load_pretrained(tmp_path / "state.pt")
    assert state.config["device"] == "cpu"
    assert all(p.device.type == "cpu" for p in state.learner.parameters())
    MetaLSTMForecaster.from_pretrained(state).fit(airline).predict(fh=[1, 2])
    loaded = load_regressor(tmp_path / "reg.pt")
    assert str(loaded.net_.device) == "cpu" and loaded.device == "cuda"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("kept", [0.999, 0.99, 0.5, 0.01])
def test_safe_load_names_a_truncated_file(loader, kept, safe_files, tmp_path):
    # torch's zip reader raised a bare "OSError: [Errno 22] Invalid argument",
    # and a copy missing its end was called "not a safe sk_metalstm file".
    data = safe_files[loader].read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: int(kept * len(data))])
    with pytest.raises(ValueError, match="cut.pt.*truncated or corrupt"):
        LOADERS[loader](tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError):
        LOADERS[loader](tmp_path / "missing.pt")


def test_unreadable_files_and_destinations_are_named(safe_files, tmp_path):
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(200))
    # Random bytes are not "Python objects that could run code": just unreadable.
    for loader in LOADERS.values():
        with pytest.raises(ValueError, match="torch.load cannot read it"):
            loader(noise)
    for broken in (noise, safe_files["load_regressor"]):
        (tmp_path / "cut.pt").write_bytes(broken.read_bytes()[:-10])
        with pytest.raises(ValueError, match="truncated or corrupt"):
            load(tmp_path / "cut.pt")
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y)
    for writer in (save, save_regressor):
        with pytest.raises(IsADirectoryError, match="is a folder"):
            writer(model, tmp_path)
        with pytest.raises(FileNotFoundError, match="does not exist"):
            writer(model, tmp_path / "missing" / "model.pt")


def test_a_ridge_option_of_strings_is_refused_at_load(ar_panel, tiny, tmp_path):
    # Only its container type was checked: fit then failed deep in the solve.
    tiny.update(meta_learner="ridge", horizon=1)
    forecaster = MetaLSTMForecaster(**tiny).pretrain(ar_panel)
    save_pretrained(forecaster.pretrained_state_, tmp_path / "ridge.pt")
    options = _edit_config(lambda c: c["learner"]["options"].update(shrinkage_grid=["a"]))
    _edit(tmp_path / "ridge.pt", options)
    with pytest.raises(ValueError, match="shrinkage_grid must be numbers"):
        load_pretrained(tmp_path / "ridge.pt")


def test_safe_load_refuses_compressed_parts_and_files_that_are_not_files(safe_files, tmp_path):
    # A compressed part inflated a 1 MB file to gigabytes before any check, and
    # a link to /dev/zero was read without end: torch.save writes neither.
    packed = tmp_path / "packed.pt"
    with zipfile.ZipFile(safe_files["load_regressor"]) as source, zipfile.ZipFile(
        packed, "w", compression=zipfile.ZIP_DEFLATED
    ) as target:
        for part in source.infolist():
            target.writestr(part.filename, source.read(part))
    with pytest.raises(ValueError, match="compressed, and torch.save compresses none"):
        load_regressor(packed)
    if os.path.exists("/dev/null"):
        os.symlink("/dev/null", tmp_path / "device.pt")
        with pytest.raises(ValueError, match="not a regular file"):
            load_pretrained(tmp_path / "device.pt")


def _flip_a_stored_bit(path):
    """Flip one bit in the middle of the largest part of ``path``'s zip (weights)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        part = max(archive.infolist(), key=lambda i: i.file_size)
    start = part.header_offset
    name_length, extra_length = struct.unpack("<HH", data[start + 26 : start + 30])
    data[start + 30 + name_length + extra_length + part.file_size // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_corrupted_weight_is_refused_not_loaded(safe_files, tmp_path):
    # torch.load does not check the zip's CRCs: one flipped bit in a weight
    # loaded silently and changed every prediction.
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    save(LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y), tmp_path / "pickled.pt")
    readers = {path: LOADERS[name] for name, path in safe_files.items()}
    readers[tmp_path / "pickled.pt"] = load
    for path, reader in readers.items():
        reader(path)  # intact
        _flip_a_stored_bit(path)
        with pytest.raises(ValueError, match=r"is corrupt: its part .* checksum"):
            reader(path)


def test_load_names_incomplete_files_and_points_safe_files_to_their_reader(safe_files, tmp_path):
    for missing in ("version", "estimator"):
        payload = {"format": "sk_metalstm/1", "version": "0.1", "estimator": None}
        del payload[missing]
        torch.save(payload, tmp_path / "part.pt")
        with pytest.raises(ValueError, match=f"incomplete: it has no '{missing}' entry"):
            load(tmp_path / "part.pt")
    for name, path in safe_files.items():
        with pytest.raises(ValueError, match=f"safe format; read it with {name}"):
            load(path)


def test_a_torch_device_setting_is_stored_by_its_name(tmp_path):
    # device=torch.device("cpu") is a documented setting; saving refused it
    # as "not a JSON value".
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, device=torch.device("cpu")).fit(X, y)
    save_regressor(model, tmp_path / "reg.pt")
    loaded = load_regressor(tmp_path / "reg.pt")
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_pickle_naming_a_module_this_version_lacks_says_so(tmp_path, monkeypatch):
    # Was "not written by sk_metalstm.persistence.save, or is truncated or
    # corrupt" for an intact file of an older version whose module had moved.
    (tmp_path / "moved_module.py").write_text("class Old:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import moved_module

    save(moved_module.Old(), tmp_path / "old.pt")
    monkeypatch.delitem(sys.modules, "moved_module")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    with pytest.raises(ValueError, match="another sk_metalstm version.*No module named"):
        load(tmp_path / "old.pt")


def test_a_forecaster_pickled_before_level_dtypes_existed_still_predicts(ar_panel, tiny):
    # 0.1.0 pickles lack the attribute fit now sets; predict raised AttributeError.
    forecaster = MetaLSTMForecaster(horizon=1, **tiny).fit(ar_panel, fh=[1])
    expected = forecaster.predict()
    del forecaster._level_dtypes
    restored = pickle.loads(pickle.dumps(forecaster))
    pd.testing.assert_frame_equal(restored.predict(), expected)


def test_save_refuses_non_finite_weights_and_writes_nothing(pretrained_state, tmp_path):
    # The loaders refuse NaN weights, so such a file could be written but never read.
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.zeros(30)
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y)
    with torch.no_grad():
        next(model.net_.module_.parameters())[0] = float("nan")
    state = copy.deepcopy(pretrained_state)
    with torch.no_grad():
        next(state.learner.parameters()).fill_(float("inf"))
    for writer, obj in ((save_regressor, model), (save_pretrained, state)):
        with pytest.raises(ValueError, match="holds NaN or infinite values.*nothing was written"):
            writer(obj, tmp_path / "model.pt")
        assert not (tmp_path / "model.pt").exists()
