"""Per-window nearest-window distances at sub-window lengths L of the network's window T, for every dev series.

For each series and L in {T, T//2}: the scored windows are the length-L windows
starting every score_stride = max(1, T // 8) steps (window_starts(n, L, stride)),
i.e. sub-windows of the network's scored windows (the last L points of each scored
window, and those of the first window); the reference is the training rows the
network was fitted on (`_split` with T), windows of length L every
`_neighbour_stride(len, L)`-th (cap 8192), z-normalised as `lstmae.scoring.neighbours`.
The held-out rows (the network's validation part) are scored the same way for the level.
Saved raw (starts, distances) per part, so aggregations are derived later:
bench/.cache/ucr-variants/<name>-L{T,H}.npz
"""
import math
import time

import numpy as np

from common import VARIANT_CACHE, cv, dev_series, load_parts
from lstmae.data.scaling import fit_scaler
from lstmae.data.windows import window_starts
from lstmae.scoring.neighbours import WindowReference, nearest_window_distances, reference_windows
from lstmae.scoring.state import SCORE_WINDOWS_PER_STEP, ScoringSettings, ScoringState, _neighbour_stride, _split


def raw_distances(series, T: int, L: int, validation_split: float = 0.1) -> dict:
    began = time.perf_counter()
    train = series.values[: series.train_end]
    stride = max(1, T // SCORE_WINDOWS_PER_STEP)
    settings = ScoringSettings("neighbours", "window", stride, T, True)
    state = ScoringState(*fit_scaler(train), None, None, None, math.nan, settings)
    fit_rows, held_rows = _split(train.shape[0], False, T, validation_split)
    fit = state.scale(train)[fit_rows].contiguous()
    ref = WindowReference.of(reference_windows(fit, L, _neighbour_stride(fit.shape[0], L)), L)

    def scored(values):
        scaled = state.scale(values)
        starts = window_starts(scaled.shape[0], L, stride)
        view = scaled.unfold(0, L, 1)
        d = [nearest_window_distances(view[torch_idx].transpose(1, 2), ref)
             for torch_idx in np.array_split(starts, max(1, len(starts) // 512))]
        return starts, np.concatenate([x.double().numpy() for x in d])

    starts, dist = scored(series.values)
    held_starts, held_dist = scored(train[held_rows])
    return {"starts": starts, "dist": dist, "held_starts": held_starts, "held_dist": held_dist,
            "n": np.asarray(len(series.values)), "held_n": np.asarray(len(train[held_rows])), "T": np.asarray(T),
            "L": np.asarray(L), "seconds": np.asarray(time.perf_counter() - began)}


if __name__ == "__main__":
    import torch  # noqa: F401
    names, entries = dev_series()
    VARIANT_CACHE.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(names, 1):
        parts, nn = load_parts(name)
        T = int(parts[0]["timesteps"])
        assert all(int(p["timesteps"]) == T for p in parts.values())
        series = None
        for tag, L in (("LT", T), ("LH", max(2, T // 2))):
            path = VARIANT_CACHE / f"{cv.safe(name)}-{tag}.npz"
            if path.is_file():
                continue
            series = series or entries[name]()
            found = raw_distances(series, T, L)
            cv._save(path, found)
            print(f"[{number}/{len(names)}] {name} T={T} L={L}: {len(found['dist'])} windows, {float(found['seconds']):.1f} s", flush=True)
