"""Per-feature standardisation fitted on the training data and kept in the model."""

from __future__ import annotations

import math

import numpy as np


#: fit_scaler sums a feature exactly when its float sum is below this share of
#: the sum of magnitudes (heavy cancellation, where the float sum loses digits).
CANCELLATION = 1e-6


def fit_scaler(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each feature.

    Parameters
    ----------
    values : ndarray of shape (..., n_features)
        Finite values; every leading axis is pooled.

    Returns
    -------
    mean, scale : ndarrays of shape (n_features,), float64
        ``scale`` is the standard deviation, or 1 where a feature is constant,
        so that transforming never divides by zero. Computed on values divided
        by their largest magnitude first, so 1e308 does not overflow.
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    magnitude = np.max(np.abs(flat), axis=0)
    magnitude[magnitude == 0] = 1.0
    unit = flat / magnitude
    total = unit.sum(axis=0)
    # Where the values nearly cancel (1, -1e308, 1e308), the float sum loses the
    # small remainder: sum those columns exactly (math.fsum), which is slower.
    for column in np.flatnonzero(np.abs(total) < CANCELLATION * np.abs(unit).sum(axis=0)):
        total[column] = math.fsum(unit[:, column].tolist())
    mean = total / flat.shape[0] * magnitude
    std = unit.std(axis=0) * magnitude
    # A feature whose spread is negligible against its magnitude is constant for
    # float32 purposes; scaling it by its tiny std would only amplify noise.
    tiny = std <= magnitude * 1e-12
    scale = np.where(tiny, 1.0, std)
    return mean, scale


#: Standardised values are clipped to +-Z_LIMIT before they reach the float32
#: network: a value a million standard deviations from the training mean is
#: anomalous enough, and beyond it float32 products inside the LSTM overflow to
#: inf and NaN. Training data never reaches it (|z| <= sqrt(n_samples)).
Z_LIMIT = 1e6


def transform(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(values - mean) / scale`` as float32, same shape as ``values``, clipped to +-`Z_LIMIT`."""
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = (x - mean) / scale
    overflow = ~np.isfinite(out) & np.isfinite(x)
    if overflow.any():  # x - mean passed the float64 limit (values near +-1e308): work in halves
        with np.errstate(over="ignore"):
            out = np.where(overflow, (x * 0.5 - mean * 0.5) / scale * 2.0, out)
    return np.clip(out, -Z_LIMIT, Z_LIMIT).astype(np.float32)


def inverse_transform(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Back to the units of the input, float64, same shape as ``values``."""
    z = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = z * scale + mean
    overflow = ~np.isfinite(out) & np.isfinite(z)
    if overflow.any():  # z * scale passed the float64 limit although the result need not: work in halves
        out = np.where(overflow, (z * 0.5 * scale + mean * 0.5) * 2.0, out)
    return out
