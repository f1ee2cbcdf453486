"""sktime's API conformance suite for MetaLSTMForecaster.

``parametrize_with_checks`` makes one pytest case per sktime check, each run
on every parameter set of ``MetaLSTMForecaster.get_test_params`` (tiny networks
that fit sktime's 10-point test series).
"""

from __future__ import annotations

from sktime.utils.estimator_checks import check_estimator, parametrize_with_checks

from sk_metalstm.forecaster import MetaLSTMForecaster


@parametrize_with_checks(MetaLSTMForecaster)
def test_sktime_compatible(obj, test_name):
    check_estimator(obj, tests_to_run=test_name, raise_exceptions=True, verbose=False)
