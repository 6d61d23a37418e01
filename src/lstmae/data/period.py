"""Choosing a window length from the data: its dominant period."""

from __future__ import annotations

import numpy as np

from lstmae.data.frames import Prepared
from lstmae.errors import DataError
from lstmae.params import MAX_LSTM_STEPS

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


def choose_timesteps(data: Prepared, timesteps: int | str, frame: int | str) -> tuple[int, str]:
    """The window length T for ``data`` and the reason, in words, from the ``timesteps`` and ``frame`` parameters.

    A panel: each sample's length ("auto", or given and equal). A series: its
    dominant period (`auto_timesteps`, rounded to a multiple of the frame that
    keeps the LSTM at <= MAX_LSTM_STEPS steps when ``frame="auto"``), or the
    given length, which the series must hold.
    """
    if data.is_panel:
        length = data.values.shape[1]
        if timesteps == "auto":
            return length, f"timesteps={length}: the length of each sample of the 3-D input"
        if timesteps != length:
            raise DataError(
                f"3-D input has {length} timesteps per sample but timesteps={timesteps}; "
                f"pass timesteps={length} or timesteps='auto'."
            )
        return length, f"timesteps={length}: given, equal to the length of each sample"
    n = data.values.shape[0]
    if timesteps == "auto":
        if n < 4:
            raise DataError(f"the series has {n} timesteps; at least 4 are needed to learn anything.")
        chosen, reason = auto_timesteps(data.values)
        if frame == "auto" and chosen > MAX_LSTM_STEPS:
            steps = -(-chosen // MAX_LSTM_STEPS)
            rounded = steps * round(chosen / steps)
            if rounded != chosen and rounded <= n:
                reason += f", rounded to {rounded} (a multiple of frame={steps})"
                chosen = rounded
        return chosen, reason
    if n < timesteps:
        raise DataError(
            f"the series has {n} timesteps, fewer than timesteps={timesteps}; "
            f"use a longer series or timesteps <= {n} (n_samples={n})."
        )
    return int(timesteps), f"timesteps={timesteps}: given"
