"""Chunked passes of a fitted network over the windows of a series or the samples of a panel.

One pass runs each chunk of windows through the network once and yields what
is asked: per-timestep merged squared errors, reconstructions, embeddings,
latent distances, input-space nearest-neighbour distances. The estimator,
`lstmae.scoring.state` (the post-training pass) and any scorer that holds a network
and a `lstmae.scoring.state.ScoringState` use it.

Shapes: B = windows in a chunk, T = timesteps, F = features, L = latent size,
n = timesteps of a series, S = samples of a panel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from lstmae.data.windows import TimestepAccumulator, window_starts
from lstmae.scoring.latent import CentredReference, nearest_distances
from lstmae.scoring.neighbours import WindowReference, nearest_window_distances
from lstmae.backends.parallel import cpu_workers, ordered_map

# Numbers (windows x timesteps x the wider of features and 4 x units, the size of
# the network's gate buffers) per inference chunk: bounds memory whatever the
# series length, and keeps chunks small enough to stay in cache (a few hundred
# windows of 40 x 100 units: about 1.5x faster than 50,000 on a CPU, bench/perf.py).
CHUNK_VALUES = 1 << 22


def network_device(network: torch.nn.Module) -> torch.device:
    return next(network.parameters()).device


def batches(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(window starts or sample indices (B,), windows (B, T, F)) in bounded chunks.

    ``scaled`` is (n, F) for a series (windows every ``stride`` timesteps, and
    the last), (S, T, F) for a panel (every sample; ``stride`` is ignored).
    """
    config = network.config
    timesteps = config.timesteps
    width = max(scaled.shape[-1], 4 * max(config.units))
    chunk = max(1, CHUNK_VALUES // (timesteps * width))
    if is_panel:
        for first in range(0, scaled.shape[0], chunk):
            index = torch.arange(first, min(first + chunk, scaled.shape[0]))
            yield index, scaled[index]
        return
    view = scaled.unfold(0, timesteps, 1)  # (n - T + 1, F, T): a view, nothing copied
    starts = torch.from_numpy(window_starts(scaled.shape[0], timesteps, stride))
    for first in range(0, len(starts), chunk):
        part = starts[first : first + chunk]
        yield part, view[part].transpose(1, 2)


@dataclass(frozen=True)
class Chunk:
    """What the network gave for one chunk of windows.

    where : (B,) window starts or sample indices
    squared : (B, T, F) float64 squared errors in scaled units, or None (encode only)
    output : (B, T, F) float32 reconstruction, or None
    embedding : (B, L) or (B, T/k, L) float32 encoder output, on the CPU
    """

    where: torch.Tensor
    squared: np.ndarray | None
    output: torch.Tensor | None
    embedding: torch.Tensor


def run(network: torch.nn.Module, jobs: Iterable[tuple[torch.Tensor, torch.Tensor, bool]]) -> Iterator[Chunk]:
    """Each job (where, windows (B, T, F), decode?) through the network, in order, chunks on every core.

    A job that does not decode only encodes (the embeddings). Results come back
    in job order; consume them in the calling thread (see `merged`).
    """
    device = network_device(network)

    def forward(where: torch.Tensor, batch: torch.Tensor, decode: bool) -> Chunk:
        z = network.encode(batch.to(device))  # (B, L) for the repeat design
        if not decode:
            return Chunk(where, None, None, z.cpu())
        output = network.decode(z, batch.shape[1]).cpu()  # (B, T, F)
        return Chunk(where, (output - batch).pow(2).double().numpy(), output, z.cpu())

    with torch.inference_mode():
        yield from ordered_map(forward, jobs, cpu_workers(device))


class Merge:
    """Per-window values (B, T, C) back onto timesteps (series: mean over covering windows) or samples (panel)."""

    def __init__(self, length: int, timesteps: int, channels: int, is_panel: bool) -> None:
        self.is_panel = is_panel
        if is_panel:
            self.values = np.empty((length, timesteps, channels), dtype=np.float64)  # (S, T, C)
        else:
            self.accumulator = TimestepAccumulator(length, channels)

    def add(self, where: torch.Tensor, values: np.ndarray) -> None:
        where = where.numpy()
        if self.is_panel:
            self.values[where] = values
        else:
            self.accumulator.add(where, values)

    def result(self) -> np.ndarray:
        """(n, C) for a series, (S, T, C) for a panel."""
        return self.values if self.is_panel else self.accumulator.mean()


def distances(chunk: Chunk, reference: CentredReference, exclude: tuple[torch.Tensor, int] | None, is_panel: bool) -> np.ndarray:
    """Each window's distance to its nearest reference embedding, spread over its steps: (B, T, 1), or (B, 1, 1) for a panel.

    Call it in the consuming thread, not the workers: measured, a distance search
    running beside the workers' networks made their results vary in the last bits.
    """
    at = None if exclude is None else (torch.from_numpy(np.asarray(chunk.where)), *exclude)
    distance = nearest_distances(chunk.embedding.float(), reference, at).double()  # (B,)
    return distance[:, None, None].expand(-1, 1 if is_panel else chunk.squared.shape[1], 1).double().numpy()


#: Windows per block of the nearest-window pass: bounds its memory to a few MB whatever the series length.
NEIGHBOUR_CHUNK = 1024


def neighbour_stride(stride: int, length: int) -> int:
    """The stride of the nearest-window part's windows of ``length`` steps: the score stride, at most the length
    (a longer stride would leave timesteps that no window covers)."""
    return min(stride, length)


def neighbour_pass(scaled: torch.Tensor, reference: WindowReference, stride: int,
                   exclude: tuple[torch.Tensor, int] | None = None) -> np.ndarray:
    """The nearest-window part of a series per timestep: (n, 1) float64.

    The windows of L = ``reference.length`` steps start every `neighbour_stride` steps
    (and the last ends at n - 1, `window_starts`); each window's distance to its
    nearest z-normalised training window (`lstmae.scoring.neighbours.nearest_window_distances`)
    counts for its L steps, and each timestep gets the mean over the windows
    covering it. No network: it runs beside the network's pass, in the calling thread.

    Parameters
    ----------
    scaled : Tensor of shape (n, F), n >= L, in training-scaled units
    reference : `lstmae.scoring.neighbours.WindowReference`
    stride : int >= 1, the score stride
    exclude : (the reference windows' starts (M,), radius), optional
        For the training series itself: skip the reference windows starting within
        ``radius`` of each window's start.
    """
    length = reference.length
    merge = Merge(scaled.shape[0], 1, 1, False)
    view = scaled.unfold(0, length, 1)  # (n - L + 1, F, L): a view
    starts = torch.from_numpy(window_starts(scaled.shape[0], length, neighbour_stride(stride, length)))
    for first in range(0, len(starts), NEIGHBOUR_CHUNK):
        where = starts[first : first + NEIGHBOUR_CHUNK]
        at = None if exclude is None else (where, *exclude)
        distance = nearest_window_distances(view[where].transpose(1, 2), reference, at).double()  # (B,)
        merge.add(where, distance[:, None, None].expand(-1, length, 1).numpy())
    return merge.result()


@dataclass
class Merged:
    """A pass's per-timestep (series) or per-sample (panel) results.

    errors : (n, F) or (S, T, F), squared errors in scaled units, not normalised
    reconstruction : same shape, or None
    distances : (n, 1) or (S, 1, 1) latent distances, or None
    neighbours : (n, 1) nearest-neighbour window distances (series), or None
    """

    errors: np.ndarray
    reconstruction: np.ndarray | None = None
    distances: np.ndarray | None = None
    neighbours: np.ndarray | None = None


class PassMerger:
    """Merges the decoded chunks of one pass over a series or panel (see `merged`); the nearest-window part
    is not the network's and comes from `neighbour_pass`."""

    def __init__(self, shape: tuple[int, ...], is_panel: bool, reconstruction: bool,
                 reference: torch.Tensor | CentredReference | None,
                 exclude: tuple[torch.Tensor, int] | None = None) -> None:
        length, timesteps, features = shape[0], shape[1] if is_panel else 1, shape[-1]
        if isinstance(reference, torch.Tensor):  # prepared once for every chunk
            reference = CentredReference.of(reference)
        self.is_panel, self.reference, self.exclude = is_panel, reference, exclude
        self.errors = Merge(length, timesteps, features, is_panel)
        self.reconstruction = Merge(length, timesteps, features, is_panel) if reconstruction else None
        self.distances = Merge(length, 1, 1, is_panel) if reference is not None else None

    def add(self, chunk: Chunk) -> None:
        self.errors.add(chunk.where, chunk.squared)
        if self.reconstruction is not None:
            self.reconstruction.add(chunk.where, chunk.output.double().numpy())
        if self.distances is not None:
            self.distances.add(chunk.where, distances(chunk, self.reference, self.exclude, self.is_panel))

    def result(self, neighbours: np.ndarray | None = None) -> Merged:
        """The merged pass, with the nearest-window part (n, 1) from `neighbour_pass` when given."""
        return Merged(
            self.errors.result(),
            None if self.reconstruction is None else self.reconstruction.result(),
            None if self.distances is None else self.distances.result(),
            neighbours,
        )


def merged(
    network: torch.nn.Module,
    scaled: torch.Tensor,
    is_panel: bool,
    stride: int,
    *,
    reconstruction: bool = False,
    reference: torch.Tensor | CentredReference | None = None,
    exclude: tuple[torch.Tensor, int] | None = None,
    neighbours: WindowReference | torch.Tensor | None = None,
) -> Merged:
    """One pass over a series (n, F) or panel (S, T, F): errors, and reconstructions and/or latent distances.

    Series windows are every ``stride``-th and the last; each timestep's values
    are averaged over the windows that cover it. ``reference`` (M, L): the
    training embeddings to measure latent distances to; ``exclude``: (their
    positions (M,), radius), skipping the reference rows near each window.
    ``neighbours``: the z-normalised training windows to measure input-space
    nearest-window distances to (series only, `neighbour_pass`; no exclusion).
    """
    merger = PassMerger(tuple(scaled.shape), is_panel, reconstruction, reference, exclude)
    for chunk in run(network, ((where, batch, True) for where, batch in batches(network, scaled, is_panel, stride))):
        merger.add(chunk)
    near = None
    if neighbours is not None and not is_panel:
        near = neighbour_pass(scaled, neighbours if isinstance(neighbours, WindowReference)
                              else WindowReference.of(neighbours, network.config.timesteps), stride)
    return merger.result(near)


def embeddings(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int) -> torch.Tensor:
    """The encoder output of every ``stride``-th window (and the last), or of every sample: (N, L) or (N, T/k, L), float32."""
    jobs = ((where, batch, False) for where, batch in batches(network, scaled, is_panel, stride))
    return torch.cat([chunk.embedding for chunk in run(network, jobs)])
