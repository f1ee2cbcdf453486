"""QuantileGrid, the distribution predict_proba returns."""

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skpro")
from scipy import stats  # noqa: E402

from sk_metalstm.quantile_grid import QuantileGrid  # noqa: E402

LEVELS = np.arange(1, 200) / 200


def normal_grid(mu=0.0, sigma=1.0):
    q = mu + sigma * stats.norm.ppf(LEVELS)
    return QuantileGrid(LEVELS, q[None, None, :], index=pd.RangeIndex(1), columns=["y"])


def test_passes_skpro_distribution_checks():
    from skpro.utils.estimator_checks import check_estimator

    results = check_estimator(QuantileGrid, raise_exceptions=False, verbose=False)
    failed = {name: result for name, result in results.items() if result != "PASSED"}
    assert results and not failed


def test_a_gaussian_grid_keeps_the_gaussians_moments_and_scores():
    # Linear between 199 quantiles, exponential beyond: close to the normal
    # it was read from, at any location and scale.
    d = normal_grid(mu=100.0, sigma=3.0)
    assert d.mean().iloc[0, 0] == pytest.approx(100.0, abs=1e-9)
    assert d.var().iloc[0, 0] == pytest.approx(9.0, rel=0.02)
    # E|X - X'| = 2 sigma / sqrt(pi); CRPS at the mean = sigma (sqrt 2 - 1) / sqrt(pi).
    assert d.energy().iloc[0, 0] == pytest.approx(6 / np.sqrt(np.pi), rel=0.005)
    crps = d.energy(np.array([[100.0]])).iloc[0, 0] - d.energy().iloc[0, 0] / 2
    assert crps == pytest.approx(3 * (np.sqrt(2) - 1) / np.sqrt(np.pi), rel=0.005)
    for x in (95.0, 100.0, 104.0):
        assert d.pdf(np.array([[x]])).iloc[0, 0] == pytest.approx(
            stats.norm.pdf(x, 100, 3), rel=0.02
        )
        assert d.cdf(np.array([[x]])).iloc[0, 0] == pytest.approx(
            stats.norm.cdf(x, 100, 3), abs=1e-4
        )


def test_closed_forms_match_integrals_of_the_quantile_function():
    # A skewed grid with uneven levels; each closed form against a midpoint
    # rule over the quantile function it defines.
    levels = [0.01, 0.03, 0.1, 0.2, 0.5, 0.6, 0.9, 0.97, 0.995]
    q = np.array([-5.0, -2.0, -1.2, -0.5, 0.0, 0.4, 1.0, 3.0, 3.5])
    n = 400_000
    u = (np.arange(n) + 0.5) / n
    wide = QuantileGrid(levels, np.broadcast_to(q, (n, 1, len(q))))
    quantile = wide.ppf(u[:, None]).to_numpy()[:, 0]
    d = QuantileGrid(levels, q[None, None, :])
    mean = quantile.mean()
    assert d.mean().iloc[0, 0] == pytest.approx(mean, rel=1e-4)
    assert d.var().iloc[0, 0] == pytest.approx(np.mean((quantile - mean) ** 2), rel=1e-3)
    assert d.energy().iloc[0, 0] == pytest.approx(np.mean(2 * (2 * u - 1) * quantile), rel=1e-3)
    for x in (-7.0, -1.0, 0.2, 3.2, 6.0):
        expected = np.mean(np.abs(quantile - x))
        assert d.energy(np.array([[x]])).iloc[0, 0] == pytest.approx(expected, rel=1e-3)


def test_pdfnorm_is_exact_and_per_entry_on_a_panel():
    # skpro's default sampled it (a different value each call) and, on a
    # panel, grouped the samples by instance: one row per series.
    d = normal_grid(sigma=2.0)
    # For a normal, the integral of pdf^2 is 1 / (2 sigma sqrt(pi)).
    assert d.pdfnorm().iloc[0, 0] == pytest.approx(1 / (4 * np.sqrt(np.pi)), rel=0.01)
    assert d.pdfnorm(1).iloc[0, 0] == pytest.approx(1.0)
    index = pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]])
    q = np.stack([s * stats.norm.ppf(LEVELS) for s in (1, 2, 3, 1, 2, 3)])[:, None, :]
    panel = QuantileGrid(LEVELS, q, index=index, columns=["y"])
    norms = panel.pdfnorm()
    assert norms.index.equals(index) and norms.columns.equals(pd.Index(["y"]))
    np.testing.assert_allclose(norms.to_numpy()[:3, 0], norms.to_numpy()[3:, 0])
    assert norms.iloc[0, 0] == pytest.approx(2 * norms.iloc[1, 0], rel=1e-9)
    atom = QuantileGrid([0.1, 0.5, 0.6, 0.9], np.array([-1.0, 0.0, 0.0, 2.0]))
    assert atom.pdfnorm() == np.inf


