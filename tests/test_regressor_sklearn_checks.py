"""scikit-learn's estimator checks for ``LSTMBaseRegressor``.

Checks expected to fail, and why (keep this list in sync with EXPECTED_FAILED):

- none. Every check of scikit-learn's ``parametrize_with_checks`` passes,
  including ``check_regressors_train`` (R^2 > 0.5) with the small instance below.
  Its training settings (lr=1e-2, 40 epochs, batch 32) are what an LSTM needs to
  fit that check's data; they are kept small so that the suite stays fast.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_metalstm import LSTMBaseRegressor

# check name -> reason. Empty on purpose: see the module docstring.
EXPECTED_FAILED: dict[str, str] = {}


def _expected_failed_checks(estimator: LSTMBaseRegressor) -> dict[str, str]:
    return EXPECTED_FAILED


@parametrize_with_checks(
    [
        LSTMBaseRegressor(
            hidden_size=8, max_epochs=40, lr=1e-2, batch_size=32, random_state=0
        )
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
