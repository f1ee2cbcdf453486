"""sk_metalstm: meta-learned LSTM forecasting for scikit-learn and sktime."""

__version__ = "0.1.0"
