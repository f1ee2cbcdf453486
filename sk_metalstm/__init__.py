"""sk_metalstm: meta-learned LSTM forecasting for scikit-learn and sktime."""

from sk_metalstm.exceptions import AdaptationFallbackWarning, TrainingDiverged
from sk_metalstm.forecaster import MetaLSTMForecaster
from sk_metalstm.regressor import LSTMBaseRegressor

__version__ = "0.2.0.dev0"

__all__ = [
    "AdaptationFallbackWarning",
    "LSTMBaseRegressor",
    "MetaLSTMForecaster",
    "TrainingDiverged",
]
