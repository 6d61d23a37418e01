"""Long series <-> overlapping windows, without materialising every window.

A long series of shape ``(n_timesteps, n_features)`` is cut into windows of
``timesteps`` consecutive rows that start every ``stride`` rows. The last
window always ends on the last timestep, so every timestep is covered by at
least one window (no padding, no dropped tail).

Per-window results (errors, reconstructions) are merged back per timestep by
averaging over the windows that cover it (`TimestepAccumulator`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lstmae.errors import DataError, ParameterError


def window_starts(n_timesteps: int, timesteps: int, stride: int = 1) -> np.ndarray:
    """Start positions of the windows that cover a series.

    Parameters
    ----------
    n_timesteps : int
        Length of the series.
    timesteps : int
        Window length.
    stride : int
        Step between consecutive window starts.

    Returns
    -------
    starts : ndarray of shape (n_windows,), int64
        ``0, stride, 2*stride, ...`` plus ``n_timesteps - timesteps`` when the
        regular grid would leave the tail uncovered. Sorted, unique.
    """
    if timesteps < 1:
        raise ParameterError(f"timesteps must be >= 1, got {timesteps!r}.")
    if stride < 1:
        raise ParameterError(f"stride must be >= 1, got {stride!r}.")
    if n_timesteps < timesteps:
        raise DataError(
            f"the series has {n_timesteps} timesteps, fewer than timesteps={timesteps}; "
            f"use a longer series or a smaller timesteps (at most {n_timesteps})."
        )
    last = n_timesteps - timesteps
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, np.int64(last))
    return starts


def n_windows(n_timesteps: int, timesteps: int, stride: int = 1) -> int:
    """Number of windows `window_starts` returns, computed without allocating them."""
    if n_timesteps < timesteps:
        return 0
    last = n_timesteps - timesteps
    return last // stride + 1 + (1 if last % stride else 0)


def gather_windows(series: np.ndarray, starts: np.ndarray, timesteps: int) -> np.ndarray:
    """Copy out only the requested windows of a series.

    Parameters
    ----------
    series : ndarray of shape (n_timesteps, n_features)
    starts : ndarray of shape (n_windows,)
    timesteps : int

    Returns
    -------
    windows : ndarray of shape (n_windows, timesteps, n_features)
    """
    view = sliding_window_view(series, timesteps, axis=0)  # (n - T + 1, F, T), no copy
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))


class TimestepAccumulator:
    """Average per-window values back onto the timesteps they cover.

    Feed it chunks of windows (any order, each window once); ``mean()`` then
    returns, for every timestep, the mean over the windows that cover it.

    Parameters
    ----------
    n_timesteps : int
    n_channels : int
        Size of the trailing axis of the values (features, or 1).
    """

    def __init__(self, n_timesteps: int, n_channels: int) -> None:
        self.sums = np.zeros((n_timesteps, n_channels), dtype=np.float64)
        self.counts = np.zeros(n_timesteps, dtype=np.int64)

    def add(self, starts: np.ndarray, values: np.ndarray) -> None:
        """Add windows.

        Parameters
        ----------
        starts : ndarray of shape (n_windows,), unique
        values : ndarray of shape (n_windows, timesteps, n_channels)
        """
        timesteps = values.shape[1]
        if len(starts) < timesteps:
            # Few windows (a stream's block): one slice per window, the latest start first,
            # which is the order the offset loop below adds them to each timestep: the same bits.
            for b in np.argsort(starts, kind="stable")[::-1]:
                self.sums[starts[b] : starts[b] + timesteps] += values[b]
                self.counts[starts[b] : starts[b] + timesteps] += 1
            return
        # Starts are unique, so within one offset the target rows are distinct
        # and plain fancy-index assignment adds each window exactly once.
        for offset in range(timesteps):
            rows = starts + offset
            self.sums[rows] += values[:, offset, :]
            self.counts[rows] += 1

    def mean(self) -> np.ndarray:
        """Per-timestep means, shape (n_timesteps, n_channels).

        Raises if some timestep was never covered (a bug in the caller).
        """
        if np.any(self.counts == 0):
            first = int(np.flatnonzero(self.counts == 0)[0])
            raise RuntimeError(f"timestep {first} is covered by no window")
        return self.sums / self.counts[:, None]
