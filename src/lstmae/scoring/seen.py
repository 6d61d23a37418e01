"""Which scored windows are training windows: fingerprints of the training rows.

A score part that compares a window with training windows (the latent and
nearest-window parts, a panel's input-space distance) finds a training window
itself in its reference, at distance about 0. The threshold is therefore fitted
leave-self-out: each training window skips the reference windows overlapping it
(`lstmae.scoring.state.fit_state`). Scored data that contains the training data
(a whole history, the demo, the report) must be scored the same way, or its
training span scores near 0 and the first new point looks like a step.

So the state keeps a 64-bit fingerprint of each training row (scaled, float32,
bit for bit). A scored window whose rows have the fingerprints of the training
window starting at p *is* that window, wherever it sits in the scored data: the
parts skip the reference windows overlapping p, as the threshold's pass did
(`Locator.at`). It depends on the window's content alone, so a stream and a
batch find the same windows. The first training window with that content is
the one found: on data that repeats exactly, any copy gives the same values.

Hashes: each row's float32 words mixed by SplitMix64's finaliser; a window of
L rows is the polynomial sum over its rows' hashes (mod 2^64, by prefix sums
and the modular inverse of the base), mixed again. Two different windows share
a fingerprint with probability about L / 2^64.

Numpy and torch tensors only; no files.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

#: The training position of a window that is none (`Locator.at`): far from every reference position.
UNSEEN = -(1 << 62)
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd: invertible modulo 2^64
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 1 << 64))
_SEED = np.uint64(0x243F6A8885A308D3)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on each uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def row_hashes(scaled: torch.Tensor) -> np.ndarray:
    """The fingerprint of each row of ``scaled`` (n, F) or (S, T, F): (n,) or (S, T) uint64, of its float32 bits."""
    words = np.ascontiguousarray(scaled.detach().cpu().float().numpy()).view(np.uint32).astype(np.uint64)  # (..., F)
    hashes = np.full(words.shape[:-1], _SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for feature in range(words.shape[-1]):
            hashes = _mix(hashes ^ words[..., feature])
    return hashes


def _powers(base: np.uint64, count: int) -> np.ndarray:
    """base ** 0 .. count-1 modulo 2^64, (count,) uint64."""
    powers = np.full(count, base, dtype=np.uint64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers, dtype=np.uint64)


def window_hashes(rows: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The fingerprints of the windows of ``length`` rows starting at ``starts`` (B,) over row hashes ``rows`` (n,): (B,) uint64."""
    n = rows.shape[0]
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(rows * _powers(_BASE, n), dtype=np.uint64, out=prefix[1:])
        starts = np.asarray(starts, dtype=np.int64)
        sums = (prefix[starts + length] - prefix[starts]) * _powers(_BASE_INVERSE, n + 1)[starts]
        return _mix(sums ^ np.uint64(length))


def sample_hashes(rows: np.ndarray) -> np.ndarray:
    """The fingerprints of whole samples from their row hashes (S, T): (S,) uint64, as `window_hashes` of length T."""
    with np.errstate(over="ignore"):
        sums = (rows * _powers(_BASE, rows.shape[1])[None, :]).sum(axis=1, dtype=np.uint64)
        return _mix(sums ^ np.uint64(rows.shape[1]))