def test_a_missing_value_has_no_density():
    d = normal_grid()
    assert np.isnan(d.pdf(np.array([[np.nan]])).iloc[0, 0])
    assert np.isnan(d.log_pdf(np.array([[np.nan]])).iloc[0, 0])
    assert np.isnan(d.cdf(np.array([[np.nan]])).iloc[0, 0])


def test_tails_are_exponential_and_the_cdf_inverts_the_ppf():
    d = normal_grid()
    p = np.array([[1e-6]])
    far = d.ppf(p).iloc[0, 0]
    assert np.isfinite(far) and far < d.ppf(np.array([[0.005]])).iloc[0, 0]
    assert d.cdf(np.array([[far]])).iloc[0, 0] == pytest.approx(1e-6, rel=1e-9)
    assert d.ppf(np.array([[0.0]])).iloc[0, 0] == -np.inf
    assert d.ppf(np.array([[1.0]])).iloc[0, 0] == np.inf
    assert np.isfinite(d.log_pdf(np.array([[-40.0]])).iloc[0, 0])


def test_equal_quantiles_are_an_atom_not_an_error():
    d = QuantileGrid([0.1, 0.5, 0.6, 0.9], np.array([-1.0, 0.0, 0.0, 2.0]))
    assert d.cdf(0.0) == pytest.approx(0.6)
    assert d.cdf(-1e-12) == pytest.approx(0.5, abs=1e-9)
    assert d.ppf(0.55) == 0.0
    # skpro answered pmf = 0 without asking while the grid was tagged continuous.
    assert d.pmf(0.0) == pytest.approx(0.1)
    assert d.pmf(0.5) == 0.0
    assert d.pdf(0.0) == pytest.approx(0.3 / 2)  # the segment after the atom


def test_a_flat_forecast_is_a_point_mass_with_no_density():
    # A series that never moved forecasts all quantiles equal: its pdf was inf.
    d = QuantileGrid(np.arange(1, 100) / 100, np.full((1, 1, 99), 101.0))
    at = np.array([[101.0]])
    assert d.pmf(at).iloc[0, 0] == pytest.approx(1.0)
    assert d.pdf(at).iloc[0, 0] == 0.0
    assert d.pmf(np.array([[100.0]])).iloc[0, 0] == 0.0
    assert d.get_tag("maintainers") == ["sk_metalstm developers"]


@pytest.mark.parametrize(
    ("levels", "quantiles", "message"),
    [
        ([0.5, 0.1], [0.0, 1.0], "strictly increasing"),
        ([0.0, 0.5], [0.0, 1.0], r"in \(0, 1\)"),
        ([0.1, 0.9], [1.0, 0.0], "non-decreasing"),
        ([0.1, 0.9], [0.0, np.nan], "finite"),
        ([0.1, 0.9], [[0.0, 1.0]], "shape"),
    ],
)
def test_invalid_grids_are_refused_with_the_reason(levels, quantiles, message):
    with pytest.raises(ValueError, match=message):
        QuantileGrid(levels, np.asarray(quantiles, dtype=float))


def test_iloc_and_loc_keep_the_labels_they_select():
    index = pd.period_range("1961-01", periods=3, freq="M")
    q = np.arange(3.0)[:, None, None] + np.array([-1.0, 0.0, 1.0])
    d = QuantileGrid([0.1, 0.5, 0.9], q, index=index, columns=pd.Index(["y"]))
    part = d.iloc[1:3, 0:1]
    assert part.index.equals(index[1:3]) and list(part.columns) == ["y"]
    assert d.iloc[1:3, 0].index.equals(index[1:3])
    assert d.iloc[2, 0].ppf(0.5) == 2.0
    # Rows and columns of a panel: sktime's metrics index y_pred.loc[:, [name]].
    rows = pd.MultiIndex.from_product([["a", "b"], [1, 2]])
    panel = QuantileGrid(
        [0.1, 0.5, 0.9], np.zeros((4, 1, 3)) + [-1.0, 0.0, 1.0], index=rows, columns=pd.Index(["y"])
    )
    assert panel.loc[:, ["y"]].shape == (4, 1) and panel.loc[:, "y"].shape == (4, 1)
    assert panel.loc[("b", 2)].shape == (1, 1) and panel.loc["a"].shape == (2, 1)


def test_quantile_grid_without_skpro_names_the_extra(monkeypatch):
    # Was the bare "No module named 'skpro'".
    monkeypatch.delitem(sys.modules, "sk_metalstm.quantile_grid", raising=False)
    monkeypatch.setitem(sys.modules, "skpro.distributions.base", None)
    with pytest.raises(ImportError, match='pip install "sk_metalstm\\[proba\\]"'):
        importlib.import_module("sk_metalstm.quantile_grid")
