"""sktime's API conformance suite for MetaLSTMForecaster.

``parametrize_with_checks`` makes one pytest case per sktime check, each run
on every parameter set of ``MetaLSTMForecaster.get_test_params`` (tiny networks
that fit sktime's 10-point test series). Every check passes. The forecaster
declares ``capability:non_contiguous_X=False`` (its network reads the
covariates of the first step after the cutoff), so sktime passes ``X`` for
every step up to the last one asked for.
"""

from __future__ import annotations

from sktime.utils.estimator_checks import check_estimator, parametrize_with_checks

from sk_metalstm.forecaster import MetaLSTMForecaster


@parametrize_with_checks(MetaLSTMForecaster)
def test_sktime_compatible(obj, test_name):
    results = check_estimator(obj, tests_to_run=test_name, raise_exceptions=False, verbose=False)
    failed = {k: v for k, v in results.items() if v != "PASSED"}
    assert not failed, failed
