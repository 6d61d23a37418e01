"""lstmae: LSTM sequence autoencoders for time series.

    from lstmae import LSTMAutoencoder
    model = LSTMAutoencoder(timesteps=40, units=100).fit(X_normal)
    scores = model.anomaly_score(X)          # higher = more anomalous
    intervals = model.detect(X)

The heavy modules (torch, scikit-learn) load on first use, so that the
command line starts quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lstmae._version import __version__
from lstmae.errors import (
    DataError,
    DataFileError,
    FeatureMismatchError,
    LstmaeError,
    ModelFileError,
    NotFittedError,
    ParameterError,
)

if TYPE_CHECKING:
    from lstmae.data.windows import window_starts
    from lstmae.estimator import LSTMAutoencoder
    from lstmae.versions import show_versions

_LAZY = {
    "LSTMAutoencoder": "lstmae.estimator",
    "window_starts": "lstmae.data.windows",
    "show_versions": "lstmae.versions",
}

__all__ = [
    "LSTMAutoencoder",
    "window_starts",
    "show_versions",
    "LstmaeError",
    "ParameterError",
    "DataError",
    "DataFileError",
    "FeatureMismatchError",
    "ModelFileError",
    "NotFittedError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The public names load on first use: `import lstmae` (and the command line) never waits for torch.
    if name in _LAZY:

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lstmae' has no attribute {name!r}")