class TrainingRows:
    """The fingerprints of the training data's rows, (n,) for a series or (S, T) for a panel, uint64.

    Built from the scaled training data (`of`), saved as one int64 tensor (`tensor`, `from_tensor`).
    """

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = np.asarray(hashes, dtype=np.uint64)
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # by window length, made at first use

    @classmethod
    def of(cls, scaled: torch.Tensor) -> "TrainingRows":
        """From the scaled training data (n, F) or (S, T, F), float32 as the network saw it."""
        return cls(row_hashes(scaled))

    @property
    def is_panel(self) -> bool:
        return self.hashes.ndim == 2

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.hashes.view(np.int64).copy())

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> "TrainingRows":
        if tensor.dtype != torch.int64 or tensor.ndim not in (1, 2):
            raise ValueError(f"training row fingerprints must be a 1-D or 2-D int64 tensor, got {tensor.dtype} {tuple(tensor.shape)}")
        return cls(tensor.numpy().view(np.uint64))

    def table(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(sorted fingerprints, the first training window (start or sample) with each) of the training windows of ``length``."""
        if length not in self._tables:
            self._tables[length] = self._table(length)
        return self._tables[length]

    def _table(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        if self.is_panel:
            keys = sample_hashes(self.hashes) if length == self.hashes.shape[1] else np.zeros(0, dtype=np.uint64)
        else:
            count = max(0, self.hashes.shape[0] - length + 1)
            keys = window_hashes(self.hashes, np.arange(count), length) if count else np.zeros(0, dtype=np.uint64)
        unique, first = np.unique(keys, return_index=True)
        return unique, first.astype(np.int64)

    def find(self, keys: np.ndarray, length: int) -> np.ndarray:
        """The training position of each fingerprint ``keys`` (B,) of windows of ``length``, or UNSEEN: (B,) int64."""
        unique, first = self.table(length)
        found = np.full(keys.shape[0], UNSEEN, dtype=np.int64)
        if unique.size and keys.size:
            at = np.minimum(np.searchsorted(unique, keys), unique.size - 1)
            hit = unique[at] == keys
            found[hit] = first[at[hit]]
        return found

    def locate(self, scaled: torch.Tensor) -> "Locator":
        """A `Locator` of the training windows in scaled data (n, F) or (S, T, F) of this kind."""
        hashes = row_hashes(scaled)
        if hashes.ndim != self.hashes.ndim:
            return Locator(lambda where, length: None)
        if self.is_panel:
            keys = sample_hashes(hashes) if hashes.shape[1] == self.hashes.shape[1] else None
            positions = self.find(keys, hashes.shape[1]) if keys is not None else np.zeros(0, dtype=np.int64)
            return Locator(lambda where, length: positions[where.numpy()] if positions.size else None)
        return Locator(lambda where, length: self.find(window_hashes(hashes, where.numpy(), length), length))

    def seen_rows(self, scaled: torch.Tensor, length: int) -> np.ndarray:
        """Which rows (samples) of scaled data lie in a window of ``length`` rows that is a training window: (n,) or (S,) bool."""
        hashes = row_hashes(scaled)
        if hashes.ndim != self.hashes.ndim:
            return np.zeros(scaled.shape[0], dtype=bool)
        if self.is_panel:
            if hashes.shape[1] != self.hashes.shape[1]:
                return np.zeros(scaled.shape[0], dtype=bool)
            return self.find(sample_hashes(hashes), hashes.shape[1]) != UNSEEN
        n = hashes.shape[0]
        if n < length:
            return np.zeros(n, dtype=bool)
        seen = self.find(window_hashes(hashes, np.arange(n - length + 1), length), length) != UNSEEN
        edges = np.zeros(n + 1, dtype=np.int64)
        np.add.at(edges, np.flatnonzero(seen), 1)
        np.add.at(edges, np.flatnonzero(seen) + length, -1)
        return np.cumsum(edges[:-1]) > 0


class Locator:
    """The training position of scored windows (`at`), for the parts' trivial-match exclusion."""

    def __init__(self, find: Callable[[torch.Tensor, int], np.ndarray | None]) -> None:
        self._find = find

    @classmethod
    def itself(cls) -> "Locator":
        """The training data itself: every window is the training window where it starts."""
        return cls(lambda where, length: where.numpy())

    def at(self, where: torch.Tensor, length: int) -> torch.Tensor | None:
        """The training window start (sample index) of each window of ``length`` rows at ``where`` (B,), UNSEEN where
        none is: (B,) int64; None when no window is a training window (score them as new data)."""
        found = self._find(where, length)
        if found is None or not (found != UNSEEN).any():
            return None
        return torch.from_numpy(np.asarray(found, dtype=np.int64))


__all__ = ["UNSEEN", "Locator", "TrainingRows", "row_hashes", "sample_hashes", "window_hashes"]
