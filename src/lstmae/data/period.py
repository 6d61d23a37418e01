"""Choosing a window length from the data: its dominant period."""

from __future__ import annotations

import numpy as np

#: Bounds of an automatically chosen window length, and the fallback when the
#: series shows no clear period.
MIN_TIMESTEPS = 16
MAX_TIMESTEPS = 256
FALLBACK_TIMESTEPS = 32


def dominant_period(values: np.ndarray, max_lag: int = MAX_TIMESTEPS * 2) -> int | None:
    """The lag of the highest autocorrelation peak, or None when there is no clear one.

    Parameters
    ----------
    values : ndarray of shape (n_timesteps, n_features)
        The first feature is used (the others are often flags or covariates).
    max_lag : int
        Longest period considered.

    Returns
    -------
    period : int or None
        A lag ``>= 2`` whose autocorrelation is a local maximum above 0.2, the
        highest such; None for noise, trends and series that are too short.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[:, 0] if x.ndim == 2 else x
    x = x[: 100_000] - x[: 100_000].mean()
    n = len(x)
    if n < 8 or not np.any(x):
        return None
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(max_lag, n // 2) + 1]
    acf /= acf[0]
    if len(acf) < 4:
        return None
    # Only peaks after the first dip below zero: before it, the ACF merely decays.
    below = np.flatnonzero(acf < 0)
    if len(below) == 0:
        return None
    lags = np.arange(1, len(acf) - 1)
    peaks = lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1]) & (lags > below[0])]
    peaks = peaks[acf[peaks] > 0.2]
    if len(peaks) == 0:
        return None
    return int(peaks[np.argmax(acf[peaks])])


def auto_timesteps(values: np.ndarray) -> tuple[int, str]:
    """A window length for a long series, and the reason, in words.

    One dominant period, bounded to [MIN_TIMESTEPS, MAX_TIMESTEPS] and to a
    quarter of the series, so that there are enough windows to learn from.
    """
    n = len(values)
    upper = max(2, min(MAX_TIMESTEPS, n // 4))
    period = dominant_period(values)
    if period is None:
        chosen = min(FALLBACK_TIMESTEPS, upper)
        bound = "the default" if chosen == FALLBACK_TIMESTEPS else f"a quarter of the {n} timesteps"
        return chosen, f"no clear period in the data; timesteps={chosen} ({bound})"
    chosen = int(np.clip(period, min(MIN_TIMESTEPS, upper), upper))
    if chosen == period:
        return chosen, f"dominant period of the data is {period} timesteps; timesteps={chosen} (one period per window)"
    return chosen, f"dominant period of the data is {period} timesteps; timesteps={chosen} (bounded to [{min(MIN_TIMESTEPS, upper)}, {upper}])"
